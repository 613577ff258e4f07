"""Registry.temporarily and Registry.remove: what tests and the CONTRIBUTING recipes use to register examples for real
without leaving them registered."""
from __future__ import annotations

import pytest

from zsdist.errors import ZsdistError
from zsdist.proxies import PROXIES, get_proxy
from zsdist.registry import Registry


def colours() -> Registry[str]:
    registry: Registry[str] = Registry("colour")
    registry.add("red", "#f00")
    registry.add("blue", "#00f")
    return registry


def test_temporarily_undoes_additions_removals_and_replacements():
    registry = colours()
    with registry.temporarily():
        registry.add("green", "#0f0")
        assert registry.remove("red") == "#f00" and "red" not in registry
        registry.add("red", "#e00")
        assert registry.names() == ["blue", "green", "red"] and registry.get("red") == "#e00"
    assert registry.names() == ["blue", "red"] and registry.get("red") == "#f00"


def test_temporarily_undoes_them_when_the_block_fails():
    registry = colours()
    with pytest.raises(RuntimeError), registry.temporarily():
        registry.remove("blue")
        raise RuntimeError("the test failed")
    assert registry.names() == ["blue", "red"]


def test_removing_an_unknown_name_is_the_lookup_error():
    with pytest.raises(ZsdistError, match="unknown colour 'rde'; did you mean 'red'"):
        colours().remove("rde")


def test_a_proxy_registered_temporarily_is_gone_afterwards():
    params = get_proxy("params")
    with PROXIES.temporarily():
        PROXIES.add("params_again", params)
        assert get_proxy("params_again") is params
    assert "params_again" not in PROXIES and get_proxy("params") is params
