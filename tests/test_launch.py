"""End to end on a local Ray: workflow → shards → Parquet → DuckDB, reruns, truth and correlation."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from examples import NB201_EXAMPLE
from scipy import stats

from zsdist.analysis.views import connect
from zsdist.errors import ZsdistError
from zsdist.run import launch
from zsdist.store import Store
from zsdist.truth import ingest
from zsdist.workflow import load_workflow


def _files(root: Path, table: str) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in (root / table).rglob("*.parquet")}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, local_ray, small_workflow, workflow_file):
    folder = tmp_path_factory.mktemp("small")
    output = folder / "results"
    wf = load_workflow(workflow_file(folder, small_workflow.format(output=output)))
    ingest(Store(str(output)), "nb201")
    return wf, output, launch(wf, show_progress=False)


def test_launch_writes_one_parquet_file_per_shard(small_run):
    wf, output, summary = small_run
    files = _files(output, "scores")
    assert summary.shards_done == 3 and len(files) == 3
    assert all(f"run_id={wf.run_id}" in f and "space=nb201" in f for f in files)
    assert not list(output.rglob("_tmp-*"))
    con = connect(str(output))
    assert con.execute("SELECT count(*) FROM scores").fetchone()[0] == 6 * 2 * 4
    assert con.execute("SELECT count(*) FROM (SELECT DISTINCT arch_id, dataset, proxy FROM scores)").fetchone()[0] == 48
    # the all-"none" cell (id 0) maps every input to the same code: its NASWOT kernel is singular
    failed = con.execute("SELECT arch_id, proxy, status, value FROM scores WHERE status <> 'ok'").fetchall()
    assert failed == [(0, "naswot", "nan", None)] * 2
    row = con.execute("SELECT value FROM scores WHERE arch_id = 9009 AND dataset = 'cifar10' AND proxy = 'params'")
    assert row.fetchone()[0] == 129_306


def test_rerun_writes_nothing_twice(small_run):
    wf, output, _ = small_run
    before = _files(output, "scores")
    again = launch(wf, show_progress=False)
    assert (again.shards_done, again.shards_skipped) == (0, 3)
    assert _files(output, "scores") == before


def test_runs_table_records_the_workflow(small_run):
    wf, output, _ = small_run
    con = connect(str(output))
    run_id, text, config_hash, version, finished = con.execute(
        "SELECT run_id, workflow, config_hash, code_version, finished FROM runs").fetchone()
    assert (run_id, text, config_hash) == (wf.run_id, wf.text, wf.config_hash)
    assert version and finished is not None


def test_rows_record_the_choices_behind_each_number(small_run):
    _, output, _ = small_run
    con = connect(str(output))
    batch, seed, device, options = con.execute(
        "SELECT DISTINCT batch_size, seed, device, options FROM scores WHERE proxy = 'naswot'").fetchone()
    assert (batch, seed, device) == (16, 0, "cpu") and '"bn": "train"' in options


def test_correlation_view_matches_scipy(small_run):
    wf, output, _ = small_run
    con = connect(str(output))
    pairs = con.execute("""SELECT s.value, t.value FROM scores s JOIN truth t USING (space, arch_id, dataset)
        WHERE s.proxy = 'naswot' AND s.dataset = 'cifar10' AND t.metric = 'test_acc' AND s.status = 'ok'
        ORDER BY s.arch_id""").fetchall()
    x, y = zip(*pairs)  # the null (status nan) row of cell 0 is left out
    n, rho, tau, r = con.execute("""SELECT n, spearman, kendall, pearson FROM correlation WHERE proxy = 'naswot'
        AND dataset = 'cifar10' AND metric = 'test_acc' AND run_id = ?""", [wf.run_id]).fetchone()
    assert n == 5
    assert rho == pytest.approx(stats.spearmanr(x, y).statistic)
    assert tau == pytest.approx(stats.kendalltau(x, y).statistic)
    assert r == pytest.approx(stats.pearsonr(x, y).statistic)


def test_wide_view_has_a_column_per_proxy(small_run):
    _, output, _ = small_run
    con = connect(str(output))
    params, flops, acc = con.execute(
        "SELECT params, flops, test_acc FROM wide WHERE arch_id = 9009 AND dataset = 'imagenet16_120'").fetchone()
    assert (params, flops) == (136_456, 3_919_480) and 0 < acc < 100


def test_ingest_is_idempotent(tmp_path):
    store = Store(str(tmp_path))
    assert ingest(store, "nb201") == ingest(store, "nb201") == 15_625 * 6
    assert len(list((tmp_path / "truth").rglob("*.parquet"))) == 1
    con = connect(str(tmp_path))
    assert con.execute("SELECT count(*) FROM truth").fetchone()[0] == 15_625 * 6
    best = con.execute("SELECT max(value) FROM truth WHERE metric = 'test_acc' AND dataset = 'cifar10'").fetchone()[0]
    assert best == pytest.approx(94.37, abs=0.01)


def test_params_rank_nb201_cells_like_the_survey(tmp_path, local_ray, workflow_file):
    """Spearman of #params against cifar10 test accuracy is about 0.75 over all cells (ZiCo, Table 1)."""
    body = f"""
[run]
name = "params-check"
output = "{tmp_path}"
[[jobs]]
space = "nb201"
datasets = ["cifar10"]
archs = {{ sample = 300, seed = 11 }}
proxies = ["params", "flops"]
shard_size = 150
"""
    wf = load_workflow(workflow_file(tmp_path, body))
    ingest(Store(str(tmp_path)), "nb201")
    launch(wf, show_progress=False)
    rho = dict(connect(str(tmp_path)).execute(
        "SELECT proxy, spearman FROM correlation WHERE metric = 'test_acc'").fetchall())
    assert 0.68 < rho["params"] < 0.82 and 0.66 < rho["flops"] < 0.80


