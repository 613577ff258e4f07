"""ViT versus CNN: the correlation and selection tables grouped by the family of each space.

A space's family is its class attribute `family` ("cnn" unless the space says otherwise, e.g. "vit"). The
summaries pool every run in the results, since ViT and CNN jobs often live in different runs.
"""
from __future__ import annotations

import duckdb
import pyarrow as pa

from zsdist.spaces import SPACES


def register_families(con: duckdb.DuckDBPyConnection) -> None:
    names = SPACES.names()
    con.register("space_family_registry", pa.table({
        "space": names, "family": [SPACES.get(n).family for n in names]}))


VIEWS: dict[str, str] = {
    "space_families": "SELECT * FROM space_family_registry",
    # each proxy's rank among the proxies of the same table (1 = highest Spearman; equal to 12 decimals = a tie,
    # so that float noise never orders proxies that rank architectures identically, like #params and #FLOPs)
    "family_correlation": """
        SELECT coalesce(f.family, 'cnn') AS family, c.*,
               rank() OVER (PARTITION BY c.run_id, c.space, c.dataset, c.metric, c.region
                            ORDER BY round(c.spearman, 12) DESC NULLS LAST) AS proxy_rank
        FROM correlation_regions c LEFT JOIN space_families f USING (space)""",
    "family_summary": """
        SELECT run_id, family, proxy, region, count(*) AS tables, avg(spearman) AS mean_spearman,
               avg(kendall) AS mean_kendall, avg(proxy_rank) AS mean_rank
        FROM family_correlation GROUP BY ALL""",
    "family_selection": """
        SELECT coalesce(f.family, 'cnn') AS family, s.proxy, s.pool_size, s.k, count(*) AS tables,
               avg(s.mean_regret) AS mean_regret, avg(s.random_regret) AS random_regret
        FROM selection s LEFT JOIN space_families f USING (space) GROUP BY ALL""",
}
