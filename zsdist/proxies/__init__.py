"""Proxy registry: `get_proxy(name)` and `resolve_proxies(names)`; each family registers itself on import.

The families import torch, so they are imported on first use of the registry, not with this package:
`zsdist.proxies.catalog` answers names and metadata without them.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from zsdist.proxies.base import Proxy, register_proxy

if TYPE_CHECKING:  # served lazily by __getattr__ at run time
    from zsdist.proxies.base import PROXIES, get_proxy, resolve_proxies

FAMILIES = ("cost", "naswot", "synflow", "activation", "aznas", "meco", "zen", "gradient", "grasp", "jacobian",
            "ntk", "persample", "zico", "vit")
_REGISTRY = ("PROXIES", "get_proxy", "resolve_proxies")

__all__ = ["PROXIES", "Proxy", "get_proxy", "register_proxy", "resolve_proxies"]


def __getattr__(name: str) -> object:
    if name not in _REGISTRY:
        raise AttributeError(f"module 'zsdist.proxies' has no attribute '{name}'")
    for family in FAMILIES:  # registers the built-in proxies (once: imports are cached)
        importlib.import_module(f"zsdist.proxies.{family}")
    from zsdist.proxies import base

    return getattr(base, name)
