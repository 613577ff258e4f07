"""Drift between two runs: proxies whose values or correlations moved beyond a tolerance (nightly regression).

It reads the two runs' scores (their partitions only) and their stored correlations (zsdist.analysis.summary,
written when a run finishes, or here first if a run has none), so it costs what two runs cost, however long the
history in the folder.
"""
from __future__ import annotations

from dataclasses import dataclass

from zsdist.errors import ZsdistError
from zsdist.store import Store

DRIFT_SQL = """
WITH a AS (SELECT * FROM proxy_scores WHERE run_id = $run_a),
     b AS (SELECT * FROM proxy_scores WHERE run_id = $run_b),
     v AS (
        SELECT space, dataset, proxy, count(*) AS n,
               count(*) FILTER (WHERE a.status IS DISTINCT FROM b.status
                   OR abs(a.value - b.value) > $value_tol * greatest(abs(a.value), abs(b.value), 1e-300)) AS changed,
               max(abs(a.value - b.value) / greatest(abs(a.value), abs(b.value), 1e-300)) AS max_rel_diff
        FROM a JOIN b USING (space, arch_id, dataset, proxy) GROUP BY ALL),
     c AS (
        SELECT space, dataset, proxy, ca.spearman AS spearman_a, cb.spearman AS spearman_b
        FROM (SELECT * FROM run_correlation WHERE run_id = $run_a AND metric = 'test_acc') ca
        JOIN (SELECT * FROM run_correlation WHERE run_id = $run_b AND metric = 'test_acc') cb
        USING (space, dataset, proxy))
SELECT space, dataset, proxy, n, changed, max_rel_diff, spearman_a, spearman_b,
       spearman_b - spearman_a AS spearman_delta
FROM v LEFT JOIN c USING (space, dataset, proxy)
WHERE changed > 0 OR abs(spearman_b - spearman_a) > $corr_tol
ORDER BY space, dataset, proxy"""

COMPARED_SQL = """SELECT count(*) FROM (
    SELECT DISTINCT space, dataset, proxy FROM run_stats WHERE run_id = $run_a
    INTERSECT SELECT DISTINCT space, dataset, proxy FROM run_stats WHERE run_id = $run_b)"""


@dataclass(frozen=True)
class Drift:
    columns: list[str]
    rows: list[tuple]
    compared: int  # (space, dataset, proxy) groups present in both runs


def compare_runs(results: str, run_a: str, run_b: str, value_tol: float = 1e-6, corr_tol: float = 0.01) -> Drift:
    from zsdist.analysis.summary import ensure_summary
    from zsdist.analysis.views import connect, user_errors

    store = Store(results)
    known = store.values("scores")  # folder names: no data read
    for run in (run_a, run_b):
        if run not in known:
            raise ZsdistError(f"no scores for run '{run}' in {results} (runs: {', '.join(known) or 'none'})")
    for run in (run_a, run_b):
        ensure_summary(store, run)
    params = {"run_a": run_a, "run_b": run_b}
    with user_errors(results):
        con = connect(results)
        cursor = con.execute(DRIFT_SQL, {**params, "value_tol": value_tol, "corr_tol": corr_tol})
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
        count = con.execute(COMPARED_SQL, params).fetchone()
        assert count is not None  # an aggregate without GROUP BY returns one row
        compared = count[0]
    return Drift(columns, rows, compared)


def latest_runs(results: str, prefix: str) -> tuple[str, str]:
    """The two most recently started runs whose id starts with `prefix`, older first."""
    from zsdist.analysis.views import connect, user_errors

    with user_errors(results):
        rows = connect(results).execute("SELECT run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY started DESC "
                                        "LIMIT 2", [prefix]).fetchall()
    if len(rows) < 2:
        raise ZsdistError(f"fewer than two runs start with '{prefix}' in {results}")
    return rows[1][0], rows[0][0]
