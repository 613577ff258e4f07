"""ZiCo (Li et al., ICLR 2023): Σ over layers of log Σ_θ mean|g_θ| / std(g_θ), gradients over several batches.

High mean and low spread of the gradient across batches predict fast, stable convergence. The batches are the
probe batch split in halves, each with its own train-mode forward and backward.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from zsdist.proxies.base import register_proxy
from zsdist.proxies.gradient import layer_weights
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
    model = probe.copy_model().train()
    weights = layer_weights(model)
    per_batch = []
    for inputs, labels in zip(probe.inputs.tensor_split(BATCHES), probe.labels.tensor_split(BATCHES)):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(inputs), labels).backward()
        per_batch.append({n: w.grad.detach().double().clone() for n, w in weights.items() if w.grad is not None})
    score = 0.0
    for name in per_batch[0]:
        grads = torch.stack([batch[name] for batch in per_batch])
        std = grads.std(0, unbiased=False)
        spread = std != 0
        total = float((grads.abs().mean(0)[spread] / std[spread]).sum())
        if not math.isfinite(total):
            return total  # a non-finite gradient: the evaluator records status nan
        if total > 0:
            score += math.log(total)
    return score
