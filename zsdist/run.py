"""Run a workflow on Ray: one task per shard, a bounded number in flight, finished shards skipped on rerun."""
from __future__ import annotations

import json
import os
import platform
import socket
import sys
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


def _run_shard(shard: Shard, output: str, version: str, devices: dict[str, dict]) -> tuple[int, int, str, dict]:
    """Compute and write one shard; a retry after a crash rewrites the same file, so no row is written twice.
    Also returns, per latency device, its rows and those predicted beyond the networks it was fitted on."""
    import torch

    torch.set_num_threads(max(1, int(shard.job.num_cpus)))
    if shard.table == "scores":
        rows, beyond = compute_shard(shard, version), {}
    else:
        from hw_models import extrapolations

        rows = compute_latency_shard(shard, devices)
        beyond = extrapolations(rows)
    Store(output).write(shard.table, rows, shard.key, run_id=shard.run_id, space=shard.job.space)
    return (len(shard.arch_ids), sum(r["status"] != "ok" for r in rows), ray.get_runtime_context().get_node_id(),
            beyond)


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


def _fitted_devices(store: Store, workflow: Workflow) -> dict[str, dict]:
    """The documents of the fitted devices (`zsdist fewshot`) the workflow names, each recorded beside the results
    as devices/<run_id>/<name>.json and handed to the workers. A device refitted after the run recorded it would mix
    two fits in one run's rows, so that is refused."""
    from hw_models import DEVICES

    documents = {}
    for name in sorted({d for job in workflow.jobs for d in job.latency}):
        document = DEVICES.get(name).document
        if document is None:
            continue
        relative = f"devices/{workflow.run_id}/{name}.json"
        recorded = store.read_text(relative)
        if recorded is None:
            store.write_text(relative, json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n")
        elif json.loads(recorded) != document:
            raise ZsdistError(f"device '{name}' was refitted after run {workflow.run_id} used it ({store.uri}/"
                              f"{relative}); fit it under a new name or give the run another name")
        documents[name] = document
    return documents


def _warn_extrapolated(beyond: dict[tuple[str, str], list]) -> None:
    """One warning per job and device whose predictor answered beyond the networks it was fitted on."""
    for (job, device), (rows, count, features) in sorted(beyond.items()):
        if count:
            print(f"warning: {job}: device '{device}' predicted {count} of {rows} latencies beyond the networks it "
                  f"was fitted on (out of range: {', '.join(sorted(features)[:5])}"
                  f"{', …' if len(features) > 5 else ''}); rows say \"extrapolated\" in details", file=sys.stderr)


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
    devices = _fitted_devices(store, workflow)
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
    devices_ref = ray.put(devices)
    beyond: dict[tuple[str, str], list] = {}
    queue = iter(todo)
    done = archs = failed = 0
    nodes: set[str] = set()
    broken: list[str] = []
    try:
        while True:
            for shard in queue:
                task = run_shard_task.options(**_resources(shard))
                in_flight[task.remote(shard, store.uri, version, devices_ref)] = shard
                if len(in_flight) >= limit:
                    break
            if not in_flight:
                break
            (ready,), _ = ray.wait(list(in_flight), num_returns=1)
            shard = in_flight.pop(ready)
            try:
                n_archs, n_failed, node, shard_beyond = ray.get(ready)
            except ray.exceptions.RayError as exc:  # an error outside any architecture, or retries exhausted
                broken.append(f"{shard.table} shard {shard.key}: {str(exc).strip().splitlines()[-1]}")
                continue
            done, archs, failed = done + 1, archs + n_archs, failed + n_failed
            nodes.add(node)
            for device, (rows, count, features) in shard_beyond.items():
                total = beyond.setdefault((f"job {shard.key.split('-')[0]} ({shard.job.space})", device),
                                          [0, 0, set()])
                total[0], total[1] = total[0] + rows, total[1] + count
                total[2].update(features)
            if progress:
                progress.update(n_archs, n_failed)
    finally:
        if progress:
            progress.close()
        if started_ray:
            ray.shutdown()
    _warn_extrapolated(beyond)
    if broken:
        raise ZsdistError(f"{len(broken)} shard(s) failed, the {done} finished ones are kept; relaunch to compute "
                          f"the rest. First: {broken[0]}")
    _record_run(store, workflow, finished=True)
    return LaunchSummary(**summary, shards_done=done, archs_done=archs, failed_rows=failed, nodes=tuple(sorted(nodes)))
