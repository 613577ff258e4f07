"""The search loop and strategies without Ray, on NB201 with a real HW-NAS-Bench latency table: the trajectory is
fixed by the settings, the budget counts objective evaluations, evolution finds the constrained optimum that
random search misses, halving screens first, and the rank objectives equal the views' AZ-NAS aggregate."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from zsdist.analysis.summary import finalize_run
from zsdist.analysis.views import connect
from zsdist.hardware.tables import hwnb_tables
from zsdist.search.loop import SearchLoop, drive
from zsdist.search.score import score
from zsdist.search.spec import AZ_COMPONENTS, Constraint, Objective, SearchSpec, StrategySpec
from zsdist.search.strategies import create_strategy
from zsdist.search.tables import TableEvaluator
from zsdist.spaces import create_space
from zsdist.spaces.nb201 import OPS, decode
from zsdist.store import Store

SPACE = create_space("nb201")
IDS = np.arange(SPACE.size)
# an additive objective (a weight per edge and op, like a cost count) and a rugged one (independent per cell)
WEIGHTS = np.random.default_rng(0).random((6, len(OPS)))
ADDITIVE = np.array([sum(WEIGHTS[e, OPS.index(op)] for e, op in enumerate(decode(i))) for i in IDS])
RUGGED = np.random.default_rng(1).random(SPACE.size)
LATENCY = hwnb_tables("cifar10")["raspi4"].latency_ms
BUDGET_MS = float(np.nanpercentile(LATENCY, 25))


def spec(strategy: StrategySpec = StrategySpec("evolution", population=20, tournament=5), budget: int = 150,
         seed: int = 0, objective: Objective = Objective("proxy", ("params",), (1.0,)),
         limit: float = BUDGET_MS, **settings) -> SearchSpec:
    return SearchSpec("t", "", 0, "nb201", "cifar10", objective, (Constraint("latency", limit, "raspi4"),), budget,
                      strategy, search_seed=seed, **{"shard_size": 5, "parallel": 3, **settings})


def run(s: SearchSpec, values: dict | None = None, evaluator_class=TableEvaluator) -> tuple[SearchLoop, list[dict]]:
    loop = SearchLoop(s, SPACE, create_strategy(s.strategy))
    rows: list[dict] = []
    drive(loop, evaluator_class(s, values or {"params": ADDITIVE}, [LATENCY]),
          lambda _i, batch_rows: rows.extend(batch_rows))
    return loop, rows


class Shuffled(TableEvaluator):
    """Finishes started batches in a random order, a few at a time, as Ray tasks would."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.rng = np.random.default_rng(7)

    def finished(self):
        waiting = list(super().finished())
        self._done = []
        self.rng.shuffle(waiting)
        keep = int(self.rng.integers(len(waiting))) if len(waiting) > 1 else 0
        self._done, out = waiting[:keep], waiting[keep:]
        return out


def test_the_trajectory_does_not_depend_on_which_batch_finishes_first():
    _, in_order = run(spec())
    _, shuffled = run(spec(), evaluator_class=Shuffled)
    assert in_order == shuffled
    _, other_seed = run(spec(seed=1))
    assert [r["arch_id"] for r in other_seed] != [r["arch_id"] for r in in_order]


@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_the_budget_counts_objective_evaluations_and_infeasible_candidates_apart(strategy):
    loop, rows = run(spec(StrategySpec(strategy, population=20, tournament=5), budget=60))
    evaluated = [r for r in rows if r["stage"] == "evaluated"]
    infeasible = [r for r in rows if r["stage"] == "infeasible"]
    assert len(evaluated) == loop.history.evaluations == 60
    assert infeasible and all(r["score"] is None and r["cost"] > BUDGET_MS for r in infeasible)
    assert all(r["cost"] <= BUDGET_MS and r["score"] == ADDITIVE[r["arch_id"]] for r in evaluated)
    assert len({r["arch_id"] for r in rows}) == len(rows)  # no architecture proposed twice
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    best = max(evaluated, key=lambda r: (r["score"], -r["cost"], -r["step"]))
    assert (rows[-1]["best_arch_id"], rows[-1]["best_score"]) == (best["arch_id"], best["score"])
    final = loop.final_rows()
    assert [r["arch_id"] for r in final if r["pick"]] == [best["arch_id"]] and len(final) == 60


