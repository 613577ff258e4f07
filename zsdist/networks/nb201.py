"""NB201's network: the cell (a 4-node DAG over prebuilt edges), the residual reduction and the macro skeleton
shared with NATS-Bench's size space."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from zsdist.networks.blocks import conv_bn, relu_conv_bn
from zsdist.spaces.nb201 import EDGES


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(op: str, channels: int) -> nn.Module:
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return relu_conv_bn(channels, channels, 1)
    if op == "nor_conv_3x3":
        return relu_conv_bn(channels, channels, 3)
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


class Cell(nn.Module):
    """Node j = Σ_{i<j} edge_ij(node i) over prebuilt edges in EDGES order; the output is node 3. Edges leaving
    node 0 may change width or resolution (NATS-Bench's and TransNAS-Bench's cells)."""

    def __init__(self, edges: list[nn.Module]) -> None:
        super().__init__()
        self.edges = nn.ModuleList(edges)
        # target node → the (edge, source node) pairs it sums
        self.inputs = {t: [(e, src) for e, (target, src) in enumerate(EDGES) if target == t] for t in (1, 2, 3)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            nodes.append(self.node_sum([self.edges[e](nodes[src]) for e, src in self.inputs[target]]))
        return nodes[3]

    @staticmethod
    def node_sum(terms: list[torch.Tensor]) -> torch.Tensor:
        """Σ from 0, as NB201's code sums (latency features record that first addition)."""
        return sum(terms)  # type: ignore[return-value]


class ResidualReduction(nn.Module):
    """NB201's stride-2 residual block between stages: two ReLU-conv-BN 3×3 plus an avg-pool + 1×1 shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = relu_conv_bn(c_in, c_out, 3, 2)
        self.conv_b = relu_conv_bn(c_out, c_out, 3)
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
        self.stem = conv_bn(3, c_stem, 3)
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
