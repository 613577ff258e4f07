"""`zsdist search`: the loop (zsdist.search.loop) evaluated by the same shard tasks as `launch`, on Ray.

Each batch of candidates goes through two stages: its costs (one latency shard, one shard of the cost proxies),
then, for the feasible ones, the proxies of their rung (one shard per rung). Every stage reads what is already
known first (zsdist.search.rows): rows of this run are used as they are, rows of earlier runs are copied into this
run; only the rest is computed, by `run_shard_task`, several batches in flight. Observed batches are checkpointed
as files of the `search` table, one per batch; a rerun replays the loop (its proposals are a function of the
settings and the history), checks each replayed batch against its checkpoint, and finds the evaluations in its own
rows, so a killed driver resumes without repeating any. Ray starts only when something has to be computed.
"""
from __future__ import annotations

import contextlib
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from zsdist.errors import RunIncomplete, ZsdistError
from zsdist.plan import Shard
from zsdist.search.checkpoint import Checkpoint
from zsdist.search.loop import Candidate, Outcome, SearchLoop, drive, feasible
from zsdist.search.rows import KnownRows, Settings
from zsdist.search.spec import SearchSpec
from zsdist.search.strategies import create_strategy
from zsdist.spaces import create_space
from zsdist.store import Store
from zsdist.workflow import Archs, Job, Workflow

PROGRESS_EVERY_S = 15.0


@dataclass(frozen=True)
class SearchSummary:
    run_id: str
    output: str
    evaluations: int
    candidates: int
    stages: dict[str, int]  # observed candidates by stage: evaluated, infeasible, screened, failed
    reused: int  # candidates whose rows all came from earlier runs
    computed_shards: int
    pick: dict | None  # the final row of the pick (arch, score, costs)
    seconds: float
    driver_busy_s: float  # the driver's own time in the loop (not waiting for tasks): it must not serialise it


def _job(spec: SearchSpec, arch_ids: Iterable[int], proxies: Iterable[str] = (),
         devices: Iterable[str] = ()) -> Job:
    ids = tuple(arch_ids)
    return Job(space=spec.space, datasets=(spec.dataset,), archs=Archs("ids", ids=ids), proxies=tuple(proxies),
               batch_size=spec.batch_size, shard_size=max(1, len(ids)), latency=tuple(devices), device=spec.device,
               data=((spec.dataset, spec.data),) if spec.data else (), num_cpus=spec.num_cpus,
               num_gpus=spec.num_gpus, arch_timeout_s=spec.arch_timeout_s,
               latency_batch_size=spec.latency_batch_size)


def _all_proxies(spec: SearchSpec) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*spec.cost_proxies, *(p for rung in spec.ladder for p in rung.proxies)]))


def check_definitions(spec: SearchSpec) -> None:
    """Evaluate every proxy the search needs on one architecture of the space, on the driver, with two images:
    a proxy whose definition does not exist there (naswot without ReLUs, TF-TAS without attention) stops the
    search before it starts."""
    from zsdist.data import load_batch
    from zsdist.proxies import resolve_proxies
    from zsdist.proxies.evaluate import evaluate

    space = create_space(spec.space)
    arch_id = space.sample(1, spec.search_seed)[0]
    batch = load_batch(spec.dataset, min(2, spec.batch_size), spec.seed, spec.data or None)
    results = evaluate(lambda: space.build(arch_id, spec.dataset), batch, resolve_proxies(_all_proxies(spec)),
                       spec.seed)
    for result in results:
        if result.status == "error":
            raise ZsdistError(f"proxy '{result.proxy}' is not defined on space '{spec.space}' (on "
                              f"{space.arch_str(arch_id)}: {result.error}); choose another objective or space")


