"""Benchmarks (`zsdist bench NAME`): each measures speed as ratios against a baseline taken in the same run.

A benchmark module registers `fn(quick: bool) -> str` (the printed report) with `@register_bench(name)` and is
imported at the bottom of this file.
"""
from __future__ import annotations

from collections.abc import Callable

from zsdist.registry import Registry

Bench = Callable[[bool], str]
BENCHES: Registry[Bench] = Registry("benchmark")


def register_bench(name: str) -> Callable[[Bench], Bench]:
    return BENCHES.register(name)


from zsdist.bench import gpu, latency, proxies, queries, scaling, search  # noqa: E402,F401  (registers them)
