"""Counting the work a computation dispatches: operators, and the FLOPs of its convolutions and matrix products.

torch.utils.flop_counter's formulas, applied by a plain dispatch mode: FlopCounterMode's module tracker cannot
follow `autograd.grad` to a leaf input (the input-Jacobian pass), and the operator count comes with it for free.
"""
from __future__ import annotations

from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry


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
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.flops += formula(*args, **kwargs, out_val=out)
        return out
