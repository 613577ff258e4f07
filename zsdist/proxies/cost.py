"""#Params and #FLOPs, the survey's strong baselines, in the NAS-Bench-201 convention."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from zsdist.proxies.base import register_proxy
from zsdist.proxies.introspect import CONV, LAYERS, eval_mode, parameter_count
from zsdist.proxies.probe import Probe, provides


def count_flops(model: nn.Module, inputs: torch.Tensor) -> float:
    """Multiply-accumulates of every conv and linear layer for one input, plus one per output element per bias."""
    total = 0.0

    def hook(module: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        per_sample = out[0].numel()
        if isinstance(module, CONV):
            fan_in = module.in_channels // module.groups * math.prod(module.kernel_size)
        else:
            assert isinstance(module, nn.Linear)  # the hook is on LAYERS only
            fan_in = module.in_features
        total += per_sample * fan_in + (per_sample if module.bias is not None else 0)

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, LAYERS)]
    try:
        with eval_mode(model), torch.no_grad():
            model(inputs[:1])
    finally:
        for h in hooks:
            h.remove()
    return total


@provides("flops_count")
def _flops_count(probe: Probe, wanted: frozenset[str]) -> dict[str, Any]:
    """One count for every proxy that reads it (flops, AZ-NAS's complexity)."""
    return {"flops_count": count_flops(probe.model, probe.inputs)}


@register_proxy("params", options={"counts": "every parameter"})
def params(probe: Probe) -> float:
    """Number of parameters (every tensor in model.parameters())."""
    return float(parameter_count(probe.model))


@register_proxy("flops", needs=("flops_count",), options={"counts": "conv+linear MACs and biases, one input"})
def flops(probe: Probe) -> float:
    """FLOPs of one forward pass of one input (NAS-Bench-201 convention: MACs, plus biases)."""
    return probe["flops_count"]
