"""Rows on stdout as a text table, CSV or JSON, each written by DuckDB itself (its box renderer, COPY TO), or as
Markdown.

DuckDB is imported inside the functions: the CLI imports `Format` eagerly and must answer --help at once.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb


class Format(str, Enum):
    """How `zsdist query` prints rows."""

    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"


# DuckDB's relation renderer fetches at most 10,000 rows and cannot tell the total once it has that many
TABLE_ROWS = 9_999
_NAME = "zsdist_output"  # the rows as a view of the connection, for the SQL below
_COPY_OPTIONS = {Format.csv: "FORMAT csv, HEADER true", Format.json: "FORMAT json, ARRAY true"}


def render(con: duckdb.DuckDBPyConnection, rows: duckdb.DuckDBPyRelation, fmt: Format) -> None:
    """Print the relation `rows` of `con` on stdout in `fmt`; the query runs here (so its errors are raised
    here). CSV and JSON hold every row, NULL as an empty field / null, NaN as nan / NaN."""
    con.register(_NAME, rows)
    if fmt is Format.table:
        _table(con)
        return
    if fmt is Format.markdown:
        _markdown(con.table(_NAME))
        return
    with tempfile.TemporaryDirectory(prefix="zsdist-output-") as folder:
        path = Path(folder) / f"rows.{fmt.value}"
        con.execute(f"COPY {_NAME} TO $path ({_COPY_OPTIONS[fmt]})", {"path": str(path)})
        with path.open(encoding="utf-8") as written:
            shutil.copyfileobj(written, sys.stdout)


def _table(con: duckdb.DuckDBPyConnection) -> None:
    """DuckDB's box table of the first TABLE_ROWS rows, as wide as the values (a pipe or a narrow terminal gets
    every column). Only TABLE_ROWS + 1 rows are kept; the total is counted when there are more."""
    con.execute(f"CREATE TEMP TABLE {_NAME}_head AS FROM {_NAME} LIMIT {TABLE_ROWS + 1}")
    head = con.table(f"{_NAME}_head")
    head.limit(TABLE_ROWS).show(max_rows=TABLE_ROWS, max_width=sys.maxsize, null_value="NULL")
    if len(head) > TABLE_ROWS:
        total = len(con.table(_NAME))
        print(f"{total:,} rows, the first {TABLE_ROWS:,} shown: --format csv or json prints them all")


def _markdown(rows: duckdb.DuckDBPyRelation) -> None:
    """A GitHub table of every row, values as Python prints them and NULL empty: how docs/results.md's tables are
    made from a run (round in the SQL). DuckDB writes no Markdown."""
    def cell(value: Any) -> str:
        return "" if value is None else str(value).replace("|", "\\|")

    print("| " + " | ".join(rows.columns) + " |")
    print("|" + "---|" * len(rows.columns))
    for row in rows.fetchall():
        print("| " + " | ".join(map(cell, row)) + " |")


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Rows computed in Python (listings, drift between runs) printed like query results."""
    import duckdb
    import pyarrow as pa

    con = duckdb.connect()
    render(con, con.from_arrow(pa.table({c: [r[i] for r in rows] for i, c in enumerate(columns)})), Format.table)
