"""NASWOT (Mellor et al., ICML 2021): log|K_H| of the binary activation-code kernel over a batch."""
from __future__ import annotations

import torch

from zsdist.proxies.base import register_proxy
from zsdist.proxies.probe import Probe


def hamming_kernel(codes: list[torch.Tensor]) -> torch.Tensor:
    """K[i, j] = number of units on which samples i and j agree (N_A minus the Hamming distance)."""
    n = codes[0].shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64, device=codes[0].device)
    for c in codes:
        c = c.to(torch.float32)
        ones = c @ c.T  # both active; exact in float32 while a layer has < 2^24 units
        active = c.sum(1, keepdim=True)
        # agree = both active + both inactive = D - a_i - a_j + 2·(c_i·c_j)
        kernel += (c.shape[1] - active - active.T + 2 * ones).double()
    return kernel


@register_proxy("naswot", needs=("codes",), options={"bn": "train", "units": "ReLU outputs > 0"},
                reference="Mellor et al. 2021")
def naswot(probe: Probe) -> float:
    """log-determinant of K_H; a larger value means the network separates the batch's inputs better."""
    codes = probe["codes"]
    if not codes:
        raise ValueError("naswot needs ReLU activations and this network has none")
    return float(torch.linalg.slogdet(hamming_kernel(codes))[1])
