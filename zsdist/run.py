"""Run a workflow on Ray: one task per shard, a bounded number in flight, finished shards skipped on rerun."""
from __future__ import annotations

import json
import os
import platform
import socket
from dataclasses import dataclass
from datetime import datetime, timezone

import ray

from zsdist.errors import ZsdistError
from zsdist.plan import Shard, plan
from zsdist.progress import Progress
from zsdist.settings import DATA_ENV
from zsdist.shard import compute_latency_shard, compute_shard
from zsdist.store import Store
from zsdist.version import code_version
from zsdist.workflow import Workflow


@dataclass(frozen=True)
class LaunchSummary:
    run_id: str
    output: str
    shards_total: int
    shards_skipped: int
    shards_done: int
    archs_done: int
    failed_rows: int
    nodes: tuple[str, ...] = ()  # Ray node ids that computed shards


def _run_shard(shard: Shard, output: str, version: str) -> tuple[int, int, str]:
    """Compute and write one shard; a retry after a crash rewrites the same file, so no row is written twice."""
    import torch

    torch.set_num_threads(max(1, int(shard.job.num_cpus)))
    rows = compute_shard(shard, version) if shard.table == "scores" else compute_latency_shard(shard)
    Store(output).write(shard.table, rows, shard.key, run_id=shard.run_id, space=shard.job.space)
    return len(shard.arch_ids), sum(r["status"] != "ok" for r in rows), ray.get_runtime_context().get_node_id()


# Ray retries a shard whose worker process or node died; application errors are rows, not task failures.
run_shard_task = ray.remote(max_retries=5)(_run_shard)


def _host_info() -> str:
    import torch

    return json.dumps({"hostname": socket.gethostname(), "platform": platform.platform(),
                       "python": platform.python_version(), "torch": torch.__version__, "ray": ray.__version__,
                       "cpus": os.cpu_count()}, sort_keys=True)


def _record_run(store: Store, workflow: Workflow, finished: bool) -> None:
    """One row per run: `started` is kept from the first launch, `finished` is set once every shard is done."""
    now = datetime.now(timezone.utc)
    previous = store.read("runs", "run", run_id=workflow.run_id)
    started = previous.column("started")[0].as_py() if previous is not None else now
    store.write("runs", [{"workflow": workflow.text, "config_hash": workflow.config_hash,
                          "code_version": code_version(), "started": started,
                          "finished": now if finished else None, "host": _host_info()}],
                "run", run_id=workflow.run_id)


def _resources(shard: Shard) -> dict[str, float]:
    """Proxy shards take the job's CPUs/GPU fraction; a latency shard with a measured device takes the whole
    device (every CPU of the smallest node, or one whole GPU) so that nothing else runs beside its timings."""
    from hw_models import DEVICES

    job = shard.job
    if shard.table == "scores":
        return {"num_cpus": job.num_cpus, "num_gpus": job.num_gpus}
    measured = {DEVICES.get(d).name for d in job.latency if DEVICES.get(d).source == "measured"}
    if not measured:
        return {"num_cpus": 1, "num_gpus": 0}
    whole_node = min(n["Resources"].get("CPU", 1) for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU"))
    return {"num_cpus": whole_node, "num_gpus": 1 if "cuda" in measured else 0}


def _init_ray(address: str | None) -> bool:
    """Connect to `address` or start an embedded local Ray; returns whether this call started it.

    Only the embedded Ray gets this process's data setting: a cluster's nodes (or its Ray Job) bring their own.
    """
    if ray.is_initialized():
        return False
    env = {DATA_ENV: os.path.abspath(os.environ[DATA_ENV])} if os.environ.get(DATA_ENV) and not address else {}
    ray.init(address=address, include_dashboard=False, log_to_driver=True, logging_level="WARNING",
             runtime_env={"env_vars": env} if env else None)
    return True


def launch(workflow: Workflow, output: str | None = None, address: str | None = None,
           max_in_flight: int | None = None, show_progress: bool = True) -> LaunchSummary:
    store = Store(output or workflow.output)
    store.check_writable()
    shards = list(plan(workflow))
    todo = [s for s in shards if not store.exists(store.path(s.table, s.key, run_id=s.run_id, space=s.job.space))]
    _record_run(store, workflow, finished=not todo)
    summary = dict(run_id=workflow.run_id, output=store.uri, shards_total=len(shards),
                   shards_skipped=len(shards) - len(todo))
    if not todo:
        return LaunchSummary(**summary, shards_done=0, archs_done=0, failed_rows=0)

    started_ray = _init_ray(address)
    progress = Progress(len(todo), sum(len(s.arch_ids) for s in todo)) if show_progress else None
    limit = max_in_flight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    version = code_version()
    in_flight: dict[ray.ObjectRef, Shard] = {}
    queue = iter(todo)
    done = archs = failed = 0
    nodes: set[str] = set()
    broken: list[str] = []
    try:
        while True:
            for shard in queue:
                in_flight[run_shard_task.options(**_resources(shard)).remote(shard, store.uri, version)] = shard
                if len(in_flight) >= limit:
                    break
            if not in_flight:
                break
            (ready,), _ = ray.wait(list(in_flight), num_returns=1)
            shard = in_flight.pop(ready)
            try:
                n_archs, n_failed, node = ray.get(ready)
            except ray.exceptions.RayError as exc:  # an error outside any architecture, or retries exhausted
                broken.append(f"{shard.table} shard {shard.key}: {str(exc).strip().splitlines()[-1]}")
                continue
            done, archs, failed = done + 1, archs + n_archs, failed + n_failed
            nodes.add(node)
            if progress:
                progress.update(n_archs, n_failed)
    finally:
        if progress:
            progress.close()
        if started_ray:
            ray.shutdown()
    if broken:
        raise ZsdistError(f"{len(broken)} shard(s) failed, the {done} finished ones are kept; relaunch to compute "
                          f"the rest. First: {broken[0]}")
    _record_run(store, workflow, finished=True)
    return LaunchSummary(**summary, shards_done=done, archs_done=archs, failed_rows=failed, nodes=tuple(sorted(nodes)))
