"""`zsdist bench queries`: what a query costs as nightly runs pile up (1, 10, 100 runs), as ratios against one run.

Synthetic nightly runs in the real results layout: NB201 truth as `zsdist ingest` writes it, and per run the score
rows of a full nightly (15,625 cells × 3 datasets × 26 proxies in 625 shard files of 25 cells; --quick: 1,000 cells
in 40), their stored summary, and a `runs` row a day apart. Values are the test accuracy plus seeded noise of a
per-proxy strength, so correlations are real computations over plausible numbers. Two distinct runs are computed
and written; the others are hard links to the first one's files in their own run folders (the run id lives in the
folder name, never in a file), so 100 runs take seconds to lay out and DuckDB still opens each as its own files.
The newest run is the second one, so `compare` finds drift.

Per layout (compacted: one file per table and space, as `zsdist compact` leaves a run; shard files: as a launch
leaves it) and per number of runs N it times: opening the views, `zsdist query "SELECT 1"` through the console
script (CLI start included), one run's correlation (computed from its scores), `compare --latest` of the two
newest runs (with N = 1: the run against itself, which reads as much), and the report of one run (with a light
analysis spec: 20 bootstrap resamples, 10 pools).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa

from zsdist.errors import ZsdistError
from zsdist.store import Store

DATASETS = ("cifar10", "cifar100", "imagenet16_120")
SHARD = 25  # cells per shard: 625 shard files for the whole NB201 space
PREFIX = "nightly-"
CORRELATION_SQL = "SELECT * FROM correlation WHERE run_id = $run AND metric = 'test_acc'"


def _accuracy(store: Store) -> dict[str, np.ndarray]:
    """Test accuracy of every NB201 cell per dataset, from the ingested truth."""
    truth = pa.concat_tables(store.read_file(f) for f in store.files("truth", space="nb201")).to_pydict()
    acc = {d: np.zeros(15_625) for d in DATASETS}
    for arch_id, dataset, metric, value in zip(truth["arch_id"], truth["dataset"], truth["metric"], truth["value"]):
        if metric == "test_acc" and dataset in acc:
            acc[dataset][arch_id] = value
    return acc


def shard_rows(cells: np.ndarray, acc: dict[str, np.ndarray], proxies: list[str], seed: int) -> pa.Table:
    """One shard's score rows: every cell × dataset × proxy, status ok, values the accuracy plus noise."""
    from zsdist.spaces import create_space

    space = create_space("nb201")
    rng = np.random.default_rng(seed)
    strength = np.linspace(0.2, 0.9, len(proxies))
    arch_id = np.repeat(cells, len(DATASETS) * len(proxies))
    dataset = np.tile(np.repeat(np.arange(len(DATASETS)), len(proxies)), len(cells))
    proxy = np.tile(np.arange(len(proxies)), len(cells) * len(DATASETS))
    truth = np.stack([acc[d] for d in DATASETS])[dataset, arch_id]
    value = strength[proxy] * truth + (1 - strength[proxy]) * 30 * rng.standard_normal(len(arch_id))
    n = len(arch_id)
    const = lambda text: pa.array([text] * n)
    arch = np.array([space.arch_str(int(c)) for c in cells])[np.repeat(np.arange(len(cells)), n // len(cells))]
    return pa.table({
        "arch_id": arch_id, "arch": pa.array(arch),
        "dataset": pa.array(np.array(DATASETS)[dataset]), "proxy": pa.array(np.array(proxies)[proxy]),
        "value": value, "seconds": rng.exponential(0.05, n), "status": const("ok"), "error": pa.nulls(n, pa.string()),
        "batch_size": pa.array(np.full(n, 64, np.int32)), "seed": np.zeros(n, np.int64), "device": const("cpu"),
        "options": const("{}"), "version": const("bench"),
    })


def write_run(store: Store, run_id: str, cells: int, seed: int, started: datetime) -> None:
    """A finished synthetic nightly run: its shard files, its `runs` row and its summary."""
    from zsdist.analysis.summary import finalize_run
    from zsdist.proxies import PROXIES

    acc = _accuracy(store)
    ids = np.arange(cells)
    for s, start in enumerate(range(0, cells, SHARD)):
        rows = shard_rows(ids[start:start + SHARD], acc, PROXIES.names(), seed * 100_003 + s)
        store.write("scores", rows, f"j00-s{s:05d}", run_id=run_id, space="nb201")
    store.write("runs", [{"workflow": "", "config_hash": run_id, "code_version": "bench", "started": started,
                          "finished": started + timedelta(hours=1), "host": "{}"}], "run", run_id=run_id)
    finalize_run(store, run_id)


def _link_run(source: str, target: str, run_from: str, run_to: str) -> None:
    """Hard-link every file of run `run_from` (all tables) under run `run_to`."""
    for table in os.listdir(source):
        folder = os.path.join(source, table, f"run_id={run_from}")
        if table.startswith("_") or not os.path.isdir(folder):
            continue
        for dirpath, _, names in os.walk(folder):
            into = os.path.join(target, table, f"run_id={run_to}", os.path.relpath(dirpath, folder))
            os.makedirs(into, exist_ok=True)
            for name in names:
                os.link(os.path.join(dirpath, name), os.path.join(into, name))


def lay_out(base: str, target: str, runs: int, older: str = "a", newer: str = "b") -> list[str]:
    """`runs` runs under `target`: links of the base's run `older` and, newest, of its run `newer`; returns the
    ids, oldest first.
    Linked files keep their names, sizes and times, so each run's stored summary stays current."""
    store = Store(target)
    _link_truth(base, target)
    ids = [f"{PREFIX}{k:03d}" for k in range(runs)]
    day0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for k, run_id in enumerate(ids):
        _link_run(base, target, newer if k == runs - 1 and runs > 1 else older, run_id)
        started = day0 + timedelta(days=k)
        store.write("runs", [{"workflow": "", "config_hash": run_id, "code_version": "bench", "started": started,
                              "finished": started + timedelta(hours=1), "host": "{}"}], "run", run_id=run_id)
    return ids


def _link_truth(base: str, target: str) -> None:
    for path in Store(base).files("truth", space="nb201"):
        into = Store(target).folder("truth", space="nb201")
        os.makedirs(into, exist_ok=True)
        os.link(path, f"{into}/{os.path.basename(path)}")


def _timed(fn: Callable[[], object], repeat: int = 1) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _cli_select_1(results: str) -> None:
    script = os.path.join(os.path.dirname(sys.executable), "zsdist")
    done = subprocess.run([script, "query", "SELECT 1", "--results", results], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"zsdist query failed: {done.stderr.strip()}")


def _latest(results: str, one: str) -> tuple[str, str]:
    """What `compare --latest` compares; with a single run, that run against itself (the same lookups)."""
    from zsdist.compare import latest_runs

    try:
        return latest_runs(results, PREFIX)
    except ZsdistError:
        return one, one


def measure(results: str, ids: list[str], out: str) -> dict[str, float]:
    """Seconds of each step over the results at `results` (runs `ids`, oldest first)."""
    from zsdist.analysis.report import write_report
    from zsdist.analysis.spec import AnalysisSpec
    from zsdist.analysis.views import connect
    from zsdist.compare import compare_runs

    spec = AnalysisSpec(bootstrap_resamples=20, pool_repeats=10)
    one = ids[0]
    return {
        "open views": _timed(lambda: connect(results), repeat=3),
        "SELECT 1 (CLI)": _timed(lambda: _cli_select_1(results), repeat=3),
        "one run's correlation": _timed(lambda: connect(results).execute(CORRELATION_SQL, {"run": one}).fetchall()),
        "compare --latest": _timed(lambda: compare_runs(results, *_latest(results, one))),
        "report of one run": _timed(lambda: write_report(results, one, out, spec)),
    }


def run(quick: bool) -> str:
    from zsdist.compaction import compact_run
    from zsdist.truth import ingest

    cells, counts = (1_000, (1, 10)) if quick else (15_625, (1, 10, 100))
    with tempfile.TemporaryDirectory() as tmp:
        shards = Store(f"{tmp}/shards")
        ingest(shards, "nb201")
        start = time.perf_counter()
        for seed, run_id in enumerate(("a", "b")):
            write_run(shards, run_id, cells, seed, datetime(2026, 1, 1, tzinfo=timezone.utc))
        made = time.perf_counter() - start
        compacted = Store(f"{tmp}/compacted")
        _link_truth(shards.uri, compacted.uri)
        for run_id in ("a", "b"):
            _link_run(shards.uri, compacted.uri, run_id, run_id)
            compact_run(compacted, run_id)
        lines = [f"NB201 nightly runs of {cells:,} cells × {len(DATASETS)} datasets × 26 proxies "
                 f"({cells * len(DATASETS) * 26:,} score rows, {-(-cells // SHARD)} shard files per run); "
                 f"two distinct runs written in {made:.0f} s, the others hard links of their files"]
        for layout, source, sizes in (("compacted", compacted.uri, counts), ("shard files", shards.uri, counts[:2])):
            results = {}
            for n in sizes:
                folder = f"{tmp}/{layout.replace(' ', '-')}-{n}"
                results[n] = measure(folder, lay_out(source, folder, n), f"{tmp}/report")
            lines += ["", f"layout: {layout} (seconds, then the ratio to N=1)", _table(results)]
    return "\n".join(lines)


def _table(results: dict[int, dict[str, float]]) -> str:
    counts = sorted(results)
    steps = list(results[counts[0]])
    head = f"{'step':24s}" + "".join(f"{f'N={n} s':>10s}" for n in counts)
    head += "".join(f"{f'N={n} / N=1':>12s}" for n in counts[1:])
    rows = [head]
    for step in steps:
        row = f"{step:24s}" + "".join(f"{results[n][step]:10.3f}" for n in counts)
        row += "".join(f"{results[n][step] / results[counts[0]][step]:12.2f}" for n in counts[1:])
        rows.append(row)
    return "\n".join(rows)
