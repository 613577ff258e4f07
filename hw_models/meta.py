"""Few-shot latency for a device no table has: a prior over devices, meta-learned from the device tables.

The model, per device, in log space: log latency = b + w · z(x) + noise, where z(x) are the network's standardised
inputs (INPUT_NAMES: the log of every operator feature, and the log and plain value of a few sums of them, such as
the kernels a runtime launches or the FLOPs that reach the output). Meta-training fits w on the whole table of
each known device; those weights, and those of a few idealised devices (latency proportional to one kind of work:
kernels launched, FLOPs, bytes, operators on the critical path), give the prior over a new device's w: their mean,
and their covariance (rank at most the number of devices) widened by isotropic terms, one for the operator
features and one for the sums, so that a device unlike every table can still be fitted. Adapting to a new device
is Bayesian linear regression on its few measured networks, the intercept left free, averaged over a grid of the
prior's scale, the two widths and the noise, each point weighted by the evidence (marginal likelihood) of the
device's own measurements: a device close to the tables keeps a tight prior, one unlike them widens it, with no
held-out networks to spare. The noise is Student-t rather than Gaussian: device tables hold a few measurements
that are spikes (1-2 % of a phone's cells lie beyond 3 σ of a fit on thousands), and one of them among 20 would
otherwise pull the whole fit; each measurement's weight says how much the fit believed it.

Beside it, a second model: latency adding up over operators, least squares in ms on the count of operators of each
kind the network builds. Simulators and GPUs at large batches follow it closely, which the log-linear prior only
approximates, and no table teaches the prior a sum. The device's prediction blends the two in log space with the
weight that predicts each measured network best when it is left out (stacking); a device unlike a sum keeps the
prior alone.
"""
from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import product
from pathlib import Path

import numpy as np

from hw_models.errors import HardwareModelError
from hw_models.features import FEATURE_NAMES, FEATURES_VERSION, KINDS, QUANTITIES
from hw_models.predict import (
    FLOOR_MS,
    KERNEL_COUNTS,
    OPERATOR_COUNTS,
    PARAMS_DIR,
    PREDICTOR_KINDS,
    TOTALS,
    beyond,
    sums,
)

PRIOR_FORMAT = "zsdist-device-prior"
PRIOR_VERSION = 1
PRIOR_FILE = PARAMS_DIR / "meta" / "prior.json"

# Sums of features that idealised devices pay for: the kernels a graph runtime launches (operators run, live or
# idle, and branch joins: hw_models.predict's KERNEL_COUNTS), work live and in every state, and work along the
# critical path.
SUMS = {"kernels": [i for group in KERNEL_COUNTS for i in group]}
SUMS.update(zip(("live.count", "live.mflops", "live.mbytes", "all.count", "all.mflops", "all.mbytes"), TOTALS))
SUMS.update({f"critical.{q}": [FEATURE_NAMES.index(f"critical.{k}.{q}") for k in KINDS] for q in QUANTITIES})
# Inputs: log1p of every feature ("feature" block), then log1p and the plain value of each sum, and the plain kernel
# counts per kind ("sum" block). The plain values put a device whose latency adds up over kernels (log of a sum) in
# first-order reach of a model linear in log space.
KERNEL_KINDS = ("conv", "matmul", "norm", "act", "pool", "softmax", "join")
INPUT_NAMES = (tuple(FEATURE_NAMES) + tuple(f"log.{name}" for name in SUMS) + tuple(f"sum.{name}" for name in SUMS)
               + tuple(f"kernels.{kind}" for kind in KERNEL_KINDS))
N_FEATURES = len(FEATURE_NAMES)
# Idealised devices of the prior: latency proportional to one sum.
IDEAL = ("kernels", "live.mflops", "all.mflops", "live.mbytes", "all.mbytes", "critical.count", "live.count")

