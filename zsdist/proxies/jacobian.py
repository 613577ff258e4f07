"""Proxies on the input Jacobian: jacob_cov (Mellor et al. 2020, arXiv v1) and EPE-NAS (Lopes et al. 2021).

Both read one quantity, each sample's gradient of the summed logits with respect to its input, taken in one
train-mode backward of the whole batch (so BN's batch statistics couple the samples, as in both papers' code);
that backward reuses the shared train pass's forward (zsdist.proxies.probe).
"""
from __future__ import annotations

import torch

from zsdist.proxies.base import register_proxy
from zsdist.proxies.probe import Probe

K = 1e-5  # the papers' regulariser inside the logarithms
_OPTIONS = {"bn": "train", "jacobian": "∂(Σ_c logit_c)/∂x per sample, one batched backward", "k": str(K)}


@register_proxy("jacob_cov", needs=("input_jacobian",), options=_OPTIONS,
                reference="Mellor et al. 2020 (arXiv:2006.04647v1); Abdelfattah et al. 2021")
def jacob_cov(probe: Probe) -> float:
    """−Σ[log(λ+k) + 1/(λ+k)] over the eigenvalues λ of the Jacobians' correlation: high when inputs stay apart."""
    corr = torch.corrcoef(probe["input_jacobian"].double())
    defined = torch.isfinite(corr).all()  # a constant Jacobian row (output independent of the input): undefined
    eigenvalues = torch.linalg.eigvalsh(torch.where(defined, corr, torch.eye(len(corr), dtype=corr.dtype,
                                                                             device=corr.device)))
    score = -(torch.log(eigenvalues + K) + 1.0 / (eigenvalues + K)).sum()
    return float(torch.where(defined, score, torch.nan))  # the one host synchronisation: the value


def class_score(rows: torch.Tensor, normalise: bool) -> torch.Tensor:
    """Σ_ij log(|corr_ij| + k) over one class's Jacobian correlation matrix (divided by its size if `normalise`)."""
    score = torch.log(torch.corrcoef(rows).abs() + K).sum()
    return score / rows.shape[0] if normalise else score


@register_proxy("epe_nas", needs=("input_jacobian", "num_outputs"),
                options=_OPTIONS | {"classes": "labels of the batch with ≥ 2 samples",
                                    "aggregate": "Σ_c |e_c| if ≤ 100 outputs, else Σ_c,c' |e_c − e_c'| / classes"},
                reference="Lopes et al. 2021")
def epe_nas(probe: Probe) -> float:
    """Per-class correlation of input Jacobians: a network that maps each class's samples apart scores high."""
    jacobian = probe["input_jacobian"].double()
    many = probe["num_outputs"] > 100
    labels = probe.host_labels  # which samples form a class is known on the host: no device round trip
    classes = [c for c, count in enumerate(torch.bincount(labels).tolist()) if count >= 2]
    if not classes:
        raise ValueError("epe_nas needs a class with at least two samples in the batch")
    rows = [torch.nonzero(labels == c).flatten().to(jacobian.device) for c in classes]
    scores = torch.stack([class_score(jacobian[index], many) for index in rows])
    if not many:
        return float(scores.abs().sum())
    return float((scores[:, None] - scores[None, :]).abs().sum() / len(scores))
