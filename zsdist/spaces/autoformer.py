"""AutoFormer-Tiny space: ViTs of embed 192/216/240, depth 12–14, each layer its own MLP ratio (3.5/4) and head
count (3/4): 3 × (4^12 + 4^13 + 4^14) = 1,056,964,608 networks, built from timm blocks.

As AutoFormer: 224×224 inputs, 16×16 patches, a class token, learned position embeddings, pre-norm blocks with
q/k/v of 64 dimensions per head (so attention width = heads × 64, independent of the embedding), a final
LayerNorm and a linear head on the class token. Tokens start at ViT's truncated normal (std 0.02), every layer
at PyTorch's default init.
arch string "e192:r3.5h3,r4.0h4,…" (one item per layer); arch_id = embed index · T + offset(depth) + Σ c_l·4^l
with c_l = 2·ratio index + heads index and T = 4^12 + 4^13 + 4^14, so every id is one network and back.
Mutation changes one gene: the embedding, the depth (layers added at random
choices or the last ones dropped), or one layer's MLP ratio or head count.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from zsdist.errors import ZsdistError
from zsdist.spaces import register_space
from zsdist.spaces.base import SearchSpace

if TYPE_CHECKING:
    from torch import nn

EMBEDS = (192, 216, 240)
DEPTHS = (12, 13, 14)
RATIOS = (3.5, 4.0)
HEADS = (3, 4)
_PER_DEPTH = tuple(4**d for d in DEPTHS)
_OFFSET = tuple(sum(_PER_DEPTH[:i]) for i in range(len(DEPTHS)))
_LAYER = re.compile(r"r(3\.5|4\.0)h([34])")


@register_space("autoformer_tiny")
class AutoFormerTiny(SearchSpace):
    name = "autoformer_tiny"
    family = "vit"  # analyses set ViT spaces beside CNN spaces
    size = len(EMBEDS) * sum(_PER_DEPTH)
    datasets = ("cifar100_224", "flowers102", "chaoyang", "imagenet")

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
        layers = [(float(m.group(1)), int(m.group(2))) for m in map(_LAYER.fullmatch, items) if m]  # all match
        return self.encode(int(head[1:]), layers)

    def build(self, arch_id: int, dataset: str) -> nn.Module:
        from zsdist.networks.autoformer import ViT

        embed, layers = self.decode(arch_id)
        return ViT(embed, layers, self.num_classes(dataset))

    def mutate(self, arch_id: int, rng: np.random.Generator) -> int:
        """Another embedding, another depth, or another MLP ratio or head count in one layer (each gene equally
        likely)."""
        embed, layers = self.decode(arch_id)
        gene = int(rng.integers(2 + 2 * len(layers)))
        if gene == 0:
            embed = _other(EMBEDS, embed, rng)
        elif gene == 1:
            depth = _other(DEPTHS, len(layers), rng)
            layers = layers[:depth] + [(RATIOS[int(rng.integers(2))], HEADS[int(rng.integers(2))])
                                       for _ in range(depth - len(layers))]
        else:
            layer, knob = divmod(gene - 2, 2)
            ratio, heads = layers[layer]
            layers[layer] = (_other(RATIOS, ratio, rng), heads) if knob == 0 else (ratio, _other(HEADS, heads, rng))
        return self.encode(embed, layers)


def _other(values: tuple, value: float, rng: np.random.Generator):
    """A value of `values` other than `value`, uniformly."""
    others = [v for v in values if v != value]
    return others[int(rng.integers(len(others)))]
