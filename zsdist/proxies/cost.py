"""#Params and #FLOPs, the survey's strong baselines, in the NAS-Bench-201 convention."""
from __future__ import annotations

import torch
from torch import nn

from zsdist.proxies.base import register_proxy
from zsdist.proxies.probe import Probe

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def count_flops(model: nn.Module, inputs: torch.Tensor) -> float:
    """Multiply-accumulates of every conv and linear layer for one input, plus one per output element per bias."""
    total = 0.0

    def hook(module: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        per_sample = out[0].numel()
        if isinstance(module, _CONV):
            fan_in = module.in_channels // module.groups * int(torch.tensor(module.kernel_size).prod())
        else:
            fan_in = module.in_features
        total += per_sample * fan_in + (per_sample if module.bias is not None else 0)

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _CONV + (nn.Linear,))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(inputs[:1])
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return total


@register_proxy("params", options={"counts": "every parameter"})
def params(probe: Probe) -> float:
    """Number of parameters (every tensor in model.parameters())."""
    return float(sum(p.numel() for p in probe.model.parameters()))


@register_proxy("flops", options={"counts": "conv+linear MACs and biases, one input"})
def flops(probe: Probe) -> float:
    """FLOPs of one forward pass of one input (NAS-Bench-201 convention: MACs, plus biases)."""
    return count_flops(probe.model, probe.inputs)
