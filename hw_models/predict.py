"""Per-device latency predictors over operator features (hw_models.features), saved as small versioned JSON.

`LayerwisePredictor`: an additive model (latency = Σ over operator kinds and liveness of count, MFLOPs and MB
moved times a non-negative per-device cost, fitted for relative error, so it extrapolates to other spaces the way
layer costs add up) times a learned correction exp(MLP(log features), inputs clipped to the fit's range) for what
does not add up (fusion, dead-code elimination, parallel branches, operators that read shared tensors).
`FewShotPredictor`: the earlier few-shot method (kept as a baseline of `zsdist bench latency`; new devices are fitted
by hw_models.meta): from ≤ 20 measured networks, the log-space average of the regressions of FAMILIES that nested
leave-one-out cannot tell from the best: non-negative costs of the operators it runs ("kernels"), or a ridge
regression on fitted predictors of other devices, the network's total work and its operators per kind ("work").
Every saved kind tells which features of a network lie beyond the networks it was fitted on (`out_of_range`).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from scipy.optimize import nnls

from hw_models.errors import HardwareModelError
from hw_models.features import FEATURE_NAMES, FEATURES_VERSION, KINDS, QUANTITIES, STATES

FORMAT = "zsdist-latency-predictor"
FORMAT_VERSION = 6  # 6: kind "meta" (hw_models.meta); few-shot "fewshot" files are no longer written
PARAMS_DIR = Path(__file__).resolve().parent / "params"


def _log_inputs(X: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(X, 0.0))


def _scale(X: np.ndarray) -> np.ndarray:
    """Column spreads for standardising, 1 where a column is constant up to rounding (e.g. the classifier's
    work, recovered as 5·a − 4·b by the NB201 fast path): dividing by such a spread would blow it up."""
    std = X.std(0)
    return np.where(std > 1e-9 * (1.0 + np.abs(X).mean(0)), std, 1.0)


@dataclass(frozen=True)
class LayerwisePredictor:
    device: str
    additive: np.ndarray  # intercept, then one cost per feature (ms per op / per MFLOP / per MB)
    mean: np.ndarray  # standardisation of log1p(features) for the correction
    std: np.ndarray
    low: np.ndarray  # the correction's inputs are clipped to the range the fit networks spanned: beyond it (other
    high: np.ndarray  # spaces, larger inputs) a tanh layer would extrapolate where no fit has checked it
    mlp: tuple[np.ndarray, ...]  # W1, b1, W2, b2 (one hidden tanh layer)
    fit: dict = field(default_factory=dict)  # what it was fitted on and how well it did
    kind = "layerwise"

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Latency (ms) of each feature row."""
        X = np.atleast_2d(X)
        base = np.maximum(self.additive[0] + X @ self.additive[1:], FLOOR_MS)
        return base * np.exp(_mlp(self.mlp, np.clip((_log_inputs(X) - self.mean) / self.std, self.low, self.high)))

    def out_of_range(self, x: np.ndarray) -> list[str]:
        """Features of one network beyond the fit networks' range (kept, standardised, as `low` and `high`)."""
        return beyond(x, np.expm1(self.low * self.std + self.mean), np.expm1(self.high * self.std + self.mean))

    def to_dict(self) -> dict:
        return {"additive": self.additive.tolist(), "mean": self.mean.tolist(), "std": self.std.tolist(),
                "low": self.low.tolist(), "high": self.high.tolist(), "mlp": [w.tolist() for w in self.mlp]}

    @classmethod
    def from_dict(cls, device: str, d: dict, fit: dict) -> LayerwisePredictor:
        return cls(device, np.array(d["additive"]), np.array(d["mean"]), np.array(d["std"]), np.array(d["low"]),
                   np.array(d["high"]), tuple(np.array(w) for w in d["mlp"]), fit)


@dataclass(frozen=True)
class FamilyFit:
    """One regression of a few-shot fit: its family (one of FAMILIES), intercept + one weight per column of
    `_regressors`, and the range its regressors are clipped to: regressors on the bases to what the 20-odd fitted
    networks spanned, as a line fitted on so few must not extrapolate (e.g. a base's near-zero guess for a dead
    network); kernel counts are not clipped (empty range), as costs per operator extrapolate."""

    family: str
    weights: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def predict(self, columns: np.ndarray | None, X: np.ndarray) -> np.ndarray:
        B = _regressors(columns, X, self.family)
        if self.low.size:
            B = np.clip(B, self.low, self.high)
        return np.maximum(self.weights[0] + B @ self.weights[1:], FLOOR_MS)


