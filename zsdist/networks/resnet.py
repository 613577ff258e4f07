"""The ResNet-style network: bottleneck stages (v1.5: the stride in the 3×3 conv) between ResNet-50's fixed ends."""
from __future__ import annotations

import torch
from torch import nn

from zsdist.networks.blocks import PooledClassifier, conv_bn, round8
from zsdist.spaces.resnet import BASE_WIDTHS, STRIDES


class Bottleneck(nn.Module):
    def __init__(self, c_in: int, mid: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(c_in, mid, 1), nn.ReLU(inplace=False), conv_bn(mid, mid, 3, stride),
                                  nn.ReLU(inplace=False), conv_bn(mid, c_out, 1))
        self.shortcut = conv_bn(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else nn.Identity()
        self.act = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ResNetLike(PooledClassifier):
    def __init__(self, stages: list[dict], num_classes: int) -> None:
        layers: list[nn.Module] = [conv_bn(3, 64, 7, 2), nn.ReLU(inplace=False), nn.MaxPool2d(3, 2, 1)]
        c = 64
        for base, stride, stage in zip(BASE_WIDTHS, STRIDES, stages):
            width = round8(base * stage["w"])
            mid = round8(width * stage["b"])
            for i in range(stage["d"]):
                layers.append(Bottleneck(c, mid, width, stride if i == 0 else 1))
                c = width
        super().__init__(layers, c, num_classes)
