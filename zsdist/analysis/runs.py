"""Which runs a results folder holds, so that a query names its run instead of mixing or hiding several.

A run's name is its id without the config hash and the date stamp of dated runs (`nightly-20261130-<hash>` →
`nightly`). `latest_run` holds the newest run of each name: the last started among the finished ones, else the
last started (a run interrupted before its first one finished); runs without a `runs` row (scores written by hand)
count as unfinished and order by id. The macro `latest(prefix)` is the id of the newest run whose id starts with
`prefix`, by the same order: `SELECT * FROM correlation WHERE run_id = latest('nightly')`.
"""
from __future__ import annotations

import duckdb

_NEWEST_FIRST = "finished IS NOT NULL DESC, started DESC NULLS LAST, run_id DESC"

VIEWS: dict[str, str] = {
    "run_index": r"""
        SELECT run_id, regexp_replace(run_id, '(-[0-9][0-9TZ]*)?-[0-9a-f]{12}$', '') AS name, r.started,
               r.finished, r.config_hash
        FROM (SELECT DISTINCT run_id FROM scores UNION SELECT run_id FROM runs) LEFT JOIN runs r USING (run_id)""",
    "latest_run": f"""
        SELECT * FROM run_index
        QUALIFY row_number() OVER (PARTITION BY name ORDER BY {_NEWEST_FIRST}) = 1""",
}

MACROS: dict[str, str] = {
    "latest": f"""(prefix) AS (
        SELECT run_id FROM run_index WHERE starts_with(run_id, prefix) ORDER BY {_NEWEST_FIRST} LIMIT 1)""",
}


def register_macros(con: duckdb.DuckDBPyConnection) -> None:
    for name, body in MACROS.items():
        con.execute(f"CREATE MACRO {name}{body}")
