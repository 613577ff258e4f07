"""ResNet-style ImageNet space: 4 bottleneck stages × (depth, width, bottleneck ratio) = 16^4 = 65,536.

Fixed parts as ResNet-50: 7×7 stride-2 stem of 64, 3×3 stride-2 max-pool, stages at strides 1, 2, 2, 2, global
pooling and a 1,000-way classifier. Stage s has base output width (256, 512, 1024, 2048) scaled by its width
knob; its blocks' inner width is output × bottleneck ratio (rounded to 8); its first block projects the shortcut
and carries the stride in its 3×3 conv (ResNet v1.5). ResNet-50 is "d3w1.0b0.25-d4w1.0b0.25-d6w1.0b0.25-d3w1.0b0.25".
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from zsdist.spaces import register_space
from zsdist.spaces.staged import StagedSpace

if TYPE_CHECKING:
    from torch import nn

BASE_WIDTHS = (256, 512, 1024, 2048)
STRIDES = (1, 2, 2, 2)


@register_space("resnet")
class ResNetSpace(StagedSpace):
    name = "resnet"
    stages = len(BASE_WIDTHS)
    knobs = {"d": (2, 3, 4, 6), "w": (0.5, 1.0), "b": (0.25, 0.5)}
    datasets = ("imagenet",)

    def build(self, arch_id: int, dataset: str) -> nn.Module:
        from zsdist.networks.resnet import ResNetLike

        return ResNetLike(self.decode(arch_id), self.num_classes(dataset))
