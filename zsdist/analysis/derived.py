"""Scores that exist only for a population, derived in SQL from the per-architecture rows of one run's `scores`.

They are computed once per run when it finishes (zsdist.analysis.summary) and stored in the `derived` table, which
`proxy_scores` unions with `scores`: no query recomputes them over the whole history.
DERIVED_SCORES_SQL takes the run as $run and returns `space` plus exactly the columns of the `scores` files.
az_nas (Lee & Ham, CVPR 2024): Σ over the four AZ-NAS components of log(rank / N), ranking each component
ascending (rank N = best, ties get their average rank) among the architectures of one run × space × dataset that
have all four components ok or nan; N is that population's size. A nan component (no feature variance, an
identity block) ranks below every number, as the authors score it −inf; an error row leaves the architecture
out. Its seconds are the components' seconds summed. Sums run in component order, so that a run's value is
the same to the last bit however DuckDB splits the work.
"""
from __future__ import annotations

import json

AZ_COMPONENTS = ("az_expressivity", "az_progressivity", "az_trainability", "az_complexity")
AZ_OPTIONS = json.dumps({"aggregate": "sum of ln(rank/N) over " + ", ".join(AZ_COMPONENTS),
                         "population": "run_id x space x dataset, archs with all four components ok or nan",
                         "nan": "ranks lowest (-inf)", "ties": "average rank"}, sort_keys=True)
# name → (higher is better, description), as the registry holds them for computed proxies
DERIVED_PROXIES: dict[str, tuple[bool, str]] = {
    "az_nas": (True, "AZ-NAS: sum of the log rank ratios of its four components within the run's population"),
}

DERIVED_SCORES_SQL = f"""
WITH az_ok AS (
    SELECT *, CASE WHEN status = 'nan' THEN '-inf'::DOUBLE ELSE value END AS v FROM scores
    WHERE run_id = $run AND proxy IN {AZ_COMPONENTS!r}
      AND (status = 'nan' OR (status = 'ok' AND value IS NOT NULL))
    QUALIFY count(DISTINCT proxy) OVER (PARTITION BY space, dataset, arch_id) = {len(AZ_COMPONENTS)}),
az_ranked AS (
    SELECT *,
        rank() OVER (PARTITION BY space, dataset, proxy ORDER BY v)
          + (count(*) OVER (PARTITION BY space, dataset, proxy, v) - 1) / 2.0 AS r,
        count(*) OVER (PARTITION BY space, dataset, proxy) AS n
    FROM az_ok)
SELECT space, arch_id, any_value(arch) AS arch, dataset, 'az_nas' AS proxy,
       list_sum(list(ln(r / n) ORDER BY proxy)) AS value, list_sum(list(seconds ORDER BY proxy)) AS seconds,
       'ok' AS status, NULL::VARCHAR AS error,
       any_value(batch_size) AS batch_size, any_value(seed) AS seed, any_value(device) AS device,
       $options AS options, any_value(version) AS version
FROM az_ranked
GROUP BY space, dataset, arch_id
ORDER BY space, dataset, arch_id
"""


def derived_params(run_id: str) -> dict[str, str]:
    """The bound values DERIVED_SCORES_SQL takes."""
    return {"run": run_id, "options": AZ_OPTIONS}
