"""PiT space (Pooling-based ViT, as the subnets of Auto-Prox's PiT ground truth): 4,320 networks from timm.

Knobs: base (per-head) dimension 16/24/32/40, MLP ratio 2/4/6/8, depth per stage (1–3, 4/6/8, 2/4/6) and heads
per stage, a non-decreasing triple from {2, 4, 8}. Stage width = base × heads; 224×224 inputs, 16×16 patches
at stride 8, as timm's PiT-Ti/XS/S (PiT-Ti is "b32-m4-d2,6,4-h2,4,8").
arch_id is the mixed-radix number of (base, ratio, d1, d2, d3, heads-triple index), base most significant;
mutation changes one of those six digits.
"""
from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

import numpy as np

from zsdist.errors import ZsdistError
from zsdist.spaces import register_space
from zsdist.spaces.base import SearchSpace, from_digits, mutate_digits, to_digits

if TYPE_CHECKING:
    from torch import nn

BASES = (16, 24, 32, 40)
RATIOS = (2, 4, 6, 8)
STAGE_DEPTHS = ((1, 2, 3), (4, 6, 8), (2, 4, 6))
HEAD_TRIPLES = tuple(t for t in itertools.product((2, 4, 8), repeat=3) if list(t) == sorted(t))
RADICES = (len(BASES), len(RATIOS), *(len(d) for d in STAGE_DEPTHS), len(HEAD_TRIPLES))
_ARCH = re.compile(r"b(\d+)-m(\d+)-d(\d+),(\d+),(\d+)-h(\d+),(\d+),(\d+)")


@register_space("pit")
class PiT(SearchSpace):
    name = "pit"
    family = "vit"  # analyses set ViT spaces beside CNN spaces
    size = len(BASES) * len(RATIOS) * 27 * len(HEAD_TRIPLES)
    datasets = ("cifar100_224", "flowers102", "chaoyang")

    def decode(self, arch_id: int) -> dict:
        b, m, d1, d2, d3, h = to_digits(self.check_id(arch_id), RADICES)
        return {"base": BASES[b], "ratio": RATIOS[m],
                "depth": tuple(STAGE_DEPTHS[i][d] for i, d in enumerate((d1, d2, d3))), "heads": HEAD_TRIPLES[h]}

    def encode(self, base: int, ratio: int, depth: tuple[int, ...], heads: tuple[int, ...]) -> int:
        digits = (BASES.index(base), RATIOS.index(ratio), *(STAGE_DEPTHS[i].index(d) for i, d in enumerate(depth)),
                  HEAD_TRIPLES.index(tuple(heads)))
        return from_digits(digits, RADICES)

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
        from zsdist.networks.pit import pit_network

        return pit_network(self.decode(arch_id), self.num_classes(dataset))

    def mutate(self, arch_id: int, rng: np.random.Generator) -> int:
        """Another base, MLP ratio, depth of one stage or heads triple."""
        return mutate_digits(self.check_id(arch_id), RADICES, rng)
