"""The device prior (hw_models.meta): held out of it, a device is ranked from 20 cells better than by least squares
on op counts; the Bayesian update recovers a device the prior knows and weighs noise by evidence; the shipped
prior covers every table; a spike among the measurements weighs little; a device whose latency adds up over
operators is met by the additive model; saved forms load to the same numbers."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from hw_models.meta import GRID, IDEAL, INPUT_NAMES, adapt, adapt_weights, build_prior, load_prior, save_prior
from hw_models.predict import FLOOR_MS, document, from_document
from zsdist.bench.latency import op_counts
from zsdist.hardware.features import space_features
from zsdist.hardware.tables import FAMILIES, distinct_devices, table_for
from zsdist.spaces import create_space

SHOT, POOL = 20, 320


@pytest.fixture(scope="module")
def cells():
    ids = np.array(create_space("nb201").sample(POOL, 5))
    ids = np.random.default_rng(5).permutation(ids)
    return ids, space_features("nb201", ids.tolist(), "cifar10")


def test_a_phone_held_out_with_its_family_ranks_better_than_op_count_least_squares(cells):
    """pixel3, with every phone left out of the prior: 3 draws of 20 cells, each tested on the other 300."""
    ids, F = cells
    prior = load_prior().without(FAMILIES["phone"])
    y = table_for("pixel3", "cifar10").latency_ms[ids]
    H = op_counts(ids)
    rng = np.random.default_rng(0)
    for _ in range(3):
        order = rng.permutation(len(ids))
        shot, test = order[:SHOT], order[SHOT:]
        ours = spearmanr(adapt("pixel3", prior, F[shot], y[shot]).predict(F[test]), y[test])[0]
        lsq = spearmanr(H[test] @ np.linalg.lstsq(H[shot], y[shot], rcond=None)[0], y[test])[0]
        assert ours > lsq and ours > 0.9, (ours, lsq)


def test_a_device_the_prior_knows_is_recovered_from_few_cells(cells):
    """Latency exactly log-linear in the inputs with the weights of a prior device: 20 cells pin it down."""
    ids, F = cells
    prior = load_prior()
    y = np.exp(0.7 + prior.inputs(F) @ prior.weights[list(prior.devices).index("help_gold_6226")])
    predicted = adapt("gold", prior, F[:SHOT], y[:SHOT]).predict(F[SHOT:])
    assert spearmanr(predicted, y[SHOT:])[0] > 0.99 and np.median(np.abs(predicted / y[SHOT:] - 1)) < 0.02


def test_evidence_weighs_noisy_measurements_as_noise(cells):
    ids, F = cells
    prior = load_prior()
    Z = prior.inputs(F[:SHOT])
    exact = np.exp(prior.inputs(F[:SHOT]) @ prior.weights[0])
    noisy = exact * np.exp(np.random.default_rng(1).normal(0, 0.3, SHOT))
    assert adapt_weights(prior, Z, exact).hyper[3] == min(g[3] for g in GRID)
    assert adapt_weights(prior, Z, noisy).hyper[3] >= 3e-2


def test_a_spike_among_the_measurements_weighs_little_and_leaves_the_fit_alone(cells):
    """Student-t noise: one of 20 measurements taken 6× too slow (a device hiccup) gets a weight near 0, the
    others near 1, and the device is still recovered."""
    ids, F = cells
    prior = load_prior()
    y = np.exp(0.7 + prior.inputs(F) @ prior.weights[list(prior.devices).index("help_gold_6226")])
    y *= np.exp(np.random.default_rng(2).normal(0, 0.02, len(y)))
    spiked = y[:SHOT].copy()
    spiked[7] *= 6.0
    a = adapt("gold", prior, F[:SHOT], spiked)
    trust = np.array(a.fit["noise"]["trust"])
    assert trust[7] < 0.1 and np.delete(trust, 7).min() > 0.5, trust
    clean = adapt("gold", prior, F[:SHOT], y[:SHOT]).predict(F[SHOT:])
    predicted = a.predict(F[SHOT:])
    assert np.median(np.abs(predicted / clean - 1)) < 0.03 and spearmanr(predicted, y[SHOT:])[0] > 0.98


def test_the_shipped_prior_covers_every_distinct_table_and_the_ideal_devices():
    prior = load_prior()
    assert prior.devices == distinct_devices() + tuple(f"ideal:{d}" for d in IDEAL)
    assert prior.weights.shape == (len(prior.devices), len(INPUT_NAMES)) and len(prior.fit["sha256_16"]) == 16
    assert set(prior.without(FAMILIES["gpu"]).devices).isdisjoint(FAMILIES["gpu"])


def test_a_built_prior_saves_and_loads_to_the_same_numbers(cells, tmp_path):
    ids, F = cells
    tables = [(d, table_for(d, "cifar10").latency_ms[ids]) for d in ("raspi4", "fpga", "edgegpu")]
    built = build_prior(F, tables, {"cells": len(ids)})
    loaded = load_prior(save_prior(built, tmp_path / "prior.json"))
    for name in ("mean", "scale", "low", "high", "weights"):
        assert np.array_equal(getattr(loaded, name), getattr(built, name))
    assert loaded.devices == built.devices and loaded.fit["cells"] == len(ids)


def test_a_device_that_adds_up_over_operators_is_met_by_the_additive_model_and_saves_with_it(cells):
    """fpga (a simulator: latency is a sum of per-operator costs), every accelerator left out of the prior: the
    blend goes to the additive model and 20 cells rank the other 300 as the table does; a log-linear device keeps
    most of the prior's model. Saved and loaded, the device predicts the same numbers; one saved before the blend
    existed is the prior's model alone."""
    ids, F = cells
    prior = load_prior().without(FAMILIES["accelerator"])
    y = table_for("fpga", "cifar10").latency_ms[ids]
    fitted = adapt("fpga", prior, F[:SHOT], y[:SHOT])
    assert fitted.blend >= 0.8 and fitted.fit["additive"]["blend"] == fitted.blend
    assert spearmanr(fitted.predict(F[SHOT:]), y[SHOT:])[0] > 0.99
    loaded = from_document(document(fitted), "memory")
    assert np.array_equal(loaded.predict(F[SHOT:]), fitted.predict(F[SHOT:]))
    old = document(fitted)
    del old["params"]["additive"], old["params"]["blend"]
    prior_only = np.exp(fitted.intercept + prior.inputs(F[SHOT:]) @ fitted.weights)
    assert np.allclose(from_document(old, "memory").predict(F[SHOT:]), np.maximum(prior_only, FLOOR_MS))
    gold = np.exp(0.7 + prior.inputs(F) @ prior.weights[list(prior.devices).index("help_gold_6226")])
    assert adapt("gold", prior, F[:SHOT], gold[:SHOT]).blend <= 0.3
