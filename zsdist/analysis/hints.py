"""Why a run's analysis tables are empty, and the command that fills them: an empty table never goes unexplained.

A table needs ground truth for the run's architectures (correlation, selection, hardware), pools no larger than the
evaluated set (selection), and costs beyond #FLOPs (hardware: latency rows from the run or an ingested table).
"""
from __future__ import annotations

from dataclasses import dataclass

import duckdb

# the report tables (zsdist.analysis.report) each missing input leaves empty
_TRUTH_TABLES = ("correlation", "regions", "study", "metrics", "selection", "hardware", "constrained", "families")


@dataclass(frozen=True)
class Hint:
    text: str
    tables: tuple[str, ...]  # the report tables it explains


def _ingest(results: str | None, *flags: str) -> str:
    where = f" --results {results}" if results else ""
    return f"`zsdist ingest{where}{''.join(' ' + f for f in flags)}`"


def _truth_hint(space: str, dataset: str, scored: int, with_truth: int, truth_datasets: list[str],
                results: str | None) -> str | None:
    from zsdist.truth import TRUTH

    sources = [n for n in TRUTH.names() if TRUTH.get(n).space == space]
    if not truth_datasets and sources:
        return (f"no ground truth for {space} in these results, so its tables are empty: add it with "
                f"{_ingest(results, *(f'--source {s}' for s in sources))}")
    if not truth_datasets:
        spaces = sorted({TRUTH.get(n).space for n in TRUTH.names()})
        return (f"{space} has no ground-truth source (sources exist for {', '.join(spaces)}), so no table can "
                f"rank its proxies")
    if dataset not in truth_datasets:
        return (f"the ground truth of {space} has no dataset '{dataset}' (it has {', '.join(truth_datasets)}): "
                f"evaluate one of those to correlate")
    if with_truth == 0:
        return (f"none of the {scored} {space} architectures scored on {dataset} has ground truth; "
                f'`archs = "truth"` in the job selects those that have')
    return None


def hints(con: duckdb.DuckDBPyConnection, run_id: str, results: str | None = None) -> list[Hint]:
    """What this run's tables lack, one hint per cause, each naming the command or setting that adds it."""
    params = {"run": run_id}
    tables = con.execute("""
        SELECT s.space, s.dataset, count(DISTINCT s.arch_id), count(DISTINCT e.arch_id)
        FROM (SELECT DISTINCT space, dataset, arch_id FROM scores WHERE run_id = $run) s
        LEFT JOIN (SELECT DISTINCT space, dataset, arch_id FROM evaluated WHERE run_id = $run) e
            USING (space, dataset, arch_id)
        GROUP BY ALL ORDER BY ALL""", params).fetchall()
    truth_datasets: dict[str, list[str]] = {}
    for space, dataset in con.execute("SELECT DISTINCT space, dataset FROM truth ORDER BY ALL").fetchall():
        truth_datasets.setdefault(space, []).append(dataset)
    costs = {tuple(r) for r in con.execute("SELECT DISTINCT space, dataset, cost = 'flops' FROM hw_candidates "
                                           "WHERE run_id = $run", params).fetchall()}
    smallest = con.execute("SELECT min(pool_size) FROM pool_specs").fetchone()
    assert smallest is not None  # an aggregate without GROUP BY returns one row
    smallest_pool = smallest[0]
    found: list[Hint] = []
    for space, dataset, scored, with_truth in tables:
        text = _truth_hint(space, dataset, scored, with_truth, truth_datasets.get(space, []), results)
        if text:
            found.append(Hint(text, _TRUTH_TABLES))
            continue
        if smallest_pool is not None and with_truth < smallest_pool:
            found.append(Hint(f"{space}/{dataset} has {with_truth} evaluated architectures, fewer than the smallest "
                              f"selection pool ({smallest_pool}): evaluate more, or set smaller pool sizes "
                              "(AnalysisSpec.pool_sizes)", ("selection",)))
        if (space, dataset, False) not in costs:
            found.append(Hint(_latency_hint(space, dataset, (space, dataset, True) in costs, results),
                              ("hardware", "constrained")))
    return [h for i, h in enumerate(found) if h not in found[:i]]


def _latency_hint(space: str, dataset: str, has_flops: bool, results: str | None) -> str:
    from zsdist.hardware.tables import HELP_DATASET, HWNB_FILES

    left = "only the #FLOPs budgets" if has_flops else "no rows (nor #FLOPs budgets: the flops proxy did not run)"
    text = (f"no latency for {space}/{dataset}, so the hardware table has {left}: add "
            f'`latency = ["cpu"]` (or another device of `zsdist.hardware`) to the job')
    if space == "nb201" and dataset in {*HWNB_FILES, HELP_DATASET}:
        text += f", or load the published NB201 tables with {_ingest(results, '--source nb201')}"
    return text


def missing_hints(con: duckdb.DuckDBPyConnection, run_id: str, results: str | None = None) -> list[str]:
    """The hints as lines, for the CLI to print under an empty table."""
    return [h.text for h in hints(con, run_id, results)]
