"""SynFlow (Tanaka et al., NeurIPS 2020): data-free synaptic saliency Σ|θ ⊙ ∂R/∂θ|."""
from __future__ import annotations

import torch
from torch.func import functional_call

from zsdist.proxies.base import register_proxy
from zsdist.proxies.introspect import eval_mode, layer_weights
from zsdist.proxies.probe import Probe


@register_proxy(
    "synflow",
    options={"dtype": "float64", "weights": "|θ|", "input": "ones, one sample", "bn": "eval (init statistics)"},
    reference="Tanaka et al. 2020; Abdelfattah et al. 2021",
)
def synflow(probe: Probe) -> float:
    """R = 1ᵀ f(1; |θ|) in float64, so that huge products stay finite; summed over conv and linear weights.

    |θ| (every floating parameter and buffer) is passed to functional_call, so the network needs no copy."""
    model = probe.model
    state = {n: t.detach().double().abs() for n, t in (*model.named_parameters(), *model.named_buffers())
             if t.is_floating_point()}
    weights = {n: state[n].requires_grad_() for n in layer_weights(model)}
    ones = torch.ones_like(probe.inputs[:1], dtype=torch.float64)
    with eval_mode(model), torch.enable_grad():
        grads = torch.autograd.grad(functional_call(model, state, (ones,)).sum(), list(weights.values()),
                                    allow_unused=True)
    return float(sum((w.detach() * g).abs().sum() for w, g in zip(weights.values(), grads) if g is not None))
