"""Per-device latency predictors over operator features (hw_models.features), saved as small versioned JSON.

`LayerwisePredictor`: an additive model (latency = Σ over operator kinds and liveness of count, MFLOPs and MB
moved times a per-device cost, fitted for relative error, so it extrapolates to other spaces the way layer
costs add up) times a learned correction exp(MLP(log features)) for what does not add up (fusion, dead-code
elimination, parallel branches). `FewShotPredictor`: a new device from ≤ 20 measured networks, as a ridge
regression in log space on fitted predictors of other devices and the network's total live work.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from zsdist.errors import ZsdistError
from hw_models.features import FEATURE_NAMES, FEATURES_VERSION

FORMAT = "zsdist-latency-predictor"
FORMAT_VERSION = 1
PARAMS_DIR = Path(__file__).resolve().parent / "params"


def _log_inputs(X: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(X, 0.0))


@dataclass(frozen=True)
class LayerwisePredictor:
    device: str
    additive: np.ndarray  # intercept, then one cost per feature (ms per op / per MFLOP / per MB)
    mean: np.ndarray  # standardisation of log1p(features) for the correction
    std: np.ndarray
    mlp: tuple[np.ndarray, ...]  # W1, b1, W2, b2 (one hidden tanh layer)
    fit: dict = field(default_factory=dict)  # what it was fitted on and how well it did
    kind = "layerwise"

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Latency (ms) of each feature row."""
        X = np.atleast_2d(X)
        base = np.maximum(self.additive[0] + X @ self.additive[1:], _FLOOR_MS)
        return base * np.exp(_mlp(self.mlp, (_log_inputs(X) - self.mean) / self.std))

    def to_dict(self) -> dict:
        return {"additive": self.additive.tolist(), "mean": self.mean.tolist(), "std": self.std.tolist(),
                "mlp": [w.tolist() for w in self.mlp]}

    @classmethod
    def from_dict(cls, device: str, d: dict, fit: dict, folder: Path) -> "LayerwisePredictor":
        return cls(device, np.array(d["additive"]), np.array(d["mean"]), np.array(d["std"]),
                   tuple(np.array(w) for w in d["mlp"]), fit)


@dataclass(frozen=True)
class FewShotPredictor:
    device: str
    bases: tuple[LayerwisePredictor, ...]
    weights: np.ndarray  # intercept, then one weight per regressor of `_base_logs`
    low: np.ndarray  # regressors are clipped to the range the 20-odd fitted networks spanned: a line fitted on
    high: np.ndarray  # so few points must not extrapolate (e.g. a base's near-zero guess for a dead network)
    fit: dict = field(default_factory=dict)
    kind = "fewshot"

    def predict(self, X: np.ndarray) -> np.ndarray:
        B = np.clip(_base_logs(self.bases, np.atleast_2d(X)), self.low, self.high)
        return np.exp(self.weights[0] + B @ self.weights[1:])

    def to_dict(self) -> dict:
        return {"bases": [b.device for b in self.bases], "weights": self.weights.tolist(),
                "low": self.low.tolist(), "high": self.high.tolist()}

    @classmethod
    def from_dict(cls, device: str, d: dict, fit: dict, folder: Path) -> "FewShotPredictor":
        """Bases are loaded by name from the same folder (save them next to the few-shot file)."""
        return cls(device, tuple(load(b, folder) for b in d["bases"]), np.array(d["weights"]), np.array(d["low"]),
                   np.array(d["high"]), fit)


Predictor = LayerwisePredictor | FewShotPredictor
_FLOOR_MS = 1e-3
# Huber loss on log latency, quadratic within ±5 %: tables of phones and boards carry heavy-tailed timing noise,
# and the median-like fit keeps more predictions within ±10 % than a mean fit.
HUBER_DELTA = 0.05
_KINDS = {"layerwise": LayerwisePredictor, "fewshot": FewShotPredictor}


def _mlp(params: tuple[np.ndarray, ...], U: np.ndarray) -> np.ndarray:
    w1, b1, w2, b2 = params
    return (np.tanh(U @ w1 + b1) @ w2 + b2).ravel()


_LIVE = {q: [i for i, n in enumerate(FEATURE_NAMES) if n.endswith(f".live.{q}")] for q in ("mflops", "mbytes", "count")}


def _base_logs(bases: Sequence[LayerwisePredictor], X: np.ndarray) -> np.ndarray:
    """Regressors of a few-shot fit: each base's log prediction, and the log of the live work in total
    (MFLOPs, MB moved, operator count), for devices unlike every base (compute- or memory-bound ones)."""
    totals = [np.log1p(X[:, idx].sum(1)) for idx in _LIVE.values()]
    return np.stack([np.log(b.predict(X)) for b in bases] + totals, axis=1)


def fit_additive(X: np.ndarray, y: np.ndarray, ridge: float = 1e-4) -> np.ndarray:
    """Intercept + per-feature costs minimising the relative squared error (the ±10 % metric is relative)."""
    A = np.c_[np.ones(len(X)), X] / y[:, None]
    scale = np.r_[1.0, np.where(X.std(0) > 0, X.std(0), 1.0)]
    As = A / scale
    w = np.linalg.solve(As.T @ As + ridge * len(X) * np.diag(np.r_[0.0, np.ones(X.shape[1])]), As.T @ np.ones(len(X)))
    return w / scale


