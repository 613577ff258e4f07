"""Run a workflow on Ray: one task per shard, a bounded number in flight, finished shards skipped on rerun."""
from __future__ import annotations

import collections
import json
import os
import platform
import socket
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import ray

from zsdist.allocator import retain_freed_memory
from zsdist.errors import RunIncomplete, ZsdistError
from zsdist.lease import TTL_S, Leases
from zsdist.plan import Shard, plan
from zsdist.preflight import RESOURCE_WAIT_S, check_inputs, check_resources
from zsdist.progress import Progress
from zsdist.raysession import ray_session
from zsdist.shard import compute_latency_shard, compute_shard
from zsdist.store import Problem, Store
from zsdist.version import code_version
from zsdist.workflow import Workflow


@dataclass(frozen=True)
class LaunchSummary:
    run_id: str
    output: str
    shards_total: int
    shards_skipped: int  # finished before this launch, or by another launch while this one waited
    shards_done: int
    archs_done: int  # each architecture of a job once, whatever tables it has rows in
    evaluations: int  # rows written: arch × dataset × proxy, and arch × dataset × latency device
    failed_rows: int
    nodes: tuple[str, ...] = ()  # Ray node ids that computed shards


@dataclass(frozen=True)
class ShardDone:
    rows: int
    failed_rows: int
    node: str
    warnings: tuple[str, ...]  # distinct warnings the shard raised, printed once per launch by the driver


def _run_shard(shard: Shard, output: str, version: str, devices: dict[str, dict]) -> ShardDone:
    """Compute and write one shard; a retry after a crash rewrites the same file, so no row is written twice.
    `devices`: the documents of the fitted devices the run names (`fitted_devices`)."""
    import torch

    torch.set_num_threads(max(1, int(shard.job.num_cpus)))
    retain_freed_memory()  # feature maps reused pass after pass, not faulted in again (zsdist.allocator)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = compute_shard(shard, version) if shard.table == "scores" else compute_latency_shard(shard, devices)
    Store(output).write(shard.table, rows, shard.key, run_id=shard.run_id, space=shard.job.space)
    return ShardDone(len(rows), sum(r["status"] != "ok" for r in rows),
                     ray.get_runtime_context().get_node_id(), tuple(sorted({str(w.message) for w in caught})))


# Ray retries a shard whose worker process or node died; application errors are rows, not task failures.
run_shard_task = ray.remote(max_retries=5)(_run_shard)


def _host_info() -> str:
    import torch

    return json.dumps({"hostname": socket.gethostname(), "platform": platform.platform(),
                       "python": platform.python_version(), "torch": torch.__version__, "ray": ray.__version__,
                       "cpus": os.cpu_count()}, sort_keys=True)


class _Recorded(Protocol):
    """What a run's row records: a workflow or a search spec."""

    @property
    def text(self) -> str: ...
    @property
    def config_hash(self) -> str: ...
    @property
    def run_id(self) -> str: ...


def record_run(store: Store, workflow: _Recorded, finished: bool) -> None:
    """One row per run: `started` is kept from the first launch, `finished` is set once every shard is done."""
    now = datetime.now(timezone.utc)
    previous = store.read("runs", "run", run_id=workflow.run_id)
    started = previous.column("started")[0].as_py() if previous is not None else now
    store.write("runs", [{"workflow": workflow.text, "config_hash": workflow.config_hash,
                          "code_version": code_version(), "started": started,
                          "finished": now if finished else None, "host": _host_info()}],
                "run", run_id=workflow.run_id)


