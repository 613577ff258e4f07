"""NATS-Bench size space (SSS): 8^5 = 32,768 channel configurations of one fixed cell.

The skeleton is NB201's with one cell per stage: cell, reduction, cell, reduction, cell, and each of those five
layers picks its output width from {8, 16, ..., 64}. A cell whose input width differs from its output width
adapts on the edges leaving node 0 (conv: C_in → C_out; skip: ReLU + 1×1 conv + BN; none: zeros of width C_out).
arch_id is the base-8 number of the widths with stage 1 most significant, so ids ascend in the lexicographic
order of the arch string "8:16:32:48:64".
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from zsdist.errors import ZsdistError
from zsdist.spaces import register_space
from zsdist.spaces.base import SearchSpace, from_digits, mutate_digits, to_digits
from zsdist.spaces.nb201 import NB201

if TYPE_CHECKING:
    from torch import nn

WIDTHS = (8, 16, 24, 32, 40, 48, 56, 64)
LAYERS = 5
RADICES = (len(WIDTHS),) * LAYERS
# NATS-Bench's fixed cell for the size space: the best NB201 topology on CIFAR-100 (73.51 %).
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def encode(widths: tuple[int, ...]) -> int:
    return from_digits([WIDTHS.index(w) for w in widths], RADICES)


def decode(arch_id: int) -> tuple[int, ...]:
    return tuple(WIDTHS[d] for d in to_digits(arch_id, RADICES))


@register_space("nats_sss")
class NatsSize(SearchSpace):
    name = "nats_sss"
    size = len(WIDTHS) ** LAYERS
    datasets = NB201.datasets

    def arch_str(self, arch_id: int) -> str:
        return ":".join(str(w) for w in decode(self.check_id(arch_id)))

    def parse(self, arch: str) -> int:
        parts = arch.strip().split(":")
        if len(parts) != LAYERS or not all(p.isdigit() and int(p) in WIDTHS for p in parts):
            raise ZsdistError(f"bad NATS size arch '{arch}': expected {LAYERS} widths from "
                              f"{', '.join(map(str, WIDTHS))} joined by ':' (e.g. 8:16:32:48:64)")
        return encode(tuple(int(p) for p in parts))

    def build(self, arch_id: int, dataset: str) -> nn.Module:
        from zsdist.networks.nats_sss import SizeNetwork

        return SizeNetwork(decode(self.check_id(arch_id)), self.num_classes(dataset))

    def mutate(self, arch_id: int, rng: np.random.Generator) -> int:
        """Another width for one layer."""
        return mutate_digits(self.check_id(arch_id), RADICES, rng)
