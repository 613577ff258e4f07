"""Architectures per second in-process vs on Ray (1 and 2 workers, several shard sizes), as ratios."""
from __future__ import annotations

import tempfile
import time
from typing import cast

import ray
import torch

from zsdist.plan import Shard
from zsdist.raysession import ray_session
from zsdist.run import launch
from zsdist.shard import compute_shard
from zsdist.store import Store
from zsdist.version import code_version
from zsdist.workflow import Archs, Job, Workflow

PROXIES = ("params", "flops", "synflow", "naswot")
DEFAULT_SHARD = cast(int, Job.__dataclass_fields__["shard_size"].default)


def _workflow(n: int, shard_size: int, output: str) -> Workflow:
    job = Job(space="nb201", datasets=("cifar10",), archs=Archs("sample", n=n, seed=0), proxies=PROXIES,
              batch_size=64, shard_size=shard_size)
    return Workflow(name=f"bench-scaling-{shard_size}", output=output, seed=0, jobs=(job,))


def _in_process(n: int, output: str) -> float:
    """The baseline: one process, one thread, the same rows computed and written as one Parquet file."""
    wf = _workflow(n, n, output)
    shard = Shard(wf.run_id, "baseline", wf.jobs[0], tuple(wf.jobs[0].arch_ids()), wf.seed)
    torch.set_num_threads(1)
    start = time.perf_counter()
    Store(output).write("scores", compute_shard(shard, code_version()), shard.key, run_id=wf.run_id, space="nb201")
    return time.perf_counter() - start


@ray.remote(num_cpus=1)
def _warm() -> None:
    """Import torch and zsdist and load the batch in a worker, so timings exclude worker start-up."""
    from zsdist.data import load_batch

    load_batch("cifar10", 64, 0)
    time.sleep(0.5)


def run(quick: bool) -> str:
    n = 16 if quick else 64
    sizes = (1, 8, n) if quick else (1, 8, DEFAULT_SHARD, 64)
    with tempfile.TemporaryDirectory() as tmp:
        _in_process(2, f"{tmp}/warm")  # first-call costs (imports, data load) belong to neither side
        base = _in_process(n, f"{tmp}/base")
        with ray_session(num_cpus=2, announce=False):  # a private Ray, never one the machine already runs
            ray.get([_warm.remote() for _ in range(2)])
            lines = [f"NB201 cifar10, {n} cells, proxies {', '.join(PROXIES)}, batch 64, one thread per worker",
                     f"{'setting':28s} {'s/arch':>8s} {'arch/s':>8s} {'× in-process':>13s}",
                     f"{'in-process loop':28s} {base / n:8.3f} {n / base:8.2f} {1.0:13.2f}"]
            for workers in (1, 2):
                for size in sizes:
                    start = time.perf_counter()
                    launch(_workflow(n, size, f"{tmp}/w{workers}-s{size}"), max_in_flight=workers, show_progress=False)
                    took = time.perf_counter() - start
                    label = f"Ray, {workers} worker{'s' if workers > 1 else ''}, shard {size}"
                    lines.append(f"{label:28s} {took / n:8.3f} {n / took:8.2f} {base / took:13.2f}")
                    if workers == 1 and size == DEFAULT_SHARD:
                        overhead = took / base - 1
    if not quick:
        lines.append(f"Ray overhead per architecture at the default shard size ({DEFAULT_SHARD}), 1 worker: "
                     f"{overhead:+.1%} of the in-process time")
    return "\n".join(lines)
