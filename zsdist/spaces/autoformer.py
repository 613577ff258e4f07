"""AutoFormer-Tiny space: ViTs of embed 192/216/240, depth 12–14, each layer its own MLP ratio (3.5/4) and head
count (3/4): 3 × (4^12 + 4^13 + 4^14) = 1,056,964,608 networks, built from timm blocks.

As AutoFormer: 224×224 inputs, 16×16 patches, a class token, learned position embeddings, pre-norm blocks with
q/k/v of 64 dimensions per head (so attention width = heads × 64, independent of the embedding), a final
LayerNorm and a linear head on the class token. Tokens start at ViT's truncated normal (std 0.02), every layer
at PyTorch's default init.
arch string "e192:r3.5h3,r4.0h4,…" (one item per layer); arch_id = embed index · T + offset(depth) + Σ c_l·4^l
with c_l = 2·ratio index + heads index and T = 4^12 + 4^13 + 4^14, so every id is one network and back.
"""
from __future__ import annotations

import re

import torch
from timm.layers import Attention, PatchEmbed, trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from zsdist.errors import ZsdistError
from zsdist.spaces import register_space
from zsdist.spaces.base import SearchSpace

EMBEDS = (192, 216, 240)
DEPTHS = (12, 13, 14)
RATIOS = (3.5, 4.0)
HEADS = (3, 4)
HEAD_DIM = 64
NUM_CLASSES = {"cifar100_224": 100, "flowers102": 102, "chaoyang": 4, "imagenet": 1000}
_PER_DEPTH = tuple(4**d for d in DEPTHS)
_OFFSET = tuple(sum(_PER_DEPTH[:i]) for i in range(len(DEPTHS)))
_LAYER = re.compile(r"r(3\.5|4\.0)h([34])")


class Attention64(Attention):
    """timm's attention with AutoFormer's fixed 64-dimensional heads, computed unfused: second-order proxies
    (GraSP) need a double backward that PyTorch's fused CPU attention lacks."""

    def __init__(self, dim: int, num_heads: int = 8, **kwargs: object) -> None:
        super().__init__(dim, num_heads, attn_head_dim=HEAD_DIM, **kwargs)
        self.fused_attn = False


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


@register_space("autoformer_tiny")
class AutoFormerTiny(SearchSpace):
    name = "autoformer_tiny"
    family = "vit"  # analyses set ViT spaces beside CNN spaces
    size = len(EMBEDS) * sum(_PER_DEPTH)
    datasets = tuple(NUM_CLASSES)

    def decode(self, arch_id: int) -> tuple[int, list[tuple[float, int]]]:
        embed_index, rest = divmod(self.check_id(arch_id), sum(_PER_DEPTH))
        depth_index = max(i for i, off in enumerate(_OFFSET) if off <= rest)
        code = rest - _OFFSET[depth_index]
        layers = []
        for _ in range(DEPTHS[depth_index]):
            code, c = divmod(code, 4)
            layers.append((RATIOS[c // 2], HEADS[c % 2]))
        return EMBEDS[embed_index], layers

    def encode(self, embed: int, layers: list[tuple[float, int]]) -> int:
        depth_index = DEPTHS.index(len(layers))
        code = sum((2 * RATIOS.index(r) + HEADS.index(h)) * 4**i for i, (r, h) in enumerate(layers))
        return EMBEDS.index(embed) * sum(_PER_DEPTH) + _OFFSET[depth_index] + code

    def arch_str(self, arch_id: int) -> str:
        embed, layers = self.decode(arch_id)
        return f"e{embed}:" + ",".join(f"r{r}h{h}" for r, h in layers)

    def parse(self, arch: str) -> int:
        head, _, body = arch.strip().partition(":")
        items = body.split(",") if body else []
        if not re.fullmatch(r"e\d+", head) or int(head[1:]) not in EMBEDS or len(items) not in DEPTHS \
                or not all(_LAYER.fullmatch(i) for i in items):
            raise ZsdistError(f"bad AutoFormer-Tiny arch '{arch}': expected e{{192|216|240}}: then 12–14 layers "
                              "'r{3.5|4.0}h{3|4}' joined by ','")
        layers = [(float(m.group(1)), int(m.group(2))) for m in map(_LAYER.fullmatch, items)]
        return self.encode(int(head[1:]), layers)

    def build(self, arch_id: int, dataset: str) -> nn.Module:
        embed, layers = self.decode(arch_id)
        return ViT(embed, layers, NUM_CLASSES[self.check_dataset(dataset)])
