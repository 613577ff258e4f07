"""Result tables: schemas and atomic, hive-partitioned Parquet files on any pyarrow filesystem."""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Callable, Sequence

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
    "runs": pa.schema([
        ("workflow", pa.string()), ("config_hash", pa.string()), ("code_version", pa.string()),
        ("started", pa.timestamp("us", tz="UTC")), ("finished", pa.timestamp("us", tz="UTC")),
        ("host", pa.string()),
    ]),
}
PARTITIONS: dict[str, tuple[str, ...]] = {
    "scores": ("run_id", "space"), "latency": ("run_id", "space"), "truth": ("space",), "runs": ("run_id",),
}


@dataclass(frozen=True)
class Store:
    """A results root (local path or URI such as s3://bucket/prefix) holding one folder per table."""

    uri: str

    @property
    def _fs(self) -> tuple[pafs.FileSystem, str]:
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
        parts = [f"{name}={partition[name]}" for name in PARTITIONS[table]]
        return "/".join([self._fs[1], table, *parts, f"{key}.parquet"])

    def exists(self, path: str) -> bool:
        return self._fs[0].get_file_info(path).type == pafs.FileType.File

    def check_writable(self) -> None:
        fs, root = self._fs
        probe = f"{root}/.zsdist-write-check-{uuid.uuid4().hex}"
        try:
            fs.create_dir(root, recursive=True)
            with fs.open_output_stream(probe) as out:
                out.write(b"ok")
            fs.delete_file(probe)
        except (OSError, pa.ArrowException) as exc:
            raise ZsdistError(f"output folder {self.uri} is not writable: {exc}") from None

    def write(self, table: str, rows: Sequence[dict] | pa.Table, key: str, **partition: str) -> str:
        """Write one file of a table atomically."""
        data = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(list(rows), schema=SCHEMAS[table])
        return self._atomic(self.path(table, key, **partition), lambda out: pq.write_table(data.cast(SCHEMAS[table]),
                                                                                           out))

    def write_text(self, relative: str, text: str) -> str:
        """A small text file under the root beside the tables (e.g. devices/<run_id>/<name>.json), atomically."""
        return self._atomic(f"{self._fs[1]}/{relative}", lambda out: out.write(text.encode()))

    def read_text(self, relative: str) -> str | None:
        fs, root = self._fs
        if not self.exists(f"{root}/{relative}"):
            return None
        with fs.open_input_stream(f"{root}/{relative}") as f:
            return f.read().decode()

    def _atomic(self, final: str, write: Callable[[pa.NativeFile], object]) -> str:
        """A temporary name in the same folder, then a rename: readers never see half a file."""
        fs, _ = self._fs
        folder = final.rsplit("/", 1)[0]
        fs.create_dir(folder, recursive=True)
        tmp = f"{folder}/_tmp-{uuid.uuid4().hex}.partial"
        with fs.open_output_stream(tmp) as out:
            write(out)
        fs.move(tmp, final)
        return final

    def read(self, table: str, key: str, **partition: str) -> pa.Table | None:
        path = self.path(table, key, **partition)
        if not self.exists(path):
            return None
        fs, _ = self._fs
        with fs.open_input_file(path) as f:
            return pq.read_table(f)
