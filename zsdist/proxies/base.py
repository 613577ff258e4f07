"""The proxy registry: each proxy is a small function over a Probe plus metadata the evaluator reads."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zsdist.errors import ZsdistError
from zsdist.registry import Registry

if TYPE_CHECKING:
    from zsdist.proxies.probe import Probe


@dataclass(frozen=True)
class Proxy:
    name: str
    fn: Callable[[Probe], float] | None  # None in the catalog (zsdist.proxies.catalog): metadata only
    higher_is_better: bool
    needs: frozenset[str]  # shared quantities read from the Probe (see zsdist.proxies.probe.QUANTITIES)
    options: Mapping[str, str] = field(default_factory=dict)  # every choice that affects the number
    description: str = ""
    reference: str = ""

    @property
    def sign(self) -> int:
        """Multiply raw values by this so that higher always predicts higher accuracy."""
        return 1 if self.higher_is_better else -1


PROXIES: Registry[Proxy] = Registry("proxy")


def register_proxy(
    name: str,
    *,
    higher_is_better: bool = True,
    needs: Iterable[str] = (),
    options: Mapping[str, str] | None = None,
    reference: str = "",
) -> Callable[[Callable[[Probe], float]], Callable[[Probe], float]]:
    """Register `fn(probe) -> float` under `name`; its docstring's first line becomes the description."""

    def add(fn: Callable[[Probe], float]) -> Callable[[Probe], float]:
        doc = (fn.__doc__ or "").strip().splitlines()
        PROXIES.add(name, Proxy(name, fn, higher_is_better, frozenset(needs), dict(options or {}),
                                doc[0] if doc else "", reference))
        return fn

    return add


def get_proxy(name: str) -> Proxy:
    return PROXIES.get(name)


def check_names(names: str | Sequence[str], known: Sequence[str]) -> list[str]:
    """'all' → every known name; a list is returned as given once it repeats no name."""
    if isinstance(names, str):
        if names != "all":
            raise ZsdistError(f"proxies must be \"all\" or a list of names, not '{names}'")
        return list(known)
    if len(set(names)) != len(names):
        raise ZsdistError(f"proxy list repeats a name: {list(names)}")
    return list(names)


def resolve_proxies(names: str | Sequence[str]) -> list[Proxy]:
    """'all' or a list of names → proxies, rejecting unknown names and duplicates."""
    return [get_proxy(n) for n in check_names(names, PROXIES.names())]
