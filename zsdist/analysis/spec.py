"""The analysis choices (regions, pools, k, budgets, bootstrap), kept as small SQL tables users can read and replace."""
from __future__ import annotations

from dataclasses import dataclass

from zsdist.errors import ZsdistError

COSTS = ("latency_ms", "energy_mj", "flops")


@dataclass(frozen=True)
class Budget:
    """A cost ceiling: a percentile of the candidates' cost, or an absolute limit in the cost's unit."""

    cost: str
    percentile: float | None = None
    limit: float | None = None

    def __post_init__(self) -> None:
        if self.cost not in COSTS:
            raise ZsdistError(f"unknown budget cost '{self.cost}' (known: {', '.join(COSTS)})")
        if (self.percentile is None) == (self.limit is None):
            raise ZsdistError(f"budget on {self.cost} needs exactly one of percentile or limit")
        if self.percentile is not None and not 0 <= self.percentile <= 100:
            raise ZsdistError(f"budget percentile {self.percentile} is outside 0..100")


DEFAULT_BUDGETS = tuple(Budget(cost, percentile=p) for cost in COSTS for p in (5.0, 10.0, 25.0, 50.0, 75.0, 100.0))


@dataclass(frozen=True)
class AnalysisSpec:
    """Defaults follow the survey: top 5/10/20% regions, pools of 100 and 1,000, top-1/5/10."""

    top_percents: tuple[float, ...] = (20.0, 10.0, 5.0)
    pool_sizes: tuple[int, ...] = (100, 1000)
    pool_repeats: int = 100
    top_k: tuple[int, ...] = (1, 5, 10)
    budgets: tuple[Budget, ...] = DEFAULT_BUDGETS
    bootstrap_resamples: int = 1000
    seed: int = 0

    def regions(self) -> list[tuple[str, float]]:
        """(name, top percent by ground truth): 'all' first, then 'top20', 'top10', …"""
        return [("all", 100.0)] + [(f"top{p:g}", p) for p in self.top_percents]

    def tables(self) -> dict[str, str]:
        """name → SELECT of each spec table (regions, pool_specs, top_k, budget_levels, analysis_settings)."""
        budgets = [(b.cost, "percentile" if b.percentile is not None else "limit",
                    b.percentile if b.percentile is not None else b.limit) for b in self.budgets]
        return {
            "regions": _values(["region", "top_percent"], ["VARCHAR", "DOUBLE"], self.regions()),
            "pool_specs": _values(["pool_size", "repeats"], ["BIGINT", "BIGINT"],
                                  [(n, self.pool_repeats) for n in self.pool_sizes]),
            "top_k": _values(["k"], ["BIGINT"], [(k,) for k in self.top_k]),
            "budget_levels": _values(["cost", "kind", "level"], ["VARCHAR", "VARCHAR", "DOUBLE"], budgets),
            "analysis_settings": _values(["seed", "resamples"], ["BIGINT", "BIGINT"],
                                         [(self.seed, self.bootstrap_resamples)]),
        }


def _values(columns: list[str], types: list[str], rows: list[tuple]) -> str:
    """A view's SELECT of constant rows: a view cannot hold bound parameters, so the spec's own typed values are
    written as literals cast to their column types."""
    if not rows:  # an empty table that still has its columns
        return "SELECT " + ", ".join(f"NULL::{t} AS {c}" for c, t in zip(columns, types)) + " WHERE false"
    body = ", ".join("(" + ", ".join(f"{v!r}::{t}" for v, t in zip(row, types)) + ")" for row in rows)
    return f"SELECT * FROM (VALUES {body}) v({', '.join(columns)})"
