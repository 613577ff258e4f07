"""Hardware-constrained selection: under each device's cost budget, what each proxy picks, how good it is, and how
far it is from the accuracy-cost Pareto front.

Costs come from the latency table (any source: measured, table or predicted; repeated rows reduce to their median)
and from the `flops` proxy (device 'any'). A run's candidates take costs from its own rows and from runs that hold
no scores (the ingested tables, latency-only measurement runs), never from another run's measurements; `cost_run`
says which run a cost comes from, so two measurements of one device stay two groups. Budgets are percentiles of the
candidates' cost or absolute limits (`budget_levels`); a budget no candidate fits still gives one row per proxy,
with n_within = 0 and NULL picks. Ties in a proxy's score are broken by the hash of 'seed:arch_id'; an architecture
without a score is never picked.
"""
from __future__ import annotations

_DEVICE = "run_id, space, dataset, metric, cost_run, device, source, batch_size, cost"
_BUDGET = f"{_DEVICE}, kind, level, budget"
_QUALIFIED_BUDGET = ", ".join(f"w.{c}" for c in _BUDGET.split(", "))
_ON = " AND ".join(f"{{a}}.{c} = {{b}}.{c}" for c in _DEVICE.split(", "))

VIEWS: dict[str, str] = {
    # one value per (space, dataset, device, source, batch, cost, arch); rows without a batch size count as batch 1
    "costs": """
        SELECT run_id AS cost_run, space, dataset, device, source, coalesce(batch_size, 1) AS batch_size,
               'latency_ms' AS cost, arch_id, median(latency_ms) AS value
        FROM latency WHERE status = 'ok' AND latency_ms IS NOT NULL GROUP BY ALL
        UNION ALL
        SELECT run_id, space, dataset, device, source, coalesce(batch_size, 1), 'energy_mj', arch_id,
               median(energy_mj)
        FROM latency WHERE status = 'ok' AND energy_mj IS NOT NULL GROUP BY ALL
        UNION ALL
        SELECT run_id, space, dataset, 'any', 'flops', 1, 'flops', arch_id, any_value(value)
        FROM scores WHERE proxy = 'flops' AND status = 'ok' AND value IS NOT NULL GROUP BY ALL""",
    # evaluated architectures that have a cost on a device: from their own run or a run without scores
    "hw_candidates": """
        SELECT e.run_id, e.space, e.dataset, e.metric, c.cost_run, c.device, c.source, c.batch_size, c.cost,
               e.arch_id, e.truth, c.value AS cost_value
        FROM evaluated e
        JOIN costs c ON c.space = e.space AND c.dataset = e.dataset AND c.arch_id = e.arch_id
                    AND (c.cost_run = e.run_id OR c.cost_run NOT IN (SELECT DISTINCT run_id FROM scores))""",
    # a percentile budget interpolates linearly between sorted costs (as quantile_cont / numpy do)
    "budgets": f"""
        WITH sorted AS (
            SELECT {_DEVICE}, list_sort(list(cost_value)) AS v, count(*) AS n FROM hw_candidates GROUP BY ALL),
        placed AS (
            SELECT s.*, b.kind, b.level, (s.n - 1) * b.level / 100.0 AS pos
            FROM sorted s JOIN budget_levels b USING (cost))
        SELECT {_DEVICE}, kind, level,
               CASE WHEN kind = 'limit' THEN level
                    ELSE v[1 + floor(pos)::BIGINT]
                         + (v[1 + ceil(pos)::BIGINT] - v[1 + floor(pos)::BIGINT]) * (pos - floor(pos)) END AS budget,
               CASE WHEN kind = 'limit' THEN printf('%g %s', level, cost) ELSE printf('p%g', level) END AS label
        FROM placed""",
    # front_acc: the best accuracy at or below an arch's cost; on the front if nothing strictly cheaper is as good
    "pareto": f"""
        SELECT * EXCLUDE (best_cheaper),
               truth = front_acc AND (best_cheaper IS NULL OR truth > best_cheaper) AS on_front
        FROM (SELECT *,
                  max(truth) OVER (PARTITION BY {_DEVICE} ORDER BY cost_value
                                   RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS front_acc,
                  max(truth) OVER (PARTITION BY {_DEVICE} ORDER BY cost_value
                                   RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE GROUP) AS best_cheaper
              FROM hw_candidates)""",
    "constrained": f"""
        WITH within AS (
            SELECT b.*, h.arch_id, h.truth, h.cost_value
            FROM budgets b LEFT JOIN hw_candidates h ON {_ON.format(a='h', b='b')} AND h.cost_value <= b.budget),
        ranked AS (
            SELECT w.*, pr.proxy, pa.score,
                   row_number() OVER (PARTITION BY {_QUALIFIED_BUDGET}, pr.proxy ORDER BY pa.score DESC NULLS LAST,
                                      hash(concat_ws(':', s.seed, w.arch_id))) AS proxy_rank
            FROM within w
            JOIN proxies_run pr USING (run_id, space, dataset)
            CROSS JOIN analysis_settings s
            LEFT JOIN paired pa ON pa.run_id = w.run_id AND pa.space = w.space AND pa.dataset = w.dataset
                               AND pa.metric = w.metric AND pa.proxy = pr.proxy AND pa.arch_id = w.arch_id),
        picked AS (
            SELECT {_BUDGET}, label, proxy, k, count(arch_id) AS n_within, count(score) AS n_scored,
                   arg_min(arch_id, proxy_rank) FILTER (WHERE score IS NOT NULL) AS pick_id,
                   max(truth) FILTER (WHERE proxy_rank = 1 AND score IS NOT NULL) AS pick_acc,
                   max(cost_value) FILTER (WHERE proxy_rank = 1 AND score IS NOT NULL) AS pick_cost,
                   max(truth) FILTER (WHERE proxy_rank <= k AND score IS NOT NULL) AS top_k_acc,
                   max(truth) AS best_acc
            FROM ranked CROSS JOIN top_k
            GROUP BY {_BUDGET}, label, proxy, k)
        SELECT p.*, p.best_acc - p.top_k_acc AS regret, f.front_acc - p.pick_acc AS front_gap
        FROM picked p
        LEFT JOIN pareto f ON {_ON.format(a='f', b='p')} AND f.arch_id = p.pick_id""",
}
