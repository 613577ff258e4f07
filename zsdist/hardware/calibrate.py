"""The recipes that fit the shipped parameters, shared by `zsdist bench latency` and
`python -m zsdist.hardware.calibrate` (which rewrites them): the HW-NAS-Bench predictors
(hw_models/params/<device>.json) and the device prior that `zsdist fewshot` adapts (hw_models/params/meta/prior.json),
meta-trained on every NB201 table."""
from __future__ import annotations

import hashlib

import numpy as np

from hw_models.meta import DevicePrior, build_prior, save_prior
from hw_models.predict import LayerwisePredictor, fit_layerwise, save
from zsdist.hardware.features import space_features
from zsdist.hardware.tables import (
    HELP_FILE,
    HWNB_DEVICES,
    HWNB_FILES,
    HWNB_FOLDER,
    distinct_devices,
    hwnb_tables,
    table_batch_size,
    table_for,
)

SPACE = "nb201"
DATASET = "cifar10"
FIT_CELLS = 3000
SEED = 0


def nb201_split(n_fit: int = FIT_CELLS, seed: int = SEED, size: int = 5**6) -> tuple[np.ndarray, np.ndarray]:
    """n_fit random NB201 arch ids for fitting (sorted) and the rest, chosen by the seed."""
    order = np.random.default_rng(seed).permutation(size)
    return np.sort(order[:n_fit]), np.sort(order[n_fit:])


def ids_digest(ids: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(ids, dtype=np.int64).tobytes()).hexdigest()[:16]


def fit_table_device(device: str, fit_ids: np.ndarray, features: np.ndarray, dataset: str = DATASET,
                     seed: int = SEED) -> LayerwisePredictor:
    """Fit one HW-NAS-Bench device on the cells `fit_ids` (rows of `features`) that the table measured."""
    table = hwnb_tables(dataset)[device]
    y = table.latency_ms[fit_ids]
    ok = ~np.isnan(y)
    record = {"space": SPACE, "dataset": dataset, "table": f"{HWNB_FOLDER}/{HWNB_FILES[dataset]}",
              "column": table.column, "cells": int(ok.sum()), "cell_ids_sha256_16": ids_digest(fit_ids[ok]),
              "split": f"nb201_split(n_fit={len(fit_ids)}, seed={seed})"}
    return fit_layerwise(device, features[ok], y[ok], seed=seed, fit=record)


def cifar10_latency(device: str) -> np.ndarray:
    """A device's CIFAR-10 latency column (ms per NB201 cell): every table device measured CIFAR-10."""
    table = table_for(device, DATASET)
    assert table is not None
    return table.latency_ms


def all_cells() -> np.ndarray:
    """Features of every NB201 cell (CIFAR-10, batch 1)."""
    return space_features(SPACE, list(range(5**6)), DATASET)


def device_prior(features: np.ndarray, devices: tuple[str, ...] | None = None) -> DevicePrior:
    """Meta-train the device prior on the tables of `devices` (default: all 29 distinct ones) over every cell's
    features. Features describe the network (at batch 1); the batch size a table was measured at belongs to the
    device, as in HELP, where a GPU at batch 1, 32 and 256 is three devices: features at batch 256 would put the
    plain FLOP and byte sums of a held-out batch-256 GPU far outside every table's range."""
    devices = distinct_devices() if devices is None else devices
    tables = [(d, cifar10_latency(d)) for d in devices]
    fit = {"space": SPACE, "dataset": DATASET, "cells": 5**6, "feature_batch_size": 1,
           "tables": [f"{HWNB_FOLDER}/{HWNB_FILES[DATASET]}", HELP_FILE],
           "measured_batch_sizes": {d: table_batch_size(d) for d in devices if table_batch_size(d) != 1}}
    return build_prior(features, tables, fit)


def main() -> None:
    fit_ids, _ = nb201_split()
    features = space_features(SPACE, fit_ids.tolist(), DATASET)
    for device in HWNB_DEVICES:
        print(save(fit_table_device(device, fit_ids, features)))
    print(save_prior(device_prior(all_cells())))


if __name__ == "__main__":
    main()
