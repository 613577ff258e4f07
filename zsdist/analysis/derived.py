"""Scores that exist only for a population, derived in SQL from the per-architecture rows of `scores`.

DERIVED_SCORES_SQL returns rows with exactly the columns of the `scores` view, so that it can be unioned into it.
az_nas (Lee & Ham, CVPR 2024): Σ over the four AZ-NAS components of log(rank / N), ranking each component
ascending (rank N = best, ties get their average rank) among the architectures of one run × space × dataset that
have all four components ok or nan; N is that population's size. A nan component (no feature variance, an
identity block) ranks below every number, as the authors score it −inf; an error row leaves the architecture
out. Its seconds are the components' seconds summed.
"""
from __future__ import annotations

import json

AZ_COMPONENTS = ("az_expressivity", "az_progressivity", "az_trainability", "az_complexity")
AZ_OPTIONS = json.dumps({"aggregate": "sum of ln(rank/N) over " + ", ".join(AZ_COMPONENTS),
                         "population": "run_id x space x dataset, archs with all four components ok or nan",
                         "nan": "ranks lowest (-inf)", "ties": "average rank"}, sort_keys=True)

_COMPONENT_LIST = ", ".join(f"'{c}'" for c in AZ_COMPONENTS)

DERIVED_SCORES_SQL = f"""
WITH az_ok AS (
    SELECT *, CASE WHEN status = 'nan' THEN '-inf'::DOUBLE ELSE value END AS v FROM scores
    WHERE proxy IN ({_COMPONENT_LIST}) AND (status = 'nan' OR (status = 'ok' AND value IS NOT NULL))
    QUALIFY count(DISTINCT proxy) OVER (PARTITION BY run_id, space, dataset, arch_id) = {len(AZ_COMPONENTS)}),
az_ranked AS (
    SELECT *,
        rank() OVER (PARTITION BY run_id, space, dataset, proxy ORDER BY v)
          + (count(*) OVER (PARTITION BY run_id, space, dataset, proxy, v) - 1) / 2.0 AS r,
        count(*) OVER (PARTITION BY run_id, space, dataset, proxy) AS n
    FROM az_ok)
SELECT run_id, space, arch_id, any_value(arch) AS arch, dataset, 'az_nas' AS proxy,
       sum(ln(r / n)) AS value, sum(seconds) AS seconds, 'ok' AS status, NULL::VARCHAR AS error,
       any_value(batch_size) AS batch_size, any_value(seed) AS seed, any_value(device) AS device,
       '{AZ_OPTIONS}' AS options, any_value(version) AS version
FROM az_ranked
GROUP BY run_id, space, dataset, arch_id
"""
