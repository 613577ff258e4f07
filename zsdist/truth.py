"""Ground truth: benchmark accuracy files → the tidy `truth` table, one file per (space, source), rewritten whole."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow.csv as pacsv

from zsdist.errors import ZsdistError
from zsdist.registry import Registry
from zsdist.settings import data_file
from zsdist.spaces import create_space
from zsdist.store import Store


@dataclass(frozen=True)
class TruthSource:
    space: str
    name: str
    default_file: str  # relative to ZSDIST_DATA
    read: Callable[[Path], list[dict]]


TRUTH: Registry[TruthSource] = Registry("truth source")

# NB201 columns → (dataset, metric). cifar10 "valid" is the cifar10-valid split NB201 trains for validation.
_NB201_COLUMNS = {
    "test_cifar10": ("cifar10", "test_acc"), "test_cifar100": ("cifar100", "test_acc"),
    "test_imagenet16_120": ("imagenet16_120", "test_acc"), "valid_cifar10valid": ("cifar10", "valid_acc"),
    "valid_cifar100": ("cifar100", "valid_acc"), "valid_imagenet16_120": ("imagenet16_120", "valid_acc"),
}


def _read_nb201(path: Path) -> list[dict]:
    table = pacsv.read_csv(path)
    missing = {"arch_str", *_NB201_COLUMNS} - set(table.column_names)
    if missing:
        raise ZsdistError(f"{path} lacks NB201 column(s) {', '.join(sorted(missing))}")
    space = create_space("nb201")
    archs = table.column("arch_str").to_pylist()
    ids = [space.parse(a) for a in archs]
    rows = []
    for column, (dataset, metric) in _NB201_COLUMNS.items():
        for arch_id, arch, value in zip(ids, archs, table.column(column).to_pylist()):
            rows.append({"arch_id": arch_id, "arch": arch, "dataset": dataset, "metric": metric, "value": value,
                         "source": path.name})
    return rows


TRUTH.add("nb201", TruthSource("nb201", "nb201_accuracy", "nb201/nb201_accuracy.csv", _read_nb201))


def ingest(store: Store, name: str, path: str | None = None) -> int:
    """Write the truth rows of source `name` (from `path` or the reference data); returns the row count."""
    source = TRUTH.get(name)
    file = Path(path) if path else data_file(source.default_file)
    if not file.is_file():
        raise ZsdistError(f"missing ground-truth file {file}")
    rows = source.read(file)
    store.write("truth", rows, source.name, space=source.space)
    return len(rows)
