"""What a NAS user would get: in seeded random pools, the accuracy of each proxy's first pick and top-k against the
pool's best (the regret).

A pool of size N in repeat r holds the N evaluated architectures with the smallest hash of the string
'seed:N:r:arch_id' (DuckDB's multi-argument hash mixes too weakly for independent repeats); pool sizes larger than
the evaluated set are skipped (every repeat would be the same set). Ties in a proxy's score are broken by the same
hash, and an architecture whose score is missing (status nan/error) is never picked.
"""
from __future__ import annotations

VIEWS: dict[str, str] = {
    "proxies_run": "SELECT DISTINCT run_id, space, dataset, proxy FROM proxy_scores",
    "pools": """
        WITH archs AS (
            SELECT run_id, space, dataset, arch_id, count(*) OVER (PARTITION BY run_id, space, dataset) AS n_archs
            FROM (SELECT DISTINCT run_id, space, dataset, arch_id FROM evaluated)),
        repeats AS (SELECT pool_size, unnest(range(repeats)) AS pool FROM pool_specs),
        draws AS (
            SELECT a.run_id, a.space, a.dataset, a.arch_id, r.pool_size, r.pool,
                   hash(concat_ws(':', s.seed, r.pool_size, r.pool, a.arch_id)) AS draw
            FROM archs a JOIN repeats r ON r.pool_size <= a.n_archs CROSS JOIN analysis_settings s)
        SELECT * FROM draws
        QUALIFY row_number() OVER (PARTITION BY run_id, space, dataset, pool_size, pool ORDER BY draw) <= pool_size""",
    "selection_pool": """
        WITH ranked AS (
            SELECT p.run_id, p.space, p.dataset, e.metric, pr.proxy, p.pool_size, p.pool, p.arch_id, e.truth,
                   pa.score,
                   row_number() OVER (PARTITION BY p.run_id, p.space, p.dataset, e.metric, pr.proxy, p.pool_size, p.pool
                                      ORDER BY pa.score DESC NULLS LAST, p.draw) AS proxy_rank
            FROM pools p
            JOIN evaluated e USING (run_id, space, dataset, arch_id)
            JOIN proxies_run pr USING (run_id, space, dataset)
            LEFT JOIN paired pa ON pa.run_id = p.run_id AND pa.space = p.space AND pa.dataset = p.dataset
                               AND pa.metric = e.metric AND pa.proxy = pr.proxy AND pa.arch_id = p.arch_id)
        SELECT run_id, space, dataset, metric, proxy, pool_size, pool, k,
               count(score) AS n_scored,
               max(truth) FILTER (WHERE proxy_rank = 1 AND score IS NOT NULL) AS pick_acc,
               max(truth) FILTER (WHERE proxy_rank <= k AND score IS NOT NULL) AS top_k_acc,
               max(truth) AS pool_best,
               avg(truth) AS pool_mean,
               max(truth) - max(truth) FILTER (WHERE proxy_rank <= k AND score IS NOT NULL) AS regret
        FROM ranked CROSS JOIN top_k
        GROUP BY run_id, space, dataset, metric, proxy, pool_size, pool, k""",
    # averages over the repeats; random_regret is what picking at random costs on average
    "selection": """
        SELECT run_id, space, dataset, metric, proxy, pool_size, k, count(*) AS pools,
               avg(pick_acc) AS mean_pick_acc, avg(top_k_acc) AS mean_top_k_acc, avg(pool_best) AS mean_pool_best,
               avg(regret) AS mean_regret, median(regret) AS median_regret,
               avg(CASE WHEN regret = 0 THEN 1.0 WHEN regret > 0 THEN 0.0 END) AS hit_rate,
               avg(pool_best - pool_mean) AS random_regret
        FROM selection_pool GROUP BY run_id, space, dataset, metric, proxy, pool_size, k""",
}
