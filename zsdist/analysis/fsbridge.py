"""Remote results (s3://, gs://, any pyarrow filesystem) read by DuckDB through the same pyarrow filesystem that
wrote them: one set of credentials and endpoint settings (those of the URI and the environment), and no DuckDB
extension to download. DuckDB sees the results root as `zsdist://<path>` and hands every listing and read to
pyarrow via fsspec's wrapper."""
from __future__ import annotations

import io
import threading

import duckdb
from fsspec.implementations.arrow import ArrowFile, ArrowFSWrapper, wrap_exceptions

from zsdist.store import Store

PROTOCOL = "zsdist"


class _PositionalFile(ArrowFile):
    """DuckDB's threads share one handle per file and read it as seek-then-read, two calls another thread can
    come between (which returned other bytes). Each thread keeps its own position and reads with `read_at`,
    which moves no shared cursor."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._local = threading.local()

    def tell(self) -> int:
        return getattr(self._local, "pos", 0)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.tell(), io.SEEK_END: self.stream.size()}[whence]
        self._local.pos = base + offset
        return self._local.pos

    def read(self, nbytes: int = -1) -> bytes:
        pos = self.tell()
        if nbytes is None or nbytes < 0:
            nbytes = self.stream.size() - pos
        data = self.stream.read_at(nbytes, pos)
        self._local.pos = pos + len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer)[: len(data)] = data
        return len(data)


class _Bridge(ArrowFSWrapper):
    protocol = PROTOCOL
    root_marker = ""

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        return path.split("://", 1)[-1]

    @wrap_exceptions
    def _open(self, path, mode="rb", block_size=None, seekable=True, **kwargs):
        if mode != "rb" or not seekable:
            return super()._open(path, mode, block_size, seekable, **kwargs)
        return _PositionalFile(self, self.fs.open_input_file(path), path, mode, block_size, **kwargs)


def mount(con: duckdb.DuckDBPyConnection, store: Store) -> str:
    """Register the store's filesystem on `con`; returns the root as DuckDB must name it."""
    fs, root = store.filesystem
    con.register_filesystem(_Bridge(fs))
    return f"{PROTOCOL}://{root}"
