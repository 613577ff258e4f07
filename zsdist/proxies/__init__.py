"""Proxy registry: `get_proxy(name)` and `resolve_proxies(names)`; each family registers itself on import."""
from zsdist.proxies.base import PROXIES, Proxy, get_proxy, register_proxy, resolve_proxies
from zsdist.proxies import cost, naswot, synflow  # noqa: F401  (register the built-in proxies)

__all__ = ["PROXIES", "Proxy", "get_proxy", "register_proxy", "resolve_proxies"]
