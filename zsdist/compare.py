"""Drift between two runs: proxies whose values or correlations moved beyond a tolerance (nightly regression)."""
from __future__ import annotations

from dataclasses import dataclass

from zsdist.analysis.views import connect
from zsdist.errors import ZsdistError

DRIFT_SQL = """
WITH a AS (SELECT * FROM scores WHERE run_id = $run_a),
     b AS (SELECT * FROM scores WHERE run_id = $run_b),
     v AS (
        SELECT space, dataset, proxy, count(*) AS n,
               count(*) FILTER (WHERE a.status IS DISTINCT FROM b.status
                   OR abs(a.value - b.value) > $value_tol * greatest(abs(a.value), abs(b.value), 1e-300)) AS changed,
               max(abs(a.value - b.value) / greatest(abs(a.value), abs(b.value), 1e-300)) AS max_rel_diff
        FROM a JOIN b USING (space, arch_id, dataset, proxy) GROUP BY ALL),
     c AS (
        SELECT space, dataset, proxy, ca.spearman AS spearman_a, cb.spearman AS spearman_b
        FROM (SELECT * FROM correlation WHERE run_id = $run_a AND metric = 'test_acc') ca
        JOIN (SELECT * FROM correlation WHERE run_id = $run_b AND metric = 'test_acc') cb
        USING (space, dataset, proxy))
SELECT space, dataset, proxy, n, changed, max_rel_diff, spearman_a, spearman_b,
       spearman_b - spearman_a AS spearman_delta
FROM v LEFT JOIN c USING (space, dataset, proxy)
WHERE changed > 0 OR abs(spearman_b - spearman_a) > $corr_tol
ORDER BY space, dataset, proxy"""


@dataclass(frozen=True)
class Drift:
    columns: list[str]
    rows: list[tuple]
    compared: int  # (space, dataset, proxy) groups present in both runs


def compare_runs(results: str, run_a: str, run_b: str, value_tol: float = 1e-6, corr_tol: float = 0.01) -> Drift:
    con = connect(results)
    known = {r[0] for r in con.execute("SELECT DISTINCT run_id FROM scores").fetchall()}
    for run in (run_a, run_b):
        if run not in known:
            raise ZsdistError(f"no scores for run '{run}' in {results} (runs: {', '.join(sorted(known)) or 'none'})")
    params = {"run_a": run_a, "run_b": run_b, "value_tol": value_tol, "corr_tol": corr_tol}
    cursor = con.execute(DRIFT_SQL, params)
    columns = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    compared = con.execute("""SELECT count(*) FROM (SELECT DISTINCT space, dataset, proxy FROM scores
        WHERE run_id = $run_a INTERSECT SELECT DISTINCT space, dataset, proxy FROM scores WHERE run_id = $run_b)""",
                           {"run_a": run_a, "run_b": run_b}).fetchone()[0]
    return Drift(columns, rows, compared)


def latest_runs(results: str, prefix: str) -> tuple[str, str]:
    """The two most recently started runs whose id starts with `prefix`, older first."""
    rows = connect(results).execute("SELECT run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY started DESC "
                                    "LIMIT 2", [prefix]).fetchall()
    if len(rows) < 2:
        raise ZsdistError(f"fewer than two runs start with '{prefix}' in {results}")
    return rows[1][0], rows[0][0]
