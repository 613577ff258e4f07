"""The report's figures as PNG bytes (matplotlib, headless); each function takes plain rows from the SQL views.

Every figure stays within about 1,300 × 750 px (at 100 dpi) whatever the number of proxies, tables or devices, so
that a laptop screen shows it whole and its text at full size: callers pick the panels (at most one row of three).
"""
from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

_MARKERS = "os^Dv<>pPX*h"


def _png(fig: plt.Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return out.getvalue()


def _grid(n: int, width: float = 4.2, height: float = 3.4) -> tuple[plt.Figure, list[plt.Axes]]:
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained")
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat[:n]


def heatmap(rows: Sequence[tuple[str, str, float | None]], title: str) -> bytes:
    """rows: (proxy, column label, value); NULL cells stay blank."""
    proxies = sorted({r[0] for r in rows})
    columns = sorted({r[1] for r in rows})
    grid = np.full((len(proxies), len(columns)), np.nan)
    for proxy, column, value in rows:
        if value is not None:
            grid[proxies.index(proxy), columns.index(column)] = value
    fig, ax = plt.subplots(figsize=(min(12.0, 2.4 + 0.9 * len(columns)), min(6.8, 1.2 + 0.24 * len(proxies))),
                           layout="constrained")
    image = ax.imshow(grid, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(proxies)), proxies, fontsize=8)
    for (i, j), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="Spearman ρ")
    ax.set_title(title, fontsize=10)
    return _png(fig)


def scatter(panels: Sequence[tuple[str, Sequence[float], Sequence[float]]], ylabel: str) -> bytes:
    """panels: (title, scores with direction applied, accuracy); x is the score's percentile rank."""
    fig, axes = _grid(len(panels))
    for ax, (title, score, truth) in zip(axes, panels):
        x = stats.rankdata(score) / len(score)
        ax.scatter(x, truth, s=6, alpha=0.6)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("proxy rank (percentile, direction applied)")
        ax.set_ylabel(ylabel)
    return _png(fig)


def pareto(panels: Sequence[tuple[str, Sequence[tuple[float, float, bool]], Sequence[tuple[str, float, float]],
                                  Sequence[tuple[str, float]]]], xlabel: str) -> bytes:
    """panels: (title, candidates (cost, acc, on_front), picks (proxy, cost, acc), budgets (label, cost))."""
    fig, axes = _grid(len(panels))
    for ax, (title, candidates, picks, budgets) in zip(axes, panels):
        cost, acc, front = (np.array(c) for c in zip(*candidates))
        ax.scatter(cost, acc, s=5, c="0.75", label="architectures")
        order = np.argsort(cost[front])
        ax.step(cost[front][order], acc[front][order], where="post", c="k", lw=1, label="Pareto front")
        for label, budget in budgets:
            ax.axvline(budget, c="0.6", lw=0.6, ls=":")
            ax.text(budget, 1, label, transform=ax.get_xaxis_transform(), fontsize=6, rotation=90, va="top",
                    ha="right", color="0.4")
        by_proxy: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for proxy, c, a in picks:
            by_proxy[proxy].append((c, a))
        for i, (proxy, points) in enumerate(sorted(by_proxy.items())):
            xs, ys = zip(*points)
            ax.scatter(xs, ys, marker=_MARKERS[i % len(_MARKERS)], s=30, facecolors="none",
                       edgecolors=f"C{i}", label=proxy)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=6, loc="lower right")
    return _png(fig)


def regret_bands(panels: Sequence[tuple[str, Sequence[tuple[str, float, float, float, float]]]],
                 xlabel: str) -> bytes:
    """panels: (title, (proxy, budget level, median, low, high)): a line per proxy, a band from low to high."""
    fig, axes = _grid(len(panels))
    for ax, (title, points) in zip(axes, panels):
        by_proxy: dict[str, list[tuple[float, ...]]] = defaultdict(list)
        for proxy, at, *band in points:
            by_proxy[proxy].append((at, *(np.nan if v is None else v for v in band)))
        for i, (proxy, line) in enumerate(sorted(by_proxy.items())):
            level, mid, lo, hi = (np.array(v) for v in zip(*sorted(line)))
            ax.plot(level, mid, marker=_MARKERS[i % len(_MARKERS)], ms=4, c=f"C{i}", label=proxy)
            if np.any(hi > lo):
                ax.fill_between(level, lo, hi, color=f"C{i}", alpha=0.12, lw=0)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("regret (accuracy points)")
        ax.legend(fontsize=6)
    return _png(fig)


def family_bars(rows: Sequence[tuple[str, str, float | None]]) -> bytes:
    """rows: (family, proxy, mean Spearman): one bar per proxy and family."""
    families = sorted({r[0] for r in rows})
    proxies = sorted({r[1] for r in rows})
    values = {(f, p): v for f, p, v in rows}
    width = 0.8 / len(families)
    fig, ax = plt.subplots(figsize=(min(12.0, 1.6 + 0.45 * len(proxies)), 3.6), layout="constrained")
    for i, family in enumerate(families):
        heights = [np.nan if (v := values.get((family, p))) is None else v for p in proxies]
        ax.bar(np.arange(len(proxies)) + i * width, heights, width, label=family)
    ax.set_xticks(np.arange(len(proxies)) + width * (len(families) - 1) / 2, proxies, rotation=30, ha="right")
    ax.set_ylabel("mean Spearman ρ (all architectures)")
    ax.axhline(0, c="k", lw=0.5)
    ax.legend()
    return _png(fig)
