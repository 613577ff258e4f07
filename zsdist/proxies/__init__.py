"""Proxy registry: `get_proxy(name)` and `resolve_proxies(names)`; each family registers itself on import."""
from zsdist.proxies.base import PROXIES, Proxy, get_proxy, register_proxy, resolve_proxies
from zsdist.proxies import cost, naswot, synflow  # noqa: F401  (register the built-in proxies)
from zsdist.proxies import activation, aznas, meco, zen  # noqa: F401
from zsdist.proxies import gradient, grasp, jacobian, ntk, zico  # noqa: F401
from zsdist.proxies import vit  # noqa: F401

__all__ = ["PROXIES", "Proxy", "get_proxy", "register_proxy", "resolve_proxies"]
