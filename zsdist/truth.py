"""Ground truth: benchmark accuracy files → the tidy `truth` table, one file per (space, source), rewritten whole.

Each source reads the reference file of the data layout (embedded, cached or in ZSDIST_DATA) and the benchmark's
own format where users hold it (NASLib's zero-cost JSON for NB201, NB101 and TransNAS-Bench-101 micro).
"""
from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zsdist.errors import ZsdistError
from zsdist.registry import Registry

if TYPE_CHECKING:
    from zsdist.refwrite import Written
    from zsdist.store import Store


@dataclass(frozen=True)
class TruthSource:
    space: str
    name: str  # the file key in the results folder
    default_file: str  # in the data-folder layout
    read: Callable[[Path], list[dict]]
    reference_rows: int  # truth rows the reference file gives: fewer means it was cut short
    # Architectures per dataset and metric in a file of the layout format, which lists the whole benchmark (None:
    # any subset). Benchmarks' own files (NASLib's JSON) are often samples and are not held to it.
    cells: int | None = None

    @property
    def data_source(self) -> str:
        from zsdist.refdata.sources import source_of

        return source_of(self.default_file).name


TRUTH: Registry[TruthSource] = Registry("truth source")


def _table(path: Path, columns: set[str], what: str) -> Any:
    from zsdist.refdata.formats import read_table_file

    return read_table_file(path, columns, what)


def _json(path: Path) -> Any:
    from zsdist.refdata.formats import read_json

    return read_json(path)


def _row(arch_id: int, arch: str, dataset: str, metric: str, value: float, path: Path) -> dict:
    return {"arch_id": arch_id, "arch": arch, "dataset": dataset, "metric": metric, "value": value,
            "source": path.name}


# NB201 columns → (dataset, metric). cifar10 "valid" is the cifar10-valid split NB201 trains for validation.
_NB201_COLUMNS = {
    "test_cifar10": ("cifar10", "test_acc"), "test_cifar100": ("cifar100", "test_acc"),
    "test_imagenet16_120": ("imagenet16_120", "test_acc"), "valid_cifar10valid": ("cifar10", "valid_acc"),
    "valid_cifar100": ("cifar100", "valid_acc"), "valid_imagenet16_120": ("imagenet16_120", "valid_acc"),
}
# NASLib's NB201 datasets; its cifar10 val_accuracy is the cifar10-valid one, as in the layout file.
_NASLIB_NB201_DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "ImageNet16-120": "imagenet16_120"}


def _read_nb201(path: Path) -> list[dict]:
    """The layout file (arch_str + six accuracy columns) or NASLib's zc_nasbench201.json (validation accuracy)."""
    from zsdist.spaces import create_space

    space = create_space("nb201")
    if path.suffix.lower() == ".json":
        from zsdist.hardware.tables import naslib_to_arch
        from zsdist.refdata import naslib

        rows = []
        for dataset, entries in naslib.records(_json(path), path, ("nasbench201",)).items():
            if dataset not in _NASLIB_NB201_DATASETS:
                continue
            for key, record in entries.items():
                arch = naslib_to_arch(naslib.arch_tuple(key, 6, path))
                rows.append(_row(space.parse(arch), arch, _NASLIB_NB201_DATASETS[dataset], "valid_acc",
                                 naslib.accuracy(record, path, key), path))
        return rows
    table = _table(path, {"arch_str", *_NB201_COLUMNS}, "NB201")
    archs = table.column("arch_str").to_pylist()
    ids = [space.parse(a) for a in archs]
    return [_row(arch_id, arch, dataset, metric, value, path)
            for column, (dataset, metric) in _NB201_COLUMNS.items()
            for arch_id, arch, value in zip(ids, archs, table.column(column).to_pylist())]


TRUTH.add("nb201", TruthSource("nb201", "nb201_accuracy", "nb201/nb201_accuracy.csv", _read_nb201,
                               reference_rows=15_625 * 6, cells=15_625))


def _read_transnas_micro(path: Path) -> list[dict]:
    """Rows `task, arch "(d0, …, d5)", valid_metric` (or NASLib's zero-cost JSON); the classification tasks become
    valid_acc (top-1, %)."""
    from zsdist.spaces import create_space

    if path.suffix.lower() == ".json":
        from zsdist.refdata.convert import transnas_rows

        triples = transnas_rows(_json(path), path)
    else:
        table = _table(path, {"task", "arch", "valid_metric"}, "TransNAS")
        triples = list(zip(*(table.column(c).to_pylist() for c in ("task", "arch", "valid_metric"))))
    space = create_space("transnas_micro")
    rows = []
    for task, arch, value in triples:
        if task not in space.datasets:
            continue
        digits = str(arch).strip("()").replace(" ", "").split(",")
        if len(digits) != 6:
            raise ZsdistError(f"{path}: arch {arch!r} is not a TransNAS micro tuple of six ops")
        arch_id = space.parse(f"64-41414-{digits[0]}_{''.join(digits[1:3])}_{''.join(digits[3:])}")
        rows.append(_row(arch_id, space.arch_str(arch_id), task, "valid_acc", value, path))
    return rows


