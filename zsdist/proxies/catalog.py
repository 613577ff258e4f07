"""The proxies' metadata without the proxies: names, direction, needs, options and descriptions, for the CLI,
workflow validation and the DuckDB views, none of which should wait for torch (the proxy families import it).

catalog.json is generated from the registry: `python -m zsdist.proxies.catalog` rewrites it, and a test fails,
naming that command, when a proxy was added or changed without it.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path

from zsdist.proxies.base import Proxy, check_names
from zsdist.registry import Registry

CATALOG = Path(__file__).with_name("catalog.json")


def entry(proxy: Proxy) -> dict:
    return {"name": proxy.name, "higher_is_better": proxy.higher_is_better, "needs": sorted(proxy.needs),
            "options": dict(proxy.options), "description": proxy.description, "reference": proxy.reference}


@functools.lru_cache(maxsize=1)
def catalog() -> Registry[Proxy]:
    """Every registered proxy as a Proxy without its function."""
    known: Registry[Proxy] = Registry("proxy")
    for e in json.loads(CATALOG.read_text()):
        known.add(e["name"], Proxy(e["name"], None, e["higher_is_better"], frozenset(e["needs"]), e["options"],
                                   e["description"], e["reference"]))
    return known


def proxy_names(names: str | Sequence[str]) -> list[str]:
    """'all' or a list of names → the names, checked as `resolve_proxies` checks them, without importing any."""
    return [catalog().get(n).name for n in check_names(names, catalog().names())]


def write() -> None:
    from zsdist.proxies import PROXIES, get_proxy

    CATALOG.write_text(json.dumps([entry(get_proxy(n)) for n in PROXIES.names()], indent=1) + "\n")


if __name__ == "__main__":
    write()
