"""The command line: bad input ends with one clear line and exit status 2; query formats; listings."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.fixture
def bad_workflow(tmp_path, small_workflow, workflow_file):
    """`bad_workflow(old, new)` → the path of the small workflow with `old` replaced by `new`."""
    def write(old: str, new: str) -> str:
        body = small_workflow.format(output=tmp_path / "out").replace(old, new)
        return str(workflow_file(tmp_path, body))

    return write


@pytest.mark.parametrize("old, new, message", [
    ('space = "nb201"', 'space = "nb2O1"', "unknown space 'nb2O1'; did you mean 'nb201'?"),
    ('archs = { ids = [0, 9009, 10798, 15624, 777, 4321] }', 'archs = { archs = ["|nor_conv_3x3~0|+|x~0|"] }',
     "bad NB201 arch string"),
    ('"naswot"]', '"nasw0t"]', "unknown proxy 'nasw0t'; did you mean 'naswot'?"),
    ('batch_size = 16', 'batch_size = [16', "malformed workflow file"),
    ('shard_size = 2', 'shardsize = 2', "unknown key(s) shardsize"),
    ('archs = { ids = [0, 9009, 10798, 15624, 777, 4321] }', 'archs = { ids = [15625] }',
     "arch id 15625 is outside space 'nb201'"),
    ('datasets = ["cifar10", "imagenet16_120"]', 'datasets = ["cifar1O"]', "unknown dataset 'cifar1O'"),
])
def test_bad_workflow_exits_2_with_one_line(cli, bad_workflow, old, new, message):
    code, _, err = cli("launch", "--workflow", bad_workflow(old, new))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_missing_workflow_file(tmp_path, cli):
    code, _, err = cli("launch", "--workflow", str(tmp_path / "none.toml"))
    assert code == 2 and "does not exist" in err


def test_missing_data_path(tmp_path, monkeypatch, cli):
    monkeypatch.setenv("ZSDIST_DATA", str(tmp_path / "no-data"))
    code, _, err = cli("ingest", "--results", str(tmp_path / "r"))
    assert code == 2 and f"ZSDIST_DATA={tmp_path / 'no-data'} is not a folder" in err


def test_unwritable_output(tmp_path, cli, small_workflow, workflow_file):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    workflow = str(workflow_file(tmp_path, small_workflow.format(output=blocker / "results")))
    code, _, err = cli("launch", "--workflow", workflow)
    assert code == 2 and f"output folder {blocker / 'results'} is not writable" in err


def test_bad_sql_is_one_line(tmp_path, cli):
    code, _, err = cli("query", "SELEC 1", "--results", str(tmp_path))
    assert code == 2 and err.startswith("error: query failed") and err.count("\n") == 1


@pytest.mark.parametrize("fmt, check", [
    ("csv", lambda out: out.splitlines() == ["space,n", "nb201,15625"]),
    ("json", lambda out: json.loads(out) == [{"space": "nb201", "n": 15625}]),
    ("table", lambda out: "nb201" in out and "15625" in out and "(1 row)" in out),
])
def test_query_formats(tmp_path, cli, fmt, check):
    args = ("ingest", "--results", str(tmp_path), "--source", "nb201", "--no-latency-tables")
    assert cli(*args)[0] == 0
    sql = "SELECT space, count(*) AS n FROM truth WHERE metric = 'test_acc' AND dataset = 'cifar10' GROUP BY space"
    code, out, _ = cli("query", sql, "--results", str(tmp_path), "--format", fmt)
    assert code == 0 and check(out.strip())


def test_listings(cli):
    assert "15,625" in cli("spaces")[1]
    out = cli("proxies")[1]
    assert {"params", "flops", "synflow", "naswot"} <= {line.split()[0] for line in out.splitlines()}


def test_console_script_reports_errors_with_status_2(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "zsdist")
    done = subprocess.run([script, "query", "SELECT * FROM nope", "--results", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "nope" in done.stderr and "Traceback" not in done.stderr


def test_missing_images_fail_before_any_shard_is_dispatched(tmp_path, cli, small_workflow, workflow_file):
    body = small_workflow.format(output=tmp_path / "out").replace(
        "shard_size = 2", f'shard_size = 2\ndata = {{ cifar10 = "{tmp_path}/missing.npz" }}')
    code, _, err = cli("launch", "--workflow", str(workflow_file(tmp_path, body)))
    assert code == 2 and err.count("\n") == 1 and "missing image data" in err
    assert not list((tmp_path / "out").rglob("*.parquet"))


@pytest.mark.fulldata  # HELP's tables are fetched, not embedded
def test_ingest_loads_truth_and_latency_tables_idempotently(tmp_path, cli):
    from zsdist.analysis.views import connect

    for _ in range(2):
        code, out, _ = cli("ingest", "--results", str(tmp_path), "--source", "nb201")
        assert code == 0 and "latency tables hw_nas_bench: 281250 rows" in out
    con = connect(str(tmp_path))
    assert con.execute("SELECT count(*) FROM truth").fetchone()[0] == 15_625 * 6
    counts = dict(con.execute("SELECT source, count(*) FROM latency WHERE run_id = 'tables' GROUP BY ALL").fetchall())
    assert counts == {"table": 281_250 + 421_875}
