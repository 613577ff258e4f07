"""MobileNetV2-style ImageNet space: 5 searchable stages × (expansion, kernel, depth, width) = 24^5 = 7,962,624.

Fixed parts as MobileNetV2: a stride-2 3×3 stem of 32, one expansion-1 block to 16 channels, one expansion-6
block to 320 and a 1×1 conv to 1,280 before pooling and the 1,000-way classifier. The searchable stages are
MobileNetV2's middle five (base widths 24, 32, 64, 96, 160; strides 2, 2, 2, 1, 2; the stride in the first
block), with the base width scaled by the width knob (MobileNet rounding to 8). MobileNetV2-1.0 itself is
"e6k3d2w1.0-e6k3d3w1.0-e6k3d4w1.0-e6k3d3w1.0-e6k3d3w1.0".
"""
from __future__ import annotations

import torch
from torch import nn

from zsdist.spaces import register_space
from zsdist.spaces.base import PooledClassifier
from zsdist.spaces.staged import StagedSpace

BASE_WIDTHS = (24, 32, 64, 96, 160)
STRIDES = (2, 2, 2, 1, 2)
NUM_CLASSES = {"imagenet": 1000}


def round8(x: float) -> int:
    """Channels rounded to the nearest multiple of 8, never below 8 nor 10% below x (MobileNet's rule)."""
    rounded = max(8, int(x + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * x else rounded


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out)]
    if act:
        layers.append(nn.ReLU6(inplace=False))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1×1 expand (skipped at expansion 1), k×k depthwise, linear 1×1 project; identity shortcut when shapes keep."""

    def __init__(self, c_in: int, c_out: int, expansion: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = c_in * expansion
        layers = [conv_bn(c_in, mid, 1)] if expansion != 1 else []
        layers += [conv_bn(mid, mid, kernel, stride, groups=mid), conv_bn(mid, c_out, 1, act=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2Like(PooledClassifier):
    def __init__(self, stages: list[dict], num_classes: int) -> None:
        layers: list[nn.Module] = [conv_bn(3, 32, 3, 2), InvertedResidual(32, 16, 1, 3, 1)]
        c = 16
        for base, stride, stage in zip(BASE_WIDTHS, STRIDES, stages):
            width = round8(base * stage["w"])
            for i in range(stage["d"]):
                layers.append(InvertedResidual(c, width, stage["e"], stage["k"], stride if i == 0 else 1))
                c = width
        layers += [InvertedResidual(c, 320, 6, 3, 1), conv_bn(320, 1280, 1)]
        super().__init__(layers, 1280, num_classes)


@register_space("mbv2")
class MobileNetV2Space(StagedSpace):
    name = "mbv2"
    stages = len(BASE_WIDTHS)
    knobs = {"e": (3, 6), "k": (3, 5), "d": (2, 3, 4), "w": (0.75, 1.0)}
    datasets = tuple(NUM_CLASSES)

    def build(self, arch_id: int, dataset: str) -> nn.Module:
        return MobileNetV2Like(self.decode(arch_id), NUM_CLASSES[self.check_dataset(dataset)])
