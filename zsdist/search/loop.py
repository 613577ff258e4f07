"""The search's bookkeeping, independent of Ray: batches proposed from what is known, outcomes observed in batch
order, the budget, and one `search` row per observed candidate.

Batch b is proposed once batches 0..b-parallel are observed, from their outcomes and a generator seeded by
(seed, b) alone, so that the trajectory (every proposal, every pick) depends on the settings and never on which
task finished first, and a resumed driver proposes exactly the batches it proposed before.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from zsdist.errors import ZsdistError
from zsdist.search.score import score
from zsdist.search.spec import SearchSpec
from zsdist.spaces.base import SearchSpace


@dataclass(frozen=True)
class Candidate:
    arch_id: int
    rung: int  # the score it is evaluated for: 0..len(screen); the last rung is the objective


@dataclass(frozen=True)
class Outcome:
    """What an evaluator learnt about one candidate."""

    candidate: Candidate
    costs: tuple[float | None, ...]  # per constraint (rung-0 candidates only; None: the cost could not be computed)
    values: tuple[float, ...] | None  # the rung's proxies (NaN: not finite); None when not evaluated (infeasible)
    failed: bool = False  # a proxy of the rung raised: no score
    reused: bool = False  # every row behind it came from an earlier run


def feasible(costs: tuple[float | None, ...], spec: SearchSpec) -> bool:
    """Every cost known and within its constraint (a cost that could not be computed counts as infeasible)."""
    return all(c is not None and c <= constraint.limit for c, constraint in zip(costs, spec.constraints))


class History:
    """What the search knows, in observation order. Strategies read it and claim the candidates they propose."""

    def __init__(self, spec: SearchSpec, space: SearchSpace) -> None:
        from zsdist.proxies import get_proxy

        self.spec, self.space = spec, space
        self.top = len(spec.ladder) - 1
        self.signs = [np.array([get_proxy(p).sign for p in o.proxies], dtype=np.float64) for o in spec.ladder]
        self.claimed: dict[int, int] = {}  # arch_id → highest rung proposed
        self.feasible: dict[int, bool] = {}
        self.costs: dict[int, tuple[float | None, ...]] = {}
        self.archs: list[list[int]] = [[] for _ in spec.ladder]  # per rung: scored architectures, in order
        self.values: list[list[tuple[float, ...]]] = [[] for _ in spec.ladder]
        self.evaluations = 0  # objective evaluations observed (failed ones included): the budget used
        self._scores: list[np.ndarray | None] = [None for _ in spec.ladder]

    @property
    def candidates(self) -> int:
        """Distinct architectures proposed."""
        return len(self.claimed)

    def claim(self, candidate: Candidate) -> Candidate:
        self.claimed[candidate.arch_id] = max(candidate.rung, self.claimed.get(candidate.arch_id, -1))
        return candidate

    def fresh(self, rng: np.random.Generator) -> int | None:
        """A random architecture never proposed before; None when the space or the candidate cap is used up."""
        if self.candidates >= min(self.space.size, self.spec.candidates_cap):
            return None
        while True:
            arch_id = int(rng.integers(self.space.size))
            if arch_id not in self.claimed:
                return arch_id

    def scores(self, rung: int) -> tuple[list[int], np.ndarray]:
        """The scored architectures of a rung and their scores over that population (higher is better)."""
        scores = self._scores[rung]
        if scores is None:
            scores = self._scores[rung] = score(self.spec.ladder[rung], np.array(self.values[rung]), self.signs[rung])
        return self.archs[rung], scores

    def best(self) -> tuple[int, float] | None:
        """The best architecture for the objective; among ties the cheapest (first constraint), then the first."""
        archs, scores = self.scores(self.top)
        if not np.any(~np.isnan(scores)):
            return None
        tied = np.flatnonzero(scores == np.nanmax(scores))
        cost = [self.costs[archs[i]][0] if self.spec.constraints else 0.0 for i in tied]
        i = int(tied[int(np.argmin(np.array(cost, dtype=np.float64)))])  # scored means feasible: costs known
        return archs[i], float(scores[i])

    def record(self, outcome: Outcome) -> None:
        candidate = outcome.candidate
        if candidate.rung == 0:
            self.costs[candidate.arch_id] = outcome.costs
            self.feasible[candidate.arch_id] = feasible(outcome.costs, self.spec)
        if outcome.values is None:
            return
        if candidate.rung == self.top:
            self.evaluations += 1
        if not outcome.failed:
            self.archs[candidate.rung].append(candidate.arch_id)
            self.values[candidate.rung].append(outcome.values)
            self._scores[candidate.rung] = None


class Strategy(Protocol):
    def propose(self, history: History, rng: np.random.Generator, size: int, top: int) -> list[Candidate]:
        """Up to `size` candidates, at most `top` of them at the objective's rung, each claimed in `history`."""


