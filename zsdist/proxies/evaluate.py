"""Evaluate a set of proxies on one architecture: shared quantities first, then each proxy; failures become rows."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from zsdist.data import Batch
from zsdist.proxies.base import Proxy
from zsdist.proxies.probe import QUANTITIES, Probe, closure


@dataclass(frozen=True)
class ProxyResult:
    proxy: str
    value: float | None
    seconds: float
    status: str  # ok | nan | error | oom
    error: str | None = None


def _failure(exc: BaseException) -> tuple[str, str]:
    text = str(exc).lower()
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text:
        return "oom", f"{type(exc).__name__}: {exc}"[:500]
    return "error", f"{type(exc).__name__}: {exc}"[:500]


def _providers(proxy: Proxy) -> list:
    """The distinct providers of a proxy's needs and of what they build on, in a stable order (so error messages
    are deterministic)."""
    return sorted({QUANTITIES[n] for n in closure(proxy.needs)}, key=lambda provider: provider.__qualname__)


def evaluate(build: Callable[[], nn.Module], batch: Batch, proxies: Sequence[Proxy], seed: int,
             device: str = "cpu") -> list[ProxyResult]:
    """All `proxies` on one network; each shared pass runs once and its time is split among its users."""
    error: str | None
    try:
        probe = Probe(build, batch, seed, device)
    except Exception as exc:  # the architecture itself failed to build: every proxy row records why
        status, error = _failure(exc)
        return [ProxyResult(p.name, None, 0.0, status, error) for p in proxies]

    users: dict[object, int] = {}
    for proxy in proxies:
        for provider in _providers(proxy):
            users[provider] = users.get(provider, 0) + 1
    failures = probe.prepare(set().union(*(p.needs for p in proxies)))  # a failed pass fails only its users

    results = []
    for proxy in proxies:
        start = time.perf_counter()
        try:
            failed = [failures[pv] for pv in _providers(proxy) if pv in failures]
            if failed:
                value, (status, error) = None, _failure(failed[0])
            else:
                assert proxy.fn is not None  # registered proxies have one; only catalog entries lack it
                value = float(proxy.fn(probe))
                status, error = ("ok", None) if math.isfinite(value) else ("nan", f"non-finite value {value}")
        except Exception as exc:
            value = None
            status, error = _failure(exc)
        own = time.perf_counter() - start
        shared = sum(probe.provider_seconds.get(pv, 0.0) / users[pv] for pv in _providers(proxy))
        results.append(ProxyResult(proxy.name, value if status == "ok" else None, own + shared, status, error))
    return results
