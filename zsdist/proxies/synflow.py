"""SynFlow (Tanaka et al., NeurIPS 2020): data-free synaptic saliency Σ|θ ⊙ ∂R/∂θ|."""
from __future__ import annotations

import torch
from torch import nn

from zsdist.proxies.base import register_proxy
from zsdist.proxies.probe import Probe

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@register_proxy(
    "synflow",
    options={"dtype": "float64", "weights": "|θ|", "input": "ones, one sample", "bn": "eval (init statistics)"},
    reference="Tanaka et al. 2020; Abdelfattah et al. 2021",
)
def synflow(probe: Probe) -> float:
    """R = 1ᵀ f(1; |θ|) in float64, so that huge products stay finite; summed over conv and linear weights."""
    model = probe.copy_model().double().eval()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    ones = torch.ones_like(probe.inputs[:1], dtype=torch.float64)
    model.zero_grad(set_to_none=True)
    model(ones).sum().backward()
    with torch.no_grad():
        return float(sum((m.weight * m.weight.grad).abs().sum() for m in model.modules()
                         if isinstance(m, _LAYERS) and m.weight.grad is not None))
