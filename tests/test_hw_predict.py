"""Latency predictors: a small fit beats the one-hot baseline, few-shot from 20 cells, JSON round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from hw_models.features import nb201_features
from hw_models.predict import fit_fewshot, fit_layerwise, load, save
from hw_models.tables import hwnb_tables
from zsdist.bench.latency import metrics, one_hot
from zsdist.errors import ZsdistError
from zsdist.spaces import create_space

FIT, TEST = 120, 120


@pytest.fixture(scope="module")
def cells():
    """Operator features of FIT + TEST random NB201 cells (CIFAR-10); the first FIT are for fitting."""
    ids = np.array(create_space("nb201").sample(FIT + TEST, 7))
    ids = np.random.default_rng(7).permutation(ids)
    return ids, np.stack([nb201_features(int(i), "cifar10") for i in ids])


def _table(device: str, ids: np.ndarray) -> np.ndarray:
    return hwnb_tables("cifar10")[device].latency_ms[ids]


@pytest.mark.parametrize("device", ["pixel3", "edgetpu"])
def test_small_fit_beats_the_one_hot_baseline(cells, device):
    ids, F = cells
    y = _table(device, ids)
    ok = ~np.isnan(y)
    fit, test = ok & (np.arange(len(ids)) < FIT), ok & (np.arange(len(ids)) >= FIT)
    H = one_hot(ids)
    w = np.linalg.lstsq(H[fit], y[fit], rcond=None)[0]
    base = metrics(H[test] @ w, y[test])
    ours = metrics(fit_layerwise(device, F[fit], y[fit], epochs=300).predict(F[test]), y[test])
    assert ours[0] > base[0] and ours[2] > base[2], (ours, base)


def test_few_shot_from_20_cells_ranks_the_rest(cells):
    ids, F = cells
    """pixel3 as a new device: 20 of its cells, not in any fit, adapt predictors of raspi4 and edgegpu."""
    bases = [fit_layerwise(d, F[:FIT], _table(d, ids[:FIT]), epochs=300) for d in ("raspi4", "edgegpu")]
    y = _table("pixel3", ids)
    shot, rest = slice(FIT, FIT + 20), slice(FIT + 20, None)
    predictor = fit_fewshot("pixel3", F[shot], y[shot], bases)
    assert predictor.fit["n"] == 20
    adapted, unadapted = predictor.predict(F[rest]), bases[0].predict(F[rest])
    assert spearmanr(adapted, y[rest])[0] > 0.75  # bases fitted on 120 cells only; the bench uses 3,000
    assert metrics(adapted, y[rest])[1] < metrics(unadapted, y[rest])[1] / 2  # RMSE: the new device's scale
    with pytest.raises(ZsdistError, match="at least 3"):
        fit_fewshot("pixel3", F[:2], y[:2], bases)


def test_saved_predictors_load_to_the_same_numbers(cells, tmp_path):
    ids, F = cells
    base = fit_layerwise("raspi4", F[:60], _table("raspi4", ids[:60]), epochs=50, fit={"table": "hw_cifar10"})
    few = fit_fewshot("mycpu", F[60:80], _table("pixel3", ids[60:80]), [base])
    save(base, tmp_path), save(few, tmp_path)
    for original in (base, few):
        loaded = load(original.device, tmp_path)
        assert np.array_equal(loaded.predict(F[80:]), original.predict(F[80:]))
        assert loaded.fit == json.loads(json.dumps(original.fit))
    doc = json.loads((tmp_path / "raspi4.json").read_text())
    assert doc["format"] == "zsdist-latency-predictor" and doc["fit"]["table"] == "hw_cifar10" and doc["fit"]["n"] == 60
    doc["features_version"] = -1
    (tmp_path / "raspi4.json").write_text(json.dumps(doc))
    with pytest.raises(ZsdistError, match="features v-1"):
        load("raspi4", tmp_path)
    with pytest.raises(ZsdistError, match="no latency predictor for device 'nope'"):
        load("nope", tmp_path)
