"""The command line: bad input ends with one clear line and exit status 2; query output; listings."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from boxtable import box_rows


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


# NULLs, NaNs, floats, a string that needs CSV quoting, and rows in a given order, from real results
QUERY = """SELECT arch_id, arch, value, CASE WHEN arch_id % 2 = 0 THEN arch_id END AS even_id,
                  CASE WHEN arch_id % 3 = 0 THEN 'nan'::DOUBLE ELSE value / 7 END AS ratio, metric || ', "q"' AS label
           FROM truth WHERE dataset = 'cifar10' AND metric = 'test_acc' ORDER BY arch_id LIMIT 12"""


@pytest.fixture(scope="module")
def nb201_results(tmp_path_factory) -> tuple[str, list[str], list[tuple]]:
    """A results folder holding NB201's ground truth, with QUERY's columns and rows as DuckDB returns them."""
    from zsdist.analysis.views import connect
    from zsdist.store import Store
    from zsdist.truth import ingest

    folder = str(tmp_path_factory.mktemp("nb201"))
    ingest(Store(folder), "nb201")
    cursor = connect(folder).execute(QUERY)
    return folder, [d[0] for d in cursor.description], cursor.fetchall()


def _same(got: object, want: object) -> bool:
    return (got != got and want != want) or got == want  # NaN equals NaN here


def test_query_csv_parses_back_to_the_rows(nb201_results, cli):
    folder, columns, rows = nb201_results
    code, out, err = cli("query", QUERY, "--results", folder, "--format", "csv")
    assert code == 0, err
    header, *lines = list(csv.reader(io.StringIO(out)))
    assert header == columns and len(lines) == len(rows) == 12
    types = [int, str, float, int, float, str]
    for line, row in zip(lines, rows):
        parsed = [None if cell == "" else kind(cell) for cell, kind in zip(line, types)]
        assert all(_same(g, w) for g, w in zip(parsed, row)), (line, row)
    assert any(r[3] is None for r in rows) and any(r[4] != r[4] for r in rows)  # the NULL and NaN cases are there


def test_query_json_loads_to_the_rows(nb201_results, cli):
    folder, columns, rows = nb201_results
    code, out, err = cli("query", QUERY, "--results", folder, "--format", "json")
    assert code == 0, err
    got = json.loads(out)
    assert [list(d) for d in got] == [columns] * len(rows) == [columns] * 12
    assert all(_same(d[c], v) for d, row in zip(got, rows) for c, v in zip(columns, row)), got


def test_query_table_shows_every_row_and_column_in_a_narrow_pipe(nb201_results, cli, monkeypatch):
    folder, columns, rows = nb201_results
    monkeypatch.setenv("COLUMNS", "40")  # captured output is not a terminal, and this one would be narrow
    code, out, err = cli("query", QUERY, "--results", folder)
    assert code == 0, err
    body = box_rows(out)
    assert body[0] == columns  # the header, then the types, then the rows
    cells = body[2:]
    assert [[int(r[0]), r[1], r[3], r[4]] for r in cells] == \
        [[r[0], r[1], "NULL" if r[3] is None else str(r[3]), "nan" if r[4] != r[4] else str(r[4])] for r in rows]


def test_query_markdown_is_a_table_of_every_row(nb201_results, cli):
    folder, columns, rows = nb201_results
    code, out, err = cli("query", QUERY, "--results", folder, "--format", "markdown")
    assert code == 0, err
    header, rule, *lines = out.splitlines()
    assert header == "| " + " | ".join(columns) + " |" and rule == "|" + "---|" * len(columns)
    cells = [[c.replace("\\|", "|") for c in line[2:-2].split(" | ")] for line in lines]  # arch strings hold |
    assert [[int(c[0]), c[1], c[3]] for c in cells] == [[r[0], r[1], "" if r[3] is None else str(r[3])] for r in rows]


def _table_values(out: str) -> list[int]:
    """The numbers in a one-column box table's rows."""
    return [int(line.strip("│ ")) for line in out.splitlines() if line.strip("│ ").isdigit()]


def test_query_table_of_many_rows_says_how_to_get_them_all(tmp_path, cli):
    from zsdist.analysis.output import TABLE_ROWS

    code, out, _ = cli("query", f"SELECT i FROM range({TABLE_ROWS}) t(i)", "--results", tmp_path)
    values = _table_values(out)
    assert code == 0 and values == list(range(TABLE_ROWS)) and "--format" not in out
    code, out, _ = cli("query", f"SELECT i FROM range({TABLE_ROWS + 50}) t(i)", "--results", tmp_path)
    values = _table_values(out)
    assert code == 0 and values == list(range(TABLE_ROWS))
    assert out.splitlines()[-1] == f"{TABLE_ROWS + 50:,} rows, the first {TABLE_ROWS:,} shown: --format csv or json " \
        "prints them all"


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
