"""The loss-gradient saliencies of Abdelfattah et al. 2021 ("Zero-Cost Proxies for Lightweight NAS").

Each is a per-weight (or per-channel) saliency summed over every conv and linear layer, found by module type; all
of them read the shared train pass (BN on batch statistics, cross-entropy averaged over the batch), so evaluating
the whole family costs one forward and one backward.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from zsdist.proxies.base import register_proxy
from zsdist.proxies.introspect import LAYERS, channel_dim, channel_rows, layer_weights
from zsdist.proxies.probe import Probe, collects

_OPTIONS = {"bn": "train", "loss": "cross-entropy, batch mean", "weights": "conv + linear layer weights"}
_REFERENCE = "Abdelfattah et al. 2021"


def _weight_grads(probe: Probe) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(θ, ∂L/∂θ) of every conv and linear weight that the loss reaches."""
    grads = probe["grads"]
    return [(w.detach(), grads[name]) for name, w in layer_weights(probe.model).items() if name in grads]


@register_proxy("grad_norm", needs=("grads",), options=_OPTIONS | {"norm": "Σ over layers of ‖∂L/∂W‖₂"},
                reference=_REFERENCE)
def grad_norm(probe: Probe) -> float:
    """Sum over layers of the Euclidean norm of the loss gradient: large gradients at init train faster."""
    return float(sum(g.double().norm() for _, g in _weight_grads(probe)))


@register_proxy("snip", needs=("grads",), options=_OPTIONS | {"saliency": "|θ ⊙ ∂L/∂θ|"},
                reference="Lee et al. 2019; " + _REFERENCE)
def snip(probe: Probe) -> float:
    """SNIP connection sensitivity Σ|θ ⊙ ∂L/∂θ|: how much the loss depends on the weights at init."""
    return float(sum((w.double() * g.double()).abs().sum() for w, g in _weight_grads(probe)))


@register_proxy("plain", needs=("grads",), options=_OPTIONS | {"saliency": "θ ⊙ ∂L/∂θ"},
                reference="Mozer & Smolensky 1989; " + _REFERENCE)
def plain(probe: Probe) -> float:
    """Σ θ ⊙ ∂L/∂θ without the absolute value: the first-order loss change of removing every weight."""
    return float(sum((w.double() * g.double()).sum() for w, g in _weight_grads(probe)))


@register_proxy("l2_norm", options={"weights": "conv + linear layer weights", "norm": "Σ over layers of ‖W‖₂"},
                reference=_REFERENCE)
def l2_norm(probe: Probe) -> float:
    """Sum over layers of the weight norm at init: a data-free size baseline."""
    return float(sum(w.detach().double().norm() for w in layer_weights(probe.model).values()))


@collects("act_grads", backward=True)
def _act_grads(model: nn.Module, handles: list) -> Callable[[], list[torch.Tensor]]:
    """Per conv / linear call, N×C: Σ over positions of output ⊙ ∂L/∂output (Theis et al.'s channel saliency)."""
    found: list[torch.Tensor | None] = []

    def forward_hook(module: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        if not out.requires_grad:
            return
        slot = len(found)
        found.append(None)
        channel = channel_dim(module)
        kept = out.detach()

        def grad_hook(grad: torch.Tensor) -> None:
            rows = channel_rows(kept * grad.detach(), channel)  # (N·positions) × C
            found[slot] = rows.reshape(kept.shape[0], -1, rows.shape[-1]).sum(1)

        handles.append(out.register_hook(grad_hook))

    for module in model.modules():
        if isinstance(module, LAYERS):
            handles.append(module.register_forward_hook(forward_hook))
    return lambda: [f for f in found if f is not None]


@register_proxy("fisher", needs=("act_grads",),
                options=_OPTIONS | {"saliency": "per channel ½·mean_n(Σ_positions a ⊙ ∂L/∂a)², a = layer output"},
                reference="Theis et al. 2018; Turner et al. 2020; " + _REFERENCE)
def fisher(probe: Probe) -> float:
    """Fisher information of removing each channel, summed over the channels of every conv and linear layer."""
    per_layer = probe["act_grads"]
    if not per_layer:
        raise ValueError("fisher sums over conv and linear layers and the network has none")
    return float(sum(0.5 * z.double().pow(2).mean(0).sum() for z in per_layer))
