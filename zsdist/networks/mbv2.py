"""The MobileNetV2-style network: inverted residual blocks per searched stage between MobileNetV2's fixed ends."""
from __future__ import annotations

import torch
from torch import nn

from zsdist.networks.blocks import PooledClassifier, conv_bn, round8
from zsdist.spaces.mbv2 import BASE_WIDTHS, STRIDES


class InvertedResidual(nn.Module):
    """1×1 expand (skipped at expansion 1), k×k depthwise, linear 1×1 project; identity shortcut when shapes keep."""

    def __init__(self, c_in: int, c_out: int, expansion: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = c_in * expansion
        layers = [conv_bn(c_in, mid, 1, act=nn.ReLU6)] if expansion != 1 else []
        layers += [conv_bn(mid, mid, kernel, stride, groups=mid, act=nn.ReLU6), conv_bn(mid, c_out, 1)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2Like(PooledClassifier):
    def __init__(self, stages: list[dict], num_classes: int) -> None:
        layers: list[nn.Module] = [conv_bn(3, 32, 3, 2, act=nn.ReLU6), InvertedResidual(32, 16, 1, 3, 1)]
        c = 16
        for base, stride, stage in zip(BASE_WIDTHS, STRIDES, stages):
            width = round8(base * stage["w"])
            for i in range(stage["d"]):
                layers.append(InvertedResidual(c, width, stage["e"], stage["k"], stride if i == 0 else 1))
                c = width
        layers += [InvertedResidual(c, 320, 6, 3, 1), conv_bn(320, 1280, 1, act=nn.ReLU6)]
        super().__init__(layers, 1280, num_classes)
