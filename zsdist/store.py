"""Result tables: schemas and atomic, hive-partitioned Parquet files on any pyarrow filesystem."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from zsdist.errors import ZsdistError
from zsdist.names import check_component

_SCORES = pa.schema([
    ("arch_id", pa.int64()), ("arch", pa.string()), ("dataset", pa.string()), ("proxy", pa.string()),
    ("value", pa.float64()), ("seconds", pa.float64()), ("status", pa.string()), ("error", pa.string()),
    ("batch_size", pa.int32()), ("seed", pa.int64()), ("device", pa.string()), ("options", pa.string()),
    ("version", pa.string()),
])
# Partition columns (run_id, space) live in the directory names, not in the files, so that every file is valid
# wherever it lies and a query that names a run or a space reads only that folder.
SCHEMAS: dict[str, pa.Schema] = {
    "scores": _SCORES,
    "latency": pa.schema([
        ("arch_id", pa.int64()), ("arch", pa.string()), ("dataset", pa.string()), ("device", pa.string()),
        ("source", pa.string()), ("batch_size", pa.int32()), ("latency_ms", pa.float64()),
        ("energy_mj", pa.float64()), ("status", pa.string()), ("error", pa.string()), ("details", pa.string()),
    ]),
    "truth": pa.schema([
        ("arch_id", pa.int64()), ("arch", pa.string()), ("dataset", pa.string()), ("metric", pa.string()),
        ("value", pa.float64()), ("source", pa.string()),
    ]),
    # one row per candidate a search observed (zsdist.search), plus a final file: the objective over the final
    # population and the pick
    "search": pa.schema([
        ("step", pa.int64()), ("batch", pa.int64()), ("arch_id", pa.int64()), ("arch", pa.string()),
        ("dataset", pa.string()), ("rung", pa.int32()), ("stage", pa.string()), ("feasible", pa.bool_()),
        ("cost", pa.float64()), ("costs", pa.string()), ("score", pa.float64()), ("evaluations", pa.int64()),
        ("best_arch_id", pa.int64()), ("best_arch", pa.string()), ("best_score", pa.float64()),
        ("reused", pa.bool_()), ("elapsed_s", pa.float64()), ("final", pa.bool_()), ("pick", pa.bool_()),
    ]),
    "runs": pa.schema([
        ("workflow", pa.string()), ("config_hash", pa.string()), ("code_version", pa.string()),
        ("started", pa.timestamp("us", tz="UTC")), ("finished", pa.timestamp("us", tz="UTC")),
        ("host", pa.string()),
    ]),
    # written once per run when it finishes (zsdist.analysis.summary), so that no query recomputes them per run:
    # population-level proxies (AZ-NAS), in the columns of `scores`
    "derived": _SCORES,
    # each proxy's correlation with every ground-truth metric (all architectures of the run)
    "run_correlation": pa.schema([
        ("space", pa.string()), ("dataset", pa.string()), ("proxy", pa.string()), ("metric", pa.string()),
        ("n", pa.int64()), ("spearman", pa.float64()), ("kendall", pa.float64()), ("pearson", pa.float64()),
    ]),
    # rows and seconds per proxy and status
    "run_stats": pa.schema([
        ("space", pa.string()), ("dataset", pa.string()), ("proxy", pa.string()), ("status", pa.string()),
        ("rows", pa.int64()), ("seconds", pa.float64()), ("max_seconds", pa.float64()),
    ]),
}
PARTITIONS: dict[str, tuple[str, ...]] = {
    "scores": ("run_id", "space"), "latency": ("run_id", "space"), "truth": ("space",), "runs": ("run_id",),
    "derived": ("run_id", "space"), "run_correlation": ("run_id",), "run_stats": ("run_id",),
    "search": ("run_id", "space"),
}
BROKEN = "_broken"  # where unreadable shard files are moved: outside every table's folder, so no query reads them
COMPACTED = "compacted"  # key of the one file a compacted partition holds; its footer lists the shards it holds
SHARDS_KEY = b"zsdist.shards"  # footer metadata of a compacted file: JSON {shard key: rows}


@dataclass(frozen=True)
class Problem:
    """Why a shard is not complete: `path` is the file at fault (the shard's own file, or the compacted file that
    should hold it), `reason` says what is wrong ("missing" when there is simply no file)."""

    path: str
    reason: str

    @property
    def missing(self) -> bool:
        return self.reason == "missing"


@functools.lru_cache(maxsize=32)
def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """One filesystem object per URI and process (resolving an object store's URI can cost a request)."""
    return pafs.FileSystem.from_uri(uri)


@dataclass(frozen=True)
class Store:
    """A results root (local path or URI such as s3://bucket/prefix) holding one folder per table."""

    uri: str
    # footer manifests of compacted files, keyed by (path, size, mtime): a launch checks hundreds of shards per file
    _manifests: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        if self.local_root:
            return pafs.LocalFileSystem(), self.local_root
        return _filesystem(self.uri)

    @property
    def local_root(self) -> str | None:
        """The absolute local path of a plain path or file:// URI; None for remote filesystems."""
        if self.uri.startswith("file://"):
            return os.path.abspath(self.uri[len("file://"):])
        return None if "://" in self.uri else os.path.abspath(self.uri)

    def folder(self, table: str, **partition: str) -> str:
        """<root>/<table>/<k=v>/… for the leading partition columns given (all of them, or a prefix)."""
        names = PARTITIONS[table][:len(partition)]
        if set(partition) != set(names):
            raise ValueError(f"{table} is partitioned by {', '.join(PARTITIONS[table])}, not {', '.join(partition)}")
        parts = [f"{name}={check_component(partition[name], name)}" for name in names]
        return "/".join([self.filesystem[1], table, *parts])

    def path(self, table: str, key: str, **partition: str) -> str:
        """Where one file of `table` lives: <root>/<table>/<k=v>/…/<key>.parquet."""
        if set(partition) != set(PARTITIONS[table]):
            raise ValueError(f"{table} files lie in {', '.join(PARTITIONS[table])} partitions")
        return f"{self.folder(table, **partition)}/{check_component(key, 'file key')}.parquet"

    def exists(self, path: str) -> bool:
        return self.filesystem[0].get_file_info(path).type == pafs.FileType.File

    def check_exists(self) -> None:
        """Reading a results folder that is not there is a mistake (a typo), not an empty result."""
        fs, root = self.filesystem
        if fs.get_file_info(root).type != pafs.FileType.Directory:
            raise ZsdistError(f"results folder {self.uri} does not exist (launch a workflow or ingest into it first)")

    def files(self, table: str, **partition: str) -> list[str]:
        """The Parquet files directly in one partition's folder (temporary files left out), sorted."""
        fs, _ = self.filesystem
        infos = fs.get_file_info(pafs.FileSelector(self.folder(table, **partition), allow_not_found=True))
        return sorted(i.path for i in infos if i.type == pafs.FileType.File and i.path.endswith(".parquet"))

    def values(self, table: str, **partition: str) -> list[str]:
        """The values of the next partition column below the given ones (e.g. every run id of `scores`), read from
        folder names: a listing, not a scan of the data."""
        name = PARTITIONS[table][len(partition)]
        fs, _ = self.filesystem
        infos = fs.get_file_info(pafs.FileSelector(self.folder(table, **partition), allow_not_found=True))
        prefix = f"{name}="
        return sorted(i.base_name[len(prefix):] for i in infos
                      if i.type == pafs.FileType.Directory and i.base_name.startswith(prefix))

    def fingerprint(self, table: str, **partition: str) -> str:
        """A hash of the names, sizes and modification times of a partition's files: changes when any file does."""
        fs, _ = self.filesystem
        infos = fs.get_file_info(self.files(table, **partition))
        listing = sorted((i.base_name, i.size, i.mtime_ns) for i in infos)
        return hashlib.sha256(json.dumps(listing).encode()).hexdigest()[:16]

    def check_writable(self) -> None:
        fs, root = self.filesystem
        probe = f"{root}/.zsdist-write-check-{uuid.uuid4().hex}"
        try:
            fs.create_dir(root, recursive=True)
            with fs.open_output_stream(probe) as out:
                out.write(b"ok")
            fs.delete_file(probe)
        except (OSError, pa.ArrowException) as exc:
            raise ZsdistError(f"output folder {self.uri} is not writable: {exc}") from None

    def write(self, table: str, rows: Sequence[dict] | pa.Table, key: str,
              metadata: Mapping[str, str] | Mapping[bytes, bytes] | None = None, row_group_size: int | None = None,
              **partition: str) -> str:
        """Write one file atomically: a temporary name in the same folder, then a rename (which replaces a file of
        the same name). `metadata` goes into the Parquet footer."""
        data = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(list(rows), schema=SCHEMAS[table])
        data = data.cast(SCHEMAS[table])
        if metadata:
            data = data.replace_schema_metadata(dict(metadata))
        return self._atomic(self.path(table, key, **partition),
                            lambda out: pq.write_table(data, out, row_group_size=row_group_size))

    def write_text(self, relative: str, text: str) -> str:
        """A small text file under the root beside the tables (e.g. devices/<run_id>/<name>.json), atomically."""
        return self._atomic(f"{self.filesystem[1]}/{relative}", lambda out: out.write(text.encode()))

    def read_text(self, relative: str) -> str | None:
        fs, root = self.filesystem
        if not self.exists(f"{root}/{relative}"):
            return None
        with fs.open_input_stream(f"{root}/{relative}") as f:
            return f.read().decode()

    def _atomic(self, final: str, write: Callable[[pa.NativeFile], object]) -> str:
        fs, _ = self.filesystem
        folder = final.rsplit("/", 1)[0]
        fs.create_dir(folder, recursive=True)
        tmp = f"{folder}/_tmp-{uuid.uuid4().hex}.partial"
        with fs.open_output_stream(tmp) as out:
            write(out)
        fs.move(tmp, final)
        return final

    def problem(self, path: str, rows: int) -> str | None:
        """Why the file at `path` is not a complete shard of `rows` rows (None when it is): a file counts as
        finished only when its Parquet footer reads and its row count is the one the shard must have."""
        fs, _ = self.filesystem
        if not self.exists(path):
            return "missing"
        try:
            with fs.open_input_file(path) as f:
                found = pq.read_metadata(f).num_rows
        except (OSError, pa.ArrowException) as exc:
            return f"unreadable ({str(exc).splitlines()[0]})"
        return None if found == rows else f"holds {found} rows, not {rows}"

    def shard_problem(self, table: str, key: str, rows: int, **partition: str) -> Problem | None:
        """Why shard `key` of `rows` rows is not complete (None when it is), whether it lies in its own file or,
        once its run was compacted, in the partition's compacted file (whose footer lists the shards it holds)."""
        path = self.path(table, key, **partition)
        if self.exists(path):
            reason = self.problem(path, rows)
            return None if reason is None else Problem(path, reason)
        compacted = self.path(table, COMPACTED, **partition)
        shards = self.compacted_shards(compacted)
        if isinstance(shards, Problem):
            return shards if not shards.missing else Problem(path, "missing")
        if key not in shards:
            return Problem(path, "missing")
        if shards[key] != rows:
            return Problem(compacted, f"holds {shards[key]} rows of shard {key}, not {rows}")
        return None

    def compacted_shards(self, path: str) -> dict[str, int] | Problem:
        """{shard key: rows} that the compacted file at `path` holds, read from its footer (cached while the file
        is unchanged); a Problem when it is missing, unreadable, or its rows do not add up to its manifest."""
        fs, _ = self.filesystem
        info = fs.get_file_info(path)
        if info.type != pafs.FileType.File:
            return Problem(path, "missing")
        stamp = (path, info.size, info.mtime_ns)
        if stamp not in self._manifests:
            self._manifests[stamp] = self._read_manifest(path)
        return self._manifests[stamp]

    def _read_manifest(self, path: str) -> dict[str, int] | Problem:
        fs, _ = self.filesystem
        try:
            with fs.open_input_file(path) as f:
                meta = pq.read_metadata(f)
            shards = json.loads((meta.metadata or {})[SHARDS_KEY])
        except (OSError, pa.ArrowException) as exc:
            return Problem(path, f"unreadable ({str(exc).splitlines()[0]})")
        except (KeyError, ValueError):
            return Problem(path, "has no list of the shards it holds")
        if sum(shards.values()) != meta.num_rows:
            return Problem(path, f"holds {meta.num_rows} rows, not the {sum(shards.values())} its shards add up to")
        return shards

    def set_aside(self, path: str) -> str:
        """Move a broken file under <root>/_broken/ (same relative path, a UTC stamp added); returns where."""
        fs, root = self.filesystem
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        target = f"{root}/{BROKEN}/{path[len(root) + 1:]}.{stamp}"
        fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        fs.move(path, target)
        return target

    def footer(self, path: str) -> tuple[int, dict[str, str]] | None:
        """Row count and schema metadata of a readable file at `path` (None when it is missing or unreadable)."""
        fs, _ = self.filesystem
        if not self.exists(path):
            return None
        try:
            with fs.open_input_file(path) as f:
                meta = pq.read_metadata(f)
        except (OSError, pa.ArrowException):
            return None
        return meta.num_rows, {k.decode(): v.decode() for k, v in (meta.metadata or {}).items()}

    def read(self, table: str, key: str, **partition: str) -> pa.Table | None:
        path = self.path(table, key, **partition)
        if not self.exists(path):
            return None
        return self.read_file(path)

    def read_file(self, path: str) -> pa.Table:
        fs, _ = self.filesystem
        with fs.open_input_file(path) as f:
            return pq.read_table(f)

    def metadata(self, path: str) -> dict[bytes, bytes] | None:
        """The footer's key-value metadata of the file at `path`; None when there is no readable file."""
        fs, _ = self.filesystem
        try:
            with fs.open_input_file(path) as f:
                return pq.read_metadata(f).metadata or {}
        except (OSError, pa.ArrowException):
            return None

    def delete(self, path: str) -> None:
        try:
            self.filesystem[0].delete_file(path)
        except FileNotFoundError:
            pass
