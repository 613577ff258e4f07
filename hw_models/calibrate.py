"""The recipe that fits the saved HW-NAS-Bench predictors, shared by `zsdist bench latency` and
`python -m hw_models.calibrate` (which rewrites hw_models/params/<device>.json)."""
from __future__ import annotations

import hashlib

import numpy as np

from hw_models.features import space_features
from hw_models.predict import LayerwisePredictor, fit_layerwise, save
from hw_models.tables import HWNB_DEVICES, HWNB_FILES, HWNB_FOLDER, hwnb_tables

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


def main() -> None:
    fit_ids, _ = nb201_split()
    features = space_features(SPACE, fit_ids.tolist(), DATASET)
    for device in HWNB_DEVICES:
        print(save(fit_table_device(device, fit_ids, features)))


if __name__ == "__main__":
    main()
