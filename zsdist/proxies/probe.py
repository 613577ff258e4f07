"""One architecture on one batch, and the quantities proxies share.

A proxy names the quantities it reads (`needs`); the Probe computes each needed quantity once, and providers
compute several at once in a single pass: one train-mode forward serves logits, the CE-loss backward (parameter
gradients and every hook-collected quantity: activation codes and whatever other modules register with
`@collects`), and, on the same retained graph, the input Jacobian's backward and the Hessian-gradient product.
Sharing therefore lives here, never inside a proxy, and a proxy evaluated alone or beside others reads
identical inputs.

Every pass runs on the one network the Probe builds: train-mode passes normalise with batch statistics without
updating running statistics (`batch_statistics`), gradients are returned by `torch.autograd.grad` rather than
accumulated in `.grad`, so the network stays pristine for passes that read its init (synflow, FLOPs) and no pass
pays for a copy. Image batches live in channels-last layout, which the CPU's convolution, pooling and batch-norm
kernels run several times faster on; values move only by float reassociation.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zsdist.data import Batch
from zsdist.networks.fast import fast_forms, inputs_only, second_order
from zsdist.proxies.introspect import batch_statistics, layer_weights

ACTIVATIONS = (nn.ReLU, nn.ReLU6)

Provider = Callable[["Probe", frozenset[str]], dict[str, Any]]
QUANTITIES: dict[str, Provider] = {}
DEPENDS: dict[str, frozenset[str]] = {}  # quantity → quantities its provider reads (computed first)
TRANSIENT: set[str] = set()  # quantities dropped once a prepare() is over (retained autograd graphs)


def provides(*names: str, needs: Iterable[str] = ()) -> Callable[[Provider], Provider]:
    """Register a provider that computes any subset of `names` in one pass, after the quantities it `needs`."""

    def add(fn: Provider) -> Provider:
        for name in names:
            if name in QUANTITIES:
                raise ValueError(f"quantity '{name}' has two providers")
            QUANTITIES[name] = fn
            DEPENDS[name] = frozenset(needs)
        return fn

    return add


def closure(names: Iterable[str], known: Iterable[str] = ()) -> set[str]:
    """`names` and every quantity their providers build on, stopping at the `known` ones (already computed)."""
    known, found = set(known), set()
    todo = [n for n in names if n not in known]
    while todo:
        name = todo.pop()
        if name not in QUANTITIES:
            raise KeyError(f"no provider for quantity '{name}'")
        if name not in found:
            found.add(name)
            todo.extend(n for n in DEPENDS[name] if n not in known)
    return found


class Probe:
    """Builds the network once (seeded, PyTorch default init) and caches shared quantities."""

    def __init__(self, build: Callable[[], nn.Module], batch: Batch, seed: int, device: str = "cpu") -> None:
        self.seed = seed
        self.device = torch.device(device)
        self.layout = torch.channels_last if batch.inputs.dim() == 4 else torch.contiguous_format
        self.inputs = self.like_inputs(batch.inputs)
        self.labels = self.like_inputs(batch.labels)
        self.host_labels = batch.labels  # class membership without a device round trip
        torch.manual_seed(seed)
        # pristine: no pass changes its state (torch's stubs list memory_format only alone); in the forms the
        # evaluator's passes run fastest, the same function
        self.model = fast_forms(build()).to(self.device, memory_format=self.layout)  # type: ignore[call-overload]
        self._values: dict[str, Any] = {}
        self.provider_seconds: dict[Provider, float] = {}

    def like_inputs(self, tensor: torch.Tensor) -> torch.Tensor:
        """`tensor` on the probe's device (copied from pinned memory, without waiting) in the inputs' layout."""
        if self.device.type == "cuda" and not tensor.is_cuda and not tensor.is_pinned():
            tensor = tensor.pin_memory()
        layout = self.layout if tensor.dim() == 4 else torch.contiguous_format
        return tensor.to(self.device, non_blocking=True, memory_format=layout)

    def copy_model(self) -> nn.Module:
        """A copy for the proxies that define their own init (Zen-score, AZ-NAS)."""
        return copy.deepcopy(self.model)

    def prepare(self, names: Iterable[str]) -> dict[Provider, Exception]:
        """Compute the missing quantities (and those they depend on), each provider once for all it serves.

        Providers run in registration order (the shared train pass first), so a provider reads the quantities of
        providers registered before it. A provider that fails does not stop the others; its exception is
        returned, so only the proxies that need it fail.
        """
        by_provider: dict[Provider, set[str]] = {}
        for name in closure(names, self._values):
            by_provider.setdefault(QUANTITIES[name], set()).add(name)
        order = {provider: i for i, provider in enumerate(dict.fromkeys(QUANTITIES.values()))}
        failures: dict[Provider, Exception] = {}
        for provider, wanted in sorted(by_provider.items(), key=lambda item: order[item[0]]):
            start = time.perf_counter()
            try:
                failed = [failures[QUANTITIES[d]] for n in wanted for d in DEPENDS[n] if QUANTITIES[d] in failures]
                if failed:  # a pass it builds on failed: so does it, for the same reason
                    raise failed[0]
                self._values.update(provider(self, frozenset(wanted)))
            except Exception as exc:
                failures[provider] = exc
            self.provider_seconds[provider] = self.provider_seconds.get(provider, 0.0) + time.perf_counter() - start
        for name in TRANSIENT & self._values.keys():
            del self._values[name]
        return failures

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            for failure in self.prepare([name]).values():
                raise failure
        return self._values[name]


@dataclass(frozen=True)
class Collector:
    """Hooks that gather one quantity during the shared train pass.

    attach(model, handles) registers hooks on the pass's network (appending them to `handles`, which the
    pass removes before any other backward) and returns a function that yields the quantity once the pass is
    over. backward: the quantity is only complete after the CE loss backward (e.g. activation gradients).
    """

    attach: Callable[[nn.Module, list], Callable[[], Any]]
    backward: bool = False


COLLECTORS: dict[str, Collector] = {}


def collects(name: str, backward: bool = False) -> Callable[[Callable], Callable]:
    """Register `attach` as the collector of quantity `name`, served by the shared train pass."""

    def add(attach: Callable[[nn.Module, list], Callable[[], Any]]) -> Callable:
        COLLECTORS[name] = Collector(attach, backward)
        QUANTITIES[name] = train_pass
        DEPENDS[name] = frozenset()
        return attach

    return add


@dataclass(frozen=True)
class TrainGraph:
    """The shared forward's retained autograd graph, for the backward passes that reuse it."""

    inputs: torch.Tensor  # requires grad when the input Jacobian is wanted
    logits: torch.Tensor
    loss_grads: dict[str, torch.Tensor]  # ∂L/∂θ with a graph of their own when the Hessian is wanted


