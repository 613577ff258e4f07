"""The two proxies built on per-sample gradients (zsdist.proxies.persample): the NTK condition number (TE-NAS,
Chen et al. ICLR 2021) and GradSign (Zhang & Jia, ICLR 2022)."""
from __future__ import annotations

import torch

from zsdist.proxies.base import register_proxy
from zsdist.proxies.introspect import layer_weights
from zsdist.proxies.probe import Probe

SINGULAR = 1e-12  # λmin/λmax below this is zero within the float32 precision of the gradients
_BN_OPTION = "batch statistics of the probe batch, held constant per sample"


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
