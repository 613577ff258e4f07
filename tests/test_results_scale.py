"""Queries cost what they ask: opening the views reads no data, a query that names a run opens only that run's
files, each run's summary is stored once, and a damaged file is named with what to do."""
from __future__ import annotations

import re
import shutil
from datetime import datetime, timezone

import pytest

from zsdist.analysis.summary import ensure_summary, is_current
from zsdist.analysis.views import connect, user_errors
from zsdist.bench.queries import lay_out, write_run
from zsdist.errors import ZsdistError
from zsdist.store import Store
from zsdist.truth import ingest

RUNS = ("nightly-000", "nightly-001", "nightly-002")
CELLS = 50  # two shard files of 25 cells per run


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    store = Store(str(tmp_path_factory.mktemp("history") / "results"))
    ingest(store, "nb201")
    for seed, run_id in enumerate(RUNS):
        write_run(store, run_id, CELLS, seed, datetime(2026, 1, 1 + seed, tzinfo=timezone.utc))
    return store


def _scans(con, sql: str, params: list) -> list[tuple[int, int]]:
    plan = con.execute(f"EXPLAIN ANALYZE {sql}", params).fetchall()[0][1]
    return [(int(a), int(b)) for a, b in re.findall(r"Scanning Files: (\d+)/(\d+)", plan)]


@pytest.mark.parametrize("view", ["scores", "proxy_scores", "paired", "correlation", "wide"])
def test_a_query_naming_a_run_opens_only_its_files(history, view):
    con = connect(history.uri)
    scans = _scans(con, f"SELECT count(*) FROM {view} WHERE run_id = ?", [RUNS[1]])
    # every scan of a run-partitioned table keeps a third of the files (one run of three); truth is not filtered
    assert scans and all(total == 3 * kept for kept, total in scans)
    assert {kept for kept, _ in scans} <= {1, 2}  # derived: one file per run; scores: two shard files per run


def test_opening_reads_no_score_and_other_runs_stay_unread(history, tmp_path):
    folder = tmp_path / "results"
    shutil.copytree(history.uri, folder)
    damaged = sorted((folder / "scores" / f"run_id={RUNS[1]}").rglob("*.parquet"))
    for path in damaged:
        path.write_bytes(path.read_bytes()[:100])  # truncated: no footer
    con = connect(str(folder))  # would fail if opening the views read every file
    n = con.execute("SELECT count(*) FROM correlation WHERE run_id = ? AND metric = 'test_acc'", [RUNS[2]])
    assert n.fetchone()[0] == 3 * 27  # datasets × (26 proxies + az_nas)
    with pytest.raises(ZsdistError) as error, user_errors(str(folder)):
        con.execute("SELECT count(*) FROM scores WHERE run_id = ?", [RUNS[1]]).fetchall()
    message = str(error.value)
    named = [p for p in damaged if str(p) in message]  # DuckDB reads files in parallel: either may be named
    assert "\n" not in message and len(named) == 1 and f"launch run {RUNS[1]} again" in message


def test_a_damaged_file_is_named_on_the_command_line(history, tmp_path, cli):
    folder = tmp_path / "results"
    shutil.copytree(history.uri, folder)
    summary = folder / "run_stats" / f"run_id={RUNS[0]}" / "summary.parquet"
    summary.write_bytes(b"PAR1" + b"\0" * 64)
    code, _, err = cli("query", "SELECT sum(rows) FROM run_stats", "--results", str(folder))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"results file {summary} is not readable Parquet" in err and f"zsdist compact {RUNS[0]}" in err
    assert cli("compact", RUNS[0], "--results", str(folder))[0] == 0  # the advice holds
    code, out, _ = cli("query", "SELECT sum(rows) AS n FROM run_stats", "--results", str(folder), "--format", "csv")
    assert code == 0 and out.split() == ["n", str(len(RUNS) * 3 * CELLS * 27)]
    assert list((folder / "_broken" / "run_stats").rglob("summary.parquet.*"))


def test_each_run_stores_its_summary_once(history):
    con = connect(history.uri)
    stored = con.execute("""SELECT space, dataset, proxy, metric, n, spearman, kendall, pearson FROM run_correlation
        WHERE run_id = ? ORDER BY ALL""", [RUNS[0]]).fetchall()
    live = con.execute("""SELECT space, dataset, proxy, metric, n, spearman, kendall, pearson FROM correlation
        WHERE run_id = ? ORDER BY ALL""", [RUNS[0]]).fetchall()
    assert len(stored) == len(live) == 3 * 27 * 2  # datasets × proxies × metrics (test_acc, valid_acc)
    for s, v in zip(stored, live):  # corr() moves by ~1e-7 with how threads split rows
        assert s[:5] == v[:5] and list(s[5:]) == [x if x is None else pytest.approx(x, abs=1e-6) for x in v[5:]]
    counts = con.execute("SELECT proxy, sum(rows) FROM run_stats WHERE run_id = ? GROUP BY ALL", [RUNS[0]]).fetchall()
    assert len(counts) == 27 and "az_nas" in dict(counts)  # 26 proxies and the derived one
    assert all(n == 3 * CELLS for _, n in counts)  # one row per cell and dataset
    assert all(is_current(history, r) for r in RUNS)
    assert not ensure_summary(history, RUNS[0])  # current: nothing recomputed


def test_ingesting_truth_again_makes_summaries_stale(history, tmp_path):
    folder = tmp_path / "results"
    shutil.copytree(history.uri, folder)
    store = Store(str(folder))
    assert is_current(store, RUNS[0])
    ingest(store, "nb201", force=True)  # the same rows, a new file: the correlations must be checked against it
    assert not is_current(store, RUNS[0]) and ensure_summary(store, RUNS[0]) and is_current(store, RUNS[0])


def test_wide_has_a_column_per_known_proxy_without_reading_scores(tmp_path):
    ingest(Store(str(tmp_path)), "nb201")
    columns = [d[0] for d in connect(str(tmp_path)).execute("SELECT * FROM wide LIMIT 0").description]
    assert columns[:5] == ["run_id", "space", "dataset", "arch_id", "arch"] and columns[-1] == "test_acc"
    assert {"params", "flops", "synflow", "naswot", "az_nas"} <= set(columns)


def test_bench_layout_links_finished_runs(history, tmp_path):
    ids = lay_out(history.uri, str(tmp_path / "ten"), 10, RUNS[0], RUNS[1])
    store = Store(str(tmp_path / "ten"))
    assert store.values("scores") == ids and all(is_current(store, r) for r in (ids[0], ids[-1]))
    con = connect(store.uri)
    newest = con.execute("SELECT run_id FROM runs ORDER BY started DESC LIMIT 1").fetchone()[0]
    assert newest == ids[-1]
