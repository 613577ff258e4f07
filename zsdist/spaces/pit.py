"""PiT space (Pooling-based ViT, as the subnets of Auto-Prox's PiT ground truth): 4,320 networks from timm.

Knobs: base (per-head) dimension 16/24/32/40, MLP ratio 2/4/6/8, depth per stage (1–3, 4/6/8, 2/4/6) and heads
per stage, a non-decreasing triple from {2, 4, 8}. Stage width = base × heads; 224×224 inputs, 16×16 patches
at stride 8, as timm's PiT-Ti/XS/S (PiT-Ti is "b32-m4-d2,6,4-h2,4,8").
arch_id is the mixed-radix number of (base, ratio, d1, d2, d3, heads-triple index), base most significant.
"""
from __future__ import annotations

import itertools
import re

from timm.layers import Attention
from timm.models.pit import PoolingVisionTransformer
from torch import nn

from zsdist.errors import ZsdistError
from zsdist.spaces import register_space
from zsdist.spaces.base import SearchSpace

BASES = (16, 24, 32, 40)
RATIOS = (2, 4, 6, 8)
STAGE_DEPTHS = ((1, 2, 3), (4, 6, 8), (2, 4, 6))
HEAD_TRIPLES = tuple(t for t in itertools.product((2, 4, 8), repeat=3) if list(t) == sorted(t))
NUM_CLASSES = {"cifar100_224": 100, "flowers102": 102, "chaoyang": 4}
RADICES = (len(BASES), len(RATIOS), *(len(d) for d in STAGE_DEPTHS), len(HEAD_TRIPLES))
_ARCH = re.compile(r"b(\d+)-m(\d+)-d(\d+),(\d+),(\d+)-h(\d+),(\d+),(\d+)")


@register_space("pit")
class PiT(SearchSpace):
    name = "pit"
    family = "vit"  # analyses set ViT spaces beside CNN spaces
    size = len(BASES) * len(RATIOS) * 27 * len(HEAD_TRIPLES)
    datasets = tuple(NUM_CLASSES)

    def decode(self, arch_id: int) -> dict:
        arch_id = self.check_id(arch_id)
        digits = []
        for radix in reversed(RADICES):
            arch_id, d = divmod(arch_id, radix)
            digits.append(d)
        b, m, d1, d2, d3, h = reversed(digits)
        return {"base": BASES[b], "ratio": RATIOS[m],
                "depth": tuple(STAGE_DEPTHS[i][d] for i, d in enumerate((d1, d2, d3))), "heads": HEAD_TRIPLES[h]}

    def encode(self, base: int, ratio: int, depth: tuple[int, ...], heads: tuple[int, ...]) -> int:
        digits = (BASES.index(base), RATIOS.index(ratio), *(STAGE_DEPTHS[i].index(d) for i, d in enumerate(depth)),
                  HEAD_TRIPLES.index(tuple(heads)))
        arch_id = 0
        for radix, d in zip(RADICES, digits):
            arch_id = arch_id * radix + d
        return arch_id

    def arch_str(self, arch_id: int) -> str:
        a = self.decode(arch_id)
        return f"b{a['base']}-m{a['ratio']}-d{','.join(map(str, a['depth']))}-h{','.join(map(str, a['heads']))}"

    def parse(self, arch: str) -> int:
        match = _ARCH.fullmatch(arch.strip())
        bad = f"bad PiT arch '{arch}'"
        if not match:
            raise ZsdistError(f"{bad}: expected like b32-m4-d2,6,4-h2,4,8")
        v = [int(g) for g in match.groups()]
        base, ratio, depth, heads = v[0], v[1], tuple(v[2:5]), tuple(v[5:])
        if base not in BASES or ratio not in RATIOS:
            raise ZsdistError(f"{bad}: base must be one of {BASES} and MLP ratio one of {RATIOS}")
        if any(d not in allowed for d, allowed in zip(depth, STAGE_DEPTHS)):
            raise ZsdistError(f"{bad}: stage depths must come from {STAGE_DEPTHS}")
        if heads not in HEAD_TRIPLES:
            raise ZsdistError(f"{bad}: heads must be a non-decreasing triple from 2, 4, 8")
        return self.encode(base, ratio, depth, heads)

    def build(self, arch_id: int, dataset: str) -> nn.Module:
        a = self.decode(arch_id)
        model = PoolingVisionTransformer(img_size=224, patch_size=16, stride=8, base_dims=[a["base"]] * 3,
                                         depth=list(a["depth"]), heads=list(a["heads"]), mlp_ratio=a["ratio"],
                                         num_classes=NUM_CLASSES[self.check_dataset(dataset)])
        for module in model.modules():  # unfused attention: GraSP's double backward needs it on CPU
            if isinstance(module, Attention):
                module.fused_attn = False
        return model
