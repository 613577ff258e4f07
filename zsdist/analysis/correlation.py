"""How well each proxy ranks architectures: Spearman (SQL), Kendall τ-b and bootstrap intervals (Python over lists).

Regions follow the survey: all evaluated architectures, and the top p% of them by the ground truth (ties at the
boundary kept), so that every proxy is judged on the same architectures.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import duckdb
import numpy as np


def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of x and y (R×n); NaN where a row is constant."""
    dx = x - x.mean(axis=-1, keepdims=True)
    dy = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (dx * dy).sum(axis=-1) / np.sqrt((dx * dx).sum(axis=-1) * (dy * dy).sum(axis=-1))


def _codes(v: np.ndarray) -> np.ndarray:
    """Values → dense integer ranks 0..k-1: a monotone map, so every rank statistic is unchanged."""
    from scipy import stats

    return stats.rankdata(v, method="dense").astype(np.int64) - 1


def _resample_ranks(codes: np.ndarray) -> np.ndarray:
    """Average ranks within each row of codes (ties share the mean of their positions), by counting, no sort."""
    rows, k = codes.shape[0], int(codes.max()) + 1
    counts = np.bincount((codes + k * np.arange(rows)[:, None]).ravel(), minlength=rows * k).reshape(rows, k)
    return np.take_along_axis(np.cumsum(counts, axis=1) - (counts - 1) / 2.0, codes, axis=1)


def _spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _pearson(_resample_ranks(x), _resample_ranks(y))


def _kendall(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy import stats  # imported when a query computes it: scipy.stats costs a second at every CLI start

    return np.array([stats.kendalltau(a, b).statistic for a, b in zip(np.atleast_2d(x), np.atleast_2d(y))])


# Each statistic: a transform of the paired values, applied once, and a map of resamples of the transformed values
# (R×n each) to R values; NaN where a resample is constant on one side.
STATISTICS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    "spearman": (_codes, _spearman), "kendall": (np.asarray, _kendall), "pearson": (np.asarray, _pearson),
}
_BATCH = 64  # resamples per step: bounds memory at 64 × n values per array
_UNDEFINED = 2.0


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall τ-b, or NULL where it is undefined (fewer than two pairs, a constant side)."""
    if len(x) < 2:
        return None
    tau = float(_kendall(np.asarray(x, float), np.asarray(y, float))[0])
    return None if math.isnan(tau) else tau


def bootstrap_interval(x: Sequence[float], y: Sequence[float], statistic: str, resamples: int,
                       seed: int) -> list[float] | None:
    """Percentile 95% interval of `statistic` over `resamples` paired resamples (scipy.stats.bootstrap, seeded).

    Resamples where the statistic is undefined (all ties) are left out rather than making the interval NaN, as
    scipy's own interval would; NULL when fewer than 3 pairs."""
    if len(x) < 3 or resamples < 1:
        return None
    from scipy import stats

    transform, fn = STATISTICS[statistic]
    # undefined resamples get a value outside every correlation's range, so that scipy's own interval (unused)
    # stays finite instead of warning; they are dropped below
    result = stats.bootstrap((transform(np.asarray(x, float)), transform(np.asarray(y, float))),
                             lambda a, b, axis: np.nan_to_num(fn(a, b), nan=_UNDEFINED), paired=True,
                             vectorized=True, n_resamples=resamples, batch=_BATCH, method="percentile",
                             rng=np.random.default_rng(seed))
    values = result.bootstrap_distribution
    values = values[values != _UNDEFINED]
    if not len(values):
        return None
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [float(lo), float(hi)]


def register_functions(con: duckdb.DuckDBPyConnection) -> None:
    # duckdb accepts null_handling as a string; its stubs want the enum
    con.create_function("kendall_tau", kendall_tau, ["DOUBLE[]", "DOUBLE[]"], "DOUBLE",  # type: ignore[call-overload]
                        null_handling="special")
    con.create_function("bootstrap_interval", bootstrap_interval,  # type: ignore[call-overload]
                        ["DOUBLE[]", "DOUBLE[]", "VARCHAR", "BIGINT", "BIGINT"], "DOUBLE[]",
                        null_handling="special")


_UNDEFINED_AS_NULL = "CASE WHEN isnan({0}) THEN NULL ELSE {0} END"
_GROUP = "run_id, space, dataset, proxy, metric, region"

VIEWS: dict[str, str] = {
    # the metric a space × dataset's tables and plots lead with: test_acc where the truth has it, else the first
    "primary_metric": """
        SELECT space, dataset, CASE WHEN bool_or(metric = 'test_acc') THEN 'test_acc' ELSE min(metric) END AS metric
        FROM truth GROUP BY space, dataset""",
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
    # each table's pairs as two lists in arch order: what the bootstrap resamples
    "paired_lists": f"""
        SELECT {_GROUP}, list(score ORDER BY arch_id) AS x, list(truth ORDER BY arch_id) AS y
        FROM paired_regions GROUP BY ALL""",
    # bootstrap 95% intervals (seeded; computed only when this view is queried)
    "correlation_ci": f"""
        WITH ci AS (
            SELECT {_GROUP},
                   bootstrap_interval(x, y, 'spearman', s.resamples, s.seed) AS s_ci,
                   bootstrap_interval(x, y, 'kendall', s.resamples, s.seed) AS k_ci,
                   bootstrap_interval(x, y, 'pearson', s.resamples, s.seed) AS p_ci
            FROM paired_lists, analysis_settings s)
        SELECT c.*, ci.s_ci[1] AS spearman_lo, ci.s_ci[2] AS spearman_hi, ci.k_ci[1] AS kendall_lo,
               ci.k_ci[2] AS kendall_hi, ci.p_ci[1] AS pearson_lo, ci.p_ci[2] AS pearson_hi
        FROM correlation_regions c JOIN ci USING ({_GROUP})""",
}
