"""The NATS-Bench size-space network: NB201's skeleton with one cell per stage, each layer at its own width."""
from __future__ import annotations

from torch import nn

from zsdist.networks.blocks import Zeros, relu_conv_bn
from zsdist.networks.nb201 import Cell, CellNetwork, ResidualReduction
from zsdist.spaces.nats_sss import CELL
from zsdist.spaces.nb201 import EDGES, from_string


def make_edge(op: str, c_in: int, c_out: int) -> nn.Module:
    if op == "nor_conv_3x3":
        return relu_conv_bn(c_in, c_out, 3)
    if op == "nor_conv_1x1":
        return relu_conv_bn(c_in, c_out, 1)
    if op == "skip_connect":
        return nn.Identity() if c_in == c_out else relu_conv_bn(c_in, c_out, 1)
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
