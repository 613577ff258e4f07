"""Search-space registry: `create_space(name)` is the one door to a space; modules register themselves."""
from __future__ import annotations

from collections.abc import Callable

from zsdist.registry import Registry
from zsdist.spaces.base import SearchSpace

SPACES: Registry[type[SearchSpace]] = Registry("space")
_instances: dict[str, SearchSpace] = {}


def register_space(name: str) -> Callable[[type[SearchSpace]], type[SearchSpace]]:
    def add(cls: type[SearchSpace]) -> type[SearchSpace]:
        SPACES.add(name, cls)
        return cls
    return add


def create_space(name: str) -> SearchSpace:
    """The space called `name` (spaces are stateless, so one instance per process is shared)."""
    if name not in _instances:
        _instances[name] = SPACES.get(name)()
    return _instances[name]


def list_spaces() -> list[str]:
    return SPACES.names()


from zsdist.spaces import (  # noqa: E402,F401
    autoformer,
    mbv2,
    nats_sss,
    nb101,
    nb201,
    pit,
    resnet,
    transnas_micro,
)
