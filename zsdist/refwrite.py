"""Reference tables in a results folder (ground truth, published latency tables) are replaced whole by `ingest`.
Each file records the input it was written from; loading the same input again is skipped, and a file is never
replaced by one with fewer rows (a truncated source) unless the user forces it."""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zsdist.errors import ZsdistError

if TYPE_CHECKING:
    from zsdist.store import Store

ORIGIN = "zsdist.origin"  # Parquet metadata key: the input's name and content checksum


@dataclass(frozen=True)
class Written:
    path: str
    rows: int
    unchanged: bool  # the file already held this input; nothing was written


def file_origin(path: Path) -> str:
    """A user's input file (or folder of files) by name and sha256 of its bytes."""
    from zsdist.refdata.digest import file_sha256

    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256("".join(f"{p.name}:{file_sha256(p)}\n" for p in files).encode()).hexdigest()
    return f"{path.name}@sha256:{digest}"


def reference_origin(relatives: Sequence[str]) -> str:
    """Reference files by layout path and the sources table's content digest (known without reading them)."""
    from zsdist.refdata.sources import ref_file

    return ";".join(f"{r}@{ref_file(r).digest}" for r in relatives)


def replace(store: Store, table: str, key: str, partition: dict[str, str], origin: str,
            rows: Callable[[], Sequence[dict]], force: bool = False) -> Written:
    """Write `rows()` as the whole file unless it already holds `origin` (then `rows` is never called)."""
    path = store.path(table, key, **partition)
    existing = store.footer(path)
    if existing is not None and existing[1].get(ORIGIN) == origin and not force:
        return Written(path, existing[0], unchanged=True)
    data = rows()
    if existing is not None and existing[0] > len(data) and not force:
        raise ZsdistError(f"{path} holds {existing[0]:,} rows and the new input only {len(data):,}: not replacing "
                          f"it (a cut-short input?); pass --force to replace it anyway")
    store.write(table, data, key, metadata={ORIGIN: origin}, row_group_size=None, **partition)
    return Written(path, len(data), unchanged=False)