class SearchLoop:
    def __init__(self, spec: SearchSpec, space: SearchSpace, strategy: Strategy) -> None:
        self.spec, self.space, self.strategy = spec, space, strategy
        self.history = History(spec, space)
        self.batches: list[list[Candidate]] = []
        self.observed = 0
        self.steps = 0

    def committed(self) -> int:
        """Objective evaluations observed, plus every objective-rung candidate proposed but not observed yet."""
        pending = sum(c.rung == self.history.top for batch in self.batches[self.observed:] for c in batch)
        return self.history.evaluations + pending

    def propose(self) -> list[tuple[int, list[Candidate]]]:
        """The batches that may start now: while fewer than `parallel` are unobserved and budget is left."""
        started = []
        while len(self.batches) - self.observed < self.spec.parallel:
            top = self.spec.budget - self.committed()
            if top <= 0:
                break
            rng = np.random.default_rng([self.spec.search_seed, len(self.batches)])
            batch = self.strategy.propose(self.history, rng, self.spec.shard_size, top)
            if not batch:
                break
            started.append((len(self.batches), batch))
            self.batches.append(batch)
        return started

    def in_flight(self) -> bool:
        return self.observed < len(self.batches)

    def observe(self, index: int, outcomes: list[Outcome]) -> list[dict]:
        """Take batch `index` (the next unobserved one) into the history; its rows for the `search` table."""
        if index != self.observed or [o.candidate for o in outcomes] != self.batches[index]:
            raise ZsdistError(f"batch {index} observed out of order or with other candidates (a bug)")
        rows = []
        for outcome in outcomes:
            self.history.record(outcome)
            self.steps += 1
            rows.append(self._row(index, outcome))
        self.observed += 1
        return rows

    def _row(self, index: int, outcome: Outcome) -> dict:
        history, candidate = self.history, outcome.candidate
        score_value = None
        if outcome.values is None:
            stage = "infeasible"
        elif outcome.failed:
            stage = "failed"
        else:
            stage = "evaluated" if candidate.rung == history.top else "screened"
            archs, scores = history.scores(candidate.rung)
            score_value = _number(scores[len(archs) - 1])
        return {"step": self.steps, "batch": index, **self._fields(candidate.arch_id, history.best()),
                "rung": candidate.rung, "stage": stage, "feasible": history.feasible.get(candidate.arch_id),
                "score": score_value, "reused": outcome.reused, "final": False, "pick": False}

    def final_rows(self) -> list[dict]:
        """Every scored architecture with its objective over the final population, and the pick."""
        history = self.history
        archs, scores = history.scores(history.top)
        best = history.best()
        return [{"step": None, "batch": None, **self._fields(a, best), "rung": history.top, "stage": "evaluated",
                 "feasible": True, "score": _number(s), "reused": None, "final": True,
                 "pick": best is not None and a == best[0]} for a, s in zip(archs, scores)]

    def _fields(self, arch_id: int, best: tuple[int, float] | None) -> dict:
        """The columns of a `search` row that describe the architecture, its costs and the best so far."""
        costs = self.history.costs.get(arch_id, ())
        return {"arch_id": arch_id, "arch": self.space.arch_str(arch_id), "dataset": self.spec.dataset,
                "cost": costs[0] if costs else None,
                "costs": json.dumps({c.name: v for c, v in zip(self.spec.constraints, costs)}, sort_keys=True),
                "evaluations": self.history.evaluations, "best_arch_id": best[0] if best else None,
                "best_arch": self.space.arch_str(best[0]) if best else None,
                "best_score": best[1] if best else None}


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


class Evaluator(Protocol):
    def start(self, index: int, batch: list[Candidate]) -> None:
        """Begin evaluating a batch."""

    def finished(self) -> Iterable[tuple[int, list[Outcome]]]:
        """Batches that finished since the last call (waiting a little for one when none has)."""


def drive(loop: SearchLoop, evaluator: Evaluator,
          checkpoint: Callable[[int, list[dict]], None] | None = None) -> None:
    """Run the loop to its end: start batches as the loop allows, observe them in order, hand each observed
    batch's rows to `checkpoint(index, rows)`."""
    done: dict[int, list[Outcome]] = {}
    for index, batch in loop.propose():
        evaluator.start(index, batch)
    while loop.in_flight():
        done.update(evaluator.finished())
        while loop.observed in done:
            index = loop.observed
            rows = loop.observe(index, done.pop(index))
            if checkpoint is not None:
                checkpoint(index, rows)
            for started in loop.propose():
                evaluator.start(*started)
