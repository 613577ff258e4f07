"""Content digests: one value per reference file that stays the same across containers (the CSV in a data folder,
the embedded Parquet, a CSV written from it, a converted download), so one checksum in the sources table verifies
every copy and proves that embedding lost nothing."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path


def _table_digest(table) -> str:
    """Columns by name, rows in sorted order; numbers as float64 bytes, everything else by its repr."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = table.select(sorted(table.column_names))
    table = table.sort_by([(name, "ascending") for name in table.column_names])
    h = hashlib.sha256()
    for name in table.column_names:
        column = table.column(name)
        h.update(name.encode() + b"\0")
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            h.update(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False).tobytes())
        else:
            h.update("\0".join(map(repr, column.to_pylist())).encode())
    return h.hexdigest()


def _arrays_digest(path: Path) -> str:
    import numpy as np

    h = hashlib.sha256()
    with np.load(path, allow_pickle=False) as npz:
        for name in sorted(npz.files):
            array = np.ascontiguousarray(npz[name])
            h.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
            h.update(array.tobytes())
    return h.hexdigest()


def content_digest(path: Path) -> str:
    """The sha256 of what a reference file holds (tables: values; .json: the parsed document; .npz: the arrays)."""
    from zsdist.refdata.formats import read_table_file

    suffix = path.suffix.lower()
    if suffix in (".csv", ".parquet"):
        return _table_digest(read_table_file(path))
    if suffix == ".npz":
        return _arrays_digest(path)
    if suffix == ".json":
        canonical = json.dumps(json.loads(path.read_text()), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
    return file_sha256(path)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
