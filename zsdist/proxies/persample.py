"""Per-sample gradients of every module weight, for the NTK and GradSign (zsdist.proxies.ntk).

Per-sample gradients need samples that do not interact; batch norm in train mode couples them. The probe batch's
BN statistics are therefore recorded in the shared train pass and held constant: every sample sees exactly the
train-mode forward of the whole batch, and its gradient is its own (the statistics' own dependence on θ is
dropped). With the samples independent, one batched forward and one backward per output give them all, by the
layer identities of Goodfellow (2015, "Efficient per-example gradient computations"): a linear layer's weight
gradient is the outer product of its output gradient and its input, summed over the batch; per sample it is the
same product without the sum. A convolution's is the batch weight gradient with each sample in a group of its
own, and a norm layer's scale multiplies the normalised input. So the per-sample gradients cost one forward and,
per output, one backward to the layer outputs (no weight gradients) plus one weight gradient per layer: what
the batch's own forward and backward cost. A network with a weighted module no identity covers takes torch.func's
vmap, which differentiates anything at several times the cost.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vjp, vmap
from torch.nn.grad import conv2d_weight

from zsdist.proxies.introspect import BATCH_NORMS, eval_mode, weighted_modules
from zsdist.proxies.probe import Probe, collects, provides

CHUNK = 16  # samples per vmapped chunk (the general path): bounds memory, not the result
OUTPUTS = {"logit_sample_grads": "Σ_c logit_c", "loss_sample_grads": "cross-entropy"}  # quantity → output


@collects("batch_stats")
def _batch_stats(model: nn.Module, handles: list) -> Callable[[], dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Per batch-norm layer (by module name), the mean and biased variance of its input over the batch."""
    stats: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def record(name: str) -> Callable:
        def hook(_module: nn.Module, args: tuple) -> None:
            x = args[0].detach()
            dims = [0, *range(2, x.dim())]
            stats.setdefault(name, []).append((x.mean(dims), x.var(dims, unbiased=False)))
        return hook

    for name, module in model.named_modules():
        if isinstance(module, BATCH_NORMS):
            handles.append(module.register_forward_pre_hook(record(name)))

    def result() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        reused = [name for name, calls in stats.items() if len(calls) > 1]
        if reused:
            raise ValueError(f"batch-norm layer(s) {', '.join(reused)} run more than once per forward; "
                             "per-sample gradients need one set of batch statistics per layer")
        return {name: calls[0] for name, calls in stats.items()}

    return result


@dataclass(frozen=True)
class Identity:
    """A layer's per-sample weight gradient: `keep` what the forward must leave (from the module and its input),
    then `grad` (module, kept, output gradient) → N × weight.shape."""

    keep: Callable[[Any, torch.Tensor], torch.Tensor]  # (module of the identity's kind, its input)
    grad: Callable[[Any, torch.Tensor, torch.Tensor], torch.Tensor]


