"""What a launch checks before it dispatches anything, so that an impossible job fails in seconds with one line
instead of hanging on resources the cluster cannot give or writing a run's worth of error rows.

Inputs are checked on the driver before Ray starts: every job's image batches load, and every table or predicted
latency device answers for the job's first architecture. Resources are checked once Ray is up: some node must
be able to hold each shard task. A private Ray has all the nodes it will ever have, so a misfit fails at once;
on an existing cluster an autoscaler may still add nodes, so the check waits up to `wait_s` for one that fits.
"""
from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Iterable, Sequence

from zsdist.errors import ZsdistError
from zsdist.plan import Shard
from zsdist.workflow import Workflow

RESOURCE_WAIT_S = 300.0


def check_inputs(workflow: Workflow) -> None:
    """Load each job's batches and ask each non-measured latency device once, on the driver."""
    from zsdist.data import load_batch
    from zsdist.hardware import DEVICES, latency_rows
    from zsdist.spaces import create_space

    for index, job in enumerate(workflow.jobs):
        sources = dict(job.data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a short batch is reported by the shards that use it
            for dataset in job.datasets if job.proxies else ():
                load_batch(dataset, job.batch_size, workflow.seed, sources.get(dataset))
        answered = [d for d in job.latency if DEVICES.get(d).source != "measured"]
        if answered:
            space = create_space(job.space)
            arch_id = job.arch_ids()[0]
            arch = space.arch_str(arch_id)
            dataset = job.datasets[0]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. an extrapolating predictor: the shards report it once
                rows = latency_rows(space.name, arch_id, arch, dataset, lambda: space.build(arch_id, dataset),
                                    answered, job.latency_batch_size)
            for row in rows:
                if row["status"] != "ok":
                    raise ZsdistError(f"jobs[{index}]: latency device '{row['device']}' cannot answer for {arch} "
                                      f"({row['error']})")


def _fits(node: dict, need: dict[str, float]) -> bool:
    have = node["Resources"]
    return (have.get("CPU", 0) >= need.get("num_cpus", 0) - 1e-9
            and have.get("GPU", 0) >= need.get("num_gpus", 0) - 1e-9)


def _describe(nodes: Sequence[dict]) -> str:
    if not nodes:
        return "no live nodes"
    sizes = sorted({(n["Resources"].get("CPU", 0), n["Resources"].get("GPU", 0)) for n in nodes}, reverse=True)
    return "nodes of " + ", ".join(f"{cpu:g} CPUs + {gpu:g} GPUs" for cpu, gpu in sizes)


def check_resources(demands: Iterable[tuple[Shard, dict[str, float]]], wait_s: float) -> None:
    """Every shard's resource request fits some live node (waiting up to wait_s for one to join)."""
    import ray

    needs = {tuple(sorted(need.items())): (shard, need) for shard, need in demands}
    deadline = time.monotonic() + wait_s
    waiting = False
    while True:
        nodes = [n for n in ray.nodes() if n["Alive"]]
        missing = [(shard, need) for shard, need in needs.values() if not any(_fits(n, need) for n in nodes)]
        if not missing:
            return
        shard, need = missing[0]
        asked = f"{need.get('num_cpus', 0):g} CPUs and {need.get('num_gpus', 0):g} GPUs"
        if time.monotonic() >= deadline:
            raise ZsdistError(f"the {shard.table} shards of jobs[{shard.job_index}] ({shard.job.space}) ask for "
                              f"{asked} each, but the cluster has {_describe(nodes)}; lower num_cpus / num_gpus "
                              f"or add such a node")
        if not waiting:
            print(f"zsdist: waiting up to {wait_s:.0f} s for a node with {asked} (the cluster has "
                  f"{_describe(nodes)})", file=sys.stderr)
            waiting = True
        time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
