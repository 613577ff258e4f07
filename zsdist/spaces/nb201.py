"""NAS-Bench-201 (NATS-Bench topology): 5^6 = 15,625 cells in the fixed C=16, N=5 skeleton.

arch_id = Σ op(e)·5^e over the six edges in arch-string order, so an id needs no data file.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from zsdist.errors import ZsdistError
from zsdist.spaces import register_space
from zsdist.spaces.base import SearchSpace, mutate_digits

if TYPE_CHECKING:
    from torch import nn

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (target node, source node) of each edge, in the order the arch string lists them.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
_NODE = re.compile(r"^\|(?:[a-z0-9_]+~\d\|)+$")


def encode(ops: tuple[str, ...]) -> int:
    return sum(OPS.index(op) * 5**e for e, op in enumerate(ops))


def decode(arch_id: int) -> tuple[str, ...]:
    return tuple(OPS[(arch_id // 5**e) % 5] for e in range(len(EDGES)))


def to_string(ops: tuple[str, ...]) -> str:
    nodes = []
    for target in (1, 2, 3):
        nodes.append("|" + "|".join(f"{ops[e]}~{src}" for e, (t, src) in enumerate(EDGES) if t == target) + "|")
    return "+".join(nodes)


def from_string(arch: str) -> tuple[str, ...]:
    """Parse `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`, checking every op and input index."""
    nodes = arch.strip().split("+")
    if len(nodes) != 3 or not all(_NODE.match(n) for n in nodes):
        raise ZsdistError(f"bad NB201 arch string '{arch}': expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2|")
    ops = []
    for target, node in enumerate(nodes, start=1):
        edges = node.strip("|").split("|")
        if [int(e.split("~")[1]) for e in edges] != list(range(target)):
            raise ZsdistError(f"bad NB201 arch string '{arch}': node {target} must list inputs 0..{target - 1}")
        for edge in edges:
            op = edge.split("~")[0]
            if op not in OPS:
                raise ZsdistError(f"bad NB201 arch string '{arch}': unknown op '{op}' (known: {', '.join(OPS)})")
            ops.append(op)
    return tuple(ops)


@register_space("nb201")
class NB201(SearchSpace):
    name = "nb201"
    size = 5 ** len(EDGES)
    datasets = ("cifar10", "cifar100", "imagenet16_120")

    def arch_str(self, arch_id: int) -> str:
        return to_string(decode(self.check_id(arch_id)))

    def parse(self, arch: str) -> int:
        return encode(from_string(arch))

    def build(self, arch_id: int, dataset: str) -> nn.Module:
        from zsdist.networks.nb201 import NB201Network

        return NB201Network(decode(self.check_id(arch_id)), self.num_classes(dataset))

    def mutate(self, arch_id: int, rng: np.random.Generator) -> int:
        """Another op on one edge."""
        return mutate_digits(self.check_id(arch_id), (len(OPS),) * len(EDGES), rng)
