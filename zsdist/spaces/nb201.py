"""NAS-Bench-201 (NATS-Bench topology): 5^6 = 15,625 cells in the fixed C=16, N=5 skeleton.

arch_id = Σ op(e)·5^e over the six edges in arch-string order, so an id needs no data file.
"""
from __future__ import annotations

import re
from typing import Callable

import torch
from torch import nn

from zsdist.errors import ZsdistError
from zsdist.spaces import register_space
from zsdist.spaces.base import SearchSpace

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (target node, source node) of each edge, in the order the arch string lists them.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet16_120": 120}
_NODE = re.compile(r"^\|(?:[a-z0-9_]+~\d\|)+$")


def encode(ops: tuple[str, ...]) -> int:
    return sum(OPS.index(op) * 5**e for e, op in enumerate(ops))


def decode(arch_id: int) -> tuple[str, ...]:
    return tuple(OPS[(arch_id // 5**e) % 5] for e in range(len(EDGES)))


def to_string(ops: tuple[str, ...]) -> str:
    nodes = []
    for target in (1, 2, 3):
        nodes.append("|" + "|".join(f"{ops[e]}~{src}" for e, (t, src) in enumerate(EDGES) if t == target) + "|")
    return "+".join(nodes)


def from_string(arch: str) -> tuple[str, ...]:
    """Parse `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`, checking every op and input index."""
    nodes = arch.strip().split("+")
    if len(nodes) != 3 or not all(_NODE.match(n) for n in nodes):
        raise ZsdistError(f"bad NB201 arch string '{arch}': expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2|")
    ops = []
    for target, node in enumerate(nodes, start=1):
        edges = node.strip("|").split("|")
        if [int(e.split("~")[1]) for e in edges] != list(range(target)):
            raise ZsdistError(f"bad NB201 arch string '{arch}': node {target} must list inputs 0..{target - 1}")
        for edge in edges:
            op = edge.split("~")[0]
            if op not in OPS:
                raise ZsdistError(f"bad NB201 arch string '{arch}': unknown op '{op}' (known: {', '.join(OPS)})")
            ops.append(op)
    return tuple(ops)


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(op: str, channels: int) -> nn.Module:
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if op == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


class Cell(nn.Module):
    """Node j = Σ_{i<j} edge_ij(node i) over prebuilt edges in EDGES order; the output is node 3. Edges leaving
    node 0 may change width or resolution (NATS-Bench's and TransNAS-Bench's cells)."""

    def __init__(self, edges: list[nn.Module]) -> None:
        super().__init__()
        self.edges = nn.ModuleList(edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            nodes.append(sum(self.edges[e](nodes[src]) for e, (t, src) in enumerate(EDGES) if t == target))
        return nodes[3]


class ResidualReduction(nn.Module):
    """NB201's stride-2 residual block between stages: two ReLUConvBN 3×3 plus an avg-pool + 1×1 shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class CellNetwork(nn.Module):
    """NB201's macro skeleton: conv-BN stem, a sequence of cells and reductions, BN-ReLU, global pooling, linear.

    `build_layers` runs after the stem is made (so parameters are initialised in the skeleton's order) and
    returns the layers and the width of the last one.
    """

    def __init__(self, c_stem: int, build_layers: Callable[[], tuple[list[nn.Module], int]],
                 num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
        layers, c_last = build_layers()
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_last), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


class NB201Network(CellNetwork):
    def __init__(self, ops: tuple[str, ...], num_classes: int, channels: int = 16, cells_per_stage: int = 5) -> None:
        def build_layers() -> tuple[list[nn.Module], int]:
            layers: list[nn.Module] = []
            c = channels
            for stage in range(3):
                if stage > 0:
                    layers.append(ResidualReduction(c, c * 2))
                    c *= 2
                layers.extend(Cell([make_op(op, c) for op in ops]) for _ in range(cells_per_stage))
            return layers, c

        super().__init__(channels, build_layers, num_classes)


@register_space("nb201")
class NB201(SearchSpace):
    name = "nb201"
    size = 5 ** len(EDGES)
    datasets = tuple(NUM_CLASSES)

    def arch_str(self, arch_id: int) -> str:
        return to_string(decode(self.check_id(arch_id)))

    def parse(self, arch: str) -> int:
        return encode(from_string(arch))

    def build(self, arch_id: int, dataset: str) -> nn.Module:
        return NB201Network(decode(self.check_id(arch_id)), NUM_CLASSES[self.check_dataset(dataset)])