def fit_layerwise(device: str, X: np.ndarray, y: np.ndarray, seed: int = 0, hidden: int = 32,
                  epochs: int = 1500, weight_decay: float = 1e-3, fit: dict | None = None) -> LayerwisePredictor:
    """The additive model, then the log-space correction trained on its residuals (full batch, seeded)."""
    X, y = _check(X, y)
    additive = fit_additive(X, y)
    base = np.maximum(additive[0] + X @ additive[1:], _FLOOR_MS)
    L = _log_inputs(X)
    mean, std = L.mean(0), np.where(L.std(0) > 1e-9, L.std(0), 1.0)
    generator = torch.Generator().manual_seed(seed)
    u = torch.tensor((L - mean) / std, dtype=torch.float64)
    r = torch.tensor(np.log(y) - np.log(base), dtype=torch.float64)
    w1 = (torch.randn(X.shape[1], hidden, generator=generator, dtype=torch.float64) / np.sqrt(X.shape[1]))
    w2 = torch.zeros(hidden, 1, dtype=torch.float64)
    params = [w1.requires_grad_(), torch.zeros(hidden, dtype=torch.float64, requires_grad=True),
              w2.requires_grad_(), torch.zeros(1, dtype=torch.float64, requires_grad=True)]
    optimiser = torch.optim.Adam(params, lr=3e-3)
    for _ in range(epochs):
        optimiser.zero_grad()
        pred = (torch.tanh(u @ params[0] + params[1]) @ params[2] + params[3]).squeeze(1)
        loss = torch.nn.functional.huber_loss(pred, r, delta=HUBER_DELTA) + weight_decay * (params[0].square().sum() + params[2].square().sum()) / len(r)
        loss.backward()
        optimiser.step()
    mlp = tuple(p.detach().numpy().copy() for p in params)
    record = {"n": len(y), "hidden": hidden, "epochs": epochs, "weight_decay": weight_decay, "seed": seed,
              "loss": f"huber(delta={HUBER_DELTA}) on log latency",
              **(fit or {})}
    return LayerwisePredictor(device, additive, mean, std, mlp, record)


def fit_fewshot(device: str, X: np.ndarray, y: np.ndarray, bases: Sequence[LayerwisePredictor],
                fit: dict | None = None) -> FewShotPredictor:
    """Ridge regression in log space on the bases' log predictions and the log live work, shrunk toward an
    even blend of the bases; the ridge strength is chosen by leave-one-out error."""
    X, y = _check(X, y)
    if len(y) < 3:
        raise ZsdistError(f"few-shot fit of '{device}' needs at least 3 measured networks, got {len(y)}")
    B = _base_logs(bases, X)
    t = np.log(y)
    loo = {ridge: float(np.mean([(_ridge(np.delete(B, i, 0), np.delete(t, i), ridge) @ np.r_[1.0, B[i]] - t[i]) ** 2
                                 for i in range(len(t))])) for ridge in RIDGES}
    ridge = min(loo, key=loo.get)
    record = {"n": len(y), "ridge": ridge, "loo_rmse_log": loo[ridge] ** 0.5, **(fit or {})}
    return FewShotPredictor(device, tuple(bases), _ridge(B, t, ridge), B.min(0), B.max(0), record)


RIDGES = (1e-3, 1e-2, 1e-1, 1.0, 10.0)


def _ridge(B: np.ndarray, t: np.ndarray, ridge: float) -> np.ndarray:
    """Intercept + weights; the penalty pulls the weights toward an even blend of the bases' predictions."""
    k = B.shape[1]
    prior = np.r_[np.full(k - len(_LIVE), 1.0 / (k - len(_LIVE))), np.zeros(len(_LIVE))]
    Bc, tc = B - B.mean(0), t - t.mean()
    w = prior + np.linalg.solve(Bc.T @ Bc + ridge * np.eye(k), Bc.T @ (tc - Bc @ prior))
    return np.r_[t.mean() - B.mean(0) @ w, w]


def _check(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(FEATURE_NAMES) or len(X) != len(y):
        raise ZsdistError(f"fit needs an n×{len(FEATURE_NAMES)} feature matrix and n latencies, got {X.shape} "
                          f"and {y.shape}")
    if not np.all(np.isfinite(y) & (y > 0)):
        raise ZsdistError("fit latencies must be finite and positive (drop failed measurements first)")
    return X, y


def save(predictor: Predictor, folder: Path = PARAMS_DIR) -> Path:
    """Write `<device>.json`: format, versions, the fit record and the parameters (never pickle)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{predictor.device}.json"
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "features_version": FEATURES_VERSION,
           "feature_names": list(FEATURE_NAMES), "device": predictor.device, "kind": predictor.kind,
           "fit": predictor.fit, "params": predictor.to_dict()}
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    return path


def load(device: str, folder: Path = PARAMS_DIR) -> Predictor:
    """The saved predictor of a device; errors name the file and what is wrong with it."""
    path = folder / f"{device}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.json"))) if folder.is_dir() else ""
        raise ZsdistError(f"no latency predictor for device '{device}' in {folder} (known: {known or 'none'})")
    doc = json.loads(path.read_text())
    if doc.get("format") != FORMAT or doc.get("format_version") != FORMAT_VERSION:
        raise ZsdistError(f"{path} is not a {FORMAT} v{FORMAT_VERSION} file")
    if doc.get("features_version") != FEATURES_VERSION or doc.get("feature_names") != list(FEATURE_NAMES):
        raise ZsdistError(f"{path} was fitted on features v{doc.get('features_version')}, this code extracts "
                          f"v{FEATURES_VERSION}; refit it (python -m hw_models.calibrate)")
    return _KINDS[doc["kind"]].from_dict(device, doc["params"], doc["fit"], folder)


def saved_devices(folder: Path = PARAMS_DIR) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
