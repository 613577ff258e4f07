"""AutoFormer's subnets as timm ViTs: class token, learned positions, blocks of per-layer MLP ratio and heads."""
from __future__ import annotations

from typing import Any

import torch
from timm.layers import Attention, PatchEmbed, trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

HEAD_DIM = 64


class Attention64(Attention):
    """timm's attention with AutoFormer's fixed 64-dimensional heads, computed unfused: second-order proxies
    (GraSP) need a double backward that PyTorch's fused CPU attention lacks."""

    def __init__(self, dim: int, num_heads: int = 8, **kwargs: Any) -> None:
        super().__init__(dim, num_heads, attn_head_dim=HEAD_DIM, **kwargs)
        self.fused_attn = False  # type: ignore[misc]  # timm marks it Final (for TorchScript)


class ViT(nn.Module):
    """A class-token ViT whose blocks may differ in MLP ratio and head count (AutoFormer's subnets)."""

    def __init__(self, embed: int, layers: list[tuple[float, int]], num_classes: int, image: int = 224,
                 patch: int = 16) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(image, patch, 3, embed)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, embed))
        trunc_normal_(self.cls_token, std=0.02)
        trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.Sequential(*(
            Block(embed, heads, ratio, qkv_bias=True, attn_layer=Attention64)
            for ratio, heads in layers))
        self.norm = nn.LayerNorm(embed, eps=1e-6)
        self.head = nn.Linear(embed, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])