# Hyperparameters weighed per device by evidence: scale of the devices' covariance, isotropic prior variance of the
# feature-block and sum-block weights, and the noise variance of log latency. The scale reaches down to 0.03: a
# device whose table is noisy (pixel2: cells of identical features agree at Spearman 0.83) is best served by
# weights near the devices' mean, and at 0.3 the evidence sat on the grid's edge for every draw.
GRID = tuple(product((0.03, 0.1, 0.3, 1.0, 3.0), (1e-6, 1e-4, 1e-3), (1e-6, 1e-3, 1e-2, 1e-1),
                    (1e-4, 1e-3, 1e-2, 3e-2, 1e-1)))
# Student-t noise of log latency, fitted by iteratively reweighted least squares (a Gaussian scale mixture): the
# degrees of freedom, and the iterations (the weights settle to 1e-3 within a handful).
ROBUST_DOF = 4.0
ROBUST_ITERATIONS = 20
# The additive model's inputs are OPERATOR_COUNTS (on NB201 they span the op counts of the six edges); its shares
# in the blend tried against the prior's model:
BLENDS = np.linspace(0.0, 1.0, 11)
WEIGHT_RIDGE = 1e-4  # meta-training fits: tables of 15,625 networks need barely any shrinkage
MIN_NETWORKS = 3


def raw_inputs(X: np.ndarray) -> np.ndarray:
    """The INPUT_NAMES of each network (rows), before standardisation."""
    X = np.maximum(np.atleast_2d(X), 0.0)
    S = sums(X, list(SUMS.values()))
    return np.c_[np.log1p(X), np.log1p(S), S, sums(X, KERNEL_COUNTS)]


