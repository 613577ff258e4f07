"""A DuckDB connection whose views are the result tables plus the survey's derived tables.

scores / latency / truth / runs: the Parquet tables (partition columns first); proxies: the registry's metadata;
paired: ok scores joined to ground truth with the proxy's direction applied; wide: one row per
(run, space, dataset, arch) with a column per proxy and the test accuracy; correlation: n, Spearman (average
ranks, in SQL), Kendall τ-b (scipy, over the lists DuckDB hands over) and Pearson per run × space × dataset ×
proxy × metric.
"""
from __future__ import annotations

import math
from typing import Sequence

import duckdb
import pyarrow as pa
from scipy import stats

from zsdist.proxies import PROXIES, get_proxy
from zsdist.store import PARTITIONS, SCHEMAS, Store

_SQL_TYPES = {pa.int64(): "BIGINT", pa.int32(): "INTEGER", pa.float64(): "DOUBLE", pa.string(): "VARCHAR",
              pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ"}


def _kendall(x: Sequence[float], y: Sequence[float]) -> float | None:
    if len(x) < 2:
        return None
    tau = stats.kendalltau(x, y).statistic
    return None if math.isnan(tau) else float(tau)


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


def connect(results: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with every view over the results at `results` (a path or URI)."""
    store = Store(results)
    con = duckdb.connect()
    con.create_function("kendall_tau", _kendall, ["DOUBLE[]", "DOUBLE[]"], "DOUBLE", null_handling="special")
    for table in SCHEMAS:
        _table_view(con, store, table)
    proxies = [get_proxy(n) for n in PROXIES.names()]
    con.register("proxy_registry", pa.table({
        "proxy": [p.name for p in proxies], "higher_is_better": [p.higher_is_better for p in proxies],
        "sign": [p.sign for p in proxies], "description": [p.description for p in proxies],
    }))
    con.execute("CREATE VIEW proxies AS SELECT * FROM proxy_registry")
    con.execute("""
        CREATE VIEW paired AS
        SELECT s.run_id, s.space, s.dataset, s.proxy, t.metric, s.arch_id, s.arch,
               s.value * coalesce(p.sign, 1) AS score, t.value AS truth
        FROM scores s
        JOIN truth t ON t.space = s.space AND t.arch_id = s.arch_id AND t.dataset = s.dataset
        LEFT JOIN proxies p ON p.proxy = s.proxy
        WHERE s.status = 'ok' AND s.value IS NOT NULL AND t.value IS NOT NULL""")
    con.execute("""
        CREATE VIEW correlation AS
        WITH ranked AS (
            SELECT *,
                rank() OVER (PARTITION BY run_id, space, dataset, proxy, metric ORDER BY score)
                  + (count(*) OVER (PARTITION BY run_id, space, dataset, proxy, metric, score) - 1) / 2.0 AS r_score,
                rank() OVER (PARTITION BY run_id, space, dataset, proxy, metric ORDER BY truth)
                  + (count(*) OVER (PARTITION BY run_id, space, dataset, proxy, metric, truth) - 1) / 2.0 AS r_truth
            FROM paired)
        SELECT run_id, space, dataset, proxy, metric, count(*) AS n,
               corr(r_score, r_truth) AS spearman,
               kendall_tau(list(score ORDER BY arch_id), list(truth ORDER BY arch_id)) AS kendall,
               corr(score, truth) AS pearson
        FROM ranked GROUP BY ALL""")
    names = [r[0] for r in con.execute("SELECT DISTINCT proxy FROM scores ORDER BY proxy").fetchall()]
    keys = "run_id, space, dataset, arch_id, arch"
    if names:
        pivot = (f"PIVOT (SELECT {keys}, proxy, value FROM scores) ON proxy IN "
                 f"({', '.join(repr(n) for n in names)}) USING first(value) GROUP BY {keys}")
    else:
        pivot = f"SELECT {keys} FROM scores"
    con.execute(f"""
        CREATE VIEW wide AS
        SELECT w.*, t.value AS test_acc FROM ({pivot}) w
        LEFT JOIN truth t ON t.space = w.space AND t.arch_id = w.arch_id AND t.dataset = w.dataset
                         AND t.metric = 'test_acc'""")
    return con
