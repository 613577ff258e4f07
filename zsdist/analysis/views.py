"""A DuckDB connection whose views are the result tables plus the survey's derived tables, all readable SQL.

scores / latency / truth / runs: the Parquet tables (partition columns first); proxies: the registry's metadata;
proxy_scores: scores plus derived population-level proxies (zsdist.analysis.derived); paired: ok
scores joined to ground truth with the proxy's direction applied; wide: one row per (run, space, dataset, arch) with
a column per proxy and the test accuracy. Then, in their own modules: correlation (all, top-p% regions, bootstrap
intervals), selection (random pools), hardware (budgets, Pareto, constrained picks) and study (ViT versus CNN).
The spec tables (regions, pool_specs, top_k, budget_levels, analysis_settings) hold the choices; replace one with
CREATE OR REPLACE VIEW to change an analysis.
"""
from __future__ import annotations

import tempfile

import duckdb
import pyarrow as pa

from zsdist.analysis import correlation, hardware, runs, selection, study
from zsdist.analysis.spec import AnalysisSpec
from zsdist.proxies import PROXIES, get_proxy
from zsdist.store import PARTITIONS, SCHEMAS, Store

from zsdist.analysis.derived import DERIVED_SCORES_SQL  # population-level proxies (AZ-NAS rank aggregate)

_SQL_TYPES = {pa.int64(): "BIGINT", pa.int32(): "INTEGER", pa.float64(): "DOUBLE", pa.string(): "VARCHAR",
              pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ"}


def _table_view(con: duckdb.DuckDBPyConnection, store: Store, table: str) -> None:
    parts = PARTITIONS[table]
    columns = [*parts, *SCHEMAS[table].names]
    root = store.local_root or store.uri
    hive_types = "{" + ", ".join(f"'{p}': 'VARCHAR'" for p in parts) + "}"
    try:
        con.execute(f"CREATE VIEW {table} AS SELECT {', '.join(columns)} FROM read_parquet("
                    f"'{root}/{table}/**/*.parquet', hive_partitioning = true, hive_types = {hive_types}, "
                    f"union_by_name = true)")
    except duckdb.IOException:  # no files yet: an empty view with the same columns and types
        typed = [f"NULL::VARCHAR AS {p}" for p in parts]
        typed += [f"NULL::{_SQL_TYPES[f.type]} AS {f.name}" for f in SCHEMAS[table]]
        con.execute(f"CREATE VIEW {table} AS SELECT {', '.join(typed)} WHERE false")


def connect(results: str, spec: AnalysisSpec = AnalysisSpec()) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with every view over the results at `results` (a path or URI)."""
    store = Store(results)
    con = duckdb.connect()
    # large analyses spill to disk: into the system temp folder, not a `.tmp` beside wherever zsdist runs
    con.execute(f"SET temp_directory = '{tempfile.gettempdir()}/zsdist-duckdb'")
    correlation.register_functions(con)
    study.register_tables(con)
    for name, sql in spec.tables().items():
        con.execute(f"CREATE VIEW {name} AS {sql}")
    for table in SCHEMAS:
        _table_view(con, store, table)
    proxies = [get_proxy(n) for n in PROXIES.names()]
    con.register("proxy_registry", pa.table({
        "proxy": [p.name for p in proxies], "higher_is_better": [p.higher_is_better for p in proxies],
        "sign": [p.sign for p in proxies], "description": [p.description for p in proxies],
    }))
    con.execute("CREATE VIEW proxies AS SELECT * FROM proxy_registry")
    con.execute(f"CREATE VIEW proxy_scores AS SELECT * FROM scores UNION ALL BY NAME ({DERIVED_SCORES_SQL})")
    con.execute("""
        CREATE VIEW paired AS
        SELECT s.run_id, s.space, s.dataset, s.proxy, t.metric, s.arch_id, s.arch,
               s.value * coalesce(p.sign, 1) AS score, t.value AS truth
        FROM proxy_scores s
        JOIN truth t ON t.space = s.space AND t.arch_id = s.arch_id AND t.dataset = s.dataset
        LEFT JOIN proxies p ON p.proxy = s.proxy
        WHERE s.status = 'ok' AND s.value IS NOT NULL AND t.value IS NOT NULL""")
    names = [r[0] for r in con.execute("SELECT DISTINCT proxy FROM proxy_scores ORDER BY proxy").fetchall()]
    keys = "run_id, space, dataset, arch_id, arch"
    if names:
        pivot = (f"PIVOT (SELECT {keys}, proxy, value FROM proxy_scores) ON proxy IN "
                 f"({', '.join(repr(n) for n in names)}) USING first(value) GROUP BY {keys}")
    else:
        pivot = f"SELECT {keys} FROM proxy_scores"
    con.execute(f"""
        CREATE VIEW wide AS
        SELECT w.*, t.value AS test_acc FROM ({pivot}) w
        LEFT JOIN truth t ON t.space = w.space AND t.arch_id = w.arch_id AND t.dataset = w.dataset
                         AND t.metric = 'test_acc'""")
    for module in (runs, correlation, selection, hardware, study):
        for name, sql in module.VIEWS.items():
            con.execute(f"CREATE VIEW {name} AS {sql}")
    runs.register_macros(con)
    return con
