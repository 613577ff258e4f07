"""AZ-NAS (Lee & Ham, CVPR 2024): four complementary components, each a proxy of its own.

expressivity  Σ_l H(λ̃_l): entropy of the normalised eigenvalues of each block feature's channel covariance
progressivity min_l (H_l − H_{l−1}): expressivity should grow with depth
trainability  mean_l (2 − σ_l − 1/σ_l), σ_l the spectral norm of block l's Jacobian, estimated by
              back-propagating Rademacher vectors from the block's output to its input
complexity    FLOPs
The rank aggregate Σ log(rank/N) is a population quantity and lives in SQL (zsdist.analysis.derived).

Blocks are found by module type, not by name: the outermost non-leaf modules held in an nn.Sequential or
nn.ModuleList (cells, residual blocks, transformer blocks); the features are the first block's input and every
block's output. The first three components share one pass of their own, because AZ-NAS defines its own init
(Kaiming-normal, fan-in) and input: standard Gaussian noise of the batch's shape, as the authors' NB201 evaluation
feeds it (their notebook gives real images only to zico, snip, grasp, te_nas and gradsign), with BN on batch
statistics. On the survey's 500 NB201 cells real images instead of noise drop progressivity's Spearman from
0.67 to 0.17 and the aggregate's from 0.90 to 0.72 (README, "Survey reproduction").
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zsdist.proxies.base import register_proxy
from zsdist.proxies.introspect import channel_rows, reinit
from zsdist.proxies.probe import Probe, provides

_OPTIONS = {"init": "kaiming_normal fan_in (relu), zero biases, norm affine 1/0",
            "input": "N(0,1) noise of the batch's shape, seeded",
            "bn": "train", "blocks": "outermost non-leaf modules inside nn.Sequential/nn.ModuleList"}
_REFERENCE = "Lee & Ham 2024 (AZ-NAS)"


def find_blocks(model: nn.Module) -> list[nn.Module]:
    """The outermost non-leaf children of Sequential/ModuleList containers, in definition order."""
    found: dict[str, nn.Module] = {}
    for parent_name, parent in model.named_modules():
        if not isinstance(parent, (nn.Sequential, nn.ModuleList)):
            continue
        for child_name, child in parent.named_children():
            name = f"{parent_name}.{child_name}" if parent_name else child_name
            if any(True for _ in child.children()):
                found[name] = child
    outermost = [name for name in found
                 if not any(name.startswith(other + ".") for other in found if other != name)]
    if not outermost:
        raise ValueError("AZ-NAS needs blocks (non-leaf modules inside an nn.Sequential or nn.ModuleList) "
                         "and this network has none")
    return [found[name] for name in outermost]


def _rows(feature: torch.Tensor) -> torch.Tensor:
    """Feature maps N×C×H×W → (N·H·W)×C; token sequences N×T×D → (N·T)×D."""
    return channel_rows(feature, 1 if feature.dim() >= 4 else -1)


def block_expressivity(feature: torch.Tensor) -> torch.Tensor:
    """Entropy of the normalised eigenvalues of the channel covariance (isotropy of the feature space)."""
    rows = _rows(feature.detach()).double()
    rows = rows - rows.mean(dim=0, keepdim=True)
    eig = torch.linalg.eigvalsh(rows.T @ rows / rows.shape[0]).clamp(min=0.0)  # round-off can go below 0
    p = eig / eig.sum()
    return -torch.special.xlogy(p, p).sum()


def block_trainability(g_in: torch.Tensor, g_out: torch.Tensor) -> torch.Tensor:
    """2 − σ − 1/σ for σ the spectral norm of E[g_in g_outᵀ] ≈ the block's channel Jacobian (0 at isometry).

    A block that downsamples gets its input gradient pixel-unshuffled to the output's grid first.
    """
    if g_in.dim() >= 4 and g_in.shape[2:] != g_out.shape[2:]:
        stride = g_in.shape[2] // g_out.shape[2]
        if g_in.dim() != 4 or g_in.shape[2] != stride * g_out.shape[2] or g_in.shape[3] != stride * g_out.shape[3]:
            raise ValueError(f"block changes its grid from {tuple(g_in.shape[2:])} to {tuple(g_out.shape[2:])}, "
                             "not by an integer stride")
        g_in = F.pixel_unshuffle(g_in, stride)
    a, b = _rows(g_in).double(), _rows(g_out).double()
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"block input and output have different numbers of positions ({a.shape[0]} vs "
                         f"{b.shape[0]})")
    sigma = torch.linalg.matrix_norm(a.T @ b / b.shape[0], ord=2)
    return torch.where(sigma > 0, 2.0 - sigma - 1.0 / sigma, -torch.inf)


@provides("az_stats")
def az_pass(probe: Probe, wanted: frozenset[str]) -> dict[str, dict[str, torch.Tensor]]:
    """Expressivity, progressivity and trainability from one forward and one block-wise backward."""
    gen = torch.Generator().manual_seed(probe.seed)
    # drawn on the host in standard layout (as the seeded generator is), so that a channels-last network on any
    # device gets the same weights, element for element
    model = reinit(probe.copy_model().train(), lambda w: w.copy_(nn.init.kaiming_normal_(
        torch.empty(w.shape, dtype=w.dtype), mode="fan_in", nonlinearity="relu", generator=gen)))
    blocks = find_blocks(model)
    features: list[torch.Tensor] = []

    def first_tensor(value: Any) -> torch.Tensor:
        """Blocks such as PiT's stages return (tokens, class tokens): the features are the first tensor."""
        return first_tensor(value[0]) if isinstance(value, (tuple, list)) else value

    def grab(_m: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        if not features:
            features.append(first_tensor(inp))
        features.append(first_tensor(out))

    handles = [block.register_forward_hook(grab) for block in blocks]
    noise = probe.like_inputs(torch.randn(probe.inputs.shape, generator=gen))
    try:
        model(noise.requires_grad_(True))
    finally:
        for handle in handles:
            handle.remove()
    entropies = [block_expressivity(f) for f in features]
    train = []
    for f_in, f_out in reversed(list(zip(features[:-1], features[1:]))):
        g_out = probe.like_inputs(torch.randint(0, 2, f_out.shape, generator=gen) * 2.0 - 1.0).to(f_out)
        (g_in,) = torch.autograd.grad(f_out, f_in, g_out)
        # an identity block passes the vector through unchanged; the authors score it −inf
        value = block_trainability(g_in, g_out)
        if g_in.shape == g_out.shape:
            value = torch.where((g_in == g_out).all(), -torch.inf, value)
        train.append(value)
    if not train:
        raise ValueError("AZ-NAS needs at least one block")
    return {"az_stats": {
        "expressivity": torch.stack(entropies).sum(),
        "progressivity": torch.stack([b - a for a, b in zip(entropies[:-1], entropies[1:])]).min(),
        "trainability": torch.stack(train).mean(),
    }}


@register_proxy("az_expressivity", needs=("az_stats",), options=_OPTIONS, reference=_REFERENCE)
def az_expressivity(probe: Probe) -> float:
    """Σ over block features of the eigenvalue entropy of their channel covariance."""
    return float(probe["az_stats"]["expressivity"])


@register_proxy("az_progressivity", needs=("az_stats",), options=_OPTIONS, reference=_REFERENCE)
def az_progressivity(probe: Probe) -> float:
    """Smallest increase of a block's expressivity over its predecessor's."""
    return float(probe["az_stats"]["progressivity"])


@register_proxy("az_trainability", needs=("az_stats",),
                options={**_OPTIONS, "vectors": "Rademacher", "identity_block": "-inf (status nan)"},
                reference=_REFERENCE)
def az_trainability(probe: Probe) -> float:
    """Mean over blocks of 2 − σ − 1/σ of the block Jacobian; 0 means every block is an isometry."""
    return float(probe["az_stats"]["trainability"])


@register_proxy("az_complexity", needs=("flops_count",), options={"counts": "conv+linear MACs and biases, one input"},
                reference=_REFERENCE)
def az_complexity(probe: Probe) -> float:
    """FLOPs, AZ-NAS's complexity component (the flops proxy's count)."""
    return probe["flops_count"]
