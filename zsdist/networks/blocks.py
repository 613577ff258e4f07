"""Building blocks shared by several spaces' networks: the one conv + BatchNorm, NB201's pre-activation op, the
zeros of any width and stride, the pooled classifier head and MobileNet's width rounding."""
from __future__ import annotations

import torch
from torch import nn


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
            act: type[nn.Module] | None = None) -> nn.Sequential:
    """Conv (no bias, padding kernel // 2) then BatchNorm, then `act` when given."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out)]
    if act is not None:
        layers.append(act(inplace=False))
    return nn.Sequential(*layers)


def relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """NB201's operation: ReLU, then conv_bn (NATS-Bench and TransNAS-Bench use the same)."""
    return nn.Sequential(nn.ReLU(inplace=False), *conv_bn(c_in, c_out, kernel, stride))


def round8(x: float) -> int:
    """Channels rounded to the nearest multiple of 8, never below 8 nor 10% below x (MobileNet's rule)."""
    rounded = max(8, int(x + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * x else rounded


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


class PooledClassifier(nn.Module):
    """A feature stack, global average pooling and a linear head: the pooling is a module so that proxies that
    read the pre-pooling feature map (Zen-score) find it."""

    def __init__(self, layers: list[nn.Module], channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))
