"""Views of searches (`zsdist search`): what each step observed and the best feasible architecture so far, and each
finished search's result: its pick and the Pareto set of objective against the first constraint's cost.

search_history: one row per observed candidate in observation order (step); stage is evaluated, infeasible (a
constraint's cost exceeded or unknown: the objective was not computed), screened (a cheap rung of successive
halving) or failed (a proxy raised); objective is the candidate's objective when it was observed, computed over
the architectures evaluated by then (rank objectives change as the population grows); best_* is the best
feasible architecture so far; feasible_so_far / infeasible_so_far count new candidates (rung 0) up to the step.
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
               count(*) FILTER (WHERE rung = 0 AND feasible) OVER (PARTITION BY run_id ORDER BY step)
                   AS feasible_so_far,
               count(*) FILTER (WHERE rung = 0 AND NOT coalesce(feasible, false))
                   OVER (PARTITION BY run_id ORDER BY step) AS infeasible_so_far
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

# one row per search in the results folder: how the budget went and what it picked
SUMMARY_SQL = """
SELECT h.run_id, h.space, h.dataset, max(h.evaluations) AS evaluations, count(*) AS candidates,
       count(*) FILTER (WHERE h.stage = 'infeasible') AS infeasible, count(*) FILTER (WHERE h.stage = 'screened')
       AS screened, count(*) FILTER (WHERE h.stage = 'failed') AS failed, count(*) FILTER (WHERE h.reused) AS reused,
       any_value(r.arch) AS pick, any_value(r.objective) AS objective, any_value(r.cost) AS cost
FROM search_history h LEFT JOIN search_result r ON r.run_id = h.run_id AND r.pick
GROUP BY h.run_id, h.space, h.dataset ORDER BY h.run_id"""

PROGRESS_SQL = """
SELECT run_id, list(evaluations ORDER BY step) FILTER (WHERE stage = 'evaluated'),
       list(objective ORDER BY step) FILTER (WHERE stage = 'evaluated'),
       list(best_objective ORDER BY step) FILTER (WHERE stage = 'evaluated'),
       list(evaluations ORDER BY step), list(infeasible_so_far ORDER BY step)
FROM search_history WHERE run_id IN (SELECT unnest($runs)) GROUP BY run_id ORDER BY run_id"""


def progress_plot(runs: list[tuple]) -> bytes:
    """Per search: each evaluated architecture's objective and the best so far against the evaluations spent, and
    (right axis) the infeasible candidates rejected on their cost along the way."""
    from zsdist.analysis.plots import _grid, _png

    fig, axes = _grid(len(runs))
    for ax, (run_id, evals, objective, best, all_evals, infeasible) in zip(axes, runs):
        ax.scatter(evals, objective, s=6, alpha=0.5, c="C0", label="evaluated (feasible)")
        ax.step(evals, best, where="post", c="k", lw=1.2, label="best feasible so far")
        ax.set_xlabel("objective evaluations")
        ax.set_ylabel("objective")
        ax.set_title(run_id, fontsize=8)
        twin = ax.twinx()
        twin.step(all_evals, infeasible, where="post", c="C3", lw=1, label="infeasible candidates")
        twin.set_ylabel("infeasible candidates", color="C3")
        handles = [*ax.get_legend_handles_labels()[0], *twin.get_legend_handles_labels()[0]]
        ax.legend(handles=handles, fontsize=6, loc="lower right")
    return _png(fig)