@provides("logits", "num_outputs", "grads", "jacobian_graph", "hessian_graph")
def train_pass(probe: Probe, wanted: frozenset[str]) -> dict[str, Any]:
    """One forward in train mode (BN on batch statistics) with every wanted collector's hooks attached, plus
    one CE-loss backward when gradients, a backward collector or the Hessian are wanted; its graph is kept
    (with the input as a leaf, or with a second-order graph of the gradients) for the passes that reuse it."""
    model = probe.model
    hessian, jacobian = "hessian_graph" in wanted, "jacobian_graph" in wanted
    handles: list = []
    results = {name: COLLECTORS[name].attach(model, handles) for name in wanted if name in COLLECTORS}
    backward = hessian or "grads" in wanted or any(COLLECTORS[n].backward for n in results)
    inputs = probe.inputs.detach().requires_grad_(jacobian)
    out: dict[str, Any] = {}
    try:
        with batch_statistics(model), torch.set_grad_enabled(backward or jacobian), second_order(hessian):
            logits = model(inputs)
            out["logits"], out["num_outputs"] = logits.detach(), int(logits.shape[-1])
            loss_grads: dict[str, torch.Tensor] = {}
            if backward:
                named = {n: p for n, p in model.named_parameters() if p.requires_grad}
                grads = torch.autograd.grad(F.cross_entropy(logits, probe.labels), list(named.values()),
                                            retain_graph=hessian or jacobian, create_graph=hessian,
                                            allow_unused=True)
                loss_grads = {n: g for n, g in zip(named, grads) if g is not None}
                out["grads"] = {n: g.detach() for n, g in loss_grads.items()}
            for handle in handles:  # collectors see the CE backward only
                handle.remove()
            out.update((name, result()) for name, result in results.items())
    finally:
        for handle in handles:
            handle.remove()
    if hessian or jacobian:
        out["jacobian_graph"] = out["hessian_graph"] = TrainGraph(inputs, logits, loss_grads)
    return {k: v for k, v in out.items() if k in wanted}


TRANSIENT.update(("jacobian_graph", "hessian_graph"))


@provides("input_jacobian", needs=("jacobian_graph",))
def _input_jacobian(probe: Probe, wanted: frozenset[str]) -> dict[str, Any]:
    """N×D: each sample's gradient of its summed logits with respect to its input, one backward of the shared
    forward (so BN's batch statistics couple the samples, as in the papers' code)."""
    graph: TrainGraph = probe["jacobian_graph"]
    with inputs_only():
        (jacobian,) = torch.autograd.grad(graph.logits.sum(), graph.inputs, retain_graph=True)
    return {"input_jacobian": jacobian.flatten(1)}


@provides("hessian_grads", needs=("hessian_graph",))
def _hessian_grads(probe: Probe, wanted: frozenset[str]) -> dict[str, Any]:
    """H·g per conv / linear weight, g the CE gradient of those weights: the gradient of gᵀ∇L taken through the
    shared backward's second-order graph, so no Hessian is ever formed and no forward is repeated."""
    grads = probe["hessian_graph"].loss_grads
    weights = {n: w for n, w in layer_weights(probe.model).items() if n in grads}
    if not weights:
        raise ValueError("grasp needs conv or linear weights that the loss reaches")
    dot = sum((grads[n].detach() * grads[n]).sum() for n in weights)
    products = torch.autograd.grad(dot, list(weights.values()), retain_graph=True, allow_unused=True)
    return {"hessian_grads": {n: h for n, h in zip(weights, products) if h is not None}}


@collects("codes")
def _codes(model: nn.Module, handles: list) -> Callable[[], list[torch.Tensor]]:
    """Per ReLU module, the N×D boolean activation pattern (output > 0)."""
    codes: list[torch.Tensor] = []
    for module in model.modules():
        if isinstance(module, ACTIVATIONS):
            handles.append(module.register_forward_hook(lambda _m, _i, out: codes.append((out > 0).flatten(1))))
    return lambda: codes
