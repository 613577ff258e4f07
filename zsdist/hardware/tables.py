"""Published per-cell latency tables for NB201: HW-NAS-Bench (6 devices, 3 datasets) and HELP (27 devices).

Both files list cells in the official NB201 index order; rows are keyed here by zsdist's own NB201 arch_id
(parsed from each row's architecture), so a lookup never depends on that order.
"""
from __future__ import annotations

import ast
import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zsdist.errors import ZsdistError
from zsdist.settings import read_table
from zsdist.spaces import create_space
from zsdist.spaces.nb201 import EDGES
from zsdist.store import Store

HWNB_FOLDER = "hw_nas_bench"
HWNB_FILES = {"cifar10": "hw_cifar10.csv", "cifar100": "hw_cifar100.csv", "imagenet16_120": "hw_ImageNet16-120.csv"}
HWNB_DEVICES = ("edgegpu", "raspi4", "edgetpu", "pixel3", "eyeriss", "fpga")
HWNB_ENERGY = ("edgegpu", "eyeriss", "fpga")
HELP_FILE = "help_latency/nb201_help_latency.csv"
HELP_DATASET = "cifar10"  # HELP's NB201 tables are CIFAR-10 networks (their eyeriss/fpga columns equal HW-NAS-Bench's)

# NASLib tuples (HW-NAS-Bench `net`) index ops in this order and list edges as (source, target) over nodes 1..4.
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NASLIB_EDGES = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))


def naslib_to_arch(net: tuple[int, ...] | str) -> str:
    """A NASLib op tuple (or its printed form) as the NB201 arch string."""
    ops = ast.literal_eval(net) if isinstance(net, str) else tuple(net)
    if len(ops) != 6 or not all(isinstance(o, int) and 0 <= o < len(NASLIB_OPS) for o in ops):
        raise ZsdistError(f"bad NASLib NB201 tuple {net!r}: expected six op indices 0..4")
    by_edge = {edge: NASLIB_OPS[o] for edge, o in zip(NASLIB_EDGES, ops)}
    # zsdist's EDGES are (target, source) over nodes 0..3; NASLib numbers the same nodes 1..4.
    nodes = []
    for target in (1, 2, 3):
        nodes.append("|" + "|".join(f"{by_edge[(src + 1, t + 1)]}~{src}" for t, src in EDGES if t == target) + "|")
    return "+".join(nodes)


@dataclass(frozen=True)
class Table:
    """One device's column: values by NB201 arch_id (NaN where the source has no valid measurement)."""

    device: str
    dataset: str
    file: str  # in the reference-data layout, or the user's file
    column: str
    latency_ms: np.ndarray
    energy_mj: np.ndarray | None
    energy_column: str | None = None

    def details(self) -> str:
        return json.dumps({"table": self.file, "column": self.column, "energy_column": self.energy_column,
                           "batch_size": 1}, sort_keys=True)


def _arch_ids(archs: list[str], file: str) -> np.ndarray:
    space = create_space("nb201")
    ids = np.array([space.parse(a) for a in archs])
    if len(set(ids.tolist())) != space.size:
        raise ZsdistError(f"latency table {file} does not list each of the {space.size:,} NB201 cells exactly once")
    return ids


def _by_id(ids: np.ndarray, values: list) -> np.ndarray:
    out = np.full(len(ids), np.nan)
    column = np.array([np.nan if v is None else float(v) for v in values])
    out[ids] = np.where(column > 0, column, np.nan)  # HW-NAS-Bench marks failed edgetpu compilations with -1
    return out


@functools.cache
def hwnb_tables(dataset: str) -> dict[str, Table]:
    """HW-NAS-Bench tables of one dataset, by device."""
    if dataset not in HWNB_FILES:
        raise ZsdistError(f"HW-NAS-Bench has no dataset '{dataset}' (known: {', '.join(HWNB_FILES)})")
    rel = f"{HWNB_FOLDER}/{HWNB_FILES[dataset]}"
    data = read_table(rel).to_pydict()
    ids = _arch_ids([naslib_to_arch(n) for n in data["net"]], rel)
    tables = {}
    for device in HWNB_DEVICES:
        energy = f"{device}_energy" if device in HWNB_ENERGY else None
        tables[device] = Table(device, dataset, rel, f"{device}_latency", _by_id(ids, data[f"{device}_latency"]),
                               _by_id(ids, data[energy]) if energy else None, energy)
    return tables


def _help_columns(path: Path) -> dict[str, list]:
    """A user's HELP data: the layout table (CSV/Parquet), or HELP's own per-device latency lists (a folder of
    <device>.pt files such as HELP's data/nasbench201/latency, or one such file)."""
    from zsdist.refdata.convert import help_latency_columns, nb201_arch_strings
    from zsdist.refdata.formats import read_table_file

    if path.suffix.lower() in (".csv", ".parquet"):
        return read_table_file(path, {"arch_str"}, "HELP").to_pydict()
    files = sorted(path.glob("*.pt")) if path.is_dir() else [path]
    if not files:
        raise ZsdistError(f"{path} holds no HELP latency lists (<device>.pt)")
    return {"arch_str": nb201_arch_strings(), **help_latency_columns({f.stem: f for f in files})}


