"""Ground truth: benchmark accuracy files → the tidy `truth` table, one file per (space, source), rewritten whole."""
from __future__ import annotations

import json
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


def _read_transnas_micro(path: Path) -> list[dict]:
    """Rows `task, arch "(d0, …, d5)", valid_metric`; the classification tasks become valid_acc (top-1, %)."""
    table = pacsv.read_csv(path)
    missing = {"task", "arch", "valid_metric"} - set(table.column_names)
    if missing:
        raise ZsdistError(f"{path} lacks TransNAS column(s) {', '.join(sorted(missing))}")
    space = create_space("transnas_micro")
    rows = []
    for task, arch, value in zip(*(table.column(c).to_pylist() for c in ("task", "arch", "valid_metric"))):
        if task not in space.datasets:
            continue
        digits = arch.strip("()").replace(" ", "").split(",")
        arch_id = space.parse(f"64-41414-{digits[0]}_{''.join(digits[1:3])}_{''.join(digits[3:])}")
        rows.append({"arch_id": arch_id, "arch": space.arch_str(arch_id), "dataset": task, "metric": "valid_acc",
                     "value": value, "source": path.name})
    return rows


TRUTH.add("transnas_micro", TruthSource("transnas_micro", "transnas_micro_valid",
                                        "transnas_micro/tnb101_micro_valid.csv", _read_transnas_micro))


def _read_nb101(path: Path) -> list[dict]:
    """Rows `matrix` (JSON 7×7), `ops` (JSON, NB101 names), `valid_accuracy`; cells map to ids by NB101's hash.

    Files may list one cell several times in different spellings (unpruned vertices, other vertex orders; the
    reference file lists 500 spellings of 292 cells, each with one training seed's accuracy): one row per cell
    carries the mean.
    """
    from zsdist.spaces.nb101 import OFFICIAL_OPS

    table = pacsv.read_csv(path)
    missing = {"matrix", "ops", "valid_accuracy"} - set(table.column_names)
    if missing:
        raise ZsdistError(f"{path} lacks NB101 column(s) {', '.join(sorted(missing))}")
    space = create_space("nb101")
    values: dict[int, list[float]] = {}
    for matrix, ops, value in zip(*(table.column(c).to_pylist() for c in ("matrix", "ops", "valid_accuracy"))):
        names = json.loads(ops)
        unknown = set(names[1:-1]) - set(OFFICIAL_OPS)
        if unknown:
            raise ZsdistError(f"{path}: unknown NB101 op(s) {', '.join(sorted(unknown))}")
        labels = [-1, *(list(OFFICIAL_OPS).index(op) for op in names[1:-1]), -2]
        values.setdefault(space.id_of(json.loads(matrix), labels), []).append(value)
    return [{"arch_id": arch_id, "arch": space.arch_str(arch_id), "dataset": "cifar10", "metric": "valid_acc",
             "value": sum(v) / len(v), "source": path.name} for arch_id, v in sorted(values.items())]


TRUTH.add("nb101", TruthSource("nb101", "nb101_valid_500", "nb101/nb101_valid_accuracy_500.csv", _read_nb101))

# Auto-Prox's ViT ground truth: subnets fine-tuned at 224×224 without (base) and with knowledge distillation (kd);
# AutoFormer's own subnets also carry the ImageNet top-1 they inherit from the trained supernet.
_VIT_METRICS = {
    "c100_base_acc": ("cifar100_224", "test_acc"), "c100_kd_acc": ("cifar100_224", "test_acc_kd"),
    "flower_base_acc": ("flowers102", "test_acc"), "flower_kd_acc": ("flowers102", "test_acc_kd"),
    "chaoyang_base_acc": ("chaoyang", "test_acc"), "chaoyang_kd_acc": ("chaoyang", "test_acc_kd"),
    "imagenet_super_acc": ("imagenet", "supernet_acc"),
}


def _vit_reader(space_name: str, arch_id: Callable[[object, dict], int]) -> Callable[[Path], list[dict]]:
    """A reader of a JSON list of {"arch": {...}, metric: value, ...} for one ViT space."""

    def read(path: Path) -> list[dict]:
        space = create_space(space_name)
        rows = []
        for i, entry in enumerate(json.loads(path.read_text())):
            if "arch" not in entry:
                raise ZsdistError(f"{path}: entry {i} has no 'arch'")
            try:
                aid = arch_id(space, entry["arch"])
            except (KeyError, ValueError, TypeError) as exc:
                raise ZsdistError(f"{path}: entry {i} is not a {space_name} architecture ({exc})") from None
            rows.extend({"arch_id": aid, "arch": space.arch_str(aid), "dataset": dataset, "metric": metric,
                         "value": float(entry[key]), "source": path.name}
                        for key, (dataset, metric) in _VIT_METRICS.items() if key in entry)
        return rows

    return read


TRUTH.add("autoformer_tiny", TruthSource(
    "autoformer_tiny", "autoformer_tiny_gt", "vit/autoformer_tiny_gt.json",
    _vit_reader("autoformer_tiny", lambda space, a: space.encode(
        a["hidden_dim"], [(float(r), int(h)) for r, h in zip(a["mlp_ratio"], a["num_heads"], strict=True)]))))
TRUTH.add("pit", TruthSource(
    "pit", "pit_gt", "vit/pit_gt.json",
    _vit_reader("pit", lambda space, a: space.encode(a["base_dim"], a["mlp_ratio"], tuple(a["depth"]),
                                                      tuple(a["num_heads"])))))


def _rows(source: TruthSource, path: str | None) -> list[dict]:
    file = Path(path) if path else data_file(source.default_file)
    if not file.is_file():
        raise ZsdistError(f"missing ground-truth file {file}")
    return source.read(file)


def ingest(store: Store, name: str, path: str | None = None) -> int:
    """Write the truth rows of source `name` (from `path` or the reference data); returns the row count."""
    source = TRUTH.get(name)
    rows = _rows(source, path)
    store.write("truth", rows, source.name, space=source.space)
    return len(rows)


def truth_ids(space: str) -> list[int]:
    """The ids of every architecture of `space` that a registered truth source (reference data) covers."""
    sources = [TRUTH.get(n) for n in TRUTH.names() if TRUTH.get(n).space == space]
    if not sources:
        raise ZsdistError(f"space '{space}' has no ground truth, so archs = \"truth\" selects nothing")
    return sorted({row["arch_id"] for source in sources for row in _rows(source, None)})