@dataclass(frozen=True)
class FewShotPredictor:
    device: str
    bases: tuple[LayerwisePredictor, ...]
    members: tuple[FamilyFit, ...]  # their predictions are averaged in log space
    fit: dict = field(default_factory=dict)
    kind = "fewshot"

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(X)
        columns = _base_columns(self.bases, X, [m.family for m in self.members])
        return np.exp(np.mean([np.log(m.predict(columns, X)) for m in self.members], axis=0))


FLOOR_MS = 1e-3
# Huber loss on log latency, quadratic within ±5 %: tables of phones and boards carry heavy-tailed timing noise,
# and the median-like fit keeps more predictions within ±10 % than a mean fit.
HUBER_DELTA = 0.05


class PredictorKind(Protocol):
    """A kind of predictor: its class rebuilds one from the `params` and `fit` of a saved document."""

    def from_dict(self, device: str, d: dict, fit: dict) -> Any: ...


# Saved kinds by name (hw_models.meta adds "meta"): each has predict, out_of_range, to_dict, from_dict and fit.
PREDICTOR_KINDS: dict[str, PredictorKind] = {"layerwise": LayerwisePredictor}
# A network counts as beyond the fitted ones where a feature leaves their range by more than this share of the
# range (for a feature every fitted network shares: differs from it beyond rounding).
RANGE_MARGIN = 0.1


