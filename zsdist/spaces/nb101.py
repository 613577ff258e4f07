"""NAS-Bench-101: the 423,624 unique cells (DAGs of ≤ 7 vertices and ≤ 9 edges, ops conv3×3 / conv1×1 /
max-pool 3×3) in NB101's network (stem 128, 3 stacks × 3 cells, max-pool + width ×2 between stacks).

Cells are deduplicated as NB101 generated them: every upper-triangular adjacency matrix whose vertices all lie
on an input→output path, every labelling, one entry per NB101 graph hash (the first met). arch_id is
the rank of the cell's hash among all hashes, so ids need no run order and any isomorphic spelling of a cell
maps to the same id. Enumerating takes a few minutes in Python, so the table is cached (ZSDIST_CACHE, else
$XDG_CACHE_HOME/zsdist, else ~/.cache/zsdist) as an .npz and loaded from there afterwards.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from zsdist.errors import ZsdistError
from zsdist.spaces import register_space
from zsdist.spaces.base import PooledClassifier, SearchSpace

OPS = ("conv3x3", "conv1x1", "maxpool3x3")  # label 0, 1, 2 in NB101's hash (input -1, output -2)
OFFICIAL_OPS = {"conv3x3-bn-relu": "conv3x3", "conv1x1-bn-relu": "conv1x1", "maxpool3x3": "maxpool3x3"}
MAX_VERTICES, MAX_EDGES = 7, 9
NUM_CLASSES = {"cifar10": 10}
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


def enumerate_cells(max_vertices: int = MAX_VERTICES) -> dict[str, tuple[np.ndarray, tuple[int, ...]]]:
    """hash → (matrix, interior labels) of every unique cell, the first met in ascending (vertices, bits)."""
    cells: dict[str, tuple[np.ndarray, tuple[int, ...]]] = {}
    for n in range(2, max_vertices + 1):
        for matrix in _full_dags(n):
            memo: dict[str, str] = {}
            for interior in itertools.product(range(len(OPS)), repeat=n - 2):
                key = graph_hash(matrix, [-1, *interior, -2], memo)
                if key not in cells:
                    cells[key] = (matrix, interior)
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


# ---- the network -------------------------------------------------------------------------------------------------

class ConvBNReLU(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=False))


def vertex_channels(c_in: int, c_out: int, matrix: np.ndarray) -> list[int]:
    """NB101's widths: the output's width is split over the vertices that feed it (remainder to the first),
    and every other interior vertex takes the widest of its successors."""
    n = len(matrix)
    channels = [c_in] + [0] * (n - 2) + [c_out]
    if n == 2:
        return channels
    feeders = [v for v in range(1, n - 1) if matrix[v, n - 1]]
    share, extra = divmod(c_out, len(feeders))
    for i, v in enumerate(feeders):
        channels[v] = share + (1 if i < extra else 0)
    for v in range(n - 3, 0, -1):
        if not matrix[v, n - 1]:
            channels[v] = max(channels[d] for d in range(v + 1, n - 1) if matrix[v, d])
    return channels


class Cell(nn.Module):
    """Interior vertex t = op(Σ truncated predecessors + 1×1 projection of the input); output = concat of the
    vertices that feed it, plus a projection of the input when input→output is an edge."""

    def __init__(self, matrix: np.ndarray, interior: tuple[int, ...], c_in: int, c_out: int) -> None:
        super().__init__()
        self.matrix = matrix.astype(bool)
        n = len(matrix)
        self.channels = vertex_channels(c_in, c_out, matrix)
        self.ops = nn.ModuleList(
            [nn.Identity()] + [nn.MaxPool2d(3, 1, 1) if op == 2 else ConvBNReLU(self.channels[t], self.channels[t],
                                                                                  3 if op == 0 else 1)
                               for t, op in enumerate(interior, start=1)])
        # 1×1 projections of the input, one per vertex it feeds (with 2 vertices, the output is just that)
        self.proj = nn.ModuleDict({str(t): ConvBNReLU(c_in, self.channels[t], 1)
                                   for t in range(1, n) if self.matrix[0, t]})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.matrix)
        values = [x]
        for t in range(1, n - 1):
            inputs = [values[s][:, : self.channels[t]] for s in range(1, t) if self.matrix[s, t]]
            if self.matrix[0, t]:
                inputs.append(self.proj[str(t)](x))
            values.append(self.ops[t](sum(inputs)))
        feeders = [values[t] for t in range(1, n - 1) if self.matrix[t, n - 1]]
        if not feeders:
            return self.proj[str(n - 1)](x)
        out = torch.cat(feeders, dim=1)
        return out + self.proj[str(n - 1)](x) if self.matrix[0, n - 1] else out


class NB101Network(PooledClassifier):
    def __init__(self, matrix: np.ndarray, interior: tuple[int, ...], num_classes: int, stem: int = 128,
                 stacks: int = 3, cells_per_stack: int = 3) -> None:
        layers: list[nn.Module] = [ConvBNReLU(3, stem, 3)]
        c_in = c_out = stem
        for stack in range(stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, 2))
                c_out *= 2
            for _ in range(cells_per_stack):
                layers.append(Cell(matrix, interior, c_in, c_out))
                c_in = c_out
        super().__init__(layers, c_out, num_classes)


@register_space("nb101")
class NB101(SearchSpace):
    name = "nb101"
    size = 423_624
    datasets = tuple(NUM_CLASSES)

    def cell(self, arch_id: int) -> tuple[np.ndarray, tuple[int, ...]]:
        table = load_table()
        i = self.check_id(arch_id)
        return _unpack(int(table["vertices"][i]), int(table["edges"][i]), int(table["labels"][i]))

    def arch_str(self, arch_id: int) -> str:
        return to_string(*self.cell(arch_id))

    def id_of(self, matrix: np.ndarray, labels: list[int]) -> int:
        """The id of any spelling of a cell (pruned first, as NB101 does)."""
        matrix, labels = prune(np.asarray(matrix, dtype=np.int8), labels)
        if int(matrix.sum()) > MAX_EDGES:
            raise ZsdistError(f"NB101 cell has {int(matrix.sum())} edges after pruning (at most {MAX_EDGES})")
        hashes = load_table()["hashes"]
        key = graph_hash(matrix, labels).encode()
        i = int(np.searchsorted(hashes, key))
        if i == len(hashes) or hashes[i] != key:
            raise ZsdistError(f"NB101 cell {to_string(matrix, tuple(labels[1:-1]))} is not in the space")
        return i

    def parse(self, arch: str) -> int:
        return self.id_of(*from_string(arch))

    def build(self, arch_id: int, dataset: str) -> nn.Module:
        return NB101Network(*self.cell(arch_id), NUM_CLASSES[self.check_dataset(dataset)])