@functools.cache
def help_tables(path: str | None = None) -> dict[str, Table]:
    """HELP tables (CIFAR-10 NB201 networks) from the reference data or a user's `path`, by device name
    `help_<column without _ms>`."""
    data = _help_columns(Path(path)) if path else read_table(HELP_FILE).to_pydict()
    file = path or HELP_FILE
    ids = _arch_ids(data["arch_str"], file)
    return {f"{c[:-3]}": Table(c[:-3], HELP_DATASET, file, c, _by_id(ids, data[c]), None)
            for c in data if c.startswith("help_") and c.endswith("_ms")}


HELP_DEVICES = ("help_1080ti_1", "help_1080ti_32", "help_1080ti_256", "help_2080ti_1", "help_2080ti_32",
                "help_2080ti_256", "help_titan_rtx_1", "help_titan_rtx_32", "help_titan_rtx_256", "help_titanx_1",
                "help_titanx_32", "help_titanx_256", "help_titanxp_1", "help_titanxp_32", "help_titanxp_256",
                "help_gold_6226", "help_gold_6240", "help_silver_4114", "help_silver_4210r", "help_raspi4",
                "help_pixel3", "help_fpga", "help_eyeriss", "help_essential_ph_1", "help_pixel2",
                "help_samsung_a50", "help_samsung_s7")


# HELP's raspi4, pixel3, fpga and eyeriss columns equal HW-NAS-Bench's CIFAR-10 tables: one device, two names.
HELP_COPIES = {"help_raspi4": "raspi4", "help_pixel3": "pixel3", "help_fpga": "fpga", "help_eyeriss": "eyeriss"}
# Families of the 29 distinct devices: holding out a whole family keeps close siblings (one GPU at three batch
# sizes, or a phone like the held-out one) out of meta-training. edgegpu is a GPU (Jetson TX2), raspi4 a CPU (ARM).
FAMILIES = {
    "gpu": ("edgegpu",) + tuple(d for d in HELP_DEVICES if d.startswith(("help_1080ti", "help_2080ti", "help_titan"))),
    "cpu": ("raspi4", "help_gold_6226", "help_gold_6240", "help_silver_4114", "help_silver_4210r"),
    "phone": ("pixel3", "help_essential_ph_1", "help_pixel2", "help_samsung_a50", "help_samsung_s7"),
    "accelerator": ("edgetpu", "eyeriss", "fpga"),
}


def distinct_devices() -> tuple[str, ...]:
    """The 33 NB201 CIFAR-10 tables as 29 devices: HELP's copies of HW-NAS-Bench tables count once."""
    return HWNB_DEVICES + tuple(d for d in HELP_DEVICES if d not in HELP_COPIES)


def table_batch_size(device: str) -> int:
    """The batch size a table was measured at: HELP's GPU columns end in it, every other table is batch 1."""
    tail = device.rsplit("_", 1)[-1]
    return int(tail) if device in FAMILIES["gpu"] and tail.isdigit() else 1


def table_for(device: str, dataset: str) -> Table | None:
    """The table of a device for a dataset, or None where the source did not measure that dataset."""
    if device in HWNB_DEVICES:
        return hwnb_tables(dataset)[device] if dataset in HWNB_FILES else None
    if device in HELP_DEVICES:
        return help_tables()[device] if dataset == HELP_DATASET else None
    raise ZsdistError(f"no latency table for device '{device}'")


def table_rows(tables: list[Table]) -> list[dict]:
    """`latency` rows (source = table) of every cell of the given tables."""
    space = create_space("nb201")
    archs = [space.arch_str(i) for i in range(space.size)]
    rows = []
    for table in tables:
        details = table.details()
        for arch_id, arch in enumerate(archs):
            value = table.latency_ms[arch_id]
            energy = None if table.energy_mj is None or np.isnan(table.energy_mj[arch_id]) else table.energy_mj[arch_id]
            ok = not np.isnan(value)
            rows.append({"arch_id": arch_id, "arch": arch, "dataset": table.dataset, "device": table.device,
                         "source": "table", "batch_size": 1, "latency_ms": float(value) if ok else None,
                         "energy_mj": None if energy is None else float(energy), "status": "ok" if ok else "error",
                         "error": None if ok else f"no valid measurement in {table.file}:{table.column}",
                         "details": details})
    return rows


# Each published source and the reference files it is read from.
TABLE_SOURCES = {"hw_nas_bench": tuple(f"{HWNB_FOLDER}/{f}" for f in HWNB_FILES.values()), "help": (HELP_FILE,)}


def source_tables(name: str, path: str | None = None) -> list[Table]:
    """Every table of source `name` ('hw_nas_bench', or 'help', which also reads a user's HELP files)."""
    if name == "help":
        return list(help_tables(path).values())
    if name != "hw_nas_bench":
        raise ZsdistError(f"unknown latency table source '{name}' (known: {', '.join(TABLE_SOURCES)})")
    if path:
        raise ZsdistError("--file reads HELP's files (--source help); HW-NAS-Bench's tables come embedded")
    return [t for d in HWNB_FILES for t in hwnb_tables(d).values()]


def ingest_tables(store: Store) -> dict[str, int]:
    """Write every table into the `latency` table (run_id "tables", one file per source); returns row counts."""
    counts = {}
    for key in TABLE_SOURCES:
        rows = table_rows(source_tables(key))
        store.write("latency", rows, key, run_id="tables", space="nb201")
        counts[key] = len(rows)
    return counts