def resources(shard: Shard) -> dict[str, float]:
    """Proxy shards take the job's CPUs/GPU fraction; a latency shard with a measured device takes the whole
    device (every CPU of the smallest node, or one whole GPU) so that nothing else runs beside its timings."""
    from zsdist.hardware import DEVICES

    job = shard.job
    if shard.table == "scores":
        return {"num_cpus": job.num_cpus, "num_gpus": job.num_gpus}
    measured = {DEVICES.get(d).name for d in job.latency if DEVICES.get(d).source == "measured"}
    if not measured:
        return {"num_cpus": 1, "num_gpus": 0}
    whole_node = min(n["Resources"].get("CPU", 1) for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU"))
    return {"num_cpus": whole_node, "num_gpus": 1 if "cuda" in measured else 0}


def fitted_devices(store: Store, workflow: Workflow) -> dict[str, dict]:
    """The documents of the fitted devices (`zsdist fewshot`) the workflow names, for its workers, which may not
    see the user's folder. A device refitted after the run recorded it (`_record_devices`) would mix two fits in
    one run's rows: refused, before anything is written."""
    from zsdist.hardware import DEVICES

    documents = {}
    for name in sorted({d for job in workflow.jobs for d in job.latency}):
        document = DEVICES.get(name).document
        if document is None:
            continue
        recorded = store.read_text(_device_file(workflow.run_id, name))
        if recorded is not None and json.loads(recorded) != document:
            raise ZsdistError(f"device '{name}' was refitted after run {workflow.run_id} used it ({store.uri}/"
                              f"{_device_file(workflow.run_id, name)}); fit it under a new name or give the run "
                              f"another name")
        documents[name] = document
    return documents


def _device_file(run_id: str, name: str) -> str:
    return f"devices/{run_id}/{name}.json"


def _record_devices(store: Store, run_id: str, documents: dict[str, dict]) -> None:
    """Each fitted device the run uses, with the networks it was fitted on, beside the run's results."""
    for name, document in documents.items():
        if store.read_text(_device_file(run_id, name)) is None:
            store.write_text(_device_file(run_id, name), json.dumps(document, sort_keys=True, separators=(",", ":")))


def _pending(store: Store, shards: list[Shard]) -> list[Shard]:
    """Shards without a complete file; a broken file (unreadable, or short of rows) is moved aside, reported in
    one line, and its shard computed again."""
    todo = []
    for shard in shards:
        problem = _problem(store, shard)
        if problem is None:
            continue
        if not problem.missing:  # a broken compacted file is set aside once; its other shards are then missing
            print(f"zsdist: {shard.table} shard {shard.key} is broken ({problem.reason}): moved {problem.path} to "
                  f"{store.set_aside(problem.path)}, computing what it held again", file=sys.stderr)
        todo.append(shard)
    return todo


def _problem(store: Store, shard: Shard) -> Problem | None:
    return store.shard_problem(shard.table, shard.key, shard.rows, run_id=shard.run_id, space=shard.job.space)


@dataclass
class _Dispatch:
    """The driver loop: claim a shard's lease, run it on Ray, renew leases while shards run, and wait for shards
    that another live launch holds (taking them over if their lease expires)."""

    store: Store
    leases: Leases
    limit: int
    version: str
    progress: Progress | None
    devices: ray.ObjectRef  # the fitted devices' documents (`fitted_devices`), for every latency shard
    done: int = 0
    archs: int = 0
    evaluations: int = 0
    failed: int = 0
    skipped: int = 0
    nodes: set[str] = field(default_factory=set)
    broken: list[str] = field(default_factory=list)
    warned: set[str] = field(default_factory=set)
    told_wait: bool = False

    def finished(self, shard: Shard) -> bool:
        return _problem(self.store, shard) is None

    def run(self, todo: list[Shard]) -> None:
        queue = collections.deque(todo)
        held: list[Shard] = []  # claimed by another live launch when we tried; retried once the queue is empty
        in_flight: dict[ray.ObjectRef, Shard] = {}
        tick = min(5.0, self.leases.ttl_s / 3)
        last_renew = last_retry = time.monotonic()
        while queue or held or in_flight:
            while queue and len(in_flight) < self.limit:
                self._start(queue.popleft(), in_flight, held)
            if in_flight:
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=tick)
                for ref in ready:
                    self._collect(ref, in_flight.pop(ref))
            elif held:  # all that is left is held by other launches
                self._announce(held)
                time.sleep(tick)
            if held and not queue and len(in_flight) < self.limit and time.monotonic() - last_retry >= tick:
                retry, held[:] = list(held), []
                for shard in retry:
                    self._start(shard, in_flight, held)
                last_retry = time.monotonic()
            if time.monotonic() - last_renew >= tick:
                self.leases.renew()
                last_renew = time.monotonic()

    def _start(self, shard: Shard, in_flight: dict, held: list[Shard]) -> None:
        """Dispatch `shard` if its lease is ours; skip it if another launch finished it meanwhile."""
        name = f"{shard.table}-{shard.key}"
        if not self.leases.claim(name):
            held.append(shard)
        elif self.finished(shard):  # another launch finished it since we looked
            self.leases.release(name)
            self._skip()
        else:
            ref = run_shard_task.options(**resources(shard)).remote(shard, self.store.uri, self.version, self.devices)
            in_flight[ref] = shard

    def _announce(self, held: list[Shard]) -> None:
        if not self.told_wait:
            print(f"zsdist: {len(held)} shard(s) are being computed by another launch into this folder; waiting for "
                  f"them (the shards of a launch that died are taken over {self.leases.ttl_s:.0f} s after it "
                  f"stopped renewing its leases)", file=sys.stderr)
            self.told_wait = True

    def _skip(self) -> None:
        self.skipped += 1
        if self.progress:
            self.progress.update(0, 0)

    def _collect(self, ref: ray.ObjectRef, shard: Shard) -> None:
        try:
            result: ShardDone = ray.get(ref)
        except ray.exceptions.RayError as exc:  # an error outside any architecture, or retries exhausted
            self.broken.append(f"{shard.table} shard {shard.key}: {str(exc).strip().splitlines()[-1]}")
        else:
            self.done, self.archs, self.failed = self.done + 1, self.archs + shard.counted_archs, \
                self.failed + result.failed_rows
            self.evaluations += result.rows
            self.nodes.add(result.node)
            for message in result.warnings:
                if message not in self.warned:
                    self.warned.add(message)
                    print(f"warning: {message}", file=sys.stderr)
            if self.progress:
                self.progress.update(shard.counted_archs, result.failed_rows)
        finally:
            self.leases.release(f"{shard.table}-{shard.key}")