TRUTH.add("transnas_micro", TruthSource("transnas_micro", "transnas_micro_valid",
                                        "transnas_micro/tnb101_micro_valid.csv", _read_transnas_micro,
                                        reference_rows=4_096 * 2, cells=4_096))


def _read_nb101(path: Path) -> list[dict]:
    """Rows `matrix` (JSON 7×7), `ops` (JSON, NB101 names), `valid_accuracy` (or NASLib's zc_nasbench101.json);
    cells map to ids by NB101's hash.

    Files may list one cell several times in different spellings (unpruned vertices, other vertex orders; the
    reference file lists 500 spellings of 292 cells, each with one training seed's accuracy): one row per cell
    carries the mean.
    """
    import json

    from zsdist.spaces import create_space
    from zsdist.spaces.nb101 import NB101, OFFICIAL_OPS

    if path.suffix.lower() == ".json":
        from zsdist.refdata.convert import nb101_rows

        cells = nb101_rows(path)
    else:
        table = _table(path, {"matrix", "ops", "valid_accuracy"}, "NB101")
        try:
            cells = [(json.loads(m), json.loads(o), v) for m, o, v in
                     zip(*(table.column(c).to_pylist() for c in ("matrix", "ops", "valid_accuracy")))]
        except (json.JSONDecodeError, TypeError) as exc:
            raise ZsdistError(f"{path}: a matrix or ops cell is not JSON ({exc})") from None
    space = create_space("nb101")
    assert isinstance(space, NB101)
    values: dict[int, list[float]] = {}
    for matrix, names, value in cells:
        unknown = set(names[1:-1]) - set(OFFICIAL_OPS)
        if unknown:
            raise ZsdistError(f"{path}: unknown NB101 op(s) {', '.join(sorted(unknown))}")
        labels = [-1, *(list(OFFICIAL_OPS).index(op) for op in names[1:-1]), -2]
        values.setdefault(space.id_of(matrix, labels), []).append(value)
    return [_row(arch_id, space.arch_str(arch_id), "cifar10", "valid_acc", sum(v) / len(v), path)
            for arch_id, v in sorted(values.items())]


TRUTH.add("nb101", TruthSource("nb101", "nb101_valid_500", "nb101/nb101_valid_accuracy_500.csv", _read_nb101,
                               reference_rows=292))

# Auto-Prox's ViT ground truth: subnets fine-tuned at 224×224 without (base) and with knowledge distillation (kd);
# AutoFormer's own subnets also carry the ImageNet top-1 they inherit from the trained supernet.
_VIT_METRICS = {
    "c100_base_acc": ("cifar100_224", "test_acc"), "c100_kd_acc": ("cifar100_224", "test_acc_kd"),
    "flower_base_acc": ("flowers102", "test_acc"), "flower_kd_acc": ("flowers102", "test_acc_kd"),
    "chaoyang_base_acc": ("chaoyang", "test_acc"), "chaoyang_kd_acc": ("chaoyang", "test_acc_kd"),
    "imagenet_super_acc": ("imagenet", "supernet_acc"),
}


def _vit_reader(space_name: str, arch_id: Callable[[Any, dict], int]) -> Callable[[Path], list[dict]]:
    """A reader of a JSON list of {"arch": {...}, metric: value, ...} for one ViT space."""

    def read(path: Path) -> list[dict]:
        from zsdist.spaces import create_space

        space = create_space(space_name)
        entries = _json(path)
        if not isinstance(entries, list):
            raise ZsdistError(f"{path} is not a JSON list of {{'arch': …, metric: value}} entries")
        rows: list[dict] = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or "arch" not in entry:
                raise ZsdistError(f"{path}: entry {i} has no 'arch'")
            try:
                aid = arch_id(space, entry["arch"])
                rows.extend(_row(aid, space.arch_str(aid), dataset, metric, float(entry[key]), path)
                            for key, (dataset, metric) in _VIT_METRICS.items() if key in entry)
            except (KeyError, ValueError, TypeError) as exc:
                raise ZsdistError(f"{path}: entry {i} is not a {space_name} architecture with numeric metrics "
                                  f"({exc})") from None
        return rows

    return read


