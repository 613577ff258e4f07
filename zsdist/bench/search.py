"""`zsdist bench search`: the search measured where the answer is known, against random search, and on Ray.

1. NB201, every dataset, a latency budget at the 25th and 50th percentile of each HW-NAS-Bench device's table:
   regularised evolution and random search with 500 objective evaluations, 10 seeds each, against the exhaustive
   pick of the same objective over all 15,625 cells, and the test-accuracy regret of each pick against the best
   feasible cell. The objective is #params, which zsdist computes over every cell once (a `launch` cached under
   the user cache folder): the cheapest proxy to evaluate exhaustively on a small machine. The repeats run the
   search loop in memory on the exhaustive rows (zsdist.search.tables); one search per dataset also runs through
   the Ray driver on that results folder (every row reused) and must pick the same architecture.
2. MobileNetV2 and AutoFormer-Tiny with a predicted-latency budget (the median over 24 random networks): the best
   #params found with N objective evaluations, evolution against random search (N = 1,000 and 5 seeds in full;
   a predicted latency costs ~1-2 s a network here, so --quick runs N = 24 and 2 seeds).
3. Evaluations per second of one search on a local Ray with 2 workers against 1 (the history must not change).
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import replace

import numpy as np
import pyarrow.dataset as pads

from zsdist.search.spec import Constraint, Objective, SearchSpec, StrategySpec
from zsdist.spaces.nb101 import cache_dir

DATASETS = ("cifar10", "cifar100", "imagenet16_120")
PERCENTILES = (25, 50)
OBJECTIVE = Objective("proxy", ("params",), (1.0,))
EVOLUTION = StrategySpec("evolution", population=64, tournament=16)
RANDOM = StrategySpec("random")
LARGE = (("mbv2", "imagenet", "pixel3"), ("autoformer_tiny", "cifar100_224", "edgegpu"))


def _folder(name: str) -> str:
    return str(cache_dir() / "bench-search" / name)


def _rows(output: str, table: str, where: pads.Expression) -> list[dict]:
    from zsdist.search.rows import read_rows
    from zsdist.store import Store

    return read_rows(Store(output), table, where)


def _exhaustive() -> tuple[str, str, str]:
    """The results folder holding #params of every NB201 cell (launched when missing, resumable), the
    HW-NAS-Bench tables and the NB201 truth; the launch's run id; a line saying what it cost."""
    from zsdist.hardware.tables import ingest_tables
    from zsdist.run import launch
    from zsdist.store import Store
    from zsdist.truth import ingest
    from zsdist.workflow import Archs, Job, Workflow

    output = _folder("nb201-exhaustive")
    job = Job(space="nb201", datasets=DATASETS, archs=Archs("all"), proxies=("params",), shard_size=125)
    workflow = Workflow(name="bench-search-nb201", output=output, seed=0, jobs=(job,))
    summary = launch(workflow)
    store = Store(output)
    if not store.exists(store.path("truth", "nb201_accuracy", space="nb201")):
        ingest(store, "nb201")
    if not store.exists(store.path("latency", "hw_nas_bench", run_id="tables", space="nb201")):
        ingest_tables(store)
    run = _rows(output, "runs", pads.field("run_id") == workflow.run_id)[0]
    seconds = _rows(output, "scores", pads.field("run_id") == workflow.run_id)
    return output, workflow.run_id, (
        f"exhaustive #params of the 15,625 NB201 cells × 3 datasets: run {workflow.run_id} in {output}, "
        f"{'computed now' if summary.shards_done else 'cached'}; launch wall time "
        f"{(run['finished'] - run['started']).total_seconds() / 3600:.1f} h on this machine, "
        f"{sum(r['seconds'] for r in seconds) / 3600:.2f} h of proxy time (network builds excluded)")


