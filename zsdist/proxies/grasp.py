"""GraSP (Wang et al. 2020) as a zero-cost proxy: −Σ θ ⊙ (H g), with H the loss Hessian and g the loss gradient.

g is the shared train pass's gradient; H g is one Hessian-gradient product, the gradient of gᵀ∇L(θ) taken through
a second-order graph of the same train-mode forward, so no Hessian is ever formed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from zsdist.proxies.base import register_proxy
from zsdist.proxies.gradient import layer_weights
from zsdist.proxies.probe import Probe


@register_proxy(
    "grasp",
    needs=("grads",),
    options={"bn": "train", "loss": "cross-entropy, batch mean", "weights": "conv + linear layer weights",
             "saliency": "−θ ⊙ Hg", "temperature": "1"},
    reference="Wang et al. 2020; Abdelfattah et al. 2021",
)
def grasp(probe: Probe) -> float:
    """Gradient signal preservation: how removing each weight changes the gradient norm, summed over the network."""
    grads = probe["grads"]
    model = probe.copy_model().train()
    weights = {n: w for n, w in layer_weights(model).items() if n in grads}
    if not weights:
        raise ValueError("grasp needs conv or linear weights that the loss reaches")
    loss = F.cross_entropy(model(probe.inputs), probe.labels)
    loss_grads = torch.autograd.grad(loss, list(weights.values()), create_graph=True)
    dot = sum((grads[n] * g).sum() for n, g in zip(weights, loss_grads))
    hessian_grads = torch.autograd.grad(dot, list(weights.values()), allow_unused=True)
    return float(-sum((w.detach().double() * hg.double()).sum()
                      for w, hg in zip(weights.values(), hessian_grads) if hg is not None))
