"""Compaction: a finished run's hundreds of shard files become one sorted file per table and partition.

Every query globs and opens the files it may read, so a history of uncompacted nightly runs costs a query
hundreds of files per run; a compacted run costs one per table and space. The compacted file
(`<table>/run_id=R/space=S/compacted.parquet`) lists in its footer the shards it holds and their row counts, so a
compacted run stays "done" (Store.shard_problem reads that list) and a damaged one is found, set aside and
recomputed like a damaged shard file. Rows are sorted so that filters on dataset and proxy (scores) or dataset and
device (latency) skip whole row groups.

Steps per partition: read the compacted file (if any) and every shard file, write the merged rows under a temporary
name, rename it over `compacted.parquet` (one atomic step: before it the shard files hold the rows, after it the
compacted file does), then delete the shard files it now holds. Until those deletions end, a concurrent query can
see a shard's rows twice; a compaction stopped there is finished by running it again (shard files whose keys the
compacted file already lists are deleted, never merged twice).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from zsdist.errors import ZsdistError
from zsdist.lease import Leases
from zsdist.plan import Shard
from zsdist.store import COMPACTED, SCHEMAS, SHARDS_KEY, Problem, Store

TABLES = ("scores", "latency")  # the tables that launches write shard by shard
SORT: dict[str, tuple[str, ...]] = {"scores": ("dataset", "proxy", "arch_id"),
                                    "latency": ("dataset", "device", "source", "arch_id")}
ROW_GROUP = 131_072  # rows per row group: a filter on one proxy of a full NB201 run reads one or two of them


@dataclass(frozen=True)
class Compacted:
    run_id: str
    partitions: int  # table × space partitions rewritten
    files: int  # shard files merged (and removed)
    rows: int  # rows in the rewritten partitions


def compact_run(store: Store, run_id: str, shards: Sequence[Shard] | None = None) -> Compacted:
    """Compact every partition of a finished run. `shards` (the run's plan, as a launch has it) are checked to be
    complete first; without them the run must be recorded as finished, and each shard file must read."""
    from zsdist.analysis.summary import ensure_summary, restamp_summary

    if shards is None:
        _check_finished(store, run_id)
        for table in TABLES:
            for space in store.values(table, run_id=run_id):
                for path in store.files(table, run_id=run_id, space=space):
                    if store.metadata(path) is None:
                        raise _unreadable(path, run_id, "its footer does not read")
    else:
        for shard in shards:
            problem = store.shard_problem(shard.table, shard.key, shard.rows, run_id=run_id, space=shard.job.space)
            if problem is not None:
                raise ZsdistError(f"cannot compact run {run_id}: {shard.table} shard {shard.key} is not complete "
                                  f"({problem.reason}); launch the run again to compute it, then compact")
    leases = Leases(store, run_id)
    if not leases.claim("compact"):
        raise ZsdistError(f"run {run_id} in {store.uri} is being compacted by another process; try again later")
    try:
        ensure_summary(store, run_id)  # from the shard files, before they go
        done = []
        for table in TABLES:
            for space in store.values(table, run_id=run_id):
                done.append(_compact_partition(store, table, run_id, space))
                leases.renew()
        if any(done):
            restamp_summary(store, run_id)
    finally:
        leases.release_all()
    rewritten = [d for d in done if d is not None]
    return Compacted(run_id, len(rewritten), sum(f for f, _ in rewritten), sum(r for _, r in rewritten))


def _check_finished(store: Store, run_id: str) -> None:
    runs = store.read("runs", "run", run_id=run_id)
    if runs is None:
        known = ", ".join(store.values("runs")) or "none"
        raise ZsdistError(f"no run '{run_id}' in {store.uri} (runs: {known})")
    if runs.column("finished")[0].as_py() is None:
        raise ZsdistError(f"run {run_id} is not finished: launch it again until every shard is done, then compact")


def _compact_partition(store: Store, table: str, run_id: str, space: str) -> tuple[int, int] | None:
    """Merge one partition's shard files into its compacted file; (files merged, rows) or None when the partition
    was compact already."""
    partition = {"run_id": run_id, "space": space}
    target = store.path(table, COMPACTED, **partition)
    shard_files = [f for f in store.files(table, **partition) if f != target]
    if not shard_files:
        return None
    held = store.compacted_shards(target)
    if isinstance(held, Problem) and not held.missing:
        raise ZsdistError(f"cannot compact run {run_id}: {target} {held.reason}; launch the run again (the file is "
                          f"set aside and its shards recomputed), then compact")
    held = {} if isinstance(held, Problem) else dict(held)
    parts = [store.read_file(target)] if held else []
    merged = []
    for path in shard_files:
        key = path.rsplit("/", 1)[1][:-len(".parquet")]
        if key in held:  # left by a compaction that stopped before deleting it: its rows are in the file already
            continue
        parts.append(_read_shard(store, path, run_id))
        held[key] = parts[-1].num_rows
        merged.append(path)
    if merged:
        rows = pa.concat_tables([_conform(p, SCHEMAS[table]) for p in parts])
        rows = rows.sort_by([(c, "ascending") for c in SORT[table]])
        store.write(table, rows, COMPACTED, {SHARDS_KEY: json.dumps(held, sort_keys=True).encode()},
                    row_group_size=ROW_GROUP, **partition)
    for path in shard_files:
        store.delete(path)
    return len(shard_files), sum(held.values())


def _read_shard(store: Store, path: str, run_id: str) -> pa.Table:
    try:
        return store.read_file(path)
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(path, run_id, str(exc).splitlines()[0]) from None


def _unreadable(path: str, run_id: str, why: str) -> ZsdistError:
    return ZsdistError(f"cannot compact run {run_id}: shard file {path} is not readable Parquet ({why}); launch the "
                       "run again to recompute it, then compact")


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Files written before a column existed get it as nulls, so that every file of a table has today's schema."""
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
               for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)
