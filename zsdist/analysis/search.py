"""Views of searches (`zsdist search`): what each step observed and the best feasible architecture so far, and each
finished search's result: its pick and the Pareto set of objective against the first constraint's cost.

search_history: one row per observed candidate in observation order (step); stage is evaluated, infeasible (a
constraint's cost exceeded or unknown: the objective was not computed), screened (a cheap rung of successive
halving) or failed (a proxy raised); objective is the candidate's objective when it was observed, computed over
the architectures evaluated by then (rank objectives change as the population grows); best_* is the best
feasible architecture so far; feasible_so_far / infeasible_so_far count candidates up to the step.
search_result: every architecture a finished search evaluated, with its objective over the final population;
on_front when no evaluated architecture that costs as little or less has an objective as high or higher (strictly
better in one); pick is the search's answer. Without constraints the cost is NULL and the front is the best.
"""
from __future__ import annotations

VIEWS: dict[str, str] = {
    "search_history": """
        SELECT run_id, space, dataset, step, batch, arch_id, arch, rung, stage, feasible, cost, costs,
               CASE WHEN stage = 'evaluated' THEN score END AS objective, score, evaluations,
               best_arch_id, best_arch, best_score AS best_objective, reused, elapsed_s,
               count(*) FILTER (WHERE feasible) OVER (PARTITION BY run_id ORDER BY step) AS feasible_so_far,
               count(*) FILTER (WHERE NOT coalesce(feasible, false)) OVER (PARTITION BY run_id ORDER BY step)
                   AS infeasible_so_far
        FROM search WHERE NOT final""",
    "search_result": """
        SELECT run_id, space, dataset, arch_id, arch, score AS objective, cost, costs, pick,
               score IS NOT NULL AND score = front AND (cheaper IS NULL OR score > cheaper) AS on_front
        FROM (SELECT *,
                  max(score) OVER (PARTITION BY run_id ORDER BY cost RANGE BETWEEN UNBOUNDED PRECEDING
                                   AND CURRENT ROW) AS front,
                  max(score) OVER (PARTITION BY run_id ORDER BY cost RANGE BETWEEN UNBOUNDED PRECEDING
                                   AND CURRENT ROW EXCLUDE GROUP) AS cheaper
              FROM search WHERE final)""",
}