def beyond(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> list[str]:
    """Names of the features of one network outside [low, high] widened by RANGE_MARGIN of the span."""
    margin = RANGE_MARGIN * (high - low) + 1e-6 * (1.0 + np.maximum(np.abs(low), np.abs(high)))
    return [FEATURE_NAMES[i] for i in np.flatnonzero((x < low - margin) | (x > high + margin))]


def _mlp(params: tuple[np.ndarray, ...], U: np.ndarray) -> np.ndarray:
    w1, b1, w2, b2 = params
    return (np.tanh(U @ w1 + b1) @ w2 + b2).ravel()


def summed(kinds: Sequence[str], states: Sequence[str], quantity: str) -> list[int]:
    """Indices of the features kind.state.quantity over the given kinds and states (summed into one regressor)."""
    return [FEATURE_NAMES.index(f"{k}.{s}.{quantity}") for k in kinds for s in states]


def sums(X: np.ndarray, groups: Sequence[list[int]]) -> np.ndarray:
    """One column per group of feature indices (from `summed`): the group's features summed."""
    return np.stack([X[:, idx].sum(1) for idx in groups], axis=1)


# Total work (count, MFLOPs, MB), live only and in every state: devices that prune dead work and ones that run it
# all.
TOTALS = [summed(KINDS, states, q) for states in (("live",), STATES) for q in QUANTITIES]
# "kernels": the operators a graph compiler runs (live and idle: it drops work that reaches the output only through
# a multiplication by zero, not work on zeros), one regressor per kind with convolutions of every kernel size as
# one, and the joins of branches. Elementwise operators are left out: besides joins they are the ×0 of pruned
# branches. A launch-bound device (a GPU running a TensorRT engine at batch 1) pays about as much per operator
# whatever its size, and 20 networks cannot pin down more per-kind costs.
_RUN = ("live", "idle")
KERNEL_COUNTS = ([summed(("conv1x1", "convkxk", "dwconv"), _RUN, "count")]
                 + [summed((k,), _RUN, "count") for k in ("matmul", "norm", "act", "pool", "softmax")]
                 + [[FEATURE_NAMES.index("join.count")]])
# The operators per kind in every state (a device that runs dead work pays for it). In "work" beside those run (as
# in "kernels"): a device whose latency is a sum of per-operator costs, whether or not it skips dead work.
OPERATOR_COUNTS = [summed((k,), STATES, "count") for k in KINDS]
_COUNTS = KERNEL_COUNTS + OPERATOR_COUNTS
FAMILIES = ("kernels", "work")


def _base_columns(bases: Sequence[LayerwisePredictor], X: np.ndarray, families: Sequence[str]) -> np.ndarray | None:
    """Each base's prediction and the network's total work, computed once for the families that use them (None
    when only "kernels" is fitted, which needs neither)."""
    if all(f == "kernels" for f in families):
        return None
    return np.hstack([b.predict(X)[:, None] for b in bases] + [sums(X, TOTALS)])


def _regressors(columns: np.ndarray | None, X: np.ndarray, family: str) -> np.ndarray:
    """Regressors of a few-shot fit. "work": the `_base_columns` and the operators per kind, for devices like
    some base or unlike every one (compute- or memory-bound ones, ones that run dead work); "kernels": the
    operators run, per kind."""
    if family == "kernels":
        return sums(X, KERNEL_COUNTS)
    return np.c_[columns, sums(X, _COUNTS)]


def fit_additive(X: np.ndarray, y: np.ndarray, relative: bool = True) -> np.ndarray:
    """Intercept + per-feature costs minimising the relative squared error (the ±10 % metric is relative), or the
    absolute one. All are kept non-negative (least squares under that bound), as time is: NB201 cells vary their
    features together, and unbounded costs trade a negative one against a positive one, which networks of other
    spaces, whose features vary apart, turn into negative latency."""
    scale = np.r_[1.0, _scale(X)]
    A = np.c_[np.ones(len(X)), X] / scale
    if relative:
        return nnls(A / y[:, None], np.ones(len(X)), maxiter=50 * A.shape[1])[0] / scale
    return nnls(A, y, maxiter=50 * A.shape[1])[0] / scale


# Candidate corrections (hidden units, weight decay): stiffer for noisy tables (phones), none at all (the additive
# model alone) for tables that add up exactly (simulators).
CORRECTIONS = ((32, 1e-2), (32, 1e-1), (32, 1.0), (0, 0.0))
VALIDATION_SHARE = 0.2


def fit_layerwise(device: str, X: np.ndarray, y: np.ndarray, seed: int = 0, epochs: int = 1500,
                  correction: tuple[int, float] | None = None, fit: dict | None = None) -> LayerwisePredictor:
    """The additive model, then the log-space correction trained on its residuals (full batch, seeded).

    Without a `correction` (hidden units, weight decay), it is chosen from CORRECTIONS by the share within ±10 %
    (then the log RMSE) on a seeded fifth of the fit networks, held out."""
    X, y = _check(X, y)
    scores: dict[tuple[int, float], tuple[float, float]] = {}
    if correction is None:
        held = np.random.default_rng(seed).random(len(y)) < VALIDATION_SHARE
        scores = {c: _score(LayerwisePredictor(device, *_fit(X[~held], y[~held], seed, epochs, *c)).predict(X[held]),
                            y[held]) for c in CORRECTIONS}
        correction = max(scores, key=lambda c: scores[c])
    hidden, weight_decay = correction
    record = {"n": len(y), "hidden": hidden, "epochs": epochs, "weight_decay": weight_decay, "seed": seed,
              "loss": f"huber(delta={HUBER_DELTA}) on log latency", **(fit or {})}
    if scores:
        record["validation"] = [{"hidden": h, "weight_decay": wd, "within10": share, "rmse_log": -neg_rmse}
                                for (h, wd), (share, neg_rmse) in scores.items()]
    return LayerwisePredictor(device, *_fit(X, y, seed, epochs, hidden, weight_decay), record)


def within10(pred: np.ndarray, y: np.ndarray) -> float:
    """Share of predictions within ±10 % of the truth, the issue's accuracy measure for latency."""
    return float(np.mean(np.abs(pred - y) <= 0.1 * y))


def _score(pred: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Share within ±10 %, then minus the log RMSE (it breaks ties where every prediction is within ±10 %)."""
    return within10(pred, y), -float(np.sqrt(np.mean(np.log(pred / y) ** 2)))


def _fit(X: np.ndarray, y: np.ndarray, seed: int, epochs: int, hidden: int, weight_decay: float
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """additive, mean, std, low, high and mlp of a LayerwisePredictor; without hidden units the correction is
    left at zero."""
    additive = fit_additive(X, y)
    base = np.maximum(additive[0] + X @ additive[1:], FLOOR_MS)
    L = _log_inputs(X)
    mean, std = L.mean(0), _scale(L)
    U = (L - mean) / std
    if hidden == 0:
        return (additive, mean, std, U.min(0), U.max(0),
                (np.zeros((X.shape[1], 0)), np.zeros(0), np.zeros((0, 1)), np.zeros(1)))
    generator = torch.Generator().manual_seed(seed)
    u = torch.tensor(U, dtype=torch.float64)
    r = torch.tensor(np.log(y) - np.log(base), dtype=torch.float64)
    w1 = (torch.randn(X.shape[1], hidden, generator=generator, dtype=torch.float64) / np.sqrt(X.shape[1]))
    w2 = torch.zeros(hidden, 1, dtype=torch.float64)
    params = [w1.requires_grad_(), torch.zeros(hidden, dtype=torch.float64, requires_grad=True),
              w2.requires_grad_(), torch.zeros(1, dtype=torch.float64, requires_grad=True)]
    optimiser = torch.optim.Adam(params, lr=3e-3)
    for _ in range(epochs):
        optimiser.zero_grad()
        pred = (torch.tanh(u @ params[0] + params[1]) @ params[2] + params[3]).squeeze(1)
        penalty = weight_decay * (params[0].square().sum() + params[2].square().sum()) / len(r)
        loss = torch.nn.functional.huber_loss(pred, r, delta=HUBER_DELTA) + penalty
        loss.backward()
        optimiser.step()
    return additive, mean, std, U.min(0), U.max(0), tuple(p.detach().numpy().copy() for p in params)


def fit_fewshot(device: str, X: np.ndarray, y: np.ndarray, bases: Sequence[LayerwisePredictor],
                fit: dict | None = None, family: str | None = None) -> FewShotPredictor:
    """Each of FAMILIES (or only the `family` named, for a device whose kind is known) with its ridge strength
    chosen by leave-one-out error of the log latency; the families whose nested leave-one-out error (`_loo`) is
    within one standard error of the best are averaged: 20 networks barely tell apart models of similar error, and
    their average is steadier than either."""
    X, y = _check(X, y)
    if len(y) < 3:
        raise HardwareModelError(f"few-shot fit of '{device}' needs at least 3 measured networks, got {len(y)}")
    families = FAMILIES if family is None else (family,)
    if any(f not in FAMILIES for f in families):
        raise HardwareModelError(f"unknown few-shot family '{family}' (known: {', '.join(FAMILIES)})")
    columns = _base_columns(bases, X, families)  # each base predicts once per fit
    regressors = {f: _regressors(columns, X, f) for f in families}
    errors = {f: _loo(regressors[f], y, f, len(bases)) for f in families}
    best = min(errors, key=lambda f: errors[f].mean())
    bar = errors[best].mean() + errors[best].std(ddof=1) / np.sqrt(len(y))
    chosen = {f: _best_ridge(regressors[f], y, f, len(bases)) for f in families if errors[f].mean() <= bar}
    members = tuple(_family_fit(regressors[f], y, f, ridge, len(bases)) for f, ridge in chosen.items())
    record = {"n": len(y), "members": [{"family": f, "ridge": ridge, "loo_rmse_log_capped": float(np.sqrt(
        errors[f].mean()))} for f, ridge in chosen.items()], **(fit or {})}
    return FewShotPredictor(device, tuple(bases), members, record)


def _family_fit(B: np.ndarray, y: np.ndarray, family: str, ridge: float, n_bases: int) -> FamilyFit:
    weights = _ridge(B, y, ridge, family, n_bases)
    if family == "kernels":
        return FamilyFit(family, weights, np.zeros(0), np.zeros(0))
    return FamilyFit(family, weights, B.min(0), B.max(0))


RIDGES = (1e-3, 1e-2, 1e-1, 1.0, 10.0)


def _ridges(family: str) -> tuple[float, ...]:
    """Ridge strengths tried per family; none in "kernels", whose costs are bounded below by zero instead."""
    return (0.0,) if family == "kernels" else RIDGES


# A held-out network missed by more than 25 % counts as missed by 25 %: one network unlike the other 19 (one that
# does almost no work) must not decide which family ranks the rest.
LOO_CAP = np.log(1.25) ** 2


def _loo(B: np.ndarray, y: np.ndarray, family: str, n_bases: int, ridge: float | None = None) -> np.ndarray:
    """Squared leave-one-out errors of the log latency (comparable across families), capped at LOO_CAP. Without a
    `ridge`, each fit on the others chooses its own by a leave-one-out on those others only (nested): a ridge
    chosen on all 20 networks and scored on them flatters "work", which has five to choose from, over "kernels"
    (on edgegpu it then looked as good as the per-operator costs, which rank the other cells better)."""
    held_out = []
    for i in range(len(y)):
        rest_B, rest_y = np.delete(B, i, 0), np.delete(y, i)
        chosen = _best_ridge(rest_B, rest_y, family, n_bases) if ridge is None else ridge
        held_out.append(_ridge(rest_B, rest_y, chosen, family, n_bases) @ np.r_[1.0, B[i]])
    return np.minimum((np.log(np.maximum(held_out, FLOOR_MS)) - np.log(y)) ** 2, LOO_CAP)


def _best_ridge(B: np.ndarray, y: np.ndarray, family: str, n_bases: int) -> float:
    """The family's ridge strength of least leave-one-out error."""
    ridges = _ridges(family)
    if len(ridges) == 1:
        return ridges[0]
    return min(ridges, key=lambda ridge: _loo(B, y, family, n_bases, ridge).mean())


def _ridge(B: np.ndarray, t: np.ndarray, ridge: float, family: str, n_bases: int) -> np.ndarray:
    """Intercept + weights. "kernels": non-negative costs (`fit_additive`, absolute error). "work": the penalty,
    scaled by each regressor's spread, pulls the weights toward an even blend of the bases' predictions,
    rescaled to the target's mean, and no weight on the work. A regressor constant over the fit networks keeps
    its prior (no cost in "kernels"): they say nothing about it."""
    mean = B.mean(0)
    varied = B.var(0) > 1e-12 * (1.0 + mean ** 2)
    if family == "kernels":
        costs = fit_additive(B[:, varied], t, relative=False)
        w = np.zeros(B.shape[1])
        w[varied] = costs[1:]
        return np.r_[costs[0], w]
    prior = np.zeros(B.shape[1])
    if n_bases:
        prior[:n_bases] = t.mean() / (n_bases * mean[:n_bases])
    Bc, tc = B - mean, t - t.mean()
    V = Bc[:, varied]
    w = prior.copy()
    w[varied] += np.linalg.solve(V.T @ V + ridge * len(t) * np.diag(V.var(0)), V.T @ (tc - Bc @ prior))
    return np.r_[t.mean() - mean @ w, w]


def _check(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(FEATURE_NAMES) or len(X) != len(y):
        raise HardwareModelError(f"fit needs an n×{len(FEATURE_NAMES)} feature matrix and n latencies, got "
                                 f"{X.shape} and {y.shape}")
    if not np.all(np.isfinite(y) & (y > 0)):
        raise HardwareModelError("fit latencies must be finite and positive (drop failed measurements first)")
    return X, y


def document(predictor) -> dict:
    """The saved form of a predictor: format, versions, the fit record and the parameters (never pickle)."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "features_version": FEATURES_VERSION,
            "feature_names": list(FEATURE_NAMES), "device": predictor.device, "kind": predictor.kind,
            "fit": predictor.fit, "params": predictor.to_dict()}


def save(predictor, folder: Path = PARAMS_DIR) -> Path:
    """Write `<folder>/<device>.json`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{predictor.device}.json"
    path.write_text(json.dumps(document(predictor), separators=(",", ":")) + "\n")
    return path


def from_document(doc: dict, source: str):
    """The predictor a document (`document`) describes; errors name its `source` and what is wrong with it."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("format_version") != FORMAT_VERSION:
        raise HardwareModelError(f"{source} is not a {FORMAT} v{FORMAT_VERSION} file")
    if doc.get("features_version") != FEATURES_VERSION or doc.get("feature_names") != list(FEATURE_NAMES):
        raise HardwareModelError(f"{source} was fitted on features v{doc.get('features_version')}, this code "
                                 f"extracts v{FEATURES_VERSION}; refit it")
    if doc.get("kind") not in PREDICTOR_KINDS:
        raise HardwareModelError(f"{source} holds an unknown kind of predictor '{doc.get('kind')}' (known: "
                                 f"{', '.join(PREDICTOR_KINDS)})")
    return PREDICTOR_KINDS[doc["kind"]].from_dict(doc["device"], doc["params"], doc["fit"])


def load(device: str, folder: Path = PARAMS_DIR):
    """The saved predictor of a device in `folder`."""
    path = folder / f"{device}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.json"))) if folder.is_dir() else ""
        raise HardwareModelError(f"no latency predictor for device '{device}' in {folder} "
                                 f"(known: {known or 'none'})")
    try:
        doc = json.loads(path.read_text())
    except ValueError:
        raise HardwareModelError(f"{path} is not a {FORMAT} v{FORMAT_VERSION} file (not JSON)") from None
    return from_document(doc, str(path))


def saved_devices(folder: Path = PARAMS_DIR) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
