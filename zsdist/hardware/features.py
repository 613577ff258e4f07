"""Operator features (hw_models.features) of a space's architectures: inputs at the dataset's resolution, a cache
of every architecture's vector, and NB201's fast path. The network-level extraction knows no spaces; this is where
zsdist's spaces, datasets and networks meet it."""
from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from hw_models.features import FEATURE_NAMES, FEATURES_VERSION, aggregate, extract, network_features
from zsdist.data import DATASETS
from zsdist.networks.nb201 import NB201Network
from zsdist.spaces import create_space
from zsdist.spaces.nb201 import decode


def input_shape(dataset: str, batch_size: int = 1) -> tuple[int, int, int, int]:
    """N×3×R×R at the dataset's resolution."""
    resolution = DATASETS.get(dataset).resolution
    return (batch_size, 3, resolution, resolution)


def space_features(space: str, arch_ids: Sequence[int], dataset: str, batch_size: int = 1,
                   cache: bool = True) -> np.ndarray:
    """Feature vectors of many architectures of a space (rows follow `arch_ids`).

    Extraction costs ~30 ms a network, so vectors are kept in one .npy per (space, dataset, batch) under
    $ZSDIST_CACHE (default ~/.cache/zsdist), filled in as architectures are asked for.
    """
    spec = create_space(space)
    path = _cache_dir() / f"features-v{FEATURES_VERSION}-{space}-{dataset}-b{batch_size}.npy"
    table = np.full((spec.size, len(FEATURE_NAMES)), np.nan)
    if cache and path.is_file():
        stored = np.load(path)
        if stored.shape == table.shape:
            table = stored
    missing = [a for a in arch_ids if np.isnan(table[a, 0])]
    for arch_id in missing:
        table[arch_id] = arch_features(space, arch_id, dataset, batch_size)
    if cache and missing:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, table)
        os.replace(tmp, path)
    return table[np.asarray(arch_ids, dtype=np.int64)]


def arch_features(space: str, arch_id: int, dataset: str, batch_size: int = 1) -> np.ndarray:
    """One architecture's feature vector, built at a fixed seed (NB201 cells through their fast path)."""
    torch.manual_seed(0)
    if space == "nb201":
        return nb201_features(arch_id, dataset, batch_size)
    return network_features(create_space(space).build(arch_id, dataset), input_shape(dataset, batch_size))


def _cache_dir() -> Path:
    return Path(os.environ.get("ZSDIST_CACHE", Path.home() / ".cache" / "zsdist"))


def nb201_features(arch_id: int, dataset: str, batch_size: int = 1) -> np.ndarray:
    """The features of an NB201 network, ~4× faster than building it: from the same cell in a 1-cell-per-stage
    skeleton. When every cell passes data on (its output is not all zero), each of the 5 cells of a stage has
    the same operator records and the skeleton's own operators are live, so f(5 cells) = 5·f(1 cell) − 4·S with
    S the skeleton's vector; a disconnected cell couples the cells' states, and such networks are built whole.
    tests/test_hw_features.py checks the identity against whole networks.
    """
    shape = input_shape(dataset, batch_size)
    classes = create_space("nb201").num_classes(dataset)
    torch.manual_seed(0)
    small = NB201Network(decode(arch_id), classes, cells_per_stage=1)
    records = extract(small, torch.randn(shape, generator=torch.Generator().manual_seed(0)))
    if records[0].state != "live":  # the stem's work reaches the output only through every cell
        torch.manual_seed(0)
        return network_features(NB201Network(decode(arch_id), classes), shape)
    return 5 * aggregate(records) - 4 * _nb201_skeleton(dataset, batch_size)


@functools.cache
def _nb201_skeleton(dataset: str, batch_size: int) -> np.ndarray:
    """S from one connected reference cell (all 3×3 convs): S = (5·f(1 cell) − f(5 cells)) / 4."""
    shape = input_shape(dataset, batch_size)
    ops = ("nor_conv_3x3",) * 6
    classes = create_space("nb201").num_classes(dataset)
    one = network_features(NB201Network(ops, classes, cells_per_stage=1), shape)
    five = network_features(NB201Network(ops, classes), shape)
    return (5 * one - five) / 4
