"""The TransNAS-Bench-101 micro network: stem, five modules of two NB201-style cells, pooled linear head."""
from __future__ import annotations

import torch
from torch import nn

from zsdist.networks.blocks import Zeros, conv_bn, relu_conv_bn
from zsdist.networks.nb201 import Cell
from zsdist.spaces.nb201 import EDGES
from zsdist.spaces.transnas_micro import MACRO

BASE_CHANNELS = 64
CELLS_PER_MODULE = 2


class FactorizedReduce(nn.Module):
    """Stride-2 skip that doubles the width: ReLU, two 1×1 stride-2 convs (the second on the input shifted by one
    pixel, zero-padded) concatenated, BN."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(shifted)], dim=1))


def make_edge(op: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    if op == "nor_conv_3x3":
        return relu_conv_bn(c_in, c_out, 3, stride)
    if op == "nor_conv_1x1":
        return relu_conv_bn(c_in, c_out, 1, stride)
    if op == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c_in, c_out)
    return Zeros(c_out, stride)


def make_cell(ops: tuple[str, ...], c_in: int, reduce: bool) -> Cell:
    c_out = c_in * 2 if reduce else c_in
    return Cell([make_edge(op, c_in, c_out, 2 if reduce else 1) if src == 0 else make_edge(op, c_out, c_out, 1)
                 for op, (_t, src) in zip(ops, EDGES)])


class MicroNetwork(nn.Module):
    def __init__(self, ops: tuple[str, ...], num_classes: int) -> None:
        super().__init__()
        c = BASE_CHANNELS
        self.stem = nn.Sequential(*conv_bn(3, c // 2, 3, 2), relu_conv_bn(c // 2, c, 3, 2))
        cells: list[nn.Module] = []
        for code in MACRO.split("-")[1]:
            for i in range(CELLS_PER_MODULE):
                reduce = code == "4" and i == 0
                cells.append(make_cell(ops, c, reduce))
                c = c * 2 if reduce else c
        self.cells = nn.Sequential(*cells)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.cells(self.stem(x))), 1))
