"""GraSP (Wang et al. 2020) as a zero-cost proxy: −Σ θ ⊙ (H g), with H the loss Hessian and g the loss gradient.

g is the shared train pass's gradient, taken with a second-order graph; H g is one Hessian-gradient product, the
gradient of gᵀ∇L(θ) through that graph (zsdist.proxies.probe), so no Hessian is ever formed and the forward and
first backward are those every gradient proxy reads.
"""
from __future__ import annotations

from zsdist.proxies.base import register_proxy
from zsdist.proxies.introspect import layer_weights
from zsdist.proxies.probe import Probe


@register_proxy(
    "grasp",
    needs=("grads", "hessian_grads"),
    options={"bn": "train", "loss": "cross-entropy, batch mean", "weights": "conv + linear layer weights",
             "saliency": "−θ ⊙ Hg", "temperature": "1"},
    reference="Wang et al. 2020; Abdelfattah et al. 2021",
)
def grasp(probe: Probe) -> float:
    """Gradient signal preservation: how removing each weight changes the gradient norm, summed over the network."""
    products = probe["hessian_grads"]
    return float(-sum((w.detach().double() * products[n].double()).sum()
                      for n, w in layer_weights(probe.model).items() if n in products))