def _ensure_truth(store: Store, workflow: Workflow) -> None:
    """Load each space's ground truth into the results when it is available, so the correlation table is not
    empty; otherwise say what to run."""
    from zsdist.truth import ensure_truth

    for space in dict.fromkeys(job.space for job in workflow.jobs):
        hint = ensure_truth(store, space)
        if hint:
            print(f"zsdist: {hint}", file=sys.stderr)


def _finish(store: Store, run_id: str, shards: list[Shard], computed: bool, compact: bool) -> None:
    """Store the finished run's summary (population-level proxies, correlations, counts) once, so that no query
    recomputes it, and with `compact` merge its shard files into one file per table and partition."""
    from zsdist.analysis.summary import ensure_summary, finalize_run
    from zsdist.compaction import compact_run

    if computed:
        finalize_run(store, run_id)
    else:
        ensure_summary(store, run_id)
    if compact:
        compact_run(store, run_id, shards)


def launch(workflow: Workflow, output: str | None = None, address: str | None = None,
           max_in_flight: int | None = None, show_progress: bool = True, lease_s: float = TTL_S,
           compact: bool = False) -> LaunchSummary:
    """Compute every missing shard of `workflow` (on a private Ray unless `address` names a cluster); `compact`
    merges the finished run's shard files (zsdist.compaction)."""
    store = Store(output or workflow.output)
    shards = list(plan(workflow))
    todo = _pending(store, shards)
    summary: dict[str, Any] = dict(run_id=workflow.run_id, output=store.uri, shards_total=len(shards))
    if todo:
        check_inputs(workflow)  # before anything is written: a user mistake leaves the folder as it was
    devices = fitted_devices(store, workflow)
    store.check_writable()
    _record_devices(store, workflow.run_id, devices)
    record_run(store, workflow, finished=not todo)
    if not todo:
        _ensure_truth(store, workflow)
        _finish(store, workflow.run_id, shards, computed=False, compact=compact)
        return LaunchSummary(**summary, shards_skipped=len(shards), shards_done=0, archs_done=0, evaluations=0,
                             failed_rows=0)
    if show_progress:
        print(f"zsdist: run {workflow.run_id}: {len(todo)} of {len(shards)} shards to compute → {store.uri}",
              file=sys.stderr)
    with ray_session(address):
        check_resources(((s, resources(s)) for s in todo), wait_s=RESOURCE_WAIT_S if address else 0.0)
        limit = max_in_flight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
        progress = Progress(len(todo), sum(s.counted_archs for s in todo)) if show_progress else None
        work = _Dispatch(store, Leases(store, workflow.run_id, lease_s), limit, code_version(), progress,
                         ray.put(devices))
        try:
            work.run(todo)
        finally:
            work.leases.release_all()
            if progress:
                progress.close()
    if work.broken:
        raise RunIncomplete(f"{len(work.broken)} shard(s) failed, the {work.done} finished ones are kept; "
                            f"relaunch to compute the rest. First: {work.broken[0]}")
    record_run(store, workflow, finished=True)
    _ensure_truth(store, workflow)
    _finish(store, workflow.run_id, shards, computed=True, compact=compact)
    return LaunchSummary(**summary, shards_skipped=len(shards) - len(todo) + work.skipped, shards_done=work.done,
                         archs_done=work.archs, evaluations=work.evaluations, failed_rows=work.failed,
                         nodes=tuple(sorted(work.nodes)))
