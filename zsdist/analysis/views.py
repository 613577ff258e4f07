"""A DuckDB connection whose views are the result tables plus the survey's derived tables, all readable SQL.

scores / latency / truth / runs: the Parquet tables (partition columns first); derived, run_correlation, run_stats:
each run's stored summary (zsdist.analysis.summary); proxies: the registry's metadata; proxy_scores: scores plus
the stored population-level proxies; paired: ok scores joined to ground truth with the proxy's direction applied;
wide: one row per (run, space, dataset, arch) with a column per proxy and the test accuracy. Then, in their own
modules: correlation (all, top-p% regions, bootstrap intervals), selection (random pools), hardware (budgets,
Pareto, constrained picks), study (ViT versus CNN) and search (`zsdist search` histories and results). The spec
tables (regions, pool_specs, top_k, budget_levels, analysis_settings) hold the choices; replace one with CREATE OR
REPLACE VIEW to change an analysis.

Opening the views reads no data: each table view is a glob over its partition folders whose partition columns
(run_id, space) come from the folder names, so a query that names a run or a space opens only that folder's files
(DuckDB prunes the file list before reading). Every file of a table has the table's schema (Store.write casts to
it; compaction rewrites older files to it), so DuckDB reads the schema from one file, not from every file.
"""
from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator

import duckdb
import pyarrow as pa

from zsdist.analysis import correlation, hardware, published, runs, search, selection, study
from zsdist.analysis.spec import AnalysisSpec
from zsdist.errors import ZsdistError
from zsdist.store import PARTITIONS, SCHEMAS, Store

