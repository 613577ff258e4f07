"""A search's history, checkpointed as files of the `search` table: one per observed batch (b00012.parquet, written
atomically when the batch is observed) and `final.parquet` when the search ends."""
from __future__ import annotations

import pyarrow.dataset as pads

from zsdist.errors import ZsdistError
from zsdist.search.loop import Candidate
from zsdist.search.rows import read_rows
from zsdist.search.spec import SearchSpec
from zsdist.store import Store


class Checkpoint:
    def __init__(self, store: Store, spec: SearchSpec) -> None:
        self.store, self.spec = store, spec
        rows = read_rows(store, "search", (pads.field("run_id") == spec.run_id) & ~pads.field("final"))
        self.batches: dict[int, list[tuple[int, int]]] = {}
        for row in sorted(rows, key=lambda r: r["step"]):
            self.batches.setdefault(row["batch"], []).append((row["arch_id"], row["rung"]))

    def verify(self, index: int, batch: list[Candidate]) -> None:
        """A replayed batch must be the batch checkpointed under its index: otherwise the settings or the code
        behind this run id changed, and resuming would mix two searches."""
        stored = self.batches.get(index)
        if stored is not None and stored != [(c.arch_id, c.rung) for c in batch]:
            raise ZsdistError(f"search {self.spec.run_id} cannot resume: its batch {index} in {self.store.uri} holds "
                              "other candidates than this code proposes; give the search a new [run] name")

    def write(self, index: int, rows: list[dict], elapsed_s: float) -> None:
        if index not in self.batches:
            self.store.write("search", [{**r, "elapsed_s": elapsed_s} for r in rows], f"b{index:05d}",
                             run_id=self.spec.run_id, space=self.spec.space)
            self.batches[index] = [(r["arch_id"], r["rung"]) for r in rows]