def _settings(spec: SearchSpec) -> Settings:
    from zsdist.data import load_batch
    from zsdist.proxies import get_proxy
    from zsdist.shard import device_label, row_options

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short batch is said once by the shards
        batch = load_batch(spec.dataset, spec.batch_size, spec.seed, spec.data or None).size
    return Settings(spec.space, spec.dataset, batch, spec.seed, device_label(spec.device),
                    tuple((p, row_options(get_proxy(p))) for p in _all_proxies(spec)), spec.devices,
                    reuse=not spec.data)


@dataclass
class _Batch:
    """One batch's way through its stages; `waiting` counts its shards still running."""

    index: int
    candidates: list[Candidate]
    stage: str = "costs"  # costs → values → collect → done
    waiting: int = 0
    reused: dict[int, bool] = field(default_factory=dict)  # arch → every row so far came from an earlier run


class RayEvaluator:
    """Evaluates batches with `run_shard_task`; starts a Ray session the first time a shard must be computed."""

    def __init__(self, spec: SearchSpec, store: Store, known: KnownRows, address: str | None,
                 num_cpus: int | None, checkpoint: Checkpoint, devices: dict[str, dict]) -> None:
        from zsdist.version import code_version

        self.spec, self.store, self.known, self.checkpoint = spec, store, known, checkpoint
        self.address, self.num_cpus = address, num_cpus
        self.devices = devices  # the fitted devices' documents, for workers that may not see the user's folder
        self.version = code_version()
        self.batches: dict[int, _Batch] = {}
        self.tasks: dict = {}  # ObjectRef → (batch index, table, shard)
        self.session = contextlib.ExitStack()
        self.ray_started = False
        self.computed = 0  # shards started
        self.waited_s = 0.0  # time spent waiting for tasks
        self.copied: set[tuple[str, tuple[int, str]]] = set()  # rows this driver copied from earlier runs
        self.resources_checked: set[tuple] = set()

    # ---- the evaluator protocol ----------------------------------------------------------------------------

    def start(self, index: int, batch: list[Candidate]) -> None:
        self.checkpoint.verify(index, batch)
        work = _Batch(index, batch, reused={c.arch_id: True for c in batch})
        self.batches[index] = work
        self._advance(work)

    def finished(self) -> Iterable[tuple[int, list[Outcome]]]:
        ready = [i for i, b in self.batches.items() if b.stage == "done"]
        if not ready and self.tasks:
            import ray

            waiting = time.monotonic()
            done, _ = ray.wait(list(self.tasks), num_returns=1, timeout=5.0)
            self.waited_s += time.monotonic() - waiting
            for ref in done:
                index, table, shard = self.tasks.pop(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.RayError as exc:
                    raise RunIncomplete(f"{table} shard {shard.key} of search {self.spec.run_id} failed; the "
                                        f"finished batches are kept, run the search again to resume: "
                                        f"{str(exc).strip().splitlines()[-1]}") from None
                self._read_shard(table, shard)
                work = self.batches[index]
                work.waiting -= 1
                if work.waiting == 0:
                    self._advance(work)
            ready = [i for i, b in self.batches.items() if b.stage == "done"]
        return [(i, self._outcomes(self.batches.pop(i))) for i in ready]

    def close(self) -> None:
        self.session.close()

    # ---- stages ----------------------------------------------------------------------------------------------

    def _advance(self, work: _Batch) -> None:
        """Move a batch on as far as known rows allow, starting shards for what is missing; a stage with shards
        running waits, and `finished` calls this again when its last shard is read."""
        while work.waiting == 0 and work.stage != "done":
            if work.stage == "costs":
                fresh = [c.arch_id for c in work.candidates if c.rung == 0]
                self._need(work, "latency", fresh, self.spec.devices, "costs")
                self._need(work, "scores", fresh, self.spec.cost_proxies, "costs")
                work.stage = "values"
            elif work.stage == "values":
                for rung, objective in enumerate(self.spec.ladder):
                    archs = [c.arch_id for c in work.candidates if c.rung == rung and self._feasible(c)]
                    self._need(work, "scores", archs, objective.proxies, f"r{rung}")
                work.stage = "collect"
            else:
                work.stage = "done"

    def _need(self, work: _Batch, table: str, archs: list[int], names: Iterable[str], stage: str) -> None:
        """Make every (arch, name) row of `table` this run's own: keep own rows, copy earlier runs' rows, and start
        one shard per group of architectures missing the same names."""
        names = tuple(names)
        copies: list[dict] = []
        missing: dict[tuple[str, ...], list[int]] = {}
        for arch_id in archs:
            lacking = []
            for name in names:
                key = (arch_id, name)
                row, own = self.known.get(table, key)
                if row is None:
                    lacking.append(name)
                elif not own:
                    copies.append(row)
                    self.copied.add((table, key))
                if row is None or (own and (table, key) not in self.copied):
                    work.reused[arch_id] = False  # computed now, or held by this run before this driver
            if lacking:
                missing.setdefault(tuple(lacking), []).append(arch_id)
        if copies:
            self.store.write(table, copies, f"b{work.index:05d}-{stage}-reused", run_id=self.spec.run_id,
                             space=self.spec.space)
            self.known.add_own(table, copies)
        for n, (group, ids) in enumerate(sorted(missing.items())):
            self._dispatch(work, table, f"b{work.index:05d}-{stage}-{n}", ids, group)

    def _dispatch(self, work: _Batch, table: str, key: str, ids: list[int], names: tuple[str, ...]) -> None:
        job = _job(self.spec, ids, names if table == "scores" else (), names if table == "latency" else ())
        shard = Shard(self.spec.run_id, key, job, tuple(ids), self.spec.seed, table)
        path = self.store.path(table, key, run_id=self.spec.run_id, space=self.spec.space)
        if self.store.problem(path, shard.rows) is None:  # written by a task of a driver that was killed
            self._read_shard(table, shard)
            return

        from zsdist.run import resources, run_shard_task

        self._ray()
        need = resources(shard)
        shape = (table, tuple(sorted(need.items())))
        if shape not in self.resources_checked:
            from zsdist.preflight import RESOURCE_WAIT_S, check_resources

            check_resources([(shard, need)], wait_s=RESOURCE_WAIT_S if self.address else 0.0)
            self.resources_checked.add(shape)
        task = run_shard_task.options(**need).remote(shard, self.store.uri, self.version, self.devices)
        self.tasks[task] = (work.index, table, shard)
        work.waiting += 1
        self.computed += 1

    def _ray(self) -> None:
        if not self.ray_started:
            from zsdist.raysession import ray_session

            self.session.enter_context(ray_session(self.address, self.num_cpus))
            self.ray_started = True

    def _read_shard(self, table: str, shard: Shard) -> None:
        data = self.store.read(table, shard.key, run_id=self.spec.run_id, space=self.spec.space)
        assert data is not None  # the caller found the file whole
        self.known.add_own(table, data.to_pylist())

    # ---- outcomes --------------------------------------------------------------------------------------------

    def _costs(self, arch_id: int) -> tuple[float | None, ...]:
        costs = []
        for constraint in self.spec.constraints:
            if constraint.cost == "latency":
                row, _ = self.known.get("latency", (arch_id, constraint.device))
                costs.append(row["latency_ms"] if row and row["status"] == "ok" else None)
            else:
                row, _ = self.known.get("scores", (arch_id, constraint.cost))
                costs.append(row["value"] if row and row["status"] == "ok" else None)
        return tuple(costs)

    def _feasible(self, candidate: Candidate) -> bool:
        return candidate.rung > 0 or feasible(self._costs(candidate.arch_id), self.spec)

    def _outcomes(self, work: _Batch) -> list[Outcome]:
        outcomes = []
        for c in work.candidates:
            costs = self._costs(c.arch_id) if c.rung == 0 else ()
            if not self._feasible(c):
                outcomes.append(Outcome(c, costs, None, reused=work.reused[c.arch_id]))
                continue
            rows = [self._score_row(c.arch_id, p) for p in self.spec.ladder[c.rung].proxies]
            values = tuple(r["value"] if r["status"] == "ok" else np.nan for r in rows)
            failed = any(r["status"] not in ("ok", "nan") for r in rows)
            outcomes.append(Outcome(c, costs, values, failed, work.reused[c.arch_id]))
        return outcomes

    def _score_row(self, arch_id: int, proxy: str) -> dict:
        """A score row of a finished batch: its shards wrote a row (ok or not) for every proxy."""
        row, _ = self.known.get("scores", (arch_id, proxy))
        assert row is not None
        return row


class _Progress:
    """A line on stderr every PROGRESS_EVERY_S seconds and at the end (whole lines: logs read them)."""

    def __init__(self, spec: SearchSpec, enabled: bool) -> None:
        self.spec, self.enabled = spec, enabled
        self.start = self.last = time.monotonic()
        self.stages: Counter[str] = Counter()
        self.reused = 0

    def update(self, loop: SearchLoop, rows: list[dict], force: bool = False) -> None:
        self.stages.update(r["stage"] for r in rows)
        self.reused += sum(bool(r["reused"]) for r in rows)
        now = time.monotonic()
        if self.enabled and (force or now - self.last >= PROGRESS_EVERY_S):
            self.last = now
            best = loop.history.best()
            found = f", best {best[1]:.6g}: {loop.space.arch_str(best[0])}" if best else ""
            print(f"zsdist search {self.spec.run_id}: {loop.history.evaluations}/{self.spec.budget} evaluations, "
                  f"{loop.history.candidates} candidates ({self.stages['infeasible']} infeasible){found}, "
                  f"{loop.history.evaluations / max(now - self.start, 1e-9):.2f} evaluations/s", file=sys.stderr,
                  flush=True)


def run_search(spec: SearchSpec, output: str | None = None, address: str | None = None, num_cpus: int | None = None,
               show_progress: bool = True) -> SearchSummary:
    """Run (or resume) a search into `output` (default: the file's run.output); Ray only if something is missing."""
    from zsdist.preflight import check_inputs
    from zsdist.run import fitted_devices, record_run

    start = time.monotonic()
    store = Store(output or spec.output)
    space = create_space(spec.space)
    first = space.sample(1, spec.search_seed)
    workflow = Workflow(spec.name, store.uri, spec.seed, jobs=(_job(spec, first, _all_proxies(spec), spec.devices),))
    check_inputs(workflow)
    check_definitions(spec)
    store.check_writable()
    record_run(store, spec, finished=False)
    checkpoint = Checkpoint(store, spec)
    loop = SearchLoop(spec, space, create_strategy(spec.strategy))
    evaluator = RayEvaluator(spec, store, KnownRows(store, spec.run_id, _settings(spec)), address, num_cpus,
                             checkpoint, fitted_devices(store, workflow))
    progress = _Progress(spec, show_progress)

    def observed(index: int, rows: list[dict]) -> None:
        checkpoint.write(index, rows, time.monotonic() - start)
        progress.update(loop, rows)

    looping = time.monotonic()
    try:
        drive(loop, evaluator, observed)
    finally:
        evaluator.close()
    busy = time.monotonic() - looping - evaluator.waited_s
    final = loop.final_rows()
    if not store.exists(store.path("search", "final", run_id=spec.run_id, space=spec.space)):
        store.write("search", final, "final", run_id=spec.run_id, space=spec.space)
    record_run(store, spec, finished=True)
    progress.update(loop, [], force=True)
    return SearchSummary(spec.run_id, store.uri, loop.history.evaluations, loop.history.candidates,
                         dict(progress.stages), progress.reused, evaluator.computed,
                         next((r for r in final if r["pick"]), None), time.monotonic() - start, busy)
