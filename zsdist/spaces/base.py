"""What every search space provides: stable integer ids, canonical strings, sampling that streams, a builder."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from zsdist.errors import ZsdistError


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

    def check_id(self, arch_id: int) -> int:
        if not 0 <= int(arch_id) < self.size:
            raise ZsdistError(f"arch id {arch_id} is outside space '{self.name}' (0..{self.size - 1})")
        return int(arch_id)

    def check_dataset(self, dataset: str) -> str:
        if dataset not in self.datasets:
            raise ZsdistError(f"space '{self.name}' has no dataset '{dataset}' (known: {', '.join(self.datasets)})")
        return dataset

    def enumerate(self) -> Iterator[int]:
        return iter(range(self.size))

    def sample(self, n: int, seed: int) -> list[int]:
        """n distinct ids chosen by the seed, sorted; never materialises the space."""
        if not 0 < n <= self.size:
            raise ZsdistError(f"sample of {n} does not fit space '{self.name}' of {self.size} architectures")
        ids = np.random.default_rng(seed).choice(self.size, size=n, replace=False)
        return sorted(int(i) for i in ids)


class PooledClassifier(nn.Module):
    """A feature stack, global average pooling and a linear head: the pooling is a module so that proxies that
    read the pre-pooling feature map (Zen-score) find it."""

    def __init__(self, layers: list[nn.Module], channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))