def test_evolution_finds_the_constrained_optimum_that_random_search_misses():
    optimum = ADDITIVE[LATENCY <= BUDGET_MS].max()

    def hits(strategy: str) -> int:
        return sum(run(spec(StrategySpec(strategy, population=20, tournament=5), seed=s))[0].history.best()[1]
                   == optimum for s in range(5))

    assert hits("evolution") >= 4 and hits("random") <= 1


def test_evolution_children_are_mutations_of_the_population():
    s = spec(StrategySpec("evolution", population=10, tournament=3), budget=80, limit=1e9)
    _, rows = run(s)
    for i, row in enumerate(rows[30:], start=30):  # proposed after the population was filled
        earlier = {r["arch_id"] for r in rows[:i]}
        parents = [p for p in earlier if sum(a != b for a, b in zip(decode(p), decode(row["arch_id"]))) == 1]
        assert parents, row["arch_id"]


def test_halving_screens_on_the_cheap_proxy_and_promotes_the_best():
    s = spec(StrategySpec("halving", screen=("flops",), eta=3), budget=20, limit=1e9,
             objective=Objective("proxy", ("params",), (1.0,)))
    loop, rows = run(s, {"flops": RUGGED, "params": ADDITIVE})
    screened = [r for r in rows if r["stage"] == "screened"]
    evaluated = [r for r in rows if r["stage"] == "evaluated"]
    assert len(evaluated) == 20 and len(screened) >= 3 * 20
    for row in evaluated:  # promoted from the top third of the screened architectures seen before it
        before = [r for r in screened if r["step"] < row["step"]]
        rank = sum(RUGGED[r["arch_id"]] > RUGGED[row["arch_id"]] for r in before)
        assert row["arch_id"] in {r["arch_id"] for r in before} and rank < len(before) / 3


def test_a_constraint_nothing_meets_ends_at_the_candidate_cap():
    loop, rows = run(spec(budget=10, limit=1e-6, max_candidates=40))
    assert loop.history.evaluations == 0 and len(rows) == 40 and rows[-1]["best_arch_id"] is None
    assert loop.final_rows() == []


def test_rank_objectives_equal_the_az_nas_view(tmp_path):
    """score() over a population equals the rank aggregate the views compute for the same rows (zsdist.analysis.
    derived), nan components ranking lowest; the weighted-rank form is the same ranks, linearly."""
    rng = np.random.default_rng(3)
    values = rng.normal(size=(12, 4)).round(1)  # rounding makes ties
    values[2, 1] = values[5, 3] = np.nan
    rows = [{"arch_id": a, "arch": SPACE.arch_str(a), "dataset": "cifar10", "proxy": p,
             "value": None if np.isnan(values[a, j]) else float(values[a, j]), "seconds": 0.0,
             "status": "nan" if np.isnan(values[a, j]) else "ok", "error": None, "batch_size": 8, "seed": 0,
             "device": "cpu", "options": "{}", "version": "t"}
            for a in range(12) for j, p in enumerate(AZ_COMPONENTS)]
    store = Store(str(tmp_path))
    store.write("scores", rows, "s0", run_id="r", space="nb201")
    finalize_run(store, "r")  # what a launch stores at its end: the derived proxies among them
    sql = connect(str(tmp_path)).execute(
        "SELECT value FROM proxy_scores WHERE proxy = 'az_nas' ORDER BY arch_id").fetchall()
    az = Objective("log_ranks", AZ_COMPONENTS, (1.0,) * 4)
    np.testing.assert_allclose(score(az, values, np.ones(4)), [v for (v,) in sql], rtol=1e-12)
    linear = dataclasses.replace(az, kind="ranks", weights=(2.0, 1.0, 1.0, 0.5))
    np.testing.assert_allclose(score(linear, values, np.ones(4)),
                               np.exp(np.array([score(dataclasses.replace(az, proxies=(p,), weights=(1.0,)),
                                                      values[:, [j]], np.ones(1)) for j, p in
                                                enumerate(AZ_COMPONENTS)])).T @ [2.0, 1.0, 1.0, 0.5])
