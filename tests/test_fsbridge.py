"""The bridge DuckDB reads remote results through: its threads share one handle per file, so reads must not
depend on a shared cursor."""
from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from zsdist.analysis.fsbridge import PROTOCOL, _Bridge


def test_many_duckdb_threads_read_one_file_through_the_bridge_intact(tmp_path):
    rows = 100_000
    pq.write_table(pa.table({"a": range(rows), "s": [f"s{i}" for i in range(rows)]}), tmp_path / "x.parquet",
                   row_group_size=2_000)
    con = duckdb.connect()
    con.execute("SET threads = 8")
    con.register_filesystem(_Bridge(pafs.LocalFileSystem()))
    query = f"SELECT sum(a), count(DISTINCT s) FROM read_parquet('{PROTOCOL}://{tmp_path}/x.parquet')"
    # With a shared cursor a seek from one thread lands between another's seek and read: about half of these
    # scans failed or returned other bytes.
    for _ in range(10):
        assert con.execute(query).fetchone() == (rows * (rows - 1) // 2, rows)


def test_a_missing_file_is_reported_as_missing(tmp_path):
    con = duckdb.connect()
    con.register_filesystem(_Bridge(pafs.LocalFileSystem()))
    with pytest.raises(duckdb.Error, match="absent.parquet"):
        con.execute(f"SELECT * FROM read_parquet('{PROTOCOL}://{tmp_path}/absent.parquet')")
