"""Proxies that count distinct ReLU activation patterns: linear regions (TE-NAS) and SWAP.

Both read the shared "codes" quantity (per ReLU module, the N×D pattern `output > 0` of the train-mode pass) and
differ only in which axis is a pattern: a sample's pattern over all units (linear regions) or a unit's pattern
over all samples (SWAP).
"""
from __future__ import annotations

import math

import torch

from zsdist.proxies.base import register_proxy
from zsdist.proxies.introspect import parameter_count
from zsdist.proxies.probe import Probe

SWAP_MU = 1.5  # millions of parameters
SWAP_SIGMA = 1.5


def distinct_rows(bits: torch.Tensor) -> int:
    """Number of distinct rows of a 2-D boolean matrix, packing each row into bytes so that the sort stays cheap."""
    rows, width = bits.shape
    padded = torch.zeros(rows, -(-width // 64) * 64, dtype=torch.uint8, device=bits.device)
    padded[:, :width] = bits
    weights = 2 ** torch.arange(8, dtype=torch.uint8, device=bits.device)
    packed = (padded.view(rows, -1, 8) * weights).sum(-1, dtype=torch.uint8)  # rows × bytes
    words = packed.view(torch.int64)  # rows × 64-bit words (the width was padded to whole words)
    if words.shape[1] == 1:
        return int(torch.unique(words[:, 0]).numel())
    return int(torch.unique(words, dim=0).shape[0])


def _patterns(probe: Probe, proxy: str) -> torch.Tensor:
    codes = probe["codes"]
    if not codes:
        raise ValueError(f"{proxy} needs ReLU activations and this network has none")
    return torch.cat(codes, dim=1)  # N samples × D units


@register_proxy(
    "linear_regions",
    needs=("codes",),
    options={"bn": "train", "units": "every ReLU/ReLU6 output > 0", "input": "the job's batch"},
    reference="Chen et al. 2021 (TE-NAS)",
)
def linear_regions(probe: Probe) -> float:
    """Distinct activation patterns (linear regions) the batch falls into; more regions, more expressive."""
    return float(distinct_rows(_patterns(probe, "linear_regions")))


def swap_regulariser(num_params: int, mu: float = SWAP_MU, sigma: float = SWAP_SIGMA) -> float:
    """f(Θ) = exp(−(Θ − μ)² / σ), Θ in millions of parameters: steers the score toward size ≈ μ."""
    return math.exp(-((num_params / 1e6 - mu) ** 2) / sigma)


@register_proxy(
    "swap",
    needs=("codes",),
    options={"bn": "train", "units": "every ReLU/ReLU6 output > 0", "input": "the job's batch",
             "regulariser": f"exp(-(params_M - {SWAP_MU})^2 / {SWAP_SIGMA})"},
    reference="Peng et al. 2024 (SWAP-NAS), regularised SWAP-Score",
)
def swap(probe: Probe) -> float:
    """Distinct sample-wise patterns (one per unit, over the batch) times the parameter-count regulariser."""
    unique = distinct_rows(_patterns(probe, "swap").T)
    return unique * swap_regulariser(parameter_count(probe.model))
