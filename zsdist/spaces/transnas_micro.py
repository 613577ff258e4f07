"""TransNAS-Bench-101 micro space: 4^6 = 4,096 cells in the fixed "64-41414" skeleton, classification heads.

As TransNAS-Bench-101 defines it (its MacroNet + FFDecoder): 256×256 inputs; a stem of a stride-2 3×3 conv to
32 + BN and a stride-2 ReLU-conv-BN to 64; five modules of two cells each, where modules coded "4" (1, 3, 5)
double the width and halve the resolution in their first cell and modules coded "1" keep both; then global
average pooling and a linear head for class_scene (47 classes) or class_object (75). The cell is NB201's 4-node
DAG with ops none / skip / ReLU-conv1×1-BN / ReLU-conv3×3-BN; the edges leaving the input node carry the width
and stride change (skip becomes a factorized reduction, none strided zeros).
Arch string as TransNAS: "64-41414-a_bc_def" with digits 0 none, 1 skip, 2 conv1x1, 3 conv3x3 per edge in
arch-string order (1,2),(1,3),(2,3),(1,4),(2,4),(3,4); arch_id = Σ digit(e)·4^e.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from zsdist.errors import ZsdistError
from zsdist.spaces import register_space
from zsdist.spaces.base import SearchSpace, mutate_digits
from zsdist.spaces.nb201 import EDGES

if TYPE_CHECKING:
    from torch import nn

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3")
MACRO = "64-41414"
_ARCH = re.compile(r"^64-41414-([0-3])_([0-3]{2})_([0-3]{3})$")


def encode(digits: tuple[int, ...]) -> int:
    return sum(d * 4**e for e, d in enumerate(digits))


def decode(arch_id: int) -> tuple[int, ...]:
    return tuple((arch_id // 4**e) % 4 for e in range(len(EDGES)))


@register_space("transnas_micro")
class TransNASMicro(SearchSpace):
    name = "transnas_micro"
    size = len(OPS) ** len(EDGES)
    datasets = ("class_scene", "class_object")

    def arch_str(self, arch_id: int) -> str:
        d = "".join(map(str, decode(self.check_id(arch_id))))
        return f"{MACRO}-{d[0]}_{d[1:3]}_{d[3:]}"

    def parse(self, arch: str) -> int:
        match = _ARCH.match(arch.strip())
        if not match:
            raise ZsdistError(f"bad TransNAS micro arch '{arch}': expected {MACRO}-a_bc_def with digits 0-3 "
                              "(0 none, 1 skip, 2 conv1x1, 3 conv3x3)")
        return encode(tuple(int(c) for c in "".join(match.groups())))

    def ops(self, arch_id: int) -> tuple[str, ...]:
        return tuple(OPS[d] for d in decode(self.check_id(arch_id)))

    def build(self, arch_id: int, dataset: str) -> nn.Module:
        from zsdist.networks.transnas_micro import MicroNetwork

        return MicroNetwork(self.ops(arch_id), self.num_classes(dataset))

    def mutate(self, arch_id: int, rng: np.random.Generator) -> int:
        """Another op on one edge."""
        return mutate_digits(self.check_id(arch_id), (len(OPS),) * len(EDGES), rng)
