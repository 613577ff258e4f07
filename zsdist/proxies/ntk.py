"""Per-sample gradients (torch.func) and the two proxies built on them: the NTK condition number (TE-NAS, Chen
et al. ICLR 2021) and GradSign (Zhang & Jia, ICLR 2022).

Per-sample gradients need samples that do not interact; batch norm in train mode couples them. The probe batch's
BN statistics are therefore recorded in the shared train pass and held constant: every sample sees exactly the
train-mode forward of the whole batch, and its gradient is its own (the statistics' own dependence on θ is
dropped). This makes all N gradients one vmapped pass instead of N backward passes of the whole batch, which on
a CPU is the difference between about a second and about a minute per NB201 cell.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vjp, vmap

from zsdist.proxies.base import register_proxy
from zsdist.proxies.introspect import BATCH_NORMS, eval_mode, layer_weights, module_weights
from zsdist.proxies.probe import Probe, collects, provides

CHUNK = 16  # samples per vmapped chunk: bounds memory, not the result
SINGULAR = 1e-12  # λmin/λmax below this is zero within the float32 precision of the gradients
_BN_OPTION = "batch statistics of the probe batch, held constant per sample"


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


@provides("logit_sample_grads", "loss_sample_grads", needs=("batch_stats",))
def _sample_grads(probe: Probe, wanted: frozenset[str]) -> dict[str, Any]:
    """Per sample i and module weight θ: ∂(Σ_c f_c(x_i))/∂θ and/or ∂CE(f(x_i), y_i)/∂θ, each N×θ.shape.

    The network runs in eval mode with the probe batch's statistics in place of its running statistics (passed
    to functional_call, so the network itself is not changed and needs no copy)."""
    model = probe.model
    params = {n: w.detach() for n, w in module_weights(model).items()}
    stats = {f"{layer}.{buffer}": value for layer, pair in probe["batch_stats"].items()
             for buffer, value in zip(("running_mean", "running_var"), pair)}
    names = [n for n in ("logit_sample_grads", "loss_sample_grads") if n in wanted]

    def one(weights: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> tuple[dict, ...]:
        def outputs(w: dict[str, torch.Tensor]) -> torch.Tensor:
            logits = functional_call(model, (w, stats), (x[None],))
            return torch.stack([logits.sum(), F.cross_entropy(logits, y[None])])

        _, pullback = vjp(outputs, weights)  # type: ignore[misc]  # torch's stubs count has_aux's third value
        rows = torch.eye(2, dtype=x.dtype, device=x.device)
        return tuple(pullback(rows[0 if n == "logit_sample_grads" else 1])[0] for n in names)

    with eval_mode(model), torch.no_grad():  # torch.func differentiates; autograd need not record
        grads = vmap(one, in_dims=(None, 0, 0), chunk_size=CHUNK)(params, probe.inputs, probe.labels)
    return dict(zip(names, grads))


@register_proxy(
    "ntk",
    higher_is_better=False,
    needs=("batch_stats", "logit_sample_grads"),
    options={"bn": _BN_OPTION, "output": "Σ_c logit_c per sample", "params": "every module weight, no biases",
             "score": "λmax/λmin of J Jᵀ (float64); inf if λmin ≤ 1e-12 λmax"},
    reference="Chen et al. 2021 (TE-NAS)",
)
def ntk(probe: Probe) -> float:
    """Condition number of the empirical NTK at init: a well-conditioned kernel trains fast and uniformly."""
    kernel = sum(g.flatten(1).double() @ g.flatten(1).double().T for g in probe["logit_sample_grads"].values())
    eigenvalues = torch.linalg.eigvalsh(kernel)
    # a singular kernel (e.g. a sample with no gradient) is infinitely ill-conditioned: status nan
    singular = eigenvalues[0] <= SINGULAR * eigenvalues[-1]
    return float(torch.where(singular, torch.inf, eigenvalues[-1] / eigenvalues[0]))


@register_proxy(
    "gradsign",
    needs=("batch_stats", "loss_sample_grads"),
    options={"bn": _BN_OPTION, "loss": "cross-entropy per sample", "weights": "conv + linear layer weights",
             "score": "Σ_θ |Σ_i sign(∂ℓ_i/∂θ)|"},
    reference="Zhang & Jia 2022 (GradSign)",
)
def gradsign(probe: Probe) -> float:
    """How much the per-sample gradients agree in sign: dense agreement means a smooth, trainable landscape."""
    grads = probe["loss_sample_grads"]
    return float(sum(torch.sign(grads[n]).sum(0).abs().sum().double()
                     for n in layer_weights(probe.model) if n in grads))
