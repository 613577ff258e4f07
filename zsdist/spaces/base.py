"""What every search space provides: stable integer ids, canonical strings, sampling that streams, mutation, and a
builder. The encoding imports no torch; `build` imports the space's network module (zsdist.networks) when called,
so listing spaces and validating workflows stay fast."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from zsdist.errors import ZsdistError

if TYPE_CHECKING:
    from torch import nn


class SearchSpace(ABC):
    """A finite space of architectures addressed by integer ids 0..size-1 (ids derive from the arch itself)."""

    name: str
    size: int
    datasets: Sequence[str]
    family: str = "cnn"  # cnn | vit: the analyses set the two families side by side

    @abstractmethod
    def arch_str(self, arch_id: int) -> str:
        """The canonical string of an architecture."""

    @abstractmethod
    def parse(self, arch: str) -> int:
        """The id of an architecture string; raises ZsdistError naming what is wrong."""

    @abstractmethod
    def build(self, arch_id: int, dataset: str) -> nn.Module:
        """The network at PyTorch default init (callers seed torch first)."""

    @abstractmethod
    def mutate(self, arch_id: int, rng: np.random.Generator) -> int:
        """A different architecture one edit away in the space's own encoding (evolution's move)."""

    def check_id(self, arch_id: int) -> int:
        if not 0 <= int(arch_id) < self.size:
            raise ZsdistError(f"arch id {arch_id} is outside space '{self.name}' (0..{self.size - 1})")
        return int(arch_id)

    def check_dataset(self, dataset: str) -> str:
        if dataset not in self.datasets:
            raise ZsdistError(f"space '{self.name}' has no dataset '{dataset}' (known: {', '.join(self.datasets)})")
        return dataset

    def num_classes(self, dataset: str) -> int:
        """The classifier width for a dataset, from the one dataset table."""
        from zsdist.data import DATASETS  # zsdist.data imports torch: only builders need it

        return DATASETS.get(self.check_dataset(dataset)).num_classes

    def enumerate(self) -> Iterator[int]:
        return iter(range(self.size))

    def sample(self, n: int, seed: int) -> list[int]:
        """n distinct ids chosen by the seed, sorted; never materialises the space."""
        if not 0 < n <= self.size:
            raise ZsdistError(f"sample of {n} does not fit space '{self.name}' of {self.size} architectures")
        ids = np.random.default_rng(seed).choice(self.size, size=n, replace=False)
        return sorted(int(i) for i in ids)


def to_digits(number: int, radices: Sequence[int]) -> list[int]:
    """The mixed-radix digits of `number`, most significant first."""
    digits = []
    for radix in reversed(radices):
        number, digit = divmod(number, radix)
        digits.append(digit)
    return digits[::-1]


def from_digits(digits: Sequence[int], radices: Sequence[int]) -> int:
    number = 0
    for radix, digit in zip(radices, digits):
        number = number * radix + digit
    return number


def mutate_digits(arch_id: int, radices: Sequence[int], rng: np.random.Generator) -> int:
    """Change one digit of a mixed-radix id to another of its values: for spaces that are one independent choice
    per position (an edge's op, a stage's knob, a layer's width)."""
    digits = to_digits(arch_id, radices)
    movable = [i for i, radix in enumerate(radices) if radix > 1]
    position = movable[int(rng.integers(len(movable)))]
    digits[position] = (digits[position] + 1 + int(rng.integers(radices[position] - 1))) % radices[position]
    return from_digits(digits, radices)
