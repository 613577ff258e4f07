"""Search strategies, registered by name: each proposes candidates from the history (zsdist.search.loop.History).

random     fresh architectures drawn uniformly.
evolution  regularised (aging) evolution, Real et al. 2019: the population is the last `population` architectures
           evaluated, a parent is the best of `tournament` members drawn without replacement, its child is one
           mutation of the space's own encoding (re-drawn while it was proposed before); the first `population`
           evaluations are random.
halving    successive halving on cheap proxies before the objective, asynchronous (Li et al. 2020, ASHA): a
           candidate in the best 1/eta of a rung's scored architectures moves up one rung (the highest rung
           first, the best candidate first); otherwise a fresh architecture starts at the first screen.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from zsdist.registry import Registry
from zsdist.search.loop import Candidate, History, Strategy
from zsdist.search.spec import StrategySpec

STRATEGIES: Registry[Callable[[StrategySpec], Strategy]] = Registry("search strategy")
MUTATION_TRIES = 50  # children drawn before a parent whose neighbours were all proposed gives way to a fresh arch


def create_strategy(spec: StrategySpec) -> Strategy:
    return STRATEGIES.get(spec.name)(spec)


@STRATEGIES.register("random")
class RandomSearch:
    def __init__(self, spec: StrategySpec) -> None:
        self.spec = spec

    def propose(self, history: History, rng: np.random.Generator, size: int, top: int) -> list[Candidate]:
        out = []
        for _ in range(min(size, top)):
            arch_id = history.fresh(rng)
            if arch_id is None:
                break
            out.append(history.claim(Candidate(arch_id, 0)))
        return out


@STRATEGIES.register("evolution")
class RegularizedEvolution:
    def __init__(self, spec: StrategySpec) -> None:
        self.spec = spec

    def propose(self, history: History, rng: np.random.Generator, size: int, top: int) -> list[Candidate]:
        archs, scores = history.scores(history.top)
        population = archs[-self.spec.population:]
        fitness = np.nan_to_num(scores[-self.spec.population:], nan=-np.inf)
        out = []
        for _ in range(min(size, top)):
            arch_id = None
            if len(population) >= self.spec.population:
                drawn = rng.choice(len(population), size=self.spec.tournament, replace=False)
                arch_id = self._child(history, population[int(drawn[np.argmax(fitness[drawn])])], rng)
            if arch_id is None:
                arch_id = history.fresh(rng)
            if arch_id is None:
                break
            out.append(history.claim(Candidate(arch_id, 0)))
        return out

    @staticmethod
    def _child(history: History, parent: int, rng: np.random.Generator) -> int | None:
        for _ in range(MUTATION_TRIES):
            child = history.space.mutate(parent, rng)
            if child not in history.claimed:
                return child if history.candidates < history.spec.candidates_cap else None
        return None


@STRATEGIES.register("halving")
class SuccessiveHalving:
    def __init__(self, spec: StrategySpec) -> None:
        self.spec = spec

    def propose(self, history: History, rng: np.random.Generator, size: int, top: int) -> list[Candidate]:
        out: list[Candidate] = []
        while len(out) < size:
            left = top - sum(c.rung == history.top for c in out)
            if left <= 0:
                break
            candidate = self._promotion(history)
            if candidate is None:
                arch_id = history.fresh(rng)
                if arch_id is None:
                    break
                candidate = Candidate(arch_id, 0)
            out.append(history.claim(candidate))
        return out

    def _promotion(self, history: History) -> Candidate | None:
        """The best not-yet-promoted candidate in the top 1/eta of the highest rung that has one."""
        for rung in range(history.top - 1, -1, -1):
            archs, scores = history.scores(rung)
            keep = len(archs) // self.spec.eta
            order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")[:keep]
            for i in order:
                if history.claimed[archs[i]] <= rung:
                    return Candidate(archs[i], rung + 1)
        return None
