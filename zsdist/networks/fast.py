"""Faster stand-ins for modules whose PyTorch kernels are slow in the passes proxies run: the same function (values
equal up to float reassociation), swapped in by the Probe on the network it evaluates.

Only proxy evaluation uses them: latency features and measured latency keep the network as built, since these are
forms for the evaluator's passes (forward, backward, GraSP's double backward), not what a device runs.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from zsdist.networks.blocks import Zeros
from zsdist.networks.nb201 import Cell, Zero

Rewrite = Callable[[nn.Module], "nn.Module | None"]
REWRITES: dict[type[nn.Module], Rewrite] = {}


def rewrites(kind: type[nn.Module]) -> Callable[[Rewrite], Rewrite]:
    """Register `fn` as the rewrite of modules of exactly type `kind`: it returns the stand-in, or None to keep
    the module (a configuration it does not cover)."""

    def add(fn: Rewrite) -> Rewrite:
        REWRITES[kind] = fn
        return fn

    return add


def fast_forms(model: nn.Module) -> nn.Module:
    """`model` with every module a rewrite covers replaced, in place (children keep their names, so parameter
    names, order and init are those of the network as built; a stand-in takes its module's mode)."""
    for name, child in list(model.named_children()):
        setattr(model, name, fast_forms(child))
    rewrite = REWRITES.get(type(model))
    stand_in = rewrite(model) if rewrite else None
    if stand_in is None:
        return model
    stand_in.training = model.training
    return stand_in


def _box(x: torch.Tensor) -> torch.Tensor:
    """Σ over each position's 3×3 neighbourhood (zero padding), per channel: a depthwise convolution of ones."""
    channels = x.shape[-3]
    return F.conv2d(x, x.new_ones(channels, 1, 3, 3), padding=1, groups=channels)


def _divisor(x: torch.Tensor, include_pad: bool) -> torch.Tensor | float:
    """9, or each position's count of neighbours inside the map (4 in corners, 6 on edges, 9 inside)."""
    return 9.0 if include_pad else _box(x.new_ones(1, *x.shape[-2:]))


class _BoxMean(torch.autograd.Function):
    """3×3 stride-1 mean; its backward is a box sum too (the kernel is symmetric), written with differentiable
    operations so that a double backward (GraSP's) is one more convolution, not a grouped convolution's double
    backward, which PyTorch runs group by group."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, include_pad: bool) -> torch.Tensor:
        return _box(x) / _divisor(x, include_pad)

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:
        ctx.include_pad = inputs[1]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return _box(grad / _divisor(grad, ctx.include_pad)), None


class BoxMean(nn.AvgPool2d):
    """nn.AvgPool2d(3, 1, 1) as `_BoxMean` on CPU float32, where PyTorch's pooling kernel takes about 5×
    (channels-last) to 25× (default layout) a depthwise convolution's time on a batch of NB201 feature maps.
    Elsewhere (synflow's float64 pass, whose depthwise convolution runs channel by channel; CUDA, not measured)
    PyTorch's pooling. Still an AvgPool2d to every isinstance check."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda or x.dtype != torch.float32:
            return super().forward(x)
        return _BoxMean.apply(x, self.count_include_pad)


@rewrites(nn.AvgPool2d)
def _avg_pool(pool: nn.Module) -> nn.Module | None:
    assert isinstance(pool, nn.AvgPool2d)
    plain = (pool.kernel_size, pool.stride, pool.padding) in {(3, 1, 1), ((3, 3), (1, 1), (1, 1))}
    if not plain or pool.ceil_mode or pool.divisor_override is not None:
        return None
    return BoxMean(3, 1, 1, count_include_pad=pool.count_include_pad)


class PrunedCell(Cell):
    """A cell whose nodes skip their `none` edges: such an edge adds x·0, exact zeros, so the node is the sum of its
    other edges (a node with only none edges keeps one, so the cell's input still gets its zero gradient). Saves
    a multiplication per none edge in every forward, backward and double backward."""

    def __init__(self, edges: list[nn.Module]) -> None:
        super().__init__(edges)
        self.inputs = {t: [(e, s) for e, s in pairs if not isinstance(edges[e], (Zero, Zeros))] or pairs[:1]
                       for t, pairs in self.inputs.items()}

    @staticmethod
    def node_sum(terms: list[torch.Tensor]) -> torch.Tensor:
        """Σ from the first term: starting at 0 copies the map once per node."""
        first, *rest = terms
        return sum(rest, first)


@rewrites(Cell)
def _cell(cell: nn.Module) -> nn.Module:
    assert isinstance(cell, Cell)
    return PrunedCell(list(cell.edges))