def _input(_module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return x


def _linear(_module: nn.Linear, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """δ_i x_iᵀ, summed over any token axes between the batch and the features."""
    return torch.einsum("n...o,n...i->noi", delta, x)


def _pointwise(module: nn.Conv2d) -> bool:
    return module.kernel_size == (1, 1) and module.stride == (1, 1) and module.padding == (0, 0)


def _conv_input(module: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """The input as one sample of N·C channels (copied once here, not once per output), unless pointwise."""
    return x if _pointwise(module) else x.reshape(1, -1, *x.shape[2:])


def _conv2d(module: nn.Conv2d, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """A 1×1 convolution is a linear layer per position: δ_i x_iᵀ summed over positions, per group. Otherwise the
    batch's weight gradient with every sample a group of its own (input N·C channels, output N·O), which the
    convolution kernels compute at about the cost of one batch weight gradient (unfolding patches costs several
    times that)."""
    n, groups = delta.shape[0], module.groups
    if _pointwise(module):
        patches = x.flatten(2).unflatten(1, (groups, -1))  # N × G × C/G × positions
        delta = delta.flatten(2).unflatten(1, (groups, -1))  # N × G × O/G × positions
        return torch.einsum("ngol,ngkl->ngok", delta, patches).reshape(n, *module.weight.shape)
    out_channels, fan_in, *kernel = module.weight.shape
    grads = conv2d_weight(x, (n * out_channels, fan_in, *kernel), delta.reshape(1, -1, *delta.shape[2:]),
                                        module.stride, module.padding, module.dilation, n * groups)
    return grads.view(n, *module.weight.shape)


def _normalised_bn(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """x̂ with the statistics the module holds during the pass (the probe batch's, passed as running ones)."""
    mean, var = cast(torch.Tensor, module.running_mean), cast(torch.Tensor, module.running_var)
    return F.batch_norm(x, mean, var, None, None, False, 0.0, cast(float, module.eps))


def _normalised_ln(module: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, module.normalized_shape, None, None, module.eps)


def _normalised_gn(module: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    return F.group_norm(x, module.num_groups, None, None, module.eps)


def _scale(module: nn.Module, x_hat: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """A norm layer's scale multiplies x̂: its gradient is Σ δ ⊙ x̂ over every axis the scale is shared on."""
    shared = x_hat.dim() - cast(torch.Tensor, module.weight).dim()
    product = delta * x_hat
    if isinstance(module, nn.LayerNorm):  # the scale covers the trailing axes; sum the middle ones
        return product.sum(tuple(range(1, shared))) if shared > 1 else product
    return product.sum(tuple(range(2, product.dim()))) if product.dim() > 2 else product  # channel axis 1


IDENTITIES: dict[type | tuple[type, ...], Identity] = {
    nn.Linear: Identity(_input, _linear),
    nn.Conv2d: Identity(_conv_input, _conv2d),
    BATCH_NORMS: Identity(_normalised_bn, _scale),
    nn.LayerNorm: Identity(_normalised_ln, _scale),
    nn.GroupNorm: Identity(_normalised_gn, _scale),
}


def identity_of(module: nn.Module) -> Identity | None:
    """The identity that gives `module`'s per-sample weight gradient, or None if none covers it."""
    if isinstance(module, nn.Conv2d) and (module.padding_mode != "zeros" or isinstance(module.padding, str)):
        return None
    return next((rule for kind, rule in IDENTITIES.items() if isinstance(module, kind)), None)


def _statistics(probe: Probe) -> dict[str, torch.Tensor]:
    """The probe batch's BN statistics as the running statistics functional_call passes to eval mode."""
    return {f"{layer}.{buffer}": value for layer, pair in probe["batch_stats"].items()
            for buffer, value in zip(("running_mean", "running_var"), pair)}


@provides(*OUTPUTS, needs=("batch_stats",))
def _sample_grads(probe: Probe, wanted: frozenset[str]) -> dict[str, Any]:
    """Per sample i and module weight θ: ∂(Σ_c f_c(x_i))/∂θ and/or ∂CE(f(x_i), y_i)/∂θ, each N × θ.shape.

    The network runs in eval mode with the probe batch's statistics in place of its running statistics (passed
    to functional_call, so the network itself is not changed and needs no copy)."""
    model = probe.model
    names = [n for n in OUTPUTS if n in wanted]
    modules = weighted_modules(model)
    rules = {m: identity_of(m) for m in modules.values()}
    covered = {m: rule for m, rule in rules.items() if rule is not None}
    found = _by_identities(probe, modules, covered, names) if len(covered) == len(rules) else None
    return dict(zip(names, found if found is not None else _by_vmap(probe, modules, names)))


def _by_identities(probe: Probe, modules: dict[str, nn.Module], rules: dict[nn.Module, Identity],
                   names: list[str]) -> list[dict[str, torch.Tensor]] | None:
    """One batched forward keeping each weighted layer's input (or x̂) and output; per wanted output one backward
    to the layer outputs only (no weight gradients), then each layer's identity per sample. None when a layer's
    output is changed in place (e.g. an in-place activation), so its gradient is not the layer's."""
    calls: list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]] = []  # weight name, module, kept, output
    versions: list[int] = []

    def record(name: str) -> Callable:
        def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
            kept = rules[module].keep(module, args[0].detach())
            calls.append((name, module, kept, out))
            versions.append(out._version)
        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in modules.items()]
    try:
        with eval_mode(probe.model), torch.enable_grad():
            logits = functional_call(probe.model, _statistics(probe), (probe.inputs,))
    finally:
        for handle in handles:
            handle.remove()
    if any(out._version != v for (*_, out), v in zip(calls, versions)):
        return None  # a layer output changed in place later: its gradient is no longer the layer's own
    outputs = {"logit_sample_grads": lambda: logits.sum(),
               "loss_sample_grads": lambda: F.cross_entropy(logits, probe.labels, reduction="sum")}
    used = [(name, module, kept, out) for name, module, kept, out in calls if out.requires_grad]
    results = []
    for i, wanted in enumerate(names):
        deltas = torch.autograd.grad(outputs[wanted](), [out for *_, out in used], retain_graph=i + 1 < len(names),
                                     allow_unused=True)
        grads: dict[str, torch.Tensor] = {}
        for (name, module, kept, _), delta in zip(used, deltas):
            if delta is not None:  # a layer the output does not reach has zero gradients: it adds nothing
                g = rules[module].grad(module, kept, delta)
                grads[name] = grads[name] + g if name in grads else g
        results.append(grads)
    return results


def _by_vmap(probe: Probe, modules: dict[str, nn.Module], names: list[str]) -> list[dict[str, torch.Tensor]]:
    """torch.func: vmap over the samples of a vjp of both outputs, for layers no identity covers."""
    model = probe.model
    params = {n: cast(torch.Tensor, m.weight).detach() for n, m in modules.items()}
    stats = _statistics(probe)

    def one(weights: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> tuple[dict, ...]:
        def outputs(w: dict[str, torch.Tensor]) -> torch.Tensor:
            logits = functional_call(model, (w, stats), (x[None],))
            return torch.stack([logits.sum(), F.cross_entropy(logits, y[None])])

        _, pullback = vjp(outputs, weights)  # type: ignore[misc]  # torch's stubs count has_aux's third value
        rows = torch.eye(2, dtype=x.dtype, device=x.device)
        return tuple(pullback(rows[list(OUTPUTS).index(n)])[0] for n in names)

    with eval_mode(model), torch.no_grad():  # torch.func differentiates; autograd need not record
        return list(vmap(one, in_dims=(None, 0, 0), chunk_size=CHUNK)(params, probe.inputs, probe.labels))