def standardisation(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and spread of `raw_inputs` over reference networks; spread 1 where an input does not vary there
    (e.g. matmuls in NB201 cells), so that other spaces can still move it."""
    R = raw_inputs(X)
    std = R.std(0)
    return R.mean(0), np.where(std > 1e-9 * (1.0 + np.abs(R).mean(0)), std, 1.0)


def device_weights(Z: np.ndarray, y: np.ndarray, ridge: float = WEIGHT_RIDGE) -> np.ndarray:
    """w of one device from its table (rows of standardised inputs Z, latencies y), intercept profiled out."""
    ok = np.isfinite(y) & (y > 0)
    Zc = Z[ok] - Z[ok].mean(0)
    t = np.log(y[ok])
    return np.linalg.solve(Zc.T @ Zc + ridge * ok.sum() * np.eye(Z.shape[1]), Zc.T @ (t - t.mean()))


def ideal_weights(Z: np.ndarray, X: np.ndarray) -> np.ndarray:
    """w of the idealised devices (one row per IDEAL sum) over the reference networks X (standardised: Z)."""
    S = sums(np.maximum(X, 0.0), [SUMS[name] for name in IDEAL])
    return np.stack([device_weights(Z, S[:, i]) for i in range(len(IDEAL))])


@dataclass(frozen=True)
class DevicePrior:
    """The meta-learned prior: input standardisation, the range of features it was trained over, and the weights
    of the devices it was trained on."""

    mean: np.ndarray
    scale: np.ndarray
    low: np.ndarray  # raw features: range over the reference networks
    high: np.ndarray
    devices: tuple[str, ...]
    weights: np.ndarray  # one row per device
    fit: dict = field(default_factory=dict)

    def inputs(self, X: np.ndarray) -> np.ndarray:
        return (raw_inputs(X) - self.mean) / self.scale

    def without(self, names: Sequence[str]) -> DevicePrior:
        """The prior as if trained without these devices (leave-one-out evaluation)."""
        keep = [i for i, d in enumerate(self.devices) if d not in set(names)]
        return replace(self, devices=tuple(self.devices[i] for i in keep), weights=self.weights[keep],
                       fit={**self.fit, "left_out": sorted(names)})

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        return self.weights.mean(0), np.cov(self.weights.T)

    def to_dict(self) -> dict:
        return {"format": PRIOR_FORMAT, "version": PRIOR_VERSION, "features_version": FEATURES_VERSION,
                "inputs": list(INPUT_NAMES), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "low": self.low.tolist(), "high": self.high.tolist(), "devices": list(self.devices),
                "weights": self.weights.tolist(), "fit": self.fit}


def save_prior(prior: DevicePrior, path: Path = PRIOR_FILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(prior.to_dict(), separators=(",", ":")) + "\n")
    return path


@functools.cache
def load_prior(path: Path = PRIOR_FILE) -> DevicePrior:
    """The saved prior; its fit record gains the file's digest, which each device adapted under it records."""
    text = path.read_text()
    d = json.loads(text)
    if d.get("format") != PRIOR_FORMAT or d.get("version") != PRIOR_VERSION or d.get("inputs") != list(INPUT_NAMES) \
            or d.get("features_version") != FEATURES_VERSION:
        raise HardwareModelError(f"{path} is not a {PRIOR_FORMAT} v{PRIOR_VERSION} file for features "
                                 f"v{FEATURES_VERSION}; refit it (python -m zsdist.hardware.calibrate)")
    fit = {**d["fit"], "sha256_16": hashlib.sha256(text.encode()).hexdigest()[:16]}
    mean, scale, low, high = (np.array(d[k]) for k in ("mean", "scale", "low", "high"))
    return DevicePrior(mean, scale, low, high, tuple(d["devices"]), np.array(d["weights"]), fit)


def _rounded(values: np.ndarray) -> np.ndarray:
    """8 significant digits: the prior's JSON stays small, and a prior built in memory (the bench's) holds the
    numbers its saved form loads."""
    return np.array([float(f"{v:.8g}") for v in np.ravel(values)]).reshape(np.shape(values))


def build_prior(X: np.ndarray, tables: Sequence[tuple[str, np.ndarray]], fit: dict) -> DevicePrior:
    """Meta-train on the features X of reference networks and (device, latencies of those networks, NaN where
    not measured) tables: standardise on X, fit each table, and the idealised devices."""
    mean, scale = (_rounded(v) for v in standardisation(X))
    Z = (raw_inputs(X) - mean) / scale
    weights = np.vstack([device_weights(Z, y) for _, y in tables] + [ideal_weights(Z, X)])
    names = tuple(name for name, _ in tables) + tuple(f"ideal:{name}" for name in IDEAL)
    return DevicePrior(mean, scale, X.min(0), X.max(0), names, _rounded(weights), fit)


def _centring(n: int) -> np.ndarray:
    """n × (n−1) orthonormal basis of the vectors summing to zero: projects out the free intercept."""
    q, _ = np.linalg.qr(np.eye(n)[:, :-1] - 1.0 / n)
    return q


@dataclass(frozen=True)
class Adaptation:
    """A new device's weights given its measurements: the posterior mean, averaged over GRID."""

    intercept: float
    weights: np.ndarray
    hyper: tuple[float, float, float, float]  # the most probable grid point
    share: float  # its posterior probability
    trust: np.ndarray  # each measurement's weight under Student-t noise (1 = an ordinary one, → 0 = a spike)


def _gaussian(prior: DevicePrior, Z: np.ndarray, t: np.ndarray, trust: np.ndarray
              ) -> tuple[float, np.ndarray, int, np.ndarray, float]:
    """Bayesian linear regression of t on Z under the prior, measurement i's noise variance divided by trust[i],
    for each hyperparameter point of GRID, averaged with weights proportional to each point's evidence (Bayesian
    model averaging, flat over the grid): steadier than the single most probable point when 20 networks barely
    tell neighbouring points apart. Returns the intercept, the weights, the most probable point, the posterior
    share of each point and the averaged noise variance."""
    mu, C = prior.moments()
    Q = _centring(len(t))
    G, r = Q.T @ Z, Q.T @ (t - Z @ mu)  # centred measurements: the free intercept drops out (REML)
    CGt = C @ G.T
    GCG = G @ CGt
    noise_shape = Q.T @ (Q / trust[:, None])
    feature = np.arange(Z.shape[1]) < N_FEATURES
    GFG, GSG = G[:, feature] @ G[:, feature].T, G[:, ~feature] @ G[:, ~feature].T
    evidence, weights = [], []
    for scale, feature_var, sum_var, noise in GRID:
        K = scale * GCG + feature_var * GFG + sum_var * GSG + noise * noise_shape
        L = np.linalg.cholesky(K)
        alpha = np.linalg.solve(L, r)
        evidence.append(-np.sum(np.log(np.diag(L))) - 0.5 * alpha @ alpha)
        SGt = scale * CGt + np.where(feature, feature_var, sum_var)[:, None] * G.T
        weights.append(mu + SGt @ np.linalg.solve(K, r))
    log_evidence = np.array(evidence)
    share = np.exp(log_evidence - log_evidence.max())
    share /= share.sum()
    w = share @ np.array(weights)
    intercept = float(np.sum(trust * (t - Z @ w)) / np.sum(trust))
    return intercept, w, int(np.argmax(share)), share, float(share @ np.array([g[3] for g in GRID]))


def adapt_weights(prior: DevicePrior, Z: np.ndarray, y: np.ndarray) -> Adaptation:
    """The regression of log y on Z under Student-t noise (ROBUST_DOF), as a Gaussian one whose measurements are
    reweighted by their residuals until the weights settle: a spike among the measurements weighs little."""
    t = np.log(y)
    trust = np.ones(len(t))
    for _ in range(ROBUST_ITERATIONS):
        intercept, w, best, share, noise = _gaussian(prior, Z, t, trust)
        residual = t - intercept - Z @ w
        updated = (ROBUST_DOF + 1) / (ROBUST_DOF + residual**2 / noise)
        if np.max(np.abs(updated - trust)) < 1e-3:
            break
        trust = updated
    return Adaptation(intercept, w, GRID[best], float(share[best]), trust)


def prior_loo(prior: DevicePrior, Z: np.ndarray, t: np.ndarray, a: Adaptation) -> np.ndarray:
    """Each measured network's log latency predicted by the prior's model fitted to the others, minus its own: the
    closed form of leaving one out of a Gaussian regression (the residual of K⁻¹ over its diagonal), at the most
    probable grid point and the measurements' Student-t weights, the intercept under a broad prior."""
    scale, feature_var, sum_var, noise = a.hyper
    mu, C = prior.moments()
    S = scale * C + np.diag(np.where(np.arange(Z.shape[1]) < N_FEATURES, feature_var, sum_var))
    K_inv = np.linalg.inv(Z @ S @ Z.T + np.diag(noise / a.trust) + 1e4)
    return -(K_inv @ (t - Z @ mu)) / np.diag(K_inv)


def additive_fit(counts: np.ndarray, y: np.ndarray, trust: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latency (ms) = c + Σ per-kind cost × operators of that kind, weighted least squares (the Student-t weights of
    the prior's fit, so a spike pulls neither model); returns [c, costs] and each measured network's log latency
    predicted with it left out, minus its own (+inf where the others cannot predict it or predict ≤ 0)."""
    design = np.c_[np.ones(len(y)), counts]
    A = design * np.sqrt(trust)[:, None]
    pinv = np.linalg.pinv(A)
    coef = pinv @ (np.sqrt(trust) * y)
    leverage = np.einsum("ij,ji->i", A, pinv)
    with np.errstate(divide="ignore", invalid="ignore"):
        left_out = y - (y - design @ coef) / (1.0 - leverage)
        loo = np.where((leverage < 1.0 - 1e-9) & (left_out > 0), np.log(left_out / y), np.inf)
    return coef, loo


def blend_weight(prior_residual: np.ndarray, additive_residual: np.ndarray, trust: np.ndarray) -> float:
    """The share of the additive model in the log-space blend (of BLENDS) whose left-out predictions err least,
    each network weighted by its Student-t weight: stacking, with no held-out networks to spare."""
    if not np.all(np.isfinite(additive_residual)):
        return 0.0
    losses = [np.sum(trust * (b * additive_residual + (1.0 - b) * prior_residual) ** 2) for b in BLENDS]
    return round(float(BLENDS[int(np.argmin(losses))]), 2)


@dataclass(frozen=True)
class MetaPredictor:
    """A device fitted from a few measured networks under the device prior (`adapt`)."""

    device: str
    mean: np.ndarray  # input standardisation, copied from the prior so that the file stands alone
    scale: np.ndarray
    intercept: float
    weights: np.ndarray
    low: np.ndarray  # raw features: range over the prior's reference networks and the measured ones
    high: np.ndarray
    fit: dict = field(default_factory=dict)  # the measurements, the prior and the chosen hyperparameters
    additive: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [c, ms per operator of each kind]
    blend: float = 0.0  # the additive model's share in log space (0: the prior's model alone)
    kind = "meta"

    def predict(self, X: np.ndarray) -> np.ndarray:
        Z = (raw_inputs(X) - self.mean) / self.scale
        log_ms = self.intercept + Z @ self.weights
        if self.blend:
            summed_ms = self.additive[0] + sums(np.atleast_2d(X), OPERATOR_COUNTS) @ self.additive[1:]
            log_ms = (1.0 - self.blend) * log_ms + self.blend * np.log(np.maximum(summed_ms, FLOOR_MS))
        return np.maximum(np.exp(log_ms), FLOOR_MS)

    def out_of_range(self, x: np.ndarray) -> list[str]:
        return beyond(x, self.low, self.high)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "intercept": self.intercept,
                "weights": self.weights.tolist(), "low": self.low.tolist(), "high": self.high.tolist(),
                "additive": self.additive.tolist(), "blend": self.blend}

    @classmethod
    def from_dict(cls, device: str, d: dict, fit: dict) -> MetaPredictor:
        """Devices saved before the additive model (no "blend") are the prior's model alone, as they were fitted."""
        return cls(device, np.array(d["mean"]), np.array(d["scale"]), float(d["intercept"]), np.array(d["weights"]),
                   np.array(d["low"]), np.array(d["high"]), fit, np.array(d.get("additive", [])),
                   float(d.get("blend", 0.0)))


PREDICTOR_KINDS["meta"] = MetaPredictor


def adapt(device: str, prior: DevicePrior, X: np.ndarray, y: np.ndarray, fit: dict | None = None) -> MetaPredictor:
    """A new device from the features X and latencies y (ms) of its measured networks."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != N_FEATURES or len(X) != len(y) or len(y) < MIN_NETWORKS:
        raise HardwareModelError(f"adapt needs an n×{N_FEATURES} feature matrix and n ≥ {MIN_NETWORKS} latencies, "
                                 f"got {X.shape} and {y.shape}")
    if not np.all(np.isfinite(y) & (y > 0)):
        raise HardwareModelError("adapt needs finite, positive latencies")
    Z = prior.inputs(X)
    a = adapt_weights(prior, Z, y)
    coef, additive_residual = additive_fit(sums(X, OPERATOR_COUNTS), y, a.trust)
    prior_residual = prior_loo(prior, Z, np.log(y), a)
    blend = blend_weight(prior_residual, additive_residual, a.trust)
    record = {"n": len(y), "prior": {"devices": len(prior.devices), **prior.fit},
              "most_probable": {**dict(zip(("prior_scale", "feature_var", "sum_var", "noise_var"), a.hyper)),
                                "share": a.share},
              "noise": {"kind": "student-t", "dof": ROBUST_DOF, "trust": [round(float(v), 4) for v in a.trust]},
              "additive": {"inputs": "operators per kind, every state", "blend": blend,
                           "loo_rms_log": {"prior": _rms(prior_residual, a.trust),
                                           "additive": _rms(additive_residual, a.trust)}},
              **(fit or {})}
    low, high = np.minimum(prior.low, X.min(0)), np.maximum(prior.high, X.max(0))
    return MetaPredictor(device, prior.mean, prior.scale, a.intercept, a.weights, low, high, record, coef, blend)


def _rms(residual: np.ndarray, trust: np.ndarray) -> float | None:
    """Trust-weighted root mean square of left-out log residuals (None where the model cannot predict one)."""
    return round(float(np.sqrt(np.sum(trust * residual**2) / np.sum(trust))), 6) if np.all(np.isfinite(residual)) \
        else None


def loo_predictions(prior: DevicePrior, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each measured network predicted by the device adapted to the others: what to expect of the unmeasured."""
    return np.array([adapt("loo", prior, np.delete(X, i, 0), np.delete(y, i)).predict(X[i:i + 1])[0]
                     for i in range(len(y))])
