"""Zen-score (Lin et al., ICCV 2021): log E‖f(x) − f(x + αε)‖_F + Σ_BN log sqrt(mean_c σ²_c).

f is the feature map that enters the network's global pooling; x and ε are Gaussian; the network gets its own
Gaussian init. The second term undoes the rescaling that BatchNorm hides from f. This proxy runs its own pass.
"""
from __future__ import annotations

import torch
from torch import nn

from zsdist.proxies.base import register_proxy
from zsdist.proxies.introspect import BATCH_NORMS, GLOBAL_POOLS, reinit
from zsdist.proxies.probe import Probe

ALPHA = 0.01


def zen_score(model: nn.Module, x: torch.Tensor, noise: torch.Tensor, alpha: float = ALPHA) -> float:
    """The Zen-score of `model` as it is, in train mode (BN normalises with batch statistics).

    The BN term reads each BN's running_var after both passes, from reset statistics at the layer's own momentum,
    as the authors' code does: with PyTorch's 0.1 that is 0.81 + 0.09·var(x pass) + 0.1·var(x+αε pass), which
    stays finite for a BN fed only zeros (NB201's "none" edges); a BN that did not run adds log 1 = 0.
    """
    captured: list[torch.Tensor] = []
    pools = [m for m in model.modules() if isinstance(m, GLOBAL_POOLS)]
    if not pools:
        raise ValueError("zen needs the feature map before global pooling and this network has no "
                         "nn.AdaptiveAvgPool/AdaptiveMaxPool layer")
    handles = [m.register_forward_pre_hook(lambda _m, inp: captured.append(inp[0])) for m in pools]
    norms = [m for m in model.modules() if isinstance(m, BATCH_NORMS) and m.track_running_stats]
    for bn in norms:
        bn.reset_running_stats()
    model.train()
    try:
        with torch.no_grad():
            model(x)
            clean = captured[-1]  # the last global pooling called is the head's
            model(x + alpha * noise)
            mixed = captured[-1]
    finally:
        for handle in handles:
            handle.remove()
    delta = (clean - mixed).double().flatten(1).norm(dim=1).mean()
    variances = [bn.running_var for bn in norms if bn.running_var is not None]  # all: they track statistics
    log_sigma = sum(0.5 * torch.log(var.double().mean()) for var in variances)
    return float(torch.log(delta) + log_sigma)  # −inf (status nan) when f ignores its input


@register_proxy(
    "zen",
    options={"init": "N(0,1) conv/linear weights, zero biases, BN affine 1/0", "input": "N(0,1), batch shape",
             "alpha": str(ALPHA), "norm": "Frobenius per sample, mean over batch",
             "features": "input of the last global pooling", "bn": "train",
             "bn_var": "mean running_var after both passes from reset stats, layer momentum (authors' code)"},
    reference="Lin et al. 2021 (Zen-NAS)",
)
def zen(probe: Probe) -> float:
    """Zen-score with Gaussian input and its own Gaussian init; higher means a more expressive network."""
    gen = torch.Generator().manual_seed(probe.seed)
    model = reinit(probe.copy_model(), lambda w: w.copy_(torch.randn(w.shape, generator=gen)))
    x = probe.like_inputs(torch.randn(probe.inputs.shape, generator=gen))
    noise = probe.like_inputs(torch.randn(probe.inputs.shape, generator=gen))
    return zen_score(model, x, noise)
