"""`zsdist search` on a local Ray with real Parquet and DuckDB: every evaluation is a row of the search's run, the
driver follows the in-memory loop exactly, reruns and second searches compute nothing already computed, a killed
driver resumes without repeating an evaluation, and undefined proxies stop the search before it starts."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from zsdist.analysis.report import write_report
from zsdist.analysis.views import connect
from zsdist.errors import ZsdistError
from zsdist.hardware.tables import hwnb_tables
from zsdist.search.driver import run_search
from zsdist.search.loop import SearchLoop, drive
from zsdist.search.rows import KnownRows, Settings
from zsdist.search.spec import SearchSpec, parse_search
from zsdist.search.strategies import create_strategy
from zsdist.search.tables import TableEvaluator
from zsdist.spaces import create_space

REPO = Path(__file__).resolve().parent.parent
LATENCY = hwnb_tables("cifar10")["raspi4"].latency_ms
LIMIT = float(np.nanpercentile(LATENCY, 50))
SEARCH = """
[run]
name = "{name}"
output = "{output}"
seed = 0

[search]
space = "nb201"
dataset = "cifar10"
objective = "{objective}"
constraints = [{{ cost = "latency", device = "raspi4", max = {limit} }}]
budget = {budget}
strategy = {{ name = "evolution", population = 3, tournament = 2 }}
batch_size = 4
shard_size = {shard_size}
parallel = {parallel}
"""


def search_file(folder: Path, name: str = "s", objective: str = "params", budget: int = 6, shard_size: int = 2,
                parallel: int = 2) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(SEARCH.format(name=name, output=folder / "results", objective=objective, limit=LIMIT,
                                  budget=budget, shard_size=shard_size, parallel=parallel))
    return path


def spec_of(path: Path) -> SearchSpec:
    return parse_search(path.read_text(), str(path))


def files(root: Path, run_id: str) -> dict[str, int]:
    """The run's evaluation and history files with their modification times."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for table in ("scores", "latency", "search")
            for p in root.glob(f"{table}/run_id={run_id}/*/*.parquet")}


def history(root: Path, run_id: str) -> list[tuple]:
    return connect(str(root)).execute("""SELECT step, batch, arch_id, rung, stage, feasible, cost, score,
        evaluations, best_arch_id FROM search_history WHERE run_id = $run ORDER BY step""", {"run": run_id}).fetchall()


def in_memory(spec: SearchSpec, root: Path) -> list[tuple]:
    """The same search run by the in-memory loop on the run's own params values and the raspi4 table."""
    params = np.full(15_625, np.nan)
    rows = connect(str(root)).execute("SELECT arch_id, value FROM scores WHERE run_id = $run AND proxy = 'params'",
                                      {"run": spec.run_id}).fetchall()
    for arch_id, value in rows:
        params[arch_id] = value
    space = create_space("nb201")
    loop = SearchLoop(spec, space, create_strategy(spec.strategy))
    rows: list[dict] = []
    drive(loop, TableEvaluator(spec, {"params": params}, [LATENCY]), lambda _i, batch: rows.extend(batch))
    return [(r["step"], r["batch"], r["arch_id"], r["rung"], r["stage"], r["feasible"], r["cost"], r["score"],
             r["evaluations"], r["best_arch_id"]) for r in rows]


@pytest.fixture(scope="module")
def searched(tmp_path_factory, local_ray):
    folder = tmp_path_factory.mktemp("search")
    spec = spec_of(search_file(folder))
    return spec, folder / "results", run_search(spec, show_progress=False)


def test_every_evaluation_is_a_row_of_the_search_run(searched):
    spec, root, summary = searched
    con = connect(str(root))
    assert summary.evaluations == spec.budget and summary.computed_shards > 0
    scores = con.execute("SELECT arch_id, proxy, status FROM scores WHERE run_id = $run",
                         {"run": spec.run_id}).fetchall()
    latency = con.execute("SELECT arch_id, device, source FROM latency WHERE run_id = $run",
                          {"run": spec.run_id}).fetchall()
    evaluated = {a for (a,) in con.execute("SELECT arch_id FROM search_history WHERE run_id = $run AND stage = "
                                           "'evaluated'", {"run": spec.run_id}).fetchall()}
    candidates = con.execute("SELECT count(*) FROM search_history WHERE run_id = $run", {"run": spec.run_id}).fetchone()
    assert sorted(a for a, _, _ in scores) == sorted(evaluated) and len(evaluated) == spec.budget
    assert len(latency) == len({a for a, _, _ in latency}) == candidates[0] == summary.candidates
    assert {s for _, _, s in latency} == {"table"}


def test_the_driver_follows_the_in_memory_loop(searched):
    spec, root, summary = searched
    observed = history(root, spec.run_id)
    assert observed == in_memory(spec, root)
    pick = connect(str(root)).execute("SELECT arch_id, objective FROM search_result WHERE run_id = $run AND pick",
                                      {"run": spec.run_id}).fetchall()
    assert pick == [(observed[-1][-1], summary.pick["score"])] and summary.pick["arch_id"] == observed[-1][-1]


def test_search_result_is_the_pareto_set_of_what_was_evaluated(searched):
    spec, root, _ = searched
    rows = connect(str(root)).execute("SELECT arch_id, objective, cost, on_front, pick FROM search_result WHERE "
                                      "run_id = $run", {"run": spec.run_id}).fetchall()
    assert len(rows) == spec.budget
    for arch_id, objective, cost, on_front, _pick in rows:
        dominated = any(o >= objective and c <= cost and (o > objective or c < cost) for _, o, c, _, _ in rows)
        assert on_front == (not dominated), arch_id
    picks = [r for r in rows if r[4]]
    assert len(picks) == 1 and picks[0][1] == max(r[1] for r in rows) and picks[0][3]  # the best, on the front