def test_output_as_a_filesystem_uri_and_dated_run_ids(tmp_path, local_ray, small_workflow, workflow_file):
    body = small_workflow.format(output=f"file://{tmp_path}/res")
    body = body.replace('name = "small"', 'name = "nightly"\ndated = true')
    wf = load_workflow(workflow_file(tmp_path, body))
    assert re.fullmatch(r"nightly-\d{8}-[0-9a-f]{12}", wf.run_id)
    assert wf.config_hash == load_workflow(workflow_file(tmp_path, small_workflow.format(output="x").replace(
        'name = "small"', 'name = "nightly"'), "plain.toml")).config_hash
    launch(wf, show_progress=False)
    assert len(list((tmp_path / "res" / "scores").rglob("*.parquet"))) == 3
    assert connect(f"file://{tmp_path}/res").execute("SELECT count(*) FROM scores").fetchone()[0] == 48


@pytest.mark.fulldata
def test_latency_devices_land_in_the_latency_table(tmp_path, local_ray, small_workflow, workflow_file):
    body = small_workflow.format(output=tmp_path).replace(
        'proxies = ["params", "flops", "synflow", "naswot"]', 'proxies = ["params"]\nlatency = ["raspi4", "cpu"]')
    wf = load_workflow(workflow_file(tmp_path, body))
    summary = launch(wf, show_progress=False)
    assert summary.shards_done == 6  # 3 proxy shards + 3 latency shards
    con = connect(str(tmp_path))
    rows = con.execute("""SELECT device, source, count(*), count(*) FILTER (WHERE status = 'ok' AND latency_ms > 0)
        FROM latency WHERE run_id = ? GROUP BY ALL ORDER BY device""", [wf.run_id]).fetchall()
    assert rows == [("cpu", "measured", 12, 12), ("raspi4", "table", 12, 12)]
    table_value = con.execute("""SELECT latency_ms FROM latency WHERE device = 'raspi4' AND arch_id = 9009
        AND dataset = 'cifar10'""").fetchone()[0]
    import csv
    with open(os.path.join(os.environ["ZSDIST_DATA"], "nb201", "nb201_accuracy.csv")) as f:
        index = next(int(r["nb201_index"]) for r in csv.DictReader(f) if r["arch_str"] == NB201_EXAMPLE)
    with open(os.path.join(os.environ["ZSDIST_DATA"], "hw_nas_bench", "hw_cifar10.csv")) as f:
        assert table_value == pytest.approx(float(list(csv.DictReader(f))[index]["raspi4_latency"]))


@pytest.mark.fulldata
def test_truth_selection_takes_every_architecture_with_ground_truth(tmp_path, small_workflow, workflow_file):
    body = small_workflow.format(output=tmp_path).replace('space = "nb201"', 'space = "pit"').replace(
        'datasets = ["cifar10", "imagenet16_120"]', 'datasets = ["cifar100_224"]').replace(
        "archs = { ids = [0, 9009, 10798, 15624, 777, 4321] }", 'archs = "truth"')
    ids = load_workflow(workflow_file(tmp_path, body)).jobs[0].arch_ids()
    truth = ingest(Store(str(tmp_path)), "pit")
    assert len(ids) == 100 and truth == 600
    assert {r[0] for r in connect(str(tmp_path)).execute("SELECT DISTINCT arch_id FROM truth").fetchall()} == set(ids)
    with pytest.raises(ZsdistError, match="no ground truth"):
        load_workflow(workflow_file(tmp_path, body.replace('space = "pit"', 'space = "nats_sss"').replace(
            'datasets = ["cifar100_224"]', 'datasets = ["cifar10"]'), "sss.toml"))
