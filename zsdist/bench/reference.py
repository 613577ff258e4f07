"""The survey's 8 proxies computed the way the reference protocol computes them: each alone, from its definition,
on a fresh copy of the network, with its own forward and backward passes and nothing shared. The passes are the
reference implementation's (SamsungLabs/zero-cost-nas): GraSP takes its gradient in a pass of its own before the
pass it differentiates twice, and the input Jacobian comes from `.backward()`, which computes every weight's
gradient too.

This is the independent baseline of `zsdist bench proxies` (the reference implementation is not installable from
a package index and is not copied here) and the definition-level value each shared pass is tested against.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from zsdist.data import Batch
from zsdist.proxies.introspect import LAYERS
from zsdist.proxies.jacobian import K

Reference = Callable[[nn.Module, Batch], float]


def _fresh(net: nn.Module) -> nn.Module:
    return copy.deepcopy(net).train()


def _weights(net: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in net.modules() if isinstance(m, LAYERS)]


def _loss_grads(net: nn.Module, batch: Batch) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(θ, ∂L/∂θ) of every conv / linear weight after one forward and one `.backward()` of the batch-mean CE."""
    net = _fresh(net)
    F.cross_entropy(net(batch.inputs), batch.labels).backward()
    return [(w.detach().double(), w.grad.double()) for w in _weights(net) if w.grad is not None]


def grad_norm(net: nn.Module, batch: Batch) -> float:
    return float(sum(g.norm() for _, g in _loss_grads(net, batch)))


def snip(net: nn.Module, batch: Batch) -> float:
    return float(sum((w * g).abs().sum() for w, g in _loss_grads(net, batch)))


def plain(net: nn.Module, batch: Batch) -> float:
    return float(sum((w * g).sum() for w, g in _loss_grads(net, batch)))


def l2_norm(net: nn.Module, batch: Batch) -> float:
    return float(sum(w.detach().double().norm() for w in _weights(net)))


def fisher(net: nn.Module, batch: Batch) -> float:
    """½·mean_n(Σ_positions a ⊙ ∂L/∂a)² per channel of every conv / linear output a, summed."""
    net, outputs = _fresh(net), []

    def keep(module: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
        out.retain_grad()
        outputs.append((module, out))

    for m in net.modules():
        if isinstance(m, LAYERS):
            m.register_forward_hook(keep)
    F.cross_entropy(net(batch.inputs), batch.labels).backward()
    total = torch.zeros((), dtype=torch.float64)
    for m, out in outputs:
        assert out.grad is not None  # retained, and every layer's output reaches the loss
        product = (out.detach() * out.grad).double()
        per_channel = product.flatten(2).sum(2) if product.dim() > 2 and not isinstance(m, nn.Linear) else product
        total += 0.5 * per_channel.pow(2).mean(0).sum()
    return float(total)


def grasp(net: nn.Module, batch: Batch) -> float:
    """−Σ θ ⊙ Hg: g from a forward and backward of its own, then a second forward, a gradient with a second-order
    graph, and the Hessian-gradient product through it."""
    net = _fresh(net)
    weights = _weights(net)
    g = torch.autograd.grad(F.cross_entropy(net(batch.inputs), batch.labels), weights)
    graph = torch.autograd.grad(F.cross_entropy(net(batch.inputs), batch.labels), weights, create_graph=True)
    hg = torch.autograd.grad(cast(torch.Tensor, sum((gi * gg).sum() for gi, gg in zip(g, graph))), weights)
    return float(-sum((w.detach().double() * h.double()).sum() for w, h in zip(weights, hg)))


def input_jacobian(net: nn.Module, batch: Batch) -> torch.Tensor:
    inputs = batch.inputs.clone().requires_grad_(True)
    _fresh(net)(inputs).sum().backward()
    assert inputs.grad is not None  # a leaf that requires grad, reached by the backward
    return inputs.grad.flatten(1).double()


def jacob_cov(net: nn.Module, batch: Batch) -> float:
    """NaN where the correlation matrix has no eigen-decomposition (a cell whose output ignores its input), as the
    reference implementation's try/except gives."""
    try:
        eigenvalues = torch.linalg.eigvalsh(torch.corrcoef(input_jacobian(net, batch)))
    except torch.linalg.LinAlgError:
        return float("nan")
    return float(-(torch.log(eigenvalues + K) + 1.0 / (eigenvalues + K)).sum())


def synflow(net: nn.Module, batch: Batch) -> float:
    """R = 1ᵀ f(1; |θ|) on a float64 copy in eval mode; Σ |θ ⊙ ∂R/∂θ| over conv / linear weights."""
    net = copy.deepcopy(net).double().eval()
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    net(torch.ones_like(batch.inputs[:1], dtype=torch.float64)).sum().backward()
    return float(sum((w.detach() * w.grad).abs().sum() for w in _weights(net) if w.grad is not None))


SURVEY: dict[str, Reference] = {"grad_norm": grad_norm, "snip": snip, "grasp": grasp, "fisher": fisher,
                                "jacob_cov": jacob_cov, "plain": plain, "synflow": synflow, "l2_norm": l2_norm}
