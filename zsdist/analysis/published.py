"""Published figures beside ours: the `published` table (zsdist/analysis/published.json: ρ, source and what differs
in the protocol) and `published_comparison`, every run's correlation with the published ρ and the gap, so that the
survey table of docs/results.md is one query over a run rather than numbers copied by hand."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa

FILE = Path(__file__).with_name("published.json")


def register_tables(con: duckdb.DuckDBPyConnection) -> None:
    rows = json.loads(FILE.read_text())["figures"]
    con.register("published_figures", pa.Table.from_pylist(rows))


VIEWS: dict[str, str] = {
    "published": "SELECT space, dataset, metric, proxy, rho, source, protocol FROM published_figures",
    # a run's correlation of every proxy, the published ρ where there is one, and ours minus it
    "published_comparison": """
        SELECT c.run_id, c.space, c.dataset, c.metric, c.proxy, c.n, c.spearman, c.kendall,
               p.rho AS published, c.spearman - p.rho AS gap, p.source, p.protocol
        FROM correlation c LEFT JOIN published p USING (space, dataset, metric, proxy)""",
}
