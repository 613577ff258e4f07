"""A small real results folder for the analysis tests: NB201 truth, real proxy rows, HW-NAS-Bench latency rows.

Proxy rows come from the real evaluator (params, flops, naswot on a batch of 8 real images); the all-`none` cell
(id 0) gives real status-nan NASWOT rows, and #params ties between cells. Latency rows are the HW-NAS-Bench table
values for the same cells, written through Store as the zsdist.hardware table source writes them (run_id "tables").
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import torch

from zsdist.data import load_batch
from zsdist.proxies import resolve_proxies
from zsdist.proxies.evaluate import evaluate
from zsdist.settings import data_file
from zsdist.spaces import create_space
from zsdist.store import Store
from zsdist.truth import ingest, truth_ids

RUN = "fixture-run"
DATASETS = ("cifar10", "imagenet16_120")
PROXIES = ("params", "flops", "naswot")
N_ARCHS = 40
HW_FILES = {"cifar10": "hw_cifar10.csv", "imagenet16_120": "hw_ImageNet16-120.csv"}
HW_DEVICES = {"raspi4": ("raspi4_latency", None), "edgegpu": ("edgegpu_latency", "edgegpu_energy")}


def fixture_arch_ids() -> list[int]:
    """Cell 0 (all `none`: NASWOT is nan) plus a seeded sample of the space."""
    space = create_space("nb201")
    return sorted({0, *space.sample(N_ARCHS - 1, seed=3)})


def nb201_index_of() -> dict[int, int]:
    space = create_space("nb201")
    with open(data_file("nb201/nb201_accuracy.csv")) as f:
        return {space.parse(r["arch_str"]): int(r["nb201_index"]) for r in csv.DictReader(f)}


def score_rows(space_name: str, ids: list[int], datasets: tuple[str, ...], proxies: tuple[str, ...],
               batch_size: int) -> list[dict]:
    """Rows of the `scores` table from the real evaluator on a real batch of each dataset."""
    space = create_space(space_name)
    resolved = resolve_proxies(list(proxies))
    rows = []
    for dataset in datasets:
        batch = load_batch(dataset, batch_size, 0)
        for arch_id in ids:
            for r in evaluate(lambda: space.build(arch_id, dataset), batch, resolved, 0, "cpu"):
                rows.append({"arch_id": arch_id, "arch": space.arch_str(arch_id), "dataset": dataset,
                             "proxy": r.proxy, "value": r.value, "seconds": r.seconds, "status": r.status,
                             "error": r.error, "batch_size": batch.size, "seed": 0, "device": "cpu",
                             "options": "{}", "version": "test"})
    return rows


def build_results(root: Path) -> list[int]:
    """Write truth, scores and latency under `root`; returns the arch ids."""
    torch.set_num_threads(1)
    store = Store(str(root))
    ingest(store, "nb201")
    space = create_space("nb201")
    ids = fixture_arch_ids()
    store.write("scores", score_rows("nb201", ids, DATASETS, PROXIES, 8), "shard-0", run_id=RUN, space="nb201")
    index = nb201_index_of()
    latency = []
    for dataset, file in HW_FILES.items():
        with open(data_file(f"hw_nas_bench/{file}")) as f:
            table = list(csv.DictReader(f))
        for arch_id in ids:
            row = table[index[arch_id]]
            for device, (lat, energy) in HW_DEVICES.items():
                latency.append({"arch_id": arch_id, "arch": space.arch_str(arch_id), "dataset": dataset,
                                "device": device, "source": "table", "batch_size": 1,
                                "latency_ms": float(row[lat]), "energy_mj": float(row[energy]) if energy else None,
                                "status": "ok", "error": None, "details": None})
    store.write("latency", latency, "hw_nas_bench", run_id="tables", space="nb201")
    return ids


_BUILT: dict[str, Path] = {}


def shared_results(tmp_path_factory) -> Path:
    """The fixture folder, built once per test session and shared by the analysis and report tests."""
    if "root" not in _BUILT:
        root = tmp_path_factory.mktemp("analysis") / "results"
        build_results(root)
        _BUILT["root"] = root
    return _BUILT["root"]


VIT_RUN = "vit-run"
VIT_DATASETS = ("cifar100_224", "flowers102", "imagenet")  # real, stand-in and the supernet's ImageNet images


def vit_results(tmp_path_factory) -> Path:
    """AutoFormer-Tiny with its whole ground truth, #params of six subnets that have truth on three datasets and
    of two sampled subnets (no truth) on chaoyang; no latency. Built once per test session."""
    if "vit" not in _BUILT:
        torch.set_num_threads(1)
        root = tmp_path_factory.mktemp("vit") / "results"
        store = Store(str(root))
        ingest(store, "autoformer_tiny")
        ids = truth_ids("autoformer_tiny")[:6]
        sampled = [a for a in create_space("autoformer_tiny").sample(4, seed=1) if a not in ids][:2]
        rows = score_rows("autoformer_tiny", ids, VIT_DATASETS, ("params",), 2)
        rows += score_rows("autoformer_tiny", sampled, ("chaoyang",), ("params",), 2)
        store.write("scores", rows, "shard-0", run_id=VIT_RUN, space="autoformer_tiny")
        _BUILT["vit"] = root
    return _BUILT["vit"]


def in_region(truth: dict[int, float], percent: float) -> set[int]:
    """Archs whose rank by truth (1 = best, ties share the best position) is within the top `percent`."""
    keep = math.ceil(len(truth) * percent / 100)
    return {a for a, v in truth.items() if 1 + sum(w > v for w in truth.values()) <= keep}