def _arrays(output: str, run_id: str, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """#params (from the exhaustive run) and test accuracy of every NB201 cell of a dataset."""
    params, acc = np.full(15_625, np.nan), np.full(15_625, np.nan)
    same = (pads.field("dataset") == dataset) & (pads.field("space") == "nb201")
    for row in _rows(output, "scores", same & (pads.field("run_id") == run_id) & (pads.field("proxy") == "params")):
        params[row["arch_id"]] = row["value"]
    for row in _rows(output, "truth", same & (pads.field("metric") == "test_acc")):
        acc[row["arch_id"]] = row["value"]
    return params, acc


def _in_memory(spec: SearchSpec, values: dict, costs: list[np.ndarray]) -> int:
    """The pick of a search run by the in-memory loop (the Ray driver follows the same loop)."""
    from zsdist.search.loop import SearchLoop, drive
    from zsdist.search.strategies import create_strategy
    from zsdist.search.tables import TableEvaluator
    from zsdist.spaces import create_space

    space = create_space(spec.space)
    loop = SearchLoop(spec, space, create_strategy(spec.strategy))
    drive(loop, TableEvaluator(spec, values, costs))
    best = loop.history.best()
    assert best is not None  # the tables score every architecture
    return best[0]


def _nb201(quick: bool) -> list[str]:
    from zsdist.hardware.tables import HWNB_DEVICES, hwnb_tables
    from zsdist.search.driver import run_search

    output, run_id, cost = _exhaustive()
    datasets, devices = (("cifar10",), ("edgegpu", "raspi4")) if quick else (DATASETS, HWNB_DEVICES)
    seeds = range(3 if quick else 10)
    lines = [cost, f"objective #params, 500 objective evaluations, {len(seeds)} seeds; match: the pick has the "
             "exhaustive pick's objective value; regret: test accuracy (%) of the best feasible cell minus the "
             "pick's, mean over seeds",
             f"{'dataset':15s} {'device':8s} {'budget':>12s} {'feasible':>8s} {'evolution':>9s} {'random':>6s} "
             f"{'regret evo':>10s} {'random':>7s} {'exhaustive':>10s}"]
    matches, regrets = [], []  # per setting: evolution's matches; regrets of evolution, random, exhaustive pick
    for dataset in datasets:
        params, acc = _arrays(output, run_id, dataset)
        for device in devices:
            latency = hwnb_tables(dataset)[device].latency_ms
            for pct in PERCENTILES:
                limit = float(np.nanpercentile(latency, pct))
                feasible = np.nan_to_num(latency, nan=np.inf) <= limit
                tied = np.flatnonzero(feasible & (params == params[feasible].max()))
                exhaustive = int(tied[np.argmin(latency[tied])])
                top = acc[feasible].max()
                found = {}
                for strategy in (EVOLUTION, RANDOM):
                    picks = [_in_memory(_nb201_spec(dataset, device, limit, strategy, seed, output),
                                        {"params": params}, [latency]) for seed in seeds]
                    found[strategy.name] = (sum(params[p] == params[exhaustive] for p in picks),
                                            float(np.mean([top - acc[p] for p in picks])))
                (hits, evo), (random_hits, rnd) = found["evolution"], found["random"]
                matches.append(hits)
                regrets.append((evo, rnd, top - acc[exhaustive]))
                lines.append(f"{dataset:15s} {device:8s} {f'p{pct} {limit:.3g} ms':>12s} {feasible.sum():8d} "
                             f"{hits:>6d}/{len(seeds):<2d} {random_hits:>3d}/{len(seeds):<2d} {evo:10.2f} {rnd:7.2f} "
                             f"{regrets[-1][2]:10.2f}")
        latency = hwnb_tables(dataset)[devices[0]].latency_ms
        spec = _nb201_spec(dataset, devices[0], float(np.nanpercentile(latency, PERCENTILES[0])), EVOLUTION, 0,
                           output)
        done = run_search(spec, show_progress=False)
        same = done.pick is not None and done.pick["arch_id"] == _in_memory(spec, {"params": params}, [latency])
        lines.append(f"  Ray driver on {dataset}/{devices[0]}/p{PERCENTILES[0]}, seed 0: same pick as in memory: "
                     f"{'yes' if same else 'NO'} ({done.computed_shards} shards computed, {done.reused} of "
                     f"{done.candidates} candidates reused, {done.seconds:.0f} s)")
    mean = np.mean(regrets, axis=0)
    lines.append(f"evolution matched the exhaustive pick in ≥ 90% of seeds in "
                 f"{sum(h >= 0.9 * len(seeds) for h in matches)} of {len(matches)} settings ({sum(matches)} of "
                 f"{len(matches) * len(seeds)} searches); mean regret: evolution {mean[0]:.2f}, random "
                 f"{mean[1]:.2f}, exhaustive pick {mean[2]:.2f}")
    return lines


def _nb201_spec(dataset: str, device: str, limit: float, strategy: StrategySpec, seed: int, output: str) -> SearchSpec:
    return SearchSpec(f"bench-search-{strategy.name}-{dataset}-{device}", output, 0, "nb201", dataset, OBJECTIVE,
                      (Constraint("latency", limit, device),), 500, strategy, search_seed=seed, shard_size=25)


def _large(quick: bool) -> list[str]:
    return large_spaces(*((24, 2) if quick else (1000, 5)))


def large_spaces(budget: int, seeds: int) -> list[str]:
    """Part 2 at any size (the full size takes many hours on a small machine)."""
    from zsdist.raysession import ray_session
    from zsdist.run import launch
    from zsdist.search.driver import run_search
    from zsdist.workflow import Archs, Job, Workflow

    population = min(64, max(4, budget // 4))
    evolution = StrategySpec("evolution", population=population, tournament=max(2, population // 4))
    lines = [f"best #params with {budget} objective evaluations under a predicted-latency budget (median of 24 "
             f"random networks), {seeds} seeds; evolution population {evolution.population}, tournament "
             f"{evolution.tournament}"]
    with ray_session(announce=False):
        for space, dataset, device in LARGE:
            output = _folder(f"{space}-{device}")
            job = Job(space=space, datasets=(dataset,), archs=Archs("sample", n=24, seed=0), proxies=(),
                      latency=(device,), shard_size=4)
            calibration = Workflow(name=f"bench-search-{space}-budget", output=output, seed=0, jobs=(job,))
            launch(calibration, show_progress=False)
            limit = float(np.median([r["latency_ms"] for r in _rows(
                output, "latency", pads.field("run_id") == calibration.run_id)]))
            best: dict[str, list[float]] = {}
            for strategy in (evolution, RANDOM):
                best[strategy.name] = []
                for seed in range(seeds):
                    spec = SearchSpec(f"bench-search-{strategy.name}", output, 0, space, dataset, OBJECTIVE,
                                      (Constraint("latency", limit, device),), budget, strategy, search_seed=seed,
                                      shard_size=4)
                    done = run_search(spec, show_progress=False)
                    best[strategy.name].append(done.pick["score"] if done.pick else np.nan)
            evo, rnd = np.array(best["evolution"]), np.array(best["random"])
            lines.append(f"{space} / {dataset}, {device} ≤ {limit:.2f} ms: evolution {np.mean(evo) / 1e6:.3f} M "
                         f"(seeds {', '.join(f'{v / 1e6:.3f}' for v in evo)}), random {np.mean(rnd) / 1e6:.3f} M "
                         f"(seeds {', '.join(f'{v / 1e6:.3f}' for v in rnd)}); evolution ahead in "
                         f"{int(np.sum(evo > rnd))} of {seeds} seeds")
    return lines


def _scaling(quick: bool) -> list[str]:
    from zsdist.raysession import ray_session
    from zsdist.search.driver import run_search

    spec = SearchSpec("bench-search-scaling", "", 0, "nb201", "cifar10", OBJECTIVE, (), 24 if quick else 512,
                      StrategySpec("evolution", population=8, tournament=3), shard_size=2, parallel=4)
    lines = [f"one search (NB201 cifar10, #params, {spec.budget} evaluations, 2 architectures a task, 4 batches in "
             "flight) after a warm-up search on the same workers; rate between the first and the last observed batch"]
    rates, histories = {}, {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as warm, tempfile.TemporaryDirectory() as tmp, \
                ray_session(num_cpus=workers, announce=False):
            run_search(replace(spec, output=warm, budget=8, search_seed=1), show_progress=False)
            start = time.perf_counter()
            done = run_search(replace(spec, output=tmp), show_progress=False)
            wall = time.perf_counter() - start
            rows = sorted(_rows(tmp, "search", ~pads.field("final")), key=lambda r: r["step"])
        first = [r for r in rows if r["batch"] == 0]
        rates[workers] = (done.evaluations - len(first)) / (rows[-1]["elapsed_s"] - first[-1]["elapsed_s"])
        histories[workers] = [r["arch_id"] for r in rows]
        lines.append(f"{workers} worker{'s' if workers > 1 else ' '}: {wall:6.1f} s wall (preflight included), "
                     f"{rates[workers]:.2f} evaluations/s; the driver busy {done.driver_busy_s:.1f} s of it")
    lines.append(f"2 workers / 1 worker: {rates[2] / rates[1]:.2f}× evaluations/s; same history: "
                 f"{'yes' if histories[1] == histories[2] else 'NO'}")
    return lines


def run(quick: bool) -> str:
    import os

    lines = []
    for title, part in (("NB201 against exhaustive evaluation", _nb201), ("large spaces, predicted latency", _large),
                        ("Ray workers", _scaling)):
        start = time.perf_counter()
        lines += [f"== {title}", *part(quick), f"({time.perf_counter() - start:.0f} s; load average "
                                                  f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)", ""]
    return "\n".join(lines)
