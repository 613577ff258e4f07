"""MeCo (Jiang et al., NeurIPS 2023): Σ over layers of the minimum eigenvalue of the channel correlation matrix
of one sample's feature map.

The feature maps come from the shared train pass (collector "layer_maps"): the output of every conv layer, and of
every linear layer applied to a token sequence, for the first sample of the batch (BN on batch statistics).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from zsdist.proxies.base import register_proxy
from zsdist.proxies.introspect import LAYERS, channel_dim, channel_rows
from zsdist.proxies.probe import Probe, collects


@collects("layer_maps")
def _layer_maps(model: nn.Module, handles: list) -> Callable[[], list[torch.Tensor]]:
    """Per conv / linear layer, in call order, the first sample's output as positions × channels."""
    maps: list[torch.Tensor] = []

    def hook(module: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        maps.append(channel_rows(out[:1].detach(), channel_dim(module)))

    for module in model.modules():
        if isinstance(module, LAYERS):
            handles.append(module.register_forward_hook(hook))
    return lambda: maps


def min_correlation_eigenvalue(rows: torch.Tensor) -> torch.Tensor:
    """λ_min of the Pearson correlation of the channels (columns) over positions (rows).

    A constant channel has no defined correlation; its entries are taken as 0, as the authors do, so that a dead
    channel pulls λ_min to 0.
    """
    corr = torch.atleast_2d(torch.corrcoef(rows.double().T))
    return torch.linalg.eigvalsh(torch.nan_to_num(corr, nan=0.0))[0]


@register_proxy(
    "meco",
    needs=("layer_maps",),
    options={"bn": "train", "sample": "first of the batch", "layers": "conv outputs, token linear outputs",
             "undefined_correlation": "0"},
    reference="Jiang et al. 2023 (MeCo)",
)
def meco(probe: Probe) -> float:
    """Σ_layers λ_min(P(f_l(x))); larger means less redundant channels."""
    terms = [min_correlation_eigenvalue(rows) for rows in probe["layer_maps"] if rows.shape[0] >= 2]
    if not terms:
        raise ValueError("meco needs feature maps with at least two positions (conv or token layers); "
                         "this network has none")
    return float(torch.stack(terms).sum())
