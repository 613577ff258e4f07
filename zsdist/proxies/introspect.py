"""What proxies need to know about a network: its layers by role, their weights, feature-map layouts, and the
re-initialisation some proxies define. One home, so that every proxy finds "the conv and linear layers" alike."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
LAYERS = CONV + (nn.Linear,)  # the weighted layers the survey's saliencies sum over
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm)
BATCH_NORMS = nn.modules.batchnorm._BatchNorm
RUNNING_STATS = nn.modules.batchnorm._NormBase  # batch norms and instance norms that may track statistics
GLOBAL_POOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)


def parameter_count(model: nn.Module) -> int:
    """Every element of every tensor in model.parameters(): #Params, and SWAP's regulariser, count the same."""
    return sum(p.numel() for p in model.parameters())


def layer_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weight of every conv and linear layer, keyed by its parameter name (as in `named_parameters`)."""
    weights = {f"{name}.weight" if name else "weight": module.weight
               for name, module in model.named_modules() if isinstance(module, LAYERS)}
    if not weights:
        raise ValueError("this proxy sums over conv and linear layers and the network has none")
    return weights


def weighted_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Every module with a `weight` parameter (conv, linear, norm, embedding), keyed by that parameter's name: the
    weights TE-NAS's NTK differentiates (biases excluded)."""
    return {f"{name}.weight" if name else "weight": m for name, m in model.named_modules()
            if isinstance(getattr(m, "weight", None), nn.Parameter)}


def channel_dim(module: nn.Module) -> int:
    """The channel axis of a layer's output: 1 for convolutions, the last for linear layers (tokens × features)."""
    return 1 if isinstance(module, CONV) else -1


def channel_rows(features: torch.Tensor, channel_dim: int) -> torch.Tensor:
    """N×C×(spatial) (channel_dim 1) or N×(tokens)×C (channel_dim −1) → positions × channels."""
    if channel_dim == 1 and features.dim() > 2:
        features = features.movedim(1, -1)
    return features.reshape(-1, features.shape[-1])


@contextmanager
def batch_statistics(model: nn.Module) -> Iterator[nn.Module]:
    """Train mode, normalising with batch statistics but updating no running statistics, so that the pristine
    network serves every train-mode pass without a copy (the forward is the same as in plain train mode)."""
    norms = [m for m in model.modules() if isinstance(m, RUNNING_STATS)]
    tracked = [m.track_running_stats for m in norms]
    modes = [m.training for m in model.modules()]
    try:
        for m in norms:
            m.track_running_stats = False
        yield model.train()
    finally:
        for m, flag in zip(norms, tracked):
            m.track_running_stats = flag
        for module, mode in zip(model.modules(), modes):
            module.training = mode


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for the duration of a pass, the previous modes restored afterwards."""
    modes = [m.training for m in model.modules()]
    try:
        yield model.eval()
    finally:
        for m, mode in zip(model.modules(), modes):
            m.training = mode


def reinit(model: nn.Module, init_weight: Callable[[torch.Tensor], object]) -> nn.Module:
    """A proxy's own init: `init_weight` on every conv / linear weight, zero biases, identity norm affines."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LAYERS):
                init_weight(module.weight)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, NORMS) and getattr(module, "weight", None) is not None:
                module.weight.fill_(1.0)
                module.bias.zero_()
    return model
