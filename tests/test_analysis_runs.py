"""A results folder with several nightly runs: every view keeps them apart, `latest_run` / `latest()` name the newest
finished one, costs come from a run's own measurements (or the ingested tables), the report says which run it shows."""
from __future__ import annotations

import shutil
from datetime import datetime, timezone

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from analysis_fixture import RUN, fixture_arch_ids, shared_results

from zsdist.analysis.report import build_report, choose_run
from zsdist.analysis.spec import AnalysisSpec
from zsdist.analysis.views import connect
from zsdist.store import Store

SPEC = AnalysisSpec(pool_sizes=(10,), pool_repeats=4, top_k=(1,), bootstrap_resamples=50)
NIGHTS = {  # run id → (started, finished); the last night is still running
    "nightly-20261128-aaaaaaaaaaaa": (datetime(2026, 11, 28, 2, tzinfo=timezone.utc),
                                      datetime(2026, 11, 28, 3, tzinfo=timezone.utc)),
    "nightly-20261129-bbbbbbbbbbbb": (datetime(2026, 11, 29, 2, tzinfo=timezone.utc),
                                      datetime(2026, 11, 29, 3, tzinfo=timezone.utc)),
    "nightly-20261130-cccccccccccc": (datetime(2026, 11, 30, 2, tzinfo=timezone.utc), None),
}
FLIPPED = "nightly-20261128-aaaaaaaaaaaa"  # its params values are negated: its correlations differ from the others'
MEASURED = {"nightly-20261128-aaaaaaaaaaaa": 1.0, "nightly-20261129-bbbbbbbbbbbb": 2.0}  # cpu ms per arch_id unit


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs") / "results"
    shutil.copytree(shared_results(tmp_path_factory), root)
    store = Store(str(root))
    scores = pq.read_table(root / "scores" / f"run_id={RUN}" / "space=nb201" / "shard-0.parquet")
    for run_id, (started, finished) in NIGHTS.items():
        rows = scores
        if run_id == FLIPPED:
            negated = pc.if_else(pc.equal(scores["proxy"], "params"), pc.negate(scores["value"]), scores["value"])
            rows = scores.set_column(scores.schema.get_field_index("value"), "value", negated)
        store.write("scores", rows, "shard-0", run_id=run_id, space="nb201")
        store.write("runs", [{"workflow": "[run]\nname = \"nightly\"", "config_hash": run_id[-12:],
                              "code_version": "test", "started": started, "finished": finished, "host": "test"}],
                    "run", run_id=run_id)
    for run_id, unit in MEASURED.items():
        store.write("latency", [{"arch_id": a, "arch": None, "dataset": "cifar10", "device": "cpu",
                                 "source": "measured", "batch_size": 1, "latency_ms": unit * (a + 1),
                                 "energy_mj": None, "status": "ok", "error": None, "details": None}
                                for a in fixture_arch_ids()], "shard-0", run_id=run_id, space="nb201")
    return root


@pytest.fixture(scope="module")
def con(folder):
    return connect(str(folder), SPEC)


def test_run_names_and_the_latest_finished_run(con):
    names = dict(con.execute("SELECT run_id, name FROM run_index").fetchall())
    assert names == {RUN: RUN, **{run_id: "nightly" for run_id in NIGHTS}}
    latest = dict(con.execute("SELECT name, run_id FROM latest_run").fetchall())
    assert latest == {"nightly": "nightly-20261129-bbbbbbbbbbbb", RUN: RUN}  # 20261130 is not finished
    assert con.execute("SELECT latest('nightly'), latest('fixture'), latest('nope')").fetchone() == (
        "nightly-20261129-bbbbbbbbbbbb", RUN, None)
    assert con.execute("SELECT count(*) FROM correlation WHERE run_id = latest('nightly')").fetchone()[0] == 12


def test_views_keep_every_run_apart(con):
    rho = {(r, d, m): v for r, d, m, v in con.execute(
        "SELECT run_id, dataset, metric, spearman FROM correlation WHERE proxy = 'params'").fetchall()}
    assert {r for r, _, _ in rho} == {RUN, *NIGHTS}
    for (run_id, dataset, metric), value in rho.items():
        expected = rho[RUN, dataset, metric]
        assert value == pytest.approx(-expected if run_id == FLIPPED else expected)
    for view, per_run in (("family_summary", 3 * 2 * 4), ("family_selection", 3 * 2), ("selection", 2 * 2 * 3)):
        counts = dict(con.execute(f"SELECT run_id, count(*) FROM {view} GROUP BY run_id").fetchall())
        assert counts == {r: per_run for r in (RUN, *NIGHTS)}, view
    summary = dict(con.execute("SELECT run_id, mean_spearman FROM family_summary WHERE proxy = 'params' "
                               "AND metric = 'test_acc' AND region = 'all'").fetchall())
    assert summary[FLIPPED] == pytest.approx(-summary[RUN])


def test_costs_come_from_the_run_itself_or_the_ingested_tables(con):
    rows = con.execute("""SELECT run_id, cost_run, arch_id, cost_value FROM hw_candidates
        WHERE device = 'cpu' AND metric = 'test_acc'""").fetchall()
    assert {(r, c) for r, c, _, _ in rows} == {(r, r) for r in MEASURED}  # no run borrows another's measurement
    assert all(value == MEASURED[run_id] * (arch_id + 1) for run_id, _, arch_id, value in rows)
    tables = con.execute("SELECT DISTINCT run_id, cost_run FROM hw_candidates WHERE device = 'raspi4'").fetchall()
    assert sorted(tables) == sorted((r, "tables") for r in (RUN, *NIGHTS))


def test_report_names_its_run_and_the_others(con, folder):
    assert choose_run(con, None) == "nightly-20261130-cccccccccccc"  # the one started last
    report = build_report(con, "nightly-20261129-bbbbbbbbbbbb", str(folder), SPEC)
    scope = report.scope()
    assert scope.startswith("Run nightly-20261129-bbbbbbbbbbbb (finished)")
    assert all(run_id in scope for run_id in (RUN, *NIGHTS)) and "latest_run" in scope
    families = next(t for t in report.tables if t.key == "families")
    assert len(families.rows) == 3 * 2  # this run's proxies × metrics, not every run's
