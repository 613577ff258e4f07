"""Published figures beside ours: the `published` table (zsdist/analysis/published.json: ρ, source and what differs
in the protocol) and `published_comparison`, every run's correlation with the published ρ and the gap, so that the
survey table of docs/results.md is one query over a run rather than numbers copied by hand."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import duckdb
import pyarrow as pa

FILE = Path(__file__).with_name("published.json")


@functools.cache
def _figures() -> pa.Table:
    """Read once per process: every connect() registers it, and a query opens one connection."""
    return pa.Table.from_pylist(json.loads(FILE.read_text())["figures"])


def register_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.register("published_figures", _figures())


VIEWS: dict[str, str] = {
    "published": "SELECT space, dataset, metric, proxy, rho, source, protocol FROM published_figures",
    # a run's correlation of every proxy, the published ρ where there is one, and ours minus it
    "published_comparison": """
        SELECT c.run_id, c.space, c.dataset, c.metric, c.proxy, c.n, c.spearman, c.kendall,
               p.rho AS published, c.spearman - p.rho AS gap, p.source, p.protocol
        FROM correlation c LEFT JOIN published p USING (space, dataset, metric, proxy)""",
}
