"""ViT versus CNN, and whether a study's conclusion holds across every ground-truth metric a space has.

A space's family is its class attribute `family` ("cnn" unless the space says otherwise, e.g. "vit"). Every view
keeps the run and the metric as columns: a summary never pools test_acc with valid_acc, nor base with KD
fine-tuning, nor two nightly runs. A table is one run × space × dataset × metric.

study_correlation holds every table's Spearman ρ (all architectures) with a seeded bootstrap interval and its sign:
`positive` (the interval lies above 0: the proxy ranks better networks higher), `negative` (below 0: backwards),
`unclear` (the interval holds 0) or `undefined` (a constant proxy). `headline` marks the table a one-number summary
uses: among each dataset's primary metric (test_acc where the truth has it), real images before stand-ins, test_acc
before other metrics, most architectures, then the dataset's name. study_verdict states per run × space × proxy
whether the sign holds on every table, and names the tables where it does not.
"""
from __future__ import annotations

import duckdb
import pyarrow as pa

from zsdist.data import DATASETS
from zsdist.spaces import SPACES


def register_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The registries the study reads: each space's family, and which datasets' images are stand-ins."""
    names = SPACES.names()
    con.register("space_family_registry", pa.table({
        "space": names, "family": [SPACES.get(n).family for n in names]}))
    datasets = DATASETS.names()
    con.register("dataset_registry", pa.table({
        "dataset": datasets, "stand_in": [DATASETS.get(d).stand_in for d in datasets]}))


_TABLE = "run_id, space, dataset, metric"
_LABEL = "dataset || '/' || metric"

VIEWS: dict[str, str] = {
    "space_families": "SELECT * FROM space_family_registry",
    # each proxy's rank among the proxies of the same table (1 = highest Spearman; equal to 12 decimals = a tie,
    # so that float noise never orders proxies that rank architectures identically, like #params and #FLOPs)
    "family_correlation": """
        SELECT coalesce(f.family, 'cnn') AS family, c.*,
               rank() OVER (PARTITION BY c.run_id, c.space, c.dataset, c.metric, c.region
                            ORDER BY round(c.spearman, 12) DESC NULLS LAST) AS proxy_rank
        FROM correlation_regions c LEFT JOIN space_families f USING (space)""",
    # tables: the space × dataset tables averaged (each with this one metric)
    "family_summary": """
        SELECT run_id, family, metric, proxy, region, count(*) AS tables, avg(spearman) AS mean_spearman,
               avg(kendall) AS mean_kendall, avg(proxy_rank) AS mean_rank
        FROM family_correlation GROUP BY ALL""",
    "family_selection": """
        SELECT s.run_id, coalesce(f.family, 'cnn') AS family, s.metric, s.proxy, s.pool_size, s.k, count(*) AS tables,
               avg(s.mean_regret) AS mean_regret, avg(s.random_regret) AS random_regret
        FROM selection s LEFT JOIN space_families f USING (space) GROUP BY ALL""",
    # the table a one-number summary of each run × space uses
    "headline_table": f"""
        SELECT {_TABLE}
        FROM (SELECT DISTINCT {_TABLE}, n_archs FROM evaluated) e
        JOIN primary_metric USING (space, dataset, metric)
        LEFT JOIN dataset_registry d USING (dataset)
        QUALIFY row_number() OVER (PARTITION BY run_id, space
                                   ORDER BY coalesce(d.stand_in, false), metric <> 'test_acc', n_archs DESC,
                                            dataset) = 1""",
    "study_correlation": f"""
        WITH ci AS (
            SELECT {_TABLE}, proxy, bootstrap_interval(x, y, 'spearman', s.resamples, s.seed) AS s_ci
            FROM paired_lists, analysis_settings s WHERE region = 'all')
        SELECT c.run_id, c.family, c.space, c.proxy, c.dataset, c.metric, coalesce(d.stand_in, false) AS stand_in,
               h.space IS NOT NULL AS headline, c.n, c.spearman, ci.s_ci[1] AS spearman_lo,
               ci.s_ci[2] AS spearman_hi, c.proxy_rank,
               CASE WHEN c.spearman IS NULL THEN 'undefined' WHEN ci.s_ci[1] > 0 THEN 'positive'
                    WHEN ci.s_ci[2] < 0 THEN 'negative' ELSE 'unclear' END AS sign
        FROM family_correlation c
        JOIN ci USING ({_TABLE}, proxy)
        LEFT JOIN dataset_registry d USING (dataset)
        LEFT JOIN headline_table h USING ({_TABLE})
        WHERE c.region = 'all'""",
    "study_verdict": f"""
        WITH v AS (
            SELECT run_id, family, space, proxy, count(*) AS tables,
                   count(*) FILTER (WHERE stand_in) AS stand_in_tables,
                   any_value({_LABEL}) FILTER (WHERE headline) AS headline,
                   any_value(spearman) FILTER (WHERE headline) AS headline_spearman,
                   min(spearman) AS min_spearman, arg_min({_LABEL}, spearman) AS min_at,
                   max(spearman) AS max_spearman, arg_max({_LABEL}, spearman) AS max_at,
                   min(proxy_rank) AS best_rank, max(proxy_rank) AS worst_rank,
                   count(*) FILTER (WHERE sign = 'positive') AS positive,
                   count(*) FILTER (WHERE sign = 'negative') AS negative,
                   string_agg({_LABEL}, ', ' ORDER BY dataset, metric) FILTER (WHERE sign = 'positive') AS pos_at,
                   string_agg({_LABEL}, ', ' ORDER BY dataset, metric) FILTER (WHERE sign = 'negative') AS neg_at,
                   string_agg({_LABEL}, ', ' ORDER BY dataset, metric) FILTER (WHERE sign IN ('unclear', 'undefined'))
                       AS unclear_at
            FROM study_correlation GROUP BY run_id, family, space, proxy)
        SELECT run_id, family, space, proxy, tables, stand_in_tables, headline, headline_spearman, min_spearman,
               min_at, max_spearman, max_at, best_rank, worst_rank,
               CASE WHEN positive = tables THEN printf('ranks better networks higher on all %d tables', tables)
                    WHEN negative = tables THEN printf('ranks backwards on all %d tables', tables)
                    ELSE concat_ws('; ', printf('no single sign over %d tables', tables),
                                   'higher on ' || pos_at, 'backwards on ' || neg_at,
                                   'interval holds 0 on ' || unclear_at) END AS verdict
        FROM v""",
}
