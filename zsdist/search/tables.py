"""An evaluator that looks candidates up in per-architecture arrays (every cell of a space, from an exhaustive run
and cost tables): the same loop and strategies as a Ray search, so a benchmark can repeat a search over many seeds
and budgets in seconds and compare its pick with the exhaustive answer."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from zsdist.search.loop import Candidate, Outcome, feasible
from zsdist.search.spec import SearchSpec


class TableEvaluator:
    """values: proxy → array over arch ids (NaN: not finite); costs: one array per constraint (NaN: unknown)."""

    def __init__(self, spec: SearchSpec, values: Mapping[str, np.ndarray], costs: Sequence[np.ndarray]) -> None:
        self.spec, self.values, self.costs = spec, values, costs
        self._done: list[tuple[int, list[Outcome]]] = []

    def start(self, index: int, batch: list[Candidate]) -> None:
        self._done.append((index, [self._outcome(c) for c in batch]))

    def finished(self) -> Iterable[tuple[int, list[Outcome]]]:
        done, self._done = self._done, []
        return done

    def _outcome(self, candidate: Candidate) -> Outcome:
        arch_id = candidate.arch_id
        costs: tuple[float | None, ...] = ()
        if candidate.rung == 0:
            costs = tuple(None if np.isnan(c[arch_id]) else float(c[arch_id]) for c in self.costs)
            if not feasible(costs, self.spec):
                return Outcome(candidate, costs, None)
        values = tuple(float(self.values[p][arch_id]) for p in self.spec.ladder[candidate.rung].proxies)
        return Outcome(candidate, costs, values)
