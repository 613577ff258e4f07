"""ResNet-style ImageNet space: 4 bottleneck stages × (depth, width, bottleneck ratio) = 16^4 = 65,536.

Fixed parts as ResNet-50: 7×7 stride-2 stem of 64, 3×3 stride-2 max-pool, stages at strides 1, 2, 2, 2, global
pooling and a 1,000-way classifier. Stage s has base output width (256, 512, 1024, 2048) scaled by its width
knob; its blocks' inner width is output × bottleneck ratio (rounded to 8); its first block projects the shortcut
and carries the stride in its 3×3 conv (ResNet v1.5). ResNet-50 is "d3w1.0b0.25-d4w1.0b0.25-d6w1.0b0.25-d3w1.0b0.25".
"""
from __future__ import annotations

import torch
from torch import nn

from zsdist.spaces import register_space
from zsdist.spaces.mbv2 import round8
from zsdist.spaces.base import PooledClassifier
from zsdist.spaces.staged import StagedSpace

BASE_WIDTHS = (256, 512, 1024, 2048)
STRIDES = (1, 2, 2, 2)
NUM_CLASSES = {"imagenet": 1000}


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out))


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


@register_space("resnet")
class ResNetSpace(StagedSpace):
    name = "resnet"
    stages = len(BASE_WIDTHS)
    knobs = {"d": (2, 3, 4, 6), "w": (0.5, 1.0), "b": (0.25, 0.5)}
    datasets = tuple(NUM_CLASSES)

    def build(self, arch_id: int, dataset: str) -> nn.Module:
        return ResNetLike(self.decode(arch_id), NUM_CLASSES[self.check_dataset(dataset)])
