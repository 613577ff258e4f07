"""Result tables: schemas and atomic, hive-partitioned Parquet files on any pyarrow filesystem."""
from __future__ import annotations

import os
import re
import uuid
from datetime import datetime, timezone
from dataclasses import dataclass
from typing import Sequence

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from zsdist.errors import ZsdistError

# Partition columns (run_id, space) live in the directory names, not in the files.
SCHEMAS: dict[str, pa.Schema] = {
    "scores": pa.schema([
        ("arch_id", pa.int64()), ("arch", pa.string()), ("dataset", pa.string()), ("proxy", pa.string()),
        ("value", pa.float64()), ("seconds", pa.float64()), ("status", pa.string()), ("error", pa.string()),
        ("batch_size", pa.int32()), ("seed", pa.int64()), ("device", pa.string()), ("options", pa.string()),
        ("version", pa.string()),
    ]),
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
}
PARTITIONS: dict[str, tuple[str, ...]] = {
    "scores": ("run_id", "space"), "latency": ("run_id", "space"), "truth": ("space",), "runs": ("run_id",),
    "search": ("run_id", "space"),
}
BROKEN = "_broken"  # where unreadable shard files are moved: outside every table's folder, so no query reads them
_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def check_component(value: str, what: str) -> str:
    """A name that becomes one path component (run id, partition value, file key): no separators, no `..`, no
    hive `=`, so that it can neither leave the results folder nor break partition parsing."""
    if not isinstance(value, str) or not _COMPONENT.fullmatch(value) or ".." in value:
        raise ZsdistError(f"{what} {value!r} cannot name a file or folder: use letters, digits and . _ + - "
                          f"(starting with a letter or digit, no '..')")
    return value


@dataclass(frozen=True)
class Store:
    """A results root (local path or URI such as s3://bucket/prefix) holding one folder per table."""

    uri: str

    @property
    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        if self.local_root:
            return pafs.LocalFileSystem(), self.local_root
        return pafs.FileSystem.from_uri(self.uri)

    @property
    def local_root(self) -> str | None:
        """The absolute local path of a plain path or file:// URI; None for remote filesystems."""
        if self.uri.startswith("file://"):
            return os.path.abspath(self.uri[len("file://"):])
        return None if "://" in self.uri else os.path.abspath(self.uri)

    def path(self, table: str, key: str, **partition: str) -> str:
        """Where one file of `table` lives: <root>/<table>/<k=v>/…/<key>.parquet."""
        parts = [f"{name}={check_component(partition[name], name)}" for name in PARTITIONS[table]]
        return "/".join([self.filesystem[1], table, *parts, f"{check_component(key, 'file key')}.parquet"])

    def exists(self, path: str) -> bool:
        return self.filesystem[0].get_file_info(path).type == pafs.FileType.File

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

    def write(self, table: str, rows: Sequence[dict] | pa.Table, key: str, **partition: str) -> str:
        """Write one file atomically: a temporary name in the same folder, then a rename."""
        data = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(list(rows), schema=SCHEMAS[table])
        fs, _ = self.filesystem
        final = self.path(table, key, **partition)
        folder = final.rsplit("/", 1)[0]
        fs.create_dir(folder, recursive=True)
        tmp = f"{folder}/_tmp-{uuid.uuid4().hex}.partial"
        with fs.open_output_stream(tmp) as out:
            pq.write_table(data.cast(SCHEMAS[table]), out)
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

    def set_aside(self, path: str) -> str:
        """Move a broken file under <root>/_broken/ (same relative path, a UTC stamp added); returns where."""
        fs, root = self.filesystem
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        target = f"{root}/{BROKEN}/{path[len(root) + 1:]}.{stamp}"
        fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        fs.move(path, target)
        return target

    def read(self, table: str, key: str, **partition: str) -> pa.Table | None:
        path = self.path(table, key, **partition)
        if not self.exists(path):
            return None
        fs, _ = self.filesystem
        with fs.open_input_file(path) as f:
            return pq.read_table(f)
