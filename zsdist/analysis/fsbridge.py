"""Remote results (s3://, gs://, any pyarrow filesystem) read by DuckDB through the same pyarrow filesystem that
wrote them: one set of credentials and endpoint settings (those of the URI and the environment), and no DuckDB
extension to download. DuckDB sees the results root as `zsdist://<path>` and hands every listing and read to
pyarrow via fsspec's wrapper."""
from __future__ import annotations

import duckdb
from fsspec.implementations.arrow import ArrowFSWrapper

from zsdist.store import Store

PROTOCOL = "zsdist"


class _Bridge(ArrowFSWrapper):
    protocol = PROTOCOL
    root_marker = ""

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        return path.split("://", 1)[-1]


def mount(con: duckdb.DuckDBPyConnection, store: Store) -> str:
    """Register the store's filesystem on `con`; returns the root as DuckDB must name it."""
    fs, root = store.filesystem
    con.register_filesystem(_Bridge(fs))
    return f"{PROTOCOL}://{root}"
