"""Where reference data lives: one setting (ZSDIST_DATA), read at call time so tests and workers see changes."""
from __future__ import annotations

import os
from pathlib import Path

from zsdist.errors import ZsdistError

DATA_ENV = "ZSDIST_DATA"


def data_root() -> Path:
    """The reference-data folder (../shared/data in this repository's Makefile and CI)."""
    value = os.environ.get(DATA_ENV)
    if not value:
        raise ZsdistError(f"{DATA_ENV} is not set; point it at the reference data folder (e.g. ../shared/data)")
    root = Path(value).expanduser()
    if not root.is_dir():
        raise ZsdistError(f"{DATA_ENV}={value} is not a folder; point it at the reference data folder")
    return root


def data_file(relative: str) -> Path:
    """A file under the data root, with an error that names the missing path."""
    path = data_root() / relative
    if not path.exists():
        raise ZsdistError(f"missing data file {path} (from {DATA_ENV}); see ../shared/data/README.md for the layout")
    return path
