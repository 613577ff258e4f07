"""PiT subnets as timm's PoolingVisionTransformer at 224×224 (16×16 patches at stride 8)."""
from __future__ import annotations

from timm.layers import Attention
from timm.models.pit import PoolingVisionTransformer
from torch import nn


def pit_network(arch: dict, num_classes: int) -> nn.Module:
    """The network of a decoded PiT arch ({base, ratio, depth, heads}) with unfused attention: GraSP's double
    backward needs it on CPU."""
    model = PoolingVisionTransformer(img_size=224, patch_size=16, stride=8, base_dims=[arch["base"]] * 3,
                                     depth=list(arch["depth"]), heads=list(arch["heads"]), mlp_ratio=arch["ratio"],
                                     num_classes=num_classes)
    for module in model.modules():
        if isinstance(module, Attention):
            module.fused_attn = False  # type: ignore[misc]  # timm marks it Final (for TorchScript)
    return model
