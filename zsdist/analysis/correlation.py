"""How well each proxy ranks architectures: Spearman (SQL), Kendall τ-b and bootstrap intervals (Python over lists).

Regions follow the survey: all evaluated architectures, and the top p% of them by the ground truth (ties at the
boundary kept), so that every proxy is judged on the same architectures.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import duckdb
import numpy as np
from scipy import stats


def _weighted_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pearson r per row of the multiset where value i appears w[:, i] times; NaN where a side is constant."""
    total = w.sum(axis=1, keepdims=True)
    dx = x - (w * x).sum(axis=1, keepdims=True) / total
    dy = y - (w * y).sum(axis=1, keepdims=True) / total
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w * dx * dy).sum(axis=1) / np.sqrt((w * dx * dx).sum(axis=1) * (w * dy * dy).sum(axis=1))


def _average_ranks(v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The average rank of each value within each row's multiset (ties share the mean of their positions)."""
    order = np.argsort(v, kind="stable")
    ordered = v[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # first position of each group of ties
    counts = np.add.reduceat(w[:, order], starts, axis=1)
    group_rank = np.cumsum(counts, axis=1) - counts + (counts + 1) / 2.0
    ranks = np.empty(w.shape)
    ranks[:, order] = group_rank[:, np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(v)]))]
    return ranks


def _spearman(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    return _weighted_pearson(_average_ranks(x, w), _average_ranks(y, w), w)


def _kendall(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.array([stats.kendalltau(np.repeat(x, row), np.repeat(y, row)).statistic for row in w], dtype=float)


def _pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    return _weighted_pearson(x[None, :], y[None, :], w)


# Each statistic maps paired values (n, n) and multiplicities (R×n: how often each pair is drawn) to R values,
# so a bootstrap never materialises its resamples; NaN where a resample is constant on one side.
STATISTICS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "spearman": _spearman, "kendall": _kendall, "pearson": _pearson,
}
_CHUNK = 64  # resamples per step: bounds memory at 64 × n values per array


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall τ-b, or NULL where it is undefined (fewer than two pairs, a constant side)."""
    if len(x) < 2:
        return None
    tau = float(_kendall(np.asarray(x, float), np.asarray(y, float), np.ones((1, len(x)), dtype=np.int64))[0])
    return None if math.isnan(tau) else tau


def bootstrap_interval(x: Sequence[float], y: Sequence[float], statistic: str, resamples: int,
                       seed: int) -> list[float] | None:
    """Percentile 95% interval of `statistic` over `resamples` resamples of the pairs (with replacement).

    Resamples where the statistic is undefined (all ties) are left out; NULL when fewer than 3 pairs."""
    n = len(x)
    if n < 3 or resamples < 1:
        return None
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    values = []
    for chunk in np.array_split(idx, math.ceil(resamples / _CHUNK)):
        rows = (chunk + n * np.arange(len(chunk))[:, None]).ravel()
        counts = np.bincount(rows, minlength=len(chunk) * n).reshape(len(chunk), n)
        values.append(STATISTICS[statistic](xs, ys, counts))
    values = np.concatenate(values)
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [float(lo), float(hi)]


def register_functions(con: duckdb.DuckDBPyConnection) -> None:
    con.create_function("kendall_tau", kendall_tau, ["DOUBLE[]", "DOUBLE[]"], "DOUBLE", null_handling="special")
    con.create_function("bootstrap_interval", bootstrap_interval,
                        ["DOUBLE[]", "DOUBLE[]", "VARCHAR", "BIGINT", "BIGINT"], "DOUBLE[]",
                        null_handling="special")


_UNDEFINED_AS_NULL = "CASE WHEN isnan({0}) THEN NULL ELSE {0} END"
_GROUP = "run_id, space, dataset, proxy, metric, region"

VIEWS: dict[str, str] = {
    # every evaluated architecture with a ground truth, ranked by it within its run × space × dataset × metric
    "evaluated": """
        SELECT run_id, space, dataset, metric, arch_id, truth,
               rank() OVER (PARTITION BY run_id, space, dataset, metric ORDER BY truth DESC) AS truth_rank,
               count(*) OVER (PARTITION BY run_id, space, dataset, metric) AS n_archs
        FROM (SELECT DISTINCT s.run_id, s.space, s.dataset, t.metric, s.arch_id, t.value AS truth
              FROM proxy_scores s
              JOIN truth t ON t.space = s.space AND t.arch_id = s.arch_id AND t.dataset = s.dataset
              WHERE t.value IS NOT NULL)""",
    # paired rows inside each region (region 'all' holds every pair)
    "paired_regions": """
        SELECT r.region, p.*
        FROM paired p
        JOIN evaluated e USING (run_id, space, dataset, metric, arch_id)
        JOIN regions r ON e.truth_rank <= ceil(e.n_archs * r.top_percent / 100.0)""",
    # Spearman = Pearson of average ranks (ties share the mean of their positions)
    "correlation_regions": f"""
        WITH ranked AS (
            SELECT *,
                rank() OVER (PARTITION BY {_GROUP} ORDER BY score)
                  + (count(*) OVER (PARTITION BY {_GROUP}, score) - 1) / 2.0 AS r_score,
                rank() OVER (PARTITION BY {_GROUP} ORDER BY truth)
                  + (count(*) OVER (PARTITION BY {_GROUP}, truth) - 1) / 2.0 AS r_truth
            FROM paired_regions)
        SELECT {_GROUP}, count(*) AS n,
               {_UNDEFINED_AS_NULL.format('corr(r_score, r_truth)')} AS spearman,
               kendall_tau(list(score ORDER BY arch_id), list(truth ORDER BY arch_id)) AS kendall,
               {_UNDEFINED_AS_NULL.format('corr(score, truth)')} AS pearson
        FROM ranked GROUP BY ALL""",
    "correlation": """
        SELECT run_id, space, dataset, proxy, metric, n, spearman, kendall, pearson
        FROM correlation_regions WHERE region = 'all'""",
    # bootstrap 95% intervals (seeded; computed only when this view is queried)
    "correlation_ci": f"""
        WITH lists AS (
            SELECT {_GROUP}, list(score ORDER BY arch_id) AS x, list(truth ORDER BY arch_id) AS y
            FROM paired_regions GROUP BY ALL),
        ci AS (
            SELECT {_GROUP},
                   bootstrap_interval(x, y, 'spearman', s.resamples, s.seed) AS s_ci,
                   bootstrap_interval(x, y, 'kendall', s.resamples, s.seed) AS k_ci,
                   bootstrap_interval(x, y, 'pearson', s.resamples, s.seed) AS p_ci
            FROM lists, analysis_settings s)
        SELECT c.*, ci.s_ci[1] AS spearman_lo, ci.s_ci[2] AS spearman_hi, ci.k_ci[1] AS kendall_lo,
               ci.k_ci[2] AS kendall_hi, ci.p_ci[1] AS pearson_lo, ci.p_ci[2] AS pearson_hi
        FROM correlation_regions c JOIN ci USING ({_GROUP})""",
}
