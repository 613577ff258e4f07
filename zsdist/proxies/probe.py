"""One architecture on one batch, and the quantities proxies share.

A proxy names the quantities it reads (`needs`); the Probe computes each needed quantity once, and providers
compute several at once in a single pass: one train-mode forward + backward serves logits, loss gradients and
every hook-collected quantity (activation codes and whatever other modules register with `@collects`).
Sharing therefore lives here, never inside a proxy, and a proxy evaluated alone or beside others reads
identical inputs.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from zsdist.data import Batch

ACTIVATIONS = (nn.ReLU, nn.ReLU6)

Provider = Callable[["Probe", frozenset[str]], dict[str, Any]]
QUANTITIES: dict[str, Provider] = {}


def provides(*names: str) -> Callable[[Provider], Provider]:
    """Register a provider that computes any subset of `names` in one pass."""

    def add(fn: Provider) -> Provider:
        for name in names:
            if name in QUANTITIES:
                raise ValueError(f"quantity '{name}' has two providers")
            QUANTITIES[name] = fn
        return fn

    return add


class Probe:
    """Builds the network once (seeded, PyTorch default init) and caches shared quantities."""

    def __init__(self, build: Callable[[], nn.Module], batch: Batch, seed: int, device: str = "cpu") -> None:
        self.seed = seed
        self.device = torch.device(device)
        self.inputs = batch.inputs.to(self.device)
        self.labels = batch.labels.to(self.device)
        torch.manual_seed(seed)
        self.model = build().to(self.device)  # pristine: proxies copy it before changing anything
        self._values: dict[str, Any] = {}
        self.provider_seconds: dict[Provider, float] = {}

    def copy_model(self) -> nn.Module:
        return copy.deepcopy(self.model)

    def prepare(self, names: Iterable[str]) -> dict[Provider, Exception]:
        """Compute the missing quantities, each provider once for all the names it serves.

        Providers run in registration order (the shared train pass first), so a provider may read quantities of
        providers registered before it, e.g. batch statistics collected in the train pass. A provider that fails
        does not stop the others; its exception is returned, so only the proxies that need it fail.
        """
        missing = {n for n in names if n not in self._values}
        by_provider: dict[Provider, set[str]] = {}
        for name in missing:
            if name not in QUANTITIES:
                raise KeyError(f"no provider for quantity '{name}'")
            by_provider.setdefault(QUANTITIES[name], set()).add(name)
        order = {provider: i for i, provider in enumerate(dict.fromkeys(QUANTITIES.values()))}
        failures: dict[Provider, Exception] = {}
        for provider, wanted in sorted(by_provider.items(), key=lambda item: order[item[0]]):
            start = time.perf_counter()
            try:
                self._values.update(provider(self, frozenset(wanted)))
            except Exception as exc:
                failures[provider] = exc
            self.provider_seconds[provider] = self.provider_seconds.get(provider, 0.0) + time.perf_counter() - start
        return failures

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            for failure in self.prepare([name]).values():
                raise failure
        return self._values[name]


@dataclass(frozen=True)
class Collector:
    """Hooks that gather one quantity during the shared train pass.

    attach(model, handles) registers hooks on the pass's model copy (appending them to `handles`, which the
    pass removes afterwards) and returns a function that yields the quantity once the pass is over.
    backward: the quantity is only complete after the CE loss backward (e.g. activation gradients).
    """

    attach: Callable[[nn.Module, list], Callable[[], Any]]
    backward: bool = False


COLLECTORS: dict[str, Collector] = {}


def collects(name: str, backward: bool = False) -> Callable[[Callable], Callable]:
    """Register `attach` as the collector of quantity `name`, served by the shared train pass."""

    def add(attach: Callable[[nn.Module, list], Callable[[], Any]]) -> Callable:
        COLLECTORS[name] = Collector(attach, backward)
        QUANTITIES[name] = train_pass
        return attach

    return add


def train_pass(probe: Probe, wanted: frozenset[str]) -> dict[str, Any]:
    """One forward in train mode (BN on batch statistics) with every wanted collector's hooks attached, plus
    one CE-loss backward when gradients or a backward collector are wanted."""
    model = probe.copy_model().train()
    handles: list = []
    results = {name: COLLECTORS[name].attach(model, handles) for name in wanted if name in COLLECTORS}
    backward = "grads" in wanted or any(COLLECTORS[n].backward for n in results)
    try:
        with torch.set_grad_enabled(backward):
            logits = model(probe.inputs)
            out: dict[str, Any] = {"logits": logits.detach()}
            if backward:
                F.cross_entropy(logits, probe.labels).backward()
                out["grads"] = {n: p.grad.detach() for n, p in model.named_parameters() if p.grad is not None}
            out.update((name, result()) for name, result in results.items())
    finally:
        for handle in handles:
            handle.remove()
    return {k: v for k, v in out.items() if k in wanted}


QUANTITIES["logits"] = QUANTITIES["grads"] = train_pass


@collects("codes")
def _codes(model: nn.Module, handles: list) -> Callable[[], list[torch.Tensor]]:
    """Per ReLU module, the N×D boolean activation pattern (output > 0)."""
    codes: list[torch.Tensor] = []
    for module in model.modules():
        if isinstance(module, ACTIVATIONS):
            handles.append(module.register_forward_hook(lambda _m, _i, out: codes.append((out > 0).flatten(1))))
    return lambda: codes
