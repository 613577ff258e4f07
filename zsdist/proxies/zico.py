"""ZiCo (Li et al., ICLR 2023): Σ over layers of log Σ_θ mean|g_θ| / std(g_θ), gradients over several batches.

High mean and low spread of the gradient across batches predict fast, stable convergence. The batches are the
probe batch split in halves, each with its own train-mode forward and backward.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from zsdist.proxies.base import register_proxy
from zsdist.proxies.introspect import batch_statistics, layer_weights
from zsdist.proxies.probe import Probe

BATCHES = 2


@register_proxy(
    "zico",
    options={"batches": f"the batch split in {BATCHES} halves", "bn": "train", "loss": "cross-entropy, batch mean",
             "weights": "conv + linear layer weights", "std": "population (ddof 0); zero-std weights skipped"},
    reference="Li et al. 2023 (ZiCo)",
)
def zico(probe: Probe) -> float:
    """Inverse coefficient of variation of the loss gradients across batches, log-summed over layers."""
    if probe.inputs.shape[0] < BATCHES:
        raise ValueError(f"zico needs at least {BATCHES} samples to form {BATCHES} batches")
    weights = layer_weights(probe.model)
    per_batch = []
    with batch_statistics(probe.model) as model:
        for inputs, labels in zip(probe.inputs.tensor_split(BATCHES), probe.labels.tensor_split(BATCHES)):
            batch_grads = torch.autograd.grad(F.cross_entropy(model(inputs), labels), list(weights.values()),
                                              allow_unused=True)
            per_batch.append({n: g.double() for n, g in zip(weights, batch_grads) if g is not None})
    totals = []
    for name in per_batch[0]:
        grads = torch.stack([batch[name] for batch in per_batch])
        std = grads.std(0, unbiased=False)
        ratio = grads.abs().mean(0) / std
        totals.append(torch.where(std != 0, ratio, 0.0).sum())
    if not totals:
        return 0.0
    per_layer = torch.stack(totals)
    # a layer whose weights all have zero spread adds nothing; a non-finite total makes the score non-finite
    return float(torch.where(per_layer == 0, 0.0, per_layer.log()).sum())
