"""Rows a search can read instead of computing: its own run's (a resumed driver repeats no evaluation) and, for the
same settings, any earlier run's in the same results folder (copied into the search's run when used).

The same settings: space, arch, dataset and proxy, plus the row's effective batch size, seed, device and options
text (every choice the proxy records); only rows with status ok or nan are reused (an error may not recur).
Latency rows are reused from table and predicted sources with status ok; measured latency only from the search's
own run (another run's timing came from another moment, perhaps another machine). Rows do not record which image
file a batch came from, so a search with its own `data` reuses only its own rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from zsdist.store import PARTITIONS, SCHEMAS, Store

Key = tuple[int, str]  # (arch_id, proxy or latency device)


@dataclass(frozen=True)
class Settings:
    """What an earlier run's score row must share to stand for this search's."""

    space: str
    dataset: str
    batch_size: int  # the batch as rows record it (fewer images than asked when the data holds fewer)
    seed: int
    device: str  # as rows record it (zsdist.shard.device_label)
    options: tuple[tuple[str, str], ...]  # proxy → its options text (zsdist.shard.row_options)
    devices: tuple[str, ...]  # latency devices
    reuse: bool = True  # False: only the search's own rows


def read_rows(store: Store, table: str, where: pads.Expression) -> list[dict]:
    """The rows of a table (partition columns included) that match `where`; none when the table has no files."""
    fs, root = store.filesystem
    if fs.get_file_info(f"{root}/{table}").type != pafs.FileType.Directory:
        return []
    partitioning = pads.partitioning(pa.schema([(p, pa.string()) for p in PARTITIONS[table]]), flavor="hive")
    schema = pa.schema([*SCHEMAS[table], *((p, pa.string()) for p in PARTITIONS[table])])
    data = pads.dataset(f"{root}/{table}", filesystem=fs, format="parquet", partitioning=partitioning, schema=schema)
    return data.to_table(filter=where).to_pylist()


class KnownRows:
    """(arch_id, proxy) → score row and (arch_id, device) → latency row, this run's own first."""

    def __init__(self, store: Store, run_id: str, settings: Settings) -> None:
        self.run_id = run_id
        self.scores: dict[Key, dict] = {}
        self.latency: dict[Key, dict] = {}
        self.own: set[tuple[str, Key]] = set()  # ("scores" | "latency", key) held by this run
        options = dict(settings.options)
        same = (pads.field("space") == settings.space) & (pads.field("dataset") == settings.dataset)
        own = pads.field("run_id") == run_id
        if options:
            rows = read_rows(store, "scores", same & pads.field("proxy").isin(list(options)))
            for row in sorted(rows, key=lambda r: (r["run_id"] != run_id, r["run_id"])):
                mine = row["run_id"] == run_id
                same_settings = (row["batch_size"], row["seed"], row["device"], row["options"]) == (
                    settings.batch_size, settings.seed, settings.device, options[row["proxy"]])
                if mine or (settings.reuse and row["status"] in ("ok", "nan") and same_settings):
                    self._add("scores", row, mine)
        if settings.devices:
            others = pads.field("source").isin(["table", "predicted"]) & (pads.field("status") == "ok")
            rows = read_rows(store, "latency", same & pads.field("device").isin(list(settings.devices))
                         & (own | others if settings.reuse else own))
            for row in sorted(rows, key=lambda r: (r["run_id"] != run_id, r["run_id"])):
                self._add("latency", row, row["run_id"] == run_id)

    def _add(self, table: str, row: dict, own: bool) -> None:
        key = (row["arch_id"], row["proxy"] if table == "scores" else row["device"])
        rows = self.scores if table == "scores" else self.latency
        if key not in rows:
            rows[key] = {k: v for k, v in row.items() if k not in PARTITIONS[table]}
            if own:
                self.own.add((table, key))

    def add_own(self, table: str, rows: list[dict]) -> None:
        """Rows this run just wrote (computed, or copied from an earlier run)."""
        for row in rows:
            key = (row["arch_id"], row["proxy"] if table == "scores" else row["device"])
            (self.scores if table == "scores" else self.latency)[key] = row
            self.own.add((table, key))

    def get(self, table: str, key: Key) -> tuple[dict | None, bool]:
        """The row for `key` and whether this run already holds it."""
        row = (self.scores if table == "scores" else self.latency).get(key)
        return row, (table, key) in self.own
