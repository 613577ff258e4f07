"""MobileNetV2-style ImageNet space: 5 searchable stages × (expansion, kernel, depth, width) = 24^5 = 7,962,624.

Fixed parts as MobileNetV2: a stride-2 3×3 stem of 32, one expansion-1 block to 16 channels, one expansion-6
block to 320 and a 1×1 conv to 1,280 before pooling and the 1,000-way classifier. The searchable stages are
MobileNetV2's middle five (base widths 24, 32, 64, 96, 160; strides 2, 2, 2, 1, 2; the stride in the first
block), with the base width scaled by the width knob (MobileNet rounding to 8). MobileNetV2-1.0 itself is
"e6k3d2w1.0-e6k3d3w1.0-e6k3d4w1.0-e6k3d3w1.0-e6k3d3w1.0".
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from zsdist.spaces import register_space
from zsdist.spaces.staged import StagedSpace

if TYPE_CHECKING:
    from torch import nn

BASE_WIDTHS = (24, 32, 64, 96, 160)
STRIDES = (2, 2, 2, 1, 2)


@register_space("mbv2")
class MobileNetV2Space(StagedSpace):
    name = "mbv2"
    stages = len(BASE_WIDTHS)
    knobs = {"e": (3, 6), "k": (3, 5), "d": (2, 3, 4), "w": (0.75, 1.0)}
    datasets = ("imagenet",)

    def build(self, arch_id: int, dataset: str) -> nn.Module:
        from zsdist.networks.mbv2 import MobileNetV2Like

        return MobileNetV2Like(self.decode(arch_id), self.num_classes(dataset))
