"""Counting the work a computation dispatches: operators, and the FLOPs of its convolutions and matrix products.

torch.utils.flop_counter's formulas, applied by a plain dispatch mode: FlopCounterMode's module tracker cannot
follow `autograd.grad` to a leaf input (the input-Jacobian pass), and the operator count comes with it for free.
"""
from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry


def _conv_backward_flops(grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, *rest, **_) -> int:
    """Each gradient a convolution's backward computes costs what its forward does. torch's formula ignores
    `groups` in the weight gradient: N× too many for per-sample gradients taken as one grouped convolution."""
    transposed, output_mask = rest[4], rest[7]
    macs = (x if transposed else grad_out).numel() * weight[0].numel()
    return 2 * macs * (int(output_mask[0]) + int(output_mask[1]))


FORMULAS = {**flop_registry, torch.ops.aten.convolution_backward: _conv_backward_flops}


class Work(TorchDispatchMode):
    """`with Work() as work: …` then `work.flops` (conv + matmul, forward and backward) and `work.ops`."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.ops += 1
        formula = FORMULAS.get(func._overloadpacket)
        if formula is not None:
            self.flops += formula(*args, **kwargs, out_val=out)
        return out