TRUTH.add("autoformer_tiny", TruthSource(
    "autoformer_tiny", "autoformer_tiny_gt", "vit/autoformer_tiny_gt.json",
    _vit_reader("autoformer_tiny", lambda space, a: space.encode(
        a["hidden_dim"], [(float(r), int(h)) for r, h in zip(a["mlp_ratio"], a["num_heads"], strict=True)])),
    reference_rows=700))
TRUTH.add("pit", TruthSource(
    "pit", "pit_gt", "vit/pit_gt.json",
    _vit_reader("pit", lambda space, a: space.encode(a["base_dim"], a["mlp_ratio"], tuple(a["depth"]),
                                                      tuple(a["num_heads"]))),
    reference_rows=600))


def _check_complete(source: TruthSource, rows: list[dict], file: Path, reference: bool) -> None:
    if reference:
        if len(rows) != source.reference_rows:
            raise ZsdistError(f"{file} gives {len(rows):,} ground-truth rows, not the {source.reference_rows:,} of "
                              f"the reference {source.default_file}: it is cut short or not that file "
                              f"(`zsdist data fetch {source.data_source}` gets a verified copy)")
        return
    if source.cells is None or file.suffix.lower() == ".json":
        return
    if not rows:
        raise ZsdistError(f"{file} holds no {source.space} ground truth")
    covered = Counter((r["dataset"], r["metric"]) for r in rows)
    (dataset, metric), n = min(covered.items(), key=lambda item: item[1])
    if n < source.cells:
        raise ZsdistError(f"{file} covers {n:,} of the {source.cells:,} {source.space} architectures for {dataset} "
                          f"{metric}: it is cut short or not the whole benchmark; pass --force to load it anyway")


def _rows(source: TruthSource, path: str | None, force: bool = False) -> list[dict]:
    from zsdist.settings import locate, missing_message

    if path:
        file = Path(path)
        if not file.exists():
            raise ZsdistError(f"ground-truth file {file} does not exist")
    else:
        found = locate(source.default_file)
        if found is None:
            raise ZsdistError(missing_message(source.default_file))
        file = found[1]
    rows = source.read(file)
    if not force:
        _check_complete(source, rows, file, reference=not path)
    return rows


def load(store: Store, name: str, path: str | None = None, force: bool = False) -> Written:
    """Write source `name`'s truth (from `path` or the reference data) unless the results already hold that input;
    never replaces truth with fewer rows unless `force`."""
    from zsdist.refwrite import file_origin, reference_origin, replace

    source = TRUTH.get(name)
    origin = file_origin(Path(path)) if path else reference_origin([source.default_file])
    return replace(store, "truth", source.name, {"space": source.space}, origin, lambda: _rows(source, path, force),
                   force)


def ingest(store: Store, name: str, path: str | None = None, force: bool = False) -> int:
    """Load source `name` (see `load`); returns the row count the results now hold for it."""
    return load(store, name, path, force).rows


def available(name: str) -> bool:
    """Whether the reference file of truth source `name` is embedded, cached or in the data folder."""
    from zsdist.settings import locate

    return locate(TRUTH.get(name).default_file) is not None


def ensure_truth(store: Store, space: str) -> str | None:
    """Load the space's ground truth into `store` if it is missing there and available; otherwise a one-line hint
    of what to run (None when the results hold it)."""
    names = [n for n in TRUTH.names() if TRUTH.get(n).space == space]
    if not names:
        return f"no ground truth for {space}: zsdist knows no benchmark that trained {space} architectures"
    hints = []
    for name in names:
        source = TRUTH.get(name)
        if store.footer(store.path("truth", source.name, space=space)) is not None:
            continue
        if not available(name):
            hints.append(f"no ground truth for {space} in {store.uri}: run `zsdist data fetch {source.data_source}` "
                         f"then `zsdist ingest --results {store.uri} --source {name}`")
            continue
        written = load(store, name)
        print(f"zsdist: loaded the {name} ground truth into {store.uri} ({written.rows:,} rows)", file=sys.stderr)
    return "; ".join(hints) or None


def truth_ids(space: str) -> list[int]:
    """The ids of every architecture of `space` that a registered truth source (reference data) covers."""
    sources = [TRUTH.get(n) for n in TRUTH.names() if TRUTH.get(n).space == space]
    if not sources:
        raise ZsdistError(f"space '{space}' has no ground truth, so archs = \"truth\" selects nothing")
    return sorted({row["arch_id"] for source in sources for row in _rows(source, None)})
