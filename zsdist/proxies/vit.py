"""TF-TAS (Zhou et al., CVPR 2022): DSS-indicator = synaptic diversity of attention + synaptic saliency of MLPs.

Synaptic diversity: Σ over every multi-head attention weight matrix W (q/k/v and output projection) of
‖W‖_nuc · ‖∂L/∂W‖_nuc, a rank-based measure of how diverse the heads' features are. Synaptic saliency:
Σ over every MLP weight matrix of |W ⊙ ∂L/∂W|. L is the cross-entropy of the job's batch (the shared train pass).
Defined only for networks with timm attention / MLP blocks; others get an error row that says so.
"""
from __future__ import annotations

import torch
from timm.layers import Attention, Mlp

from zsdist.proxies.base import register_proxy
from zsdist.proxies.probe import Probe

_OPTIONS = {"loss": "cross-entropy of the batch", "bn": "train", "layers": "timm Attention (qkv, proj), Mlp (fc1, fc2)"}
_REFERENCE = "Zhou et al. 2022 (TF-TAS)"


def _weights(probe: Probe, kind: type, names: tuple[str, ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight, its loss gradient) of the named linear layers inside every module of `kind`."""
    grads = probe["grads"]
    pairs = [(getattr(module, n).weight, grads[f"{path}.{n}.weight"])
             for path, module in probe.model.named_modules() if isinstance(module, kind) for n in names]
    if not pairs:
        raise ValueError(f"TF-TAS needs transformer blocks ({kind.__name__} modules); this network has none")
    return pairs


def synaptic_diversity(probe: Probe) -> float:
    return float(sum(torch.linalg.matrix_norm(w.detach().double(), "nuc") * torch.linalg.matrix_norm(g.double(), "nuc")
                     for w, g in _weights(probe, Attention, ("qkv", "proj"))))


def synaptic_saliency(probe: Probe) -> float:
    return float(sum((w.detach().double() * g.double()).abs().sum() for w, g in _weights(probe, Mlp, ("fc1", "fc2"))))


@register_proxy("tf_tas", needs=("grads",), options=_OPTIONS, reference=_REFERENCE)
def tf_tas(probe: Probe) -> float:
    """DSS-indicator: attention synaptic diversity plus MLP synaptic saliency (ViTs only)."""
    return synaptic_diversity(probe) + synaptic_saliency(probe)


@register_proxy("tf_tas_diversity", needs=("grads",), options=_OPTIONS, reference=_REFERENCE)
def tf_tas_diversity(probe: Probe) -> float:
    """Σ ‖W‖_nuc·‖∂L/∂W‖_nuc over attention weights (TF-TAS's MSA term alone)."""
    return synaptic_diversity(probe)


@register_proxy("tf_tas_saliency", needs=("grads",), options=_OPTIONS, reference=_REFERENCE)
def tf_tas_saliency(probe: Probe) -> float:
    """Σ |W ⊙ ∂L/∂W| over MLP weights (TF-TAS's MLP term alone)."""
    return synaptic_saliency(probe)
