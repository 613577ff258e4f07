"""Spaces whose architecture is one choice per knob per stage (MobileNetV2-, ResNet-style): mixed-radix ids.

Each stage picks one value for every knob; the stage's digit is the index of that combination (knobs in
declaration order, the last varying fastest) and arch_id reads the digits with stage 1 most significant.
The arch string lists the stages joined by '-', each as knob letter + value, e.g. "e6k3d2w1.0-e3k5d3w0.75".
"""
from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np

from zsdist.errors import ZsdistError
from zsdist.spaces.base import SearchSpace, mutate_digits


class StagedSpace(SearchSpace):
    """Subclasses set `stages` and `knobs` (letter → allowed values) and implement build(arch_id, dataset).

    Since a stage's digit enumerates its knobs with the last varying fastest, arch_id is also the mixed-radix
    number of every stage's knob indices in order, which is how mutation changes one knob of one stage.
    """

    stages: int
    knobs: dict[str, tuple[float, ...]]
    combos: list[tuple[float, ...]]  # set from `knobs` by __init_subclass__
    radices: tuple[int, ...]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "knobs"):
            cls.combos = list(itertools.product(*cls.knobs.values()))
            cls.size = len(cls.combos) ** cls.stages
            cls.radices = tuple(len(values) for values in cls.knobs.values()) * cls.stages

    def decode(self, arch_id: int) -> list[dict[str, float]]:
        """Per stage, knob letter → value."""
        arch_id = self.check_id(arch_id)
        digits = []
        for _ in range(self.stages):
            arch_id, d = divmod(arch_id, len(self.combos))
            digits.append(d)
        return [dict(zip(self.knobs, self.combos[d])) for d in reversed(digits)]

    def encode(self, stages: Sequence[dict[str, float]]) -> int:
        arch_id = 0
        for stage in stages:
            arch_id = arch_id * len(self.combos) + self.combos.index(tuple(stage[k] for k in self.knobs))
        return arch_id

    def arch_str(self, arch_id: int) -> str:
        return "-".join("".join(f"{k}{v}" for k, v in stage.items()) for stage in self.decode(arch_id))

    def parse(self, arch: str) -> int:
        pattern = "".join(rf"{k}([0-9.]+)" for k in self.knobs)
        parts = arch.strip().split("-")
        example = "".join(f"{k}{v[0]}" for k, v in self.knobs.items())
        if len(parts) != self.stages:
            raise ZsdistError(f"bad {self.name} arch '{arch}': expected {self.stages} stages like '{example}' "
                              "joined by '-'")
        stages = []
        for part in parts:
            match = re.fullmatch(pattern, part)
            if not match:
                raise ZsdistError(f"bad {self.name} arch '{arch}': stage '{part}' is not like '{example}'")
            stage = {}
            for (knob, allowed), text in zip(self.knobs.items(), match.groups()):
                value = type(allowed[0])(float(text)) if isinstance(allowed[0], int) else float(text)
                if value not in allowed or (isinstance(allowed[0], int) and float(text) != value):
                    raise ZsdistError(f"bad {self.name} arch '{arch}': {knob}={text} is not one of "
                                      f"{', '.join(map(str, allowed))}")
                stage[knob] = value
            stages.append(stage)
        return self.encode(stages)

    def mutate(self, arch_id: int, rng: np.random.Generator) -> int:
        """Another value for one knob of one stage."""
        return mutate_digits(self.check_id(arch_id), self.radices, rng)
