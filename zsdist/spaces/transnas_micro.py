"""TransNAS-Bench-101 micro space: 4^6 = 4,096 cells in the fixed "64-41414" skeleton, classification heads.

As TransNAS-Bench-101 defines it (its MacroNet + FFDecoder): 256×256 inputs; a stem of a stride-2 3×3 conv to
32 + BN and a stride-2 ReLU-conv-BN to 64; five modules of two cells each, where modules coded "4" (1, 3, 5)
double the width and halve the resolution in their first cell and modules coded "1" keep both; then global
average pooling and a linear head for class_scene (47 classes) or class_object (75). The cell is NB201's 4-node
DAG with ops none / skip / ReLU-conv1×1-BN / ReLU-conv3×3-BN; the edges leaving the input node carry the width
and stride change (skip becomes a factorized reduction, none strided zeros).
Arch string as TransNAS: "64-41414-a_bc_def" with digits 0 none, 1 skip, 2 conv1x1, 3 conv3x3 per edge in
arch-string order (1,2),(1,3),(2,3),(1,4),(2,4),(3,4); arch_id = Σ digit(e)·4^e.
"""
from __future__ import annotations

import re

import torch
from torch import nn

from zsdist.errors import ZsdistError
from zsdist.spaces import register_space
from zsdist.spaces.base import SearchSpace
from zsdist.spaces.nats_sss import Zeros
from zsdist.spaces.nb201 import EDGES, Cell, ReLUConvBN

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3")
NUM_CLASSES = {"class_scene": 47, "class_object": 75}
MACRO = "64-41414"
BASE_CHANNELS = 64
CELLS_PER_MODULE = 2
_ARCH = re.compile(r"^64-41414-([0-3])_([0-3]{2})_([0-3]{3})$")


def encode(digits: tuple[int, ...]) -> int:
    return sum(d * 4**e for e, d in enumerate(digits))


def decode(arch_id: int) -> tuple[int, ...]:
    return tuple((arch_id // 4**e) % 4 for e in range(len(EDGES)))


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
        return ReLUConvBN(c_in, c_out, 3, stride, 1)
    if op == "nor_conv_1x1":
        return ReLUConvBN(c_in, c_out, 1, stride, 0)
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
        self.stem = nn.Sequential(nn.Conv2d(3, c // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c // 2),
                                  ReLUConvBN(c // 2, c, 3, 2, 1))
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


@register_space("transnas_micro")
class TransNASMicro(SearchSpace):
    name = "transnas_micro"
    size = len(OPS) ** len(EDGES)
    datasets = tuple(NUM_CLASSES)

    def arch_str(self, arch_id: int) -> str:
        d = "".join(map(str, decode(self.check_id(arch_id))))
        return f"{MACRO}-{d[0]}_{d[1:3]}_{d[3:]}"

    def parse(self, arch: str) -> int:
        match = _ARCH.match(arch.strip())
        if not match:
            raise ZsdistError(f"bad TransNAS micro arch '{arch}': expected {MACRO}-a_bc_def with digits 0-3 "
                              "(0 none, 1 skip, 2 conv1x1, 3 conv3x3)")
        return encode(tuple(int(c) for c in "".join(match.groups())))

    def ops(self, arch_id: int) -> tuple[str, ...]:
        return tuple(OPS[d] for d in decode(self.check_id(arch_id)))

    def build(self, arch_id: int, dataset: str) -> nn.Module:
        return MicroNetwork(self.ops(arch_id), NUM_CLASSES[self.check_dataset(dataset)])
