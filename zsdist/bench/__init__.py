"""Benchmarks (`zsdist bench NAME`): each measures speed as ratios against a baseline taken in the same run.

Benchmark NAME is the module zsdist/bench/NAME.py with `run(quick: bool) -> str` (the printed report). A module is
imported only when its benchmark runs, so that `zsdist bench --help` lists the names without importing torch.
"""
from __future__ import annotations

import importlib
from enum import Enum


class BenchName(str, Enum):
    gpu = "gpu"
    latency = "latency"
    proxies = "proxies"
    queries = "queries"
    scaling = "scaling"
    search = "search"


def run_bench(name: BenchName, quick: bool) -> str:
    return importlib.import_module(f"zsdist.bench.{name.value}").run(quick)