def test_a_rerun_computes_and_writes_nothing(searched):
    spec, root, summary = searched
    before = files(root, spec.run_id)
    again = run_search(spec, show_progress=False)
    assert again.computed_shards == 0 and again.pick == summary.pick
    assert files(root, spec.run_id) == before


def test_a_second_search_reuses_the_rows_of_the_first(searched):
    spec, root, summary = searched
    second = spec_of(search_file(root.parent, name="second"))
    done = run_search(second, show_progress=False)
    assert done.computed_shards == 0 and done.reused == summary.candidates
    con = connect(str(root))
    values = con.execute("""SELECT count(*), count(*) FILTER (WHERE a.value = b.value) FROM scores a JOIN scores b
        USING (arch_id, proxy) WHERE a.run_id = $a AND b.run_id = $b""", {"a": spec.run_id, "b": second.run_id})
    assert values.fetchone() == (spec.budget, spec.budget)
    assert history(root, second.run_id) == history(root, spec.run_id)


def test_rows_are_reused_only_for_the_same_settings(searched):
    spec, root, _ = searched
    from zsdist.search.driver import _settings
    from zsdist.store import Store

    settings = _settings(spec)
    assert len(KnownRows(Store(str(root)), "other", settings).scores) == spec.budget
    for changed in ({"seed": 1}, {"batch_size": 8}, {"device": "cuda"}, {"options": (("params", "{}"),)},
                    {"reuse": False}):
        kept = KnownRows(Store(str(root)), "other", Settings(**{**settings.__dict__, **changed}))
        assert not kept.scores, changed
    assert not KnownRows(Store(str(root)), "other", Settings(**{**settings.__dict__, "reuse": False})).latency


def test_a_killed_driver_resumes_without_repeating_an_evaluation(tmp_path, local_ray):
    path = search_file(tmp_path, name="killed", budget=14, shard_size=1, parallel=1)
    spec = spec_of(path)
    root = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    driver = subprocess.Popen([sys.executable, "-m", "zsdist", "search", "--workflow", str(path), "--address",
                               local_ray.get_runtime_context().gcs_address], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    batches = root / "search" / f"run_id={spec.run_id}" / "space=nb201"
    deadline = time.monotonic() + 600
    while len(list(batches.glob("b*.parquet"))) < 3 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert driver.returncode == -signal.SIGKILL and not (batches / "final.parquet").exists()
    before = files(root, spec.run_id)
    done = run_search(spec, show_progress=False)
    assert done.evaluations == spec.budget
    after = files(root, spec.run_id)
    assert all(after[f] == mtime for f, mtime in before.items())  # nothing written before the kill is redone
    con = connect(str(root))
    for table, name in (("scores", "proxy"), ("latency", "device")):
        counts = con.execute(f"SELECT count(*), count(DISTINCT (arch_id, {name})) FROM {table} WHERE run_id = $run",
                             {"run": spec.run_id}).fetchone()
        assert counts[0] == counts[1], table  # no evaluation twice
    assert history(root, spec.run_id) == in_memory(spec, root)


def test_halving_screens_on_the_cheap_proxy_before_computing_the_objective(tmp_path, local_ray):
    path = search_file(tmp_path, name="halving", budget=3, shard_size=4)
    path.write_text(path.read_text().replace('{ name = "evolution", population = 3, tournament = 2 }',
                                             '{ name = "halving", screen = ["flops"], eta = 2 }'))
    spec = spec_of(path)
    done = run_search(spec, show_progress=False)
    con = connect(str(tmp_path / "results"))
    computed = {proxy: {a for (a,) in con.execute("SELECT arch_id FROM scores WHERE run_id = $run AND proxy = $p",
                                                  {"run": spec.run_id, "p": proxy}).fetchall()}
                for proxy in ("flops", "params")}
    assert done.evaluations == 3 and done.stages["screened"] == len(computed["flops"]) >= 2 * 3
    assert computed["params"] <= computed["flops"] and len(computed["params"]) == 3


def test_a_proxy_undefined_on_the_space_stops_the_search_before_it_starts(tmp_path):
    spec = spec_of(search_file(tmp_path, objective="tf_tas"))
    with pytest.raises(ZsdistError, match="proxy 'tf_tas' is not defined on space 'nb201'.*Attention"):
        run_search(spec, show_progress=False)
    assert not (tmp_path / "results").exists()


def test_the_cli_prints_one_line_for_a_bad_search_file(tmp_path, cli):
    path = search_file(tmp_path)
    path.write_text(path.read_text().replace("budget", "budgte"))
    code, out, err = cli("search", "--workflow", str(path))
    assert code == 2 and out == "" and err.strip().count("\n") == 0 and "did you mean 'budget'" in err


def test_the_cli_reports_the_pick_and_the_report_has_a_search_section(searched, tmp_path, cli):
    spec, root, summary = searched
    code, out, _ = cli("search", "--workflow", str(root.parent / "s.toml"))
    assert code is None or code == 0
    assert f"pick: {summary.pick['arch']}" in out and "0 shards computed" in out
    report = write_report(str(root), spec.run_id, str(tmp_path / "report"))
    table = next(t for t in report.tables if t.key == "search")
    assert {r[0] for r in table.rows} >= {spec.run_id} and any(f.key == "search" for f in report.figures)
