"""The NAS-Bench-101 network: cells of up to 7 vertices whose widths follow NB101's channel rule, in 3 stacks."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from zsdist.networks.blocks import PooledClassifier, conv_bn


def vertex_channels(c_in: int, c_out: int, matrix: np.ndarray) -> list[int]:
    """NB101's widths: the output's width is split over the vertices that feed it (remainder to the first),
    and every other interior vertex takes the widest of its successors."""
    n = len(matrix)
    channels = [c_in] + [0] * (n - 2) + [c_out]
    if n == 2:
        return channels
    feeders = [v for v in range(1, n - 1) if matrix[v, n - 1]]
    share, extra = divmod(c_out, len(feeders))
    for i, v in enumerate(feeders):
        channels[v] = share + (1 if i < extra else 0)
    for v in range(n - 3, 0, -1):
        if not matrix[v, n - 1]:
            channels[v] = max(channels[d] for d in range(v + 1, n - 1) if matrix[v, d])
    return channels


class Cell(nn.Module):
    """Interior vertex t = op(Σ truncated predecessors + 1×1 projection of the input); output = concat of the
    vertices that feed it, plus a projection of the input when input→output is an edge."""

    def __init__(self, matrix: np.ndarray, interior: tuple[int, ...], c_in: int, c_out: int) -> None:
        super().__init__()
        self.matrix = matrix.astype(bool)
        n = len(matrix)
        self.channels = vertex_channels(c_in, c_out, matrix)
        self.ops = nn.ModuleList(
            [nn.Identity()] + [nn.MaxPool2d(3, 1, 1) if op == 2 else conv_bn(self.channels[t], self.channels[t],
                                                                               3 if op == 0 else 1, act=nn.ReLU)
                               for t, op in enumerate(interior, start=1)])
        # 1×1 projections of the input, one per vertex it feeds (with 2 vertices, the output is just that)
        self.proj = nn.ModuleDict({str(t): conv_bn(c_in, self.channels[t], 1, act=nn.ReLU)
                                   for t in range(1, n) if self.matrix[0, t]})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.matrix)
        values = [x]
        for t in range(1, n - 1):
            inputs = [values[s][:, : self.channels[t]] for s in range(1, t) if self.matrix[s, t]]
            if self.matrix[0, t]:
                inputs.append(self.proj[str(t)](x))
            values.append(self.ops[t](sum(inputs)))
        feeders = [values[t] for t in range(1, n - 1) if self.matrix[t, n - 1]]
        if not feeders:
            return self.proj[str(n - 1)](x)
        out = torch.cat(feeders, dim=1)
        return out + self.proj[str(n - 1)](x) if self.matrix[0, n - 1] else out


class NB101Network(PooledClassifier):
    def __init__(self, matrix: np.ndarray, interior: tuple[int, ...], num_classes: int, stem: int = 128,
                 stacks: int = 3, cells_per_stack: int = 3) -> None:
        layers: list[nn.Module] = [conv_bn(3, stem, 3, act=nn.ReLU)]
        c_in = c_out = stem
        for stack in range(stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, 2))
                c_out *= 2
            for _ in range(cells_per_stack):
                layers.append(Cell(matrix, interior, c_in, c_out))
                c_in = c_out
        super().__init__(layers, c_out, num_classes)
