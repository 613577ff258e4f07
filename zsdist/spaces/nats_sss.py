"""NATS-Bench size space (SSS): 8^5 = 32,768 channel configurations of one fixed cell.

The skeleton is NB201's with one cell per stage: cell, reduction, cell, reduction, cell, and each of those five
layers picks its output width from {8, 16, ..., 64}. A cell whose input width differs from its output width
adapts on the edges leaving node 0 (conv: C_in → C_out; skip: ReLU + 1×1 conv + BN; none: zeros of width C_out).
arch_id is the base-8 number of the widths with stage 1 most significant, so ids ascend in the lexicographic
order of the arch string "8:16:32:48:64".
"""
from __future__ import annotations

import torch
from torch import nn

from zsdist.errors import ZsdistError
from zsdist.spaces import register_space
from zsdist.spaces.base import SearchSpace
from zsdist.spaces.nb201 import (EDGES, NUM_CLASSES, Cell, CellNetwork, ReLUConvBN, ResidualReduction,
                                 from_string)

WIDTHS = (8, 16, 24, 32, 40, 48, 56, 64)
LAYERS = 5
# NATS-Bench's fixed cell for the size space: the best NB201 topology on CIFAR-100 (73.51 %).
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def encode(widths: tuple[int, ...]) -> int:
    arch_id = 0
    for w in widths:
        arch_id = arch_id * len(WIDTHS) + WIDTHS.index(w)
    return arch_id


def decode(arch_id: int) -> tuple[int, ...]:
    digits = []
    for _ in range(LAYERS):
        arch_id, d = divmod(arch_id, len(WIDTHS))
        digits.append(WIDTHS[d])
    return tuple(reversed(digits))


class Zeros(nn.Module):
    """The `none` op for any output width and stride: x·0 at the output's shape, kept in the autograd graph (as
    NB201's x.mul(0)) so that a cell whose input never reaches its output still has an input gradient (zero)."""

    def __init__(self, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.c_out, self.stride = c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        zeros = x[:, :, :: self.stride, :: self.stride].mul(0.0)
        if zeros.shape[1] == self.c_out:
            return zeros
        return zeros[:, :1].expand(-1, self.c_out, -1, -1)


def make_edge(op: str, c_in: int, c_out: int) -> nn.Module:
    if op == "nor_conv_3x3":
        return ReLUConvBN(c_in, c_out, 3, 1, 1)
    if op == "nor_conv_1x1":
        return ReLUConvBN(c_in, c_out, 1, 1, 0)
    if op == "skip_connect":
        return nn.Identity() if c_in == c_out else ReLUConvBN(c_in, c_out, 1, 1, 0)
    if op == "none":
        return Zeros(c_out)
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


class SizeNetwork(CellNetwork):
    """Cell, reduction, cell, reduction, cell, each at its own width; the cell's edges from node 0 widen."""

    def __init__(self, widths: tuple[int, ...], num_classes: int) -> None:
        def build_layers() -> tuple[list[nn.Module], int]:
            ops = from_string(CELL)
            layers: list[nn.Module] = []
            c_prev = widths[0]
            for layer, c in enumerate(widths):
                layers.append(ResidualReduction(c_prev, c) if layer % 2 else Cell(
                    [make_edge(op, c_prev if src == 0 else c, c) for op, (_t, src) in zip(ops, EDGES)]))
                c_prev = c
            return layers, c_prev

        super().__init__(widths[0], build_layers, num_classes)


@register_space("nats_sss")
class NatsSize(SearchSpace):
    name = "nats_sss"
    size = len(WIDTHS) ** LAYERS
    datasets = tuple(NUM_CLASSES)

    def arch_str(self, arch_id: int) -> str:
        return ":".join(str(w) for w in decode(self.check_id(arch_id)))

    def parse(self, arch: str) -> int:
        parts = arch.strip().split(":")
        if len(parts) != LAYERS or not all(p.isdigit() and int(p) in WIDTHS for p in parts):
            raise ZsdistError(f"bad NATS size arch '{arch}': expected {LAYERS} widths from "
                              f"{', '.join(map(str, WIDTHS))} joined by ':' (e.g. 8:16:32:48:64)")
        return encode(tuple(int(p) for p in parts))

    def build(self, arch_id: int, dataset: str) -> nn.Module:
        return SizeNetwork(decode(self.check_id(arch_id)), NUM_CLASSES[self.check_dataset(dataset)])
