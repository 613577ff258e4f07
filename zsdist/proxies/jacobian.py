"""Proxies on the input Jacobian: jacob_cov (Mellor et al. 2020, arXiv v1) and EPE-NAS (Lopes et al. 2021).

Both read one quantity, each sample's gradient of the summed logits with respect to its input, taken in one
train-mode backward of the whole batch (so BN's batch statistics couple the samples, as in both papers' code).
"""
from __future__ import annotations

from typing import Any

import torch

from zsdist.proxies.base import register_proxy
from zsdist.proxies.probe import Probe, provides

K = 1e-5  # the papers' regulariser inside the logarithms
_OPTIONS = {"bn": "train", "jacobian": "∂(Σ_c logit_c)/∂x per sample, one batched backward", "k": str(K)}


@provides("input_jacobian", "num_outputs")
def _input_jacobian(probe: Probe, wanted: frozenset[str]) -> dict[str, Any]:
    """N×D input Jacobian rows and the number of outputs (classes) of the network."""
    model = probe.copy_model().train()
    inputs = probe.inputs.clone().requires_grad_(True)
    logits = model(inputs)
    (jacobian,) = torch.autograd.grad(logits.sum(), inputs)
    return {"input_jacobian": jacobian.flatten(1).detach(), "num_outputs": int(logits.shape[-1])}


@register_proxy("jacob_cov", needs=("input_jacobian",), options=_OPTIONS,
                reference="Mellor et al. 2020 (arXiv:2006.04647v1); Abdelfattah et al. 2021")
def jacob_cov(probe: Probe) -> float:
    """−Σ[log(λ+k) + 1/(λ+k)] over the eigenvalues λ of the Jacobians' correlation: high when inputs stay apart."""
    corr = torch.corrcoef(probe["input_jacobian"].double())
    if not torch.isfinite(corr).all():
        return float("nan")  # a constant Jacobian row (output independent of the input): correlation undefined
    eigenvalues = torch.linalg.eigvalsh(corr)
    return float(-(torch.log(eigenvalues + K) + 1.0 / (eigenvalues + K)).sum())


def class_score(rows: torch.Tensor, normalise: bool) -> float:
    """Σ_ij log(|corr_ij| + k) over one class's Jacobian correlation matrix (divided by its size if `normalise`)."""
    score = float(torch.log(torch.corrcoef(rows).abs() + K).sum())
    return score / rows.shape[0] if normalise else score


@register_proxy("epe_nas", needs=("input_jacobian", "num_outputs"),
                options=_OPTIONS | {"classes": "labels of the batch with ≥ 2 samples",
                                    "aggregate": "Σ_c |e_c| if ≤ 100 outputs, else Σ_c,c' |e_c − e_c'| / classes"},
                reference="Lopes et al. 2021")
def epe_nas(probe: Probe) -> float:
    """Per-class correlation of input Jacobians: a network that maps each class's samples apart scores high."""
    jacobian = probe["input_jacobian"].double()
    many = probe["num_outputs"] > 100
    labels = probe.labels
    scores = torch.tensor([class_score(jacobian[labels == c], many)
                           for c in labels.unique() if int((labels == c).sum()) >= 2], dtype=torch.float64)
    if len(scores) == 0:
        raise ValueError("epe_nas needs a class with at least two samples in the batch")
    if not many:
        return float(scores.abs().sum())
    return float((scores[:, None] - scores[None, :]).abs().sum() / len(scores))
