"""A run's summary, written once when it finishes, so that no query recomputes it over the whole history.

- derived/run_id=R/space=S/az_nas.parquet: population-level proxies (zsdist.analysis.derived), one file per space
  (empty when the run has no AZ-NAS components);
- run_correlation/run_id=R/summary.parquet: each proxy's correlation (n, Spearman, Kendall, Pearson, all
  architectures) with every ground-truth metric; `zsdist compare` reads two of these instead of two runs' scores;
- run_stats/run_id=R/summary.parquet: rows and seconds per space, dataset, proxy and status.

Each file records in its footer a fingerprint of what it was computed from (the run's score files and the ground
truth of its spaces): `ensure_summary` rewrites the summary when any of them changed (a shard recomputed, truth
ingested after the run) or a summary file is missing or unreadable. Compaction changes file names but no row, so
it stamps the fingerprint anew instead (`restamp_summary`).
"""
from __future__ import annotations

import json

from zsdist.analysis.derived import DERIVED_SCORES_SQL, derived_params
from zsdist.store import Store

SUMMARY = "summary"  # file key of the run_correlation and run_stats files
DERIVED = "az_nas"  # file key of the derived file of each space
INPUTS_KEY = b"zsdist.inputs"

CORRELATION_SQL = """SELECT space, dataset, proxy, metric, n, spearman, kendall, pearson FROM correlation
WHERE run_id = $run ORDER BY space, dataset, metric, proxy"""
STATS_SQL = """SELECT space, dataset, proxy, status, count(*) AS rows, sum(seconds) AS seconds,
       max(seconds) AS max_seconds
FROM proxy_scores WHERE run_id = $run GROUP BY ALL ORDER BY ALL"""


def _files(store: Store, run_id: str) -> list[tuple[str, str, dict[str, str]]]:
    """(table, key, partition) of every summary file of the run."""
    return ([("derived", DERIVED, {"run_id": run_id, "space": s}) for s in store.values("scores", run_id=run_id)]
            + [(t, SUMMARY, {"run_id": run_id}) for t in ("run_correlation", "run_stats")])


def inputs(store: Store, run_id: str) -> dict[str, str]:
    """Fingerprints of what the summary is computed from: the run's score files and its spaces' ground truth."""
    spaces = store.values("scores", run_id=run_id)
    return {**{f"scores/{s}": store.fingerprint("scores", run_id=run_id, space=s) for s in spaces},
            **{f"truth/{s}": store.fingerprint("truth", space=s) for s in spaces}}


def _stamp(store: Store, run_id: str) -> dict[bytes, bytes]:
    return {INPUTS_KEY: json.dumps(inputs(store, run_id), sort_keys=True).encode()}


def finalize_run(store: Store, run_id: str) -> None:
    """Compute and write the run's derived proxies, then its correlations and counts (which include them)."""
    import pyarrow.compute as pc

    from zsdist.analysis.views import connect, user_errors

    meta = _stamp(store, run_id)
    with user_errors(store.uri):
        derived = connect(store.uri).sql(DERIVED_SCORES_SQL, params=derived_params(run_id)).to_arrow_table()
    for table, key, partition in _files(store, run_id):
        if table == "derived":
            rows = derived.filter(pc.equal(derived["space"], partition["space"])).drop_columns(["space"])
            store.write(table, rows, key, meta, row_group_size=None, **partition)
    con = connect(store.uri)  # a new connection: a view made while a table had no file stays empty
    for table, sql in (("run_correlation", CORRELATION_SQL), ("run_stats", STATS_SQL)):
        with user_errors(store.uri):
            rows = con.sql(sql, params={"run": run_id}).to_arrow_table()
        store.write(table, rows, SUMMARY, meta, run_id=run_id)


def is_current(store: Store, run_id: str) -> bool:
    """Whether every summary file of the run reads and was computed from the files the run has now."""
    expected = _stamp(store, run_id)[INPUTS_KEY]
    return all((store.metadata(store.path(table, key, **partition)) or {}).get(INPUTS_KEY) == expected
               for table, key, partition in _files(store, run_id))


def ensure_summary(store: Store, run_id: str) -> bool:
    """Write the run's summary unless it is current; True when it was (re)written. A summary file that does not
    read is set aside first (under _broken/), since queries would stop on it."""
    if is_current(store, run_id):
        return False
    for table, key, partition in _files(store, run_id):
        path = store.path(table, key, **partition)
        if store.exists(path) and store.metadata(path) is None:
            store.set_aside(path)
    finalize_run(store, run_id)
    return True


def restamp_summary(store: Store, run_id: str) -> None:
    """Record the run's current files in a current summary without recomputing it (after a compaction, which
    moves rows between files but changes none)."""
    meta = _stamp(store, run_id)
    for table, key, partition in _files(store, run_id):
        store.write(table, store.read(table, key, **partition), key, meta, row_group_size=None, **partition)
