"""Latency predictors: a small fit beats the one-hot baseline, the earlier few-shot fit from 20 cells (the bench's
baseline), JSON round trip, and the range beyond which a predictor extrapolates."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from hw_models.errors import HardwareModelError
from hw_models.meta import adapt, load_prior
from hw_models.predict import (
    FAMILIES,
    RIDGES,
    _base_columns,
    _loo,
    _regressors,
    fit_additive,
    fit_fewshot,
    fit_layerwise,
    load,
    save,
)
from zsdist.bench.latency import metrics, noise_ceiling, one_hot, retest, twin_measurements, verdict
from zsdist.hardware.features import arch_features, space_features
from zsdist.hardware.tables import hwnb_tables
from zsdist.spaces import create_space

FIT, TEST = 120, 120
CORRECTION = (32, 0.1)  # fixed where the test is not about choosing it: one fit instead of five


@pytest.fixture(scope="module")
def cells():
    """Operator features of FIT + TEST random NB201 cells (CIFAR-10); the first FIT are for fitting."""
    ids = np.array(create_space("nb201").sample(FIT + TEST, 7))
    ids = np.random.default_rng(7).permutation(ids)
    return ids, space_features("nb201", ids.tolist(), "cifar10")


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
    ours = metrics(fit_layerwise(device, F[fit], y[fit], epochs=300, correction=CORRECTION).predict(F[test]), y[test])
    assert ours[0] > base[0] and ours[2] > base[2], (ours, base)


SHOT, REST = slice(FIT, FIT + 20), slice(FIT + 20, None)  # few-shot: 20 cells past the bases' fit ones, the rest


def _bases(cells, devices: tuple[str, ...]) -> list:
    """Layerwise predictors of `devices` fitted on the first FIT cells (the bases a few-shot fit adapts)."""
    ids, F = cells
    return [fit_layerwise(d, F[:FIT], _table(d, ids[:FIT]), epochs=300, correction=CORRECTION) for d in devices]


def test_few_shot_from_20_cells_ranks_the_rest(cells):
    """pixel3 as a new device: 20 of its cells, not in any fit, adapt predictors of raspi4 and edgegpu."""
    ids, F = cells
    bases, y = _bases(cells, ("raspi4", "edgegpu")), _table("pixel3", ids)
    predictor = fit_fewshot("pixel3", F[SHOT], y[SHOT], bases)
    assert predictor.fit["n"] == 20 and {m.family for m in predictor.members} <= set(FAMILIES)
    adapted, unadapted = predictor.predict(F[REST]), bases[0].predict(F[REST])
    assert spearmanr(adapted, y[REST])[0] > 0.75  # bases fitted on 120 cells only; the bench uses 3,000
    assert metrics(adapted, y[REST])[1] < metrics(unadapted, y[REST])[1] / 2  # RMSE: the new device's scale
    with pytest.raises(HardwareModelError, match="at least 3"):
        fit_fewshot("pixel3", F[:2], y[:2], bases)
    with pytest.raises(HardwareModelError, match="unknown few-shot family 'gpu'"):
        fit_fewshot("pixel3", F[SHOT], y[SHOT], bases, family="gpu")


def test_kernels_family_fits_a_launch_bound_gpu(cells):
    """edgegpu (TensorRT on a Jetson TX2, batch 1) pays per operator run, whatever its size: from 20 cells the
    automatic fit keeps the per-operator costs, which rank the rest and extrapolate unclipped. "work" is scored by
    nested leave-one-out, above its error at the ridge that suits all 20 best (what made it look as good)."""
    ids, F = cells
    bases, y = _bases(cells, ("raspi4", "pixel3")), _table("edgegpu", ids)
    auto = fit_fewshot("edgegpu", F[SHOT], y[SHOT], bases)
    kernels = fit_fewshot("edgegpu", F[SHOT], y[SHOT], bases, family="kernels")
    assert "kernels" in [m.family for m in auto.members] and kernels.members[0].low.size == 0
    assert spearmanr(auto.predict(F[REST]), y[REST])[0] > 0.85
    work = _regressors(_base_columns(bases, F[SHOT], ["work"]), F[SHOT], "work")
    nested = _loo(work, y[SHOT], "work", len(bases)).mean()
    assert nested > min(_loo(work, y[SHOT], "work", len(bases), r).mean() for r in RIDGES)


def test_saved_predictors_load_to_the_same_numbers(cells, tmp_path):
    ids, F = cells
    base = fit_layerwise("raspi4", F[:60], _table("raspi4", ids[:60]), epochs=50, correction=CORRECTION,
                         fit={"table": "hw_cifar10"})
    few = adapt("mycpu", load_prior(), F[60:80], _table("pixel3", ids[60:80]))
    save(base, tmp_path), save(few, tmp_path)
    for original in (base, few):
        loaded = load(original.device, tmp_path)
        assert np.array_equal(loaded.predict(F[80:]), original.predict(F[80:]))
        assert loaded.fit == json.loads(json.dumps(original.fit))
    doc = json.loads((tmp_path / "raspi4.json").read_text())
    assert doc["format"] == "zsdist-latency-predictor" and doc["fit"]["table"] == "hw_cifar10" and doc["fit"]["n"] == 60
    doc["features_version"] = -1
    (tmp_path / "raspi4.json").write_text(json.dumps(doc))
    with pytest.raises(HardwareModelError, match="features v-1"):
        load("raspi4", tmp_path)
    with pytest.raises(HardwareModelError, match="no latency predictor for device 'nope'"):
        load("nope", tmp_path)


def test_correction_is_chosen_on_held_out_fit_cells(cells):
    ids, F = cells
    predictor = fit_layerwise("raspi4", F[:FIT], _table("raspi4", ids[:FIT]), epochs=100)
    best = max(predictor.fit["validation"], key=lambda v: (v["within10"], -v["rmse_log"]))
    assert (predictor.fit["hidden"], predictor.fit["weight_decay"]) == (best["hidden"], best["weight_decay"])
    fixed = fit_layerwise("raspi4", F[:FIT], _table("raspi4", ids[:FIT]), epochs=100, correction=(8, 0.5))
    assert fixed.fit["hidden"] == 8 and "validation" not in fixed.fit


def test_an_additive_table_is_met_without_a_correction(cells):
    ids, F = cells
    y = _table("fpga", ids)  # a simulator's table: it adds up over operators
    predictor = fit_layerwise("fpga", F[:FIT], y[:FIT], epochs=100, correction=(0, 0.0))
    assert np.array_equal(predictor.predict(F[FIT:]), predictor.additive[0] + F[FIT:] @ predictor.additive[1:])
    assert np.allclose(predictor.predict(F[FIT:]), y[FIT:], rtol=1e-3)


def test_noise_ceiling_of_a_simulated_table_is_exact_and_of_a_phone_is_not():
    ids = np.arange(0, 15625, 25)
    assert noise_ceiling("fpga", ids) == (1.0, 1.0, 1.0)  # a simulator gives the same numbers twice
    rho, agree, ceiling = noise_ceiling("pixel3", ids)
    assert rho < 0.99 and agree < ceiling < 1.0


def test_retest_pairs_cells_of_identical_features_and_measures_the_table_against_itself():
    features = np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0], [5.0, 6.0], [3.0, 4.0], [1.0, 2.0]])
    twins = twin_measurements(features)
    assert sorted(map(tuple, twins.tolist())) == [(0, 2), (1, 4)]  # the group of cells 0, 2, 5 once, by its first two
    rng = np.random.default_rng(0)
    many = np.repeat(rng.normal(size=(300, 3)), 2, axis=0)
    twins = twin_measurements(many)
    truth = np.exp(many[:, 0])
    assert retest(truth, twins) == 1.0  # a simulator gives identical features one latency
    noisy = truth * np.exp(rng.normal(scale=0.5, size=len(truth)))
    assert 0.3 < retest(noisy, twins) < 0.9


def test_verdict_needs_both_metrics_and_accepts_equal_on_an_exact_baseline():
    assert verdict((0.98, 1.0, 0.9), (0.97, 1.0, 0.8)) == "beats baseline"
    assert verdict((0.96, 1.0, 0.9), (0.97, 1.0, 0.8)) == "DOES NOT beat baseline"
    assert verdict((0.99951, 0.1, 1.0), (0.99949, 0.1, 1.0)) == "equals the exact baseline"
    assert verdict((0.9990, 0.1, 1.0), (0.9995, 0.1, 1.0)) == "DOES NOT beat baseline"


def test_costs_are_non_negative_and_the_correction_stays_in_its_fitted_range(cells):
    ids, F = cells
    assert np.all(fit_additive(F[:FIT], _table("edgegpu", ids[:FIT])) >= 0)  # no negative sums in other spaces
    predictor = fit_layerwise("edgegpu", F[:FIT], _table("edgegpu", ids[:FIT]), epochs=100, correction=CORRECTION)
    far = F[:FIT].max(0, keepdims=True) * 10  # beyond anything the fit spanned, in every feature

    def correction(X: np.ndarray) -> np.ndarray:
        return predictor.predict(X) / (predictor.additive[0] + X @ predictor.additive[1:])

    assert np.allclose(correction(far), correction(far * 10), rtol=1e-12)


def test_a_network_beyond_the_fitted_cells_is_named_out_of_range(cells):
    """The shipped edgegpu predictor was fitted on NB201 cells: another NB201 cell is within its range, a NATS-SSS
    network of 64 channels throughout (four times NB201's first stage) is not."""
    predictor = load("edgegpu")
    assert predictor.out_of_range(cells[1][0]) == []
    out = predictor.out_of_range(arch_features("nats_sss", 32767, "cifar10"))
    assert "convkxk.live.mflops" in out