_SQL_TYPES = {pa.int64(): "BIGINT", pa.int32(): "INTEGER", pa.float64(): "DOUBLE", pa.string(): "VARCHAR",
              pa.bool_(): "BOOLEAN", pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ"}
_KEYS = ("run_id", "space", "dataset", "arch_id", "arch")


def _empty_view(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """A view with the table's columns and types and no rows: what the other views are created against."""
    typed = [f"NULL::VARCHAR AS {p}" for p in PARTITIONS[table]]
    typed += [f"NULL::{_SQL_TYPES[f.type]} AS {f.name}" for f in SCHEMAS[table]]
    con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT {', '.join(typed)} WHERE false")


def _table_view(con: duckdb.DuckDBPyConnection, root: str, table: str) -> None:
    """The table's files: a glob over its partition folders, partition values read from the folder names."""
    parts = PARTITIONS[table]
    try:
        files = con.sql("SELECT * FROM read_parquet($files, hive_partitioning = true, hive_types = $types)",
                        params={"files": f"{root}/{table}/{'*/' * len(parts)}*.parquet",
                                "types": {p: "VARCHAR" for p in parts}})
    except duckdb.IOException:  # no files yet: the empty view stays
        return
    files.project(*[duckdb.ColumnExpression(c) for c in (*parts, *SCHEMAS[table].names)]).create_view(table)


def _registry(con: duckdb.DuckDBPyConnection) -> list[str]:
    """`proxies`: every registered proxy plus the derived ones; returns their names."""
    from zsdist.analysis.derived import DERIVED_PROXIES
    from zsdist.proxies.catalog import catalog

    entries = [(p.name, p.higher_is_better, p.description) for p in map(catalog().get, catalog().names())]
    entries += [(name, better, text) for name, (better, text) in DERIVED_PROXIES.items()]
    entries.sort()
    con.register("proxy_registry", pa.table({
        "proxy": [e[0] for e in entries], "higher_is_better": [e[1] for e in entries],
        "sign": [1 if e[1] else -1 for e in entries], "description": [e[2] for e in entries]}))
    con.execute("CREATE VIEW proxies AS SELECT * FROM proxy_registry")
    return [e[0] for e in entries]


def _wide(con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
    """One row per (run, space, dataset, arch), a column per known proxy (so no score is read to find the columns)
    and the test accuracy; a plain GROUP BY, through which DuckDB pushes run and space filters into the scan."""
    column, value = duckdb.ColumnExpression, duckdb.ConstantExpression
    pivot = [duckdb.FunctionExpression("any_value", duckdb.CaseExpression(column("proxy") == value(n),
                                                                          column("value"))).alias(n) for n in names]
    scores = con.table("proxy_scores").aggregate([*map(column, _KEYS), *pivot], ", ".join(_KEYS))
    truth = con.table("truth").filter(column("metric") == value("test_acc")).project(
        column("space"), column("arch_id"), column("dataset"), column("value").alias("test_acc"))
    scores.join(truth, ["space", "arch_id", "dataset"], how="left").create_view("wide")


def connect(results: str, spec: AnalysisSpec = AnalysisSpec()) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with every view over the results at `results` (a path or URI); reads no data."""
    store = Store(results)
    # large analyses spill to disk: into the system temp folder, not a `.tmp` beside wherever zsdist runs
    con = duckdb.connect(config={"temp_directory": f"{tempfile.gettempdir()}/zsdist-duckdb"})
    if store.local_root:
        root = store.local_root
    else:
        from zsdist.analysis.fsbridge import mount

        root = mount(con, store)
    correlation.register_functions(con)
    study.register_tables(con)
    published.register_tables(con)
    for name, sql in spec.tables().items():
        con.execute(f"CREATE VIEW {name} AS {sql}")
    # every view binds (and so lists the files of) each table it reads when it is created: create them against
    # empty tables, then point the tables at their files, so opening lists each table's files once
    for table in SCHEMAS:
        _empty_view(con, table)
    names = _registry(con)
    con.execute("CREATE VIEW proxy_scores AS SELECT * FROM scores UNION ALL BY NAME SELECT * FROM derived")
    con.execute("""
        CREATE VIEW paired AS
        SELECT s.run_id, s.space, s.dataset, s.proxy, t.metric, s.arch_id, s.arch,
               s.value * coalesce(p.sign, 1) AS score, t.value AS truth
        FROM proxy_scores s
        JOIN truth t ON t.space = s.space AND t.arch_id = s.arch_id AND t.dataset = s.dataset
        LEFT JOIN proxies p ON p.proxy = s.proxy
        WHERE s.status = 'ok' AND s.value IS NOT NULL AND t.value IS NOT NULL""")
    _wide(con, names)
    for module in (runs, correlation, selection, hardware, study, search, published):
        for name, sql in module.VIEWS.items():
            con.execute(f"CREATE VIEW {name} AS {sql}")
    runs.register_macros(con)
    with user_errors(results):
        for table in SCHEMAS:
            _table_view(con, root, table)
    return con


_NAMED_FILE = re.compile(r"""['"]([^'"]+\.parquet)['"]""")
_BROKEN_SIGNS = re.compile(r"magic bytes|too small to be a Parquet|TProtocolException|Invalid data|[Cc]orrupt")


@contextlib.contextmanager
def user_errors(results: str) -> Iterator[None]:
    """DuckDB errors as one-line ZsdistErrors; a results file that is not readable Parquet is named, with what to
    do about it."""
    try:
        yield
    except duckdb.Error as exc:
        raise user_error(exc, results) from None


def user_error(exc: duckdb.Error, results: str) -> ZsdistError:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if not _BROKEN_SIGNS.search(str(exc)):
        return ZsdistError(f"query failed: {message}")
    named = _NAMED_FILE.search(str(exc))
    store = Store(results)
    path = _store_path(store, named.group(1)) if named else _first_unreadable(store)
    if path is None:
        return ZsdistError(f"query failed: {message} (a results file may be damaged)")
    return ZsdistError(f"results file {path} is not readable Parquet (truncated or damaged): {_remedy(store, path)}")


def _store_path(store: Store, named: str) -> str:
    """A file as DuckDB names it (a local path, or under the zsdist:// bridge) → as the store names it."""
    from zsdist.analysis.fsbridge import PROTOCOL

    return named[len(PROTOCOL) + 3:] if named.startswith(f"{PROTOCOL}://") else named


def _first_unreadable(store: Store) -> str | None:
    """The first results file whose footer does not read (DuckDB does not always name the file it failed on)."""
    for table in SCHEMAS:
        for path in _all_files(store, table):
            if store.metadata(path) is None:
                return path
    return None


def _all_files(store: Store, table: str, **partition: str) -> Iterator[str]:
    if len(partition) == len(PARTITIONS[table]):
        yield from store.files(table, **partition)
        return
    name = PARTITIONS[table][len(partition)]
    for value in store.values(table, **partition):
        yield from _all_files(store, table, **partition, **{name: value})


def _remedy(store: Store, path: str) -> str:
    table, *rest = path[len(store.filesystem[1]) + 1:].split("/")
    run = next((p.split("=", 1)[1] for p in rest if p.startswith("run_id=")), None)
    if table in ("scores", "latency") and run and run != "tables":
        return (f"launch run {run} again (it moves the file to {store.uri}/_broken/ and recomputes its shards), "
                "or move the file away")
    if table == "truth" or run == "tables":
        return "move it away and run `zsdist ingest` again"
    if run:
        return (f"`zsdist compact {run}` sets it aside and writes the run's summary again (so does the next compare "
                "of the run)")
    return "move it away"
