"""NAS-Bench-101: the 423,624 unique cells (DAGs of ≤ 7 vertices and ≤ 9 edges, ops conv3×3 / conv1×1 /
max-pool 3×3) in NB101's network (stem 128, 3 stacks × 3 cells, max-pool + width ×2 between stacks).

Cells are deduplicated as NB101 generated them: every upper-triangular adjacency matrix whose vertices all lie
on an input→output path, every labelling, one entry per NB101 graph hash (the first met). arch_id is
the rank of the cell's hash among all hashes, so ids need no run order and any isomorphic spelling of a cell
maps to the same id. Enumerating takes a few minutes in Python (progress goes to stderr), so the table is cached
(ZSDIST_CACHE, else $XDG_CACHE_HOME/zsdist, else ~/.cache/zsdist) as an .npz and loaded from there afterwards.
Mutation, as in NB101's own regularised evolution, flips one edge or changes one op, resampling until the child
is a valid cell different from its parent.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zsdist.errors import ZsdistError
from zsdist.spaces import register_space
from zsdist.spaces.base import SearchSpace

if TYPE_CHECKING:
    from torch import nn

OPS = ("conv3x3", "conv1x1", "maxpool3x3")  # label 0, 1, 2 in NB101's hash (input -1, output -2)
OFFICIAL_OPS = {"conv3x3-bn-relu": "conv3x3", "conv1x1-bn-relu": "conv1x1", "maxpool3x3": "maxpool3x3"}
MAX_VERTICES, MAX_EDGES = 7, 9
TABLE_VERSION = 1


# ---- the graph hash and the pruning NB101 applies to every spec -----------------------------------------------

def graph_hash(matrix: np.ndarray, labels: list[int], memo: dict[str, str] | None = None) -> str:
    """NB101's isomorphism-invariant fingerprint: iterated md5 of (out-degree, in-degree, label) over neighbours.

    `memo` caches md5s across the labellings of one matrix, which share most of their vertex hashes.
    """
    memo = {} if memo is None else memo

    def md5(text: str) -> str:
        if text not in memo:
            memo[text] = hashlib.md5(text.encode("utf-8")).hexdigest()
        return memo[text]

    n = len(labels)
    ins = [[w for w in range(n) if matrix[w, v]] for v in range(n)]
    outs = [[w for w in range(n) if matrix[v, w]] for v in range(n)]
    hashes = [md5(str((len(outs[v]), len(ins[v]), labels[v]))) for v in range(n)]
    for _ in range(n):
        hashes = [md5("".join(sorted(hashes[w] for w in ins[v])) + "|" + "".join(sorted(hashes[w] for w in outs[v]))
                      + "|" + hashes[v]) for v in range(n)]
    return hashlib.md5(str(sorted(hashes)).encode("utf-8")).hexdigest()


def prune(matrix: np.ndarray, labels: list[int]) -> tuple[np.ndarray, list[int]]:
    """Drop vertices off every input→output path (NB101's ModelSpec); raise if the output is unreachable."""
    n = len(labels)
    forward, backward = {0}, {n - 1}
    for v in range(1, n):
        if any(matrix[u, v] for u in forward):
            forward.add(v)
    for v in range(n - 2, -1, -1):
        if any(matrix[v, w] for w in backward):
            backward.add(v)
    keep = sorted(forward & backward)
    if n - 1 not in keep or 0 not in keep:
        raise ZsdistError("NB101 cell has no path from input to output")
    return matrix[np.ix_(keep, keep)], [labels[v] for v in keep]


# ---- the id table -------------------------------------------------------------------------------------------

def _full_dags(n: int) -> list[np.ndarray]:
    """Upper-triangular n×n matrices with ≤ MAX_EDGES edges where every vertex but the output has an out-edge and
    every vertex but the input an in-edge (NB101's is_full_dag), in ascending bit order."""
    rows, cols = np.triu_indices(n, 1)
    bits = np.arange(2 ** len(rows), dtype=np.int64)
    edges = ((bits[:, None] >> np.arange(len(rows))) & 1).astype(np.int8)
    mats = np.zeros((len(bits), n, n), np.int8)
    mats[:, rows, cols] = edges
    ok = (edges.sum(1) <= MAX_EDGES) & (mats[:, : n - 1].sum(2) > 0).all(1) & (mats[:, :, 1:].sum(1) > 0).all(1)
    return list(mats[ok])


def enumerate_cells(max_vertices: int = MAX_VERTICES,
                    report_every_s: float = 5.0) -> dict[str, tuple[np.ndarray, tuple[int, ...]]]:
    """hash → (matrix, interior labels) of every unique cell, the first met in ascending (vertices, bits).

    A run longer than `report_every_s` prints a progress line to stderr that often (whole lines, so logs read).
    """
    dags = {n: _full_dags(n) for n in range(2, max_vertices + 1)}
    total = sum(len(mats) * len(OPS) ** (n - 2) for n, mats in dags.items())
    cells: dict[str, tuple[np.ndarray, tuple[int, ...]]] = {}
    start = last = time.monotonic()
    done = 0
    for n, mats in dags.items():
        for matrix in mats:
            memo: dict[str, str] = {}
            for interior in itertools.product(range(len(OPS)), repeat=n - 2):
                key = graph_hash(matrix, [-1, *interior, -2], memo)
                if key not in cells:
                    cells[key] = (matrix, interior)
            done += len(OPS) ** (n - 2)
            if time.monotonic() - last >= report_every_s:
                last = time.monotonic()
                left = (last - start) * (total - done) / done
                print(f"zsdist: building the NB101 id table (once per cache folder): {done / total:.0%} of the "
                      f"labelled graphs hashed, {len(cells):,d} unique cells, {last - start:.0f} s, about "
                      f"{left / 60:.0f} min left", file=sys.stderr, flush=True)
    return cells


def cache_dir() -> Path:
    if os.environ.get("ZSDIST_CACHE"):
        return Path(os.environ["ZSDIST_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "zsdist"


def _pack(matrix: np.ndarray, interior: tuple[int, ...]) -> tuple[int, int, int]:
    """(vertices, upper-triangle bits, interior labels base 3) of one cell."""
    n = len(matrix)
    rows, cols = np.triu_indices(n, 1)
    return n, int(sum(int(b) << i for i, b in enumerate(matrix[rows, cols]))), \
        sum(d * 3**i for i, d in enumerate(interior))


def _unpack(n: int, bits: int, labels: int) -> tuple[np.ndarray, tuple[int, ...]]:
    rows, cols = np.triu_indices(n, 1)
    matrix = np.zeros((n, n), np.int8)
    matrix[rows, cols] = [(bits >> i) & 1 for i in range(len(rows))]
    return matrix, tuple((labels // 3**i) % 3 for i in range(n - 2))


@functools.lru_cache(maxsize=2)
def load_table(max_vertices: int = MAX_VERTICES) -> dict[str, np.ndarray]:
    """The sorted hash table, built once per machine and cached as .npz (written atomically)."""
    path = cache_dir() / f"nb101_cells_v{TABLE_VERSION}_{max_vertices}.npz"
    if not path.exists():
        cells = enumerate_cells(max_vertices)
        keys = sorted(cells)
        packed = np.array([_pack(*cells[k]) for k in keys], dtype=np.int64)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as tmp:
            np.savez(tmp, hashes=np.array(keys, dtype="S32"), vertices=packed[:, 0].astype(np.int8),
                     edges=packed[:, 1].astype(np.int32), labels=packed[:, 2].astype(np.int16))
        os.chmod(tmp.name, 0o644)
        os.replace(tmp.name, path)
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


# ---- strings ---------------------------------------------------------------------------------------------------

def to_string(matrix: np.ndarray, interior: tuple[int, ...]) -> str:
    """Rows of the upper triangle as bits, then the interior ops: "1100-001-01-1|conv3x3,maxpool3x3,conv1x1"."""
    n = len(matrix)
    rows = "-".join("".join(str(int(b)) for b in matrix[i, i + 1:]) for i in range(n - 1))
    return f"{rows}|{','.join(OPS[d] for d in interior)}"


def from_string(arch: str) -> tuple[np.ndarray, list[int]]:
    """The matrix and full labels (-1 input, -2 output) of an arch string; names what is wrong."""
    rows_part, _, ops_part = arch.strip().partition("|")
    rows = rows_part.split("-")
    n = len(rows) + 1
    ops = [op for op in ops_part.split(",") if op] if ops_part else []
    if not 2 <= n <= MAX_VERTICES or [len(r) for r in rows] != list(range(n - 1, 0, -1)) \
            or any(set(r) - {"0", "1"} for r in rows) or len(ops) != n - 2:
        raise ZsdistError(f"bad NB101 arch '{arch}': expected upper-triangle rows of 0/1 joined by '-' "
                          f"(lengths n-1..1, n ≤ {MAX_VERTICES}), '|', then n-2 ops from {', '.join(OPS)}")
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        raise ZsdistError(f"bad NB101 arch '{arch}': unknown op '{unknown[0]}' (known: {', '.join(OPS)})")
    matrix = np.zeros((n, n), np.int8)
    for i, row in enumerate(rows):
        matrix[i, i + 1:] = [int(b) for b in row]
    return matrix, [-1, *(OPS.index(op) for op in ops), -2]


# ---- mutation ------------------------------------------------------------------------------------------------

def edit_cell(matrix: np.ndarray, labels: list[int], rng: np.random.Generator,
              max_vertices: int = MAX_VERTICES) -> tuple[np.ndarray, list[int]]:
    """One edit of a cell padded to `max_vertices` (the extra vertices, given random ops, start unconnected, so a
    flip can grow the cell): flip one upper-triangle edge or give one interior vertex another op. The result may
    be invalid (no input→output path, too many edges) or prune back to the parent; callers resample."""
    n = len(labels)
    padded = np.zeros((max_vertices, max_vertices), np.int8)
    padded[: n - 1, : n - 1] = matrix[: n - 1, : n - 1]
    padded[: n - 1, -1] = matrix[: n - 1, n - 1]
    interior = [*labels[1:-1], *(int(op) for op in rng.integers(len(OPS), size=max_vertices - n))]
    rows, cols = np.triu_indices(max_vertices, 1)
    k = int(rng.integers(len(rows) + len(interior)))
    if k < len(rows):
        padded[rows[k], cols[k]] ^= 1
    else:
        i = k - len(rows)
        interior[i] = (interior[i] + 1 + int(rng.integers(len(OPS) - 1))) % len(OPS)
    return padded, [-1, *interior, -2]


@register_space("nb101")
class NB101(SearchSpace):
    name = "nb101"
    size = 423_624
    datasets = ("cifar10",)

    def __init__(self, max_vertices: int = MAX_VERTICES) -> None:
        self.max_vertices = max_vertices
        if max_vertices != MAX_VERTICES:  # the same cells limited to fewer vertices: a small space for tests
            self.size = len(load_table(max_vertices)["hashes"])

    def cell(self, arch_id: int) -> tuple[np.ndarray, tuple[int, ...]]:
        table = load_table(self.max_vertices)
        i = self.check_id(arch_id)
        return _unpack(int(table["vertices"][i]), int(table["edges"][i]), int(table["labels"][i]))

    def arch_str(self, arch_id: int) -> str:
        return to_string(*self.cell(arch_id))

    def id_of(self, matrix: np.ndarray | list[list[int]], labels: list[int]) -> int:
        """The id of any spelling of a cell (pruned first, as NB101 does)."""
        matrix, labels = prune(np.asarray(matrix, dtype=np.int8), labels)
        if int(matrix.sum()) > MAX_EDGES:
            raise ZsdistError(f"NB101 cell has {int(matrix.sum())} edges after pruning (at most {MAX_EDGES})")
        hashes = load_table(self.max_vertices)["hashes"]
        key = graph_hash(matrix, labels).encode()
        i = int(np.searchsorted(hashes, key))
        if i == len(hashes) or hashes[i] != key:
            raise ZsdistError(f"NB101 cell {to_string(matrix, tuple(labels[1:-1]))} is not in the space")
        return i

    def parse(self, arch: str) -> int:
        return self.id_of(*from_string(arch))

    def build(self, arch_id: int, dataset: str) -> nn.Module:
        from zsdist.networks.nb101 import NB101Network

        return NB101Network(*self.cell(arch_id), self.num_classes(dataset))

    def mutate(self, arch_id: int, rng: np.random.Generator) -> int:
        """One edit (see edit_cell); after every 20 invalid or unchanged children one more edit is chained, so
        cells with no valid single edit (input → output alone) still move."""
        matrix, interior = self.cell(arch_id)
        for attempt in range(200):
            child, labels = matrix, [-1, *interior, -2]
            for _ in range(1 + attempt // 20):
                child, labels = edit_cell(child, labels, rng, self.max_vertices)
            try:
                child_id = self.id_of(child, labels)
            except ZsdistError:  # no input→output path, too many edges, or (a smaller space) too many vertices
                continue
            if child_id != arch_id:
                return child_id
        raise ZsdistError(f"no valid mutation of NB101 cell {self.arch_str(arch_id)} found in 200 tries")
