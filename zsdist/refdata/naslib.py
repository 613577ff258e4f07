"""NASLib's zero-cost benchmark files (zc_nasbench201.json, zc_nasbench101.json, zc_transbench101_micro.json and
the same inside all_benchmarks_zen.zip): {dataset: {arch key: {"val_accuracy": …, proxy: …}}}, sometimes wrapped
in {search space: …}. Read here so users can ingest the files they already hold."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from zsdist.errors import ZsdistError

# NB101 keys are 56-tuples: the 7×7 adjacency matrix row by row, then one op code per vertex.
NB101_OP_CODES = {0: "input", 1: "output", 2: "maxpool3x3", 3: "conv1x1-bn-relu", 4: "conv3x3-bn-relu"}


def records(doc: Any, path: Path, space_keys: tuple[str, ...]) -> dict[str, dict[str, dict]]:
    """dataset → arch key → record, unwrapping a search-space level named in `space_keys`."""
    if isinstance(doc, dict) and len(doc) == 1 and next(iter(doc)) in space_keys:
        doc = next(iter(doc.values()))
    if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
        raise ZsdistError(f"{path} is not a NASLib zero-cost file ({{dataset: {{arch: {{'val_accuracy': …}}}}}})")
    return doc


def accuracy(record: Any, path: Path, key: str) -> float:
    value = record.get("val_accuracy") if isinstance(record, dict) else None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ZsdistError(f"{path}: entry {key} has no numeric 'val_accuracy'")
    return float(value)


def arch_tuple(key: str, length: int, path: Path) -> tuple[int, ...]:
    """A key such as "(1, 0, 0, 2, 1, 0)" as a tuple of `length` ints."""
    try:
        value = ast.literal_eval(key)
    except (ValueError, SyntaxError):
        value = None
    if not isinstance(value, tuple) or len(value) != length or not all(isinstance(v, int) for v in value):
        raise ZsdistError(f"{path}: arch key {key!r} is not a tuple of {length} integers")
    return value


def nb101_cell(key: str, path: Path) -> tuple[list[list[int]], list[str]]:
    """The adjacency matrix and NB101 op names of a NASLib NB101 key."""
    codes = arch_tuple(key, 56, path)
    if any(c not in NB101_OP_CODES for c in codes[49:]):
        raise ZsdistError(f"{path}: arch key {key!r} has an op code outside 0..4")
    return [list(codes[7 * r:7 * r + 7]) for r in range(7)], [NB101_OP_CODES[c] for c in codes[49:]]
