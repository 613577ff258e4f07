"""Converters: a source's raw downloads (the benchmark's own files) → its files in the data-folder layout.

Each converter gets `get(names) -> paths` (downloads, or files from `fetch --from DIR`, each checked against its
sha256 where the table knows one) and a folder to write the layout files into; the fetch then checks each written
file's content digest before it enters the cache. The same readers serve `zsdist ingest --file` on users' files.
"""
from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zsdist.errors import ZsdistError
from zsdist.refdata import naslib
from zsdist.refdata.formats import load_torch_data, read_json
from zsdist.refdata.sources import CIFAR10_CLASSES, Source
from zsdist.registry import Registry

Getter = Callable[[Sequence[str]], list[Path]]
Converter = Callable[[Source, Getter, Path], None]
CONVERTERS: Registry[Converter] = Registry("converter")
NB201_CELLS = 15_625


def write_npz(path: Path, arrays: dict[str, Any]) -> None:
    """An .npz whose bytes depend only on the arrays (fixed zip timestamps), so rebuilt files are identical."""
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buffer.getvalue(),
                        zipfile.ZIP_DEFLATED)


def _write_csv(path: Path, header: Sequence[str], rows: Any) -> None:
    """Python's csv (floats by repr, minimal quoting, \\n line ends): the layout files' own format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _plain(value: Any) -> Any:
    """Tensors and numpy values as Python numbers and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.tolist() if hasattr(value, "tolist") else value


def help_latency_columns(files: dict[str, Path]) -> dict[str, list[float]]:
    """HELP's per-device latency lists (device → a .pt list of one latency per NB201 cell, index order) as
    columns `help_<device>_ms`."""
    columns = {}
    for device, path in sorted(files.items()):
        values = _plain(load_torch_data(path))
        if not isinstance(values, list) or len(values) != NB201_CELLS or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise ZsdistError(f"{path} is not a HELP latency list ({NB201_CELLS:,} numbers in NB201 index order)")
        columns[f"help_{device}_ms"] = values
    return columns


def nb201_arch_strings() -> list[str]:
    """NB201 arch strings in the official index order (from the embedded ground truth)."""
    from zsdist.settings import read_table

    table = read_table("nb201/nb201_accuracy.csv").sort_by("nb201_index")
    return table.column("arch_str").to_pylist()


@CONVERTERS.register("help_latency_lists")
def _help(source: Source, get: Getter, out: Path) -> None:
    paths = get([d.name for d in source.downloads])
    columns = help_latency_columns({Path(p).stem: p for p in paths})
    archs = nb201_arch_strings()
    _write_csv(out / source.files[0].path, ["nb201_index", "arch_str", *columns],
               ([i, archs[i], *(c[i] for c in columns.values())] for i in range(NB201_CELLS)))


def nb101_rows(path: Path) -> list[tuple[list[list[int]], list[str], float]]:
    """(matrix, ops, validation accuracy) of each entry of a NASLib zc_nasbench101.json (CIFAR-10)."""
    data = naslib.records(read_json(path), path, ("nasbench101",))
    if "cifar10" not in data:
        raise ZsdistError(f"{path} has no 'cifar10' entries (datasets: {', '.join(data)})")
    return [(*naslib.nb101_cell(key, path), naslib.accuracy(rec, path, key)) for key, rec in data["cifar10"].items()]


@CONVERTERS.register("naslib_nb101")
def _nb101(source: Source, get: Getter, out: Path) -> None:
    (path,) = get([source.downloads[0].name])
    _write_csv(out / source.files[0].path, ["matrix", "ops", "valid_accuracy"],
               ([json.dumps(m), json.dumps(o), v] for m, o, v in nb101_rows(path)))


def transnas_rows(doc: Any, path: Path) -> list[tuple[str, str, float]]:
    """(task, arch "(d0, …, d5)", validation metric) of a NASLib TransNAS-Bench-101 micro file, sorted."""
    data = naslib.records(doc, path, ("transbench101_micro",))
    rows = []
    for task, entries in data.items():
        for key, rec in entries.items():
            arch = naslib.arch_tuple(key, 6, path)
            rows.append((task, arch, naslib.accuracy(rec, path, key)))
    return [(task, f"({', '.join(map(str, arch))})", value) for task, arch, value in sorted(rows)]


@CONVERTERS.register("naslib_transnas_zip")
def _transnas(source: Source, get: Getter, out: Path) -> None:
    (path,) = get([source.downloads[0].name])
    try:
        with zipfile.ZipFile(path) as zf:
            member = next((n for n in zf.namelist() if "transbench101_micro" in n and n.endswith(".json")), None)
            if member is None:
                raise ZsdistError(f"{path} holds no transbench101_micro .json")
            doc = json.loads(zf.read(member))
    except (zipfile.BadZipFile, OSError, json.JSONDecodeError) as exc:
        raise ZsdistError(f"{path} is not a readable NASLib benchmark zip ({exc})") from None
    _write_csv(out / source.files[0].path, ["task", "arch", "valid_metric"], transnas_rows(doc, path))


@CONVERTERS.register("autoprox_gt")
def _autoprox(source: Source, get: Getter, out: Path) -> None:
    (path,) = get([source.downloads[0].name])
    entries = _plain(load_torch_data(path))
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "arch" in e for e in entries):
        raise ZsdistError(f"{path} is not Auto-Prox ground truth (a list of {{'arch': …, metric: value}})")
    target = out / source.files[0].path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(entries, indent=1))


def _decode(path: Path) -> Any:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise ZsdistError(f"{path} is not a readable image ({exc})") from None


@CONVERTERS.register("cifar10_jpegs")
def _cifar10(source: Source, get: Getter, out: Path) -> None:
    import numpy as np

    names = [d.name for d in source.downloads]
    images = np.stack([_decode(p) for p in get(names)])
    labels = np.array([CIFAR10_CLASSES.index(n.split("/")[1]) for n in names], dtype=np.int64)
    write_npz(out / source.files[0].path, {"images": images, "labels": labels, "classes": np.array(CIFAR10_CLASSES)})


def _short_side_crop(path: Path, short: int, crop: int) -> Any:
    """Resize so the short side is `short` (bilinear), then take the centre `crop`×`crop`."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as source:
        img = source.convert("RGB")
        w, h = img.size
        size = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
        img = img.resize(size, Image.Resampling.BILINEAR)
        left, top = int(round((size[0] - crop) / 2)), int(round((size[1] - crop) / 2))
        return np.asarray(img.crop((left, top, left + crop, top + crop)))


@CONVERTERS.register("imagenet_gallery")
def _imagenet(source: Source, get: Getter, out: Path) -> None:
    import numpy as np

    (gallery,) = get([source.downloads[0].name])
    files = re.findall(r"\]\((n\d{8}_[^)]+\.JPEG)\)", gallery.read_text())
    if len(files) != 1000:
        raise ZsdistError(f"{gallery} lists {len(files)} images, not one for each of ImageNet's 1,000 classes")
    chosen = files[::4]
    images = np.stack([_short_side_crop(p, 256, 224) for p in get(chosen)])
    write_npz(out / source.files[0].path, {"images": images, "labels": np.arange(0, 1000, 4, dtype=np.int64),
                                           "wnids": np.array([f[:9] for f in chosen])})
