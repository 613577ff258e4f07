"""Per-sample gradients by layer identities (zsdist.proxies.persample) against torch.func's vmap, which
differentiates any network: the same N × θ gradients for every module weight, on real networks of three spaces
(convolutions, grouped and pointwise ones, batch, layer and group norms, linear layers over tokens), and the vmap
path taken where an identity would be wrong (a layer output changed in place) or none exists."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from zsdist.data import load_batch
from zsdist.proxies import persample
from zsdist.proxies.introspect import weighted_modules
from zsdist.proxies.probe import Probe
from zsdist.spaces import create_space

NAMES = list(persample.OUTPUTS)


def _probe(build, dataset: str, n: int) -> Probe:
    torch.set_num_threads(1)
    probe = Probe(build, load_batch(dataset, n, 0), seed=0)
    probe["batch_stats"]  # the shared train pass records the batch statistics both paths hold constant
    return probe


def _assert_same(found: list[dict[str, torch.Tensor]], expected: list[dict[str, torch.Tensor]]) -> None:
    for by_identity, by_vmap in zip(found, expected):
        for name, g in by_vmap.items():
            # a layer the output does not reach has no entry: its gradients are zero
            mine = by_identity.get(name, torch.zeros_like(g))
            assert mine.shape == g.shape, name
            assert torch.allclose(mine, g, rtol=1e-4, atol=1e-6 * float(g.abs().max()) + 1e-12), name


@pytest.mark.parametrize(("space", "arch", "dataset", "n"), [
    ("nb201", 9009, "cifar10", 6),   # conv 3×3 and 1×1, BN, avg-pool, skip, linear classifier
    ("mbv2", 0, "imagenet", 2),      # depthwise (grouped) and pointwise convolutions
    ("pit", 0, "cifar100_224", 2),   # patch convolution, layer norms, attention and MLP linears over tokens
])
def test_identities_equal_vmap_on_real_networks(space, arch, dataset, n):
    s = create_space(space)
    probe = _probe(lambda: s.build(arch, dataset), dataset, n)
    modules = weighted_modules(probe.model)
    rules = {m: persample.identity_of(m) for m in modules.values()}
    if not all(rules.values()):
        pytest.skip(f"{space} has a weighted module no identity covers: "
                    f"{sorted({type(m).__name__ for m, r in rules.items() if r is None})}")
    found = persample._by_identities(probe, modules, rules, NAMES)
    if found is None:  # an in-place layer after a weighted one: the vmap path is right there (tested below)
        pytest.skip(f"{space}: a weighted layer's output is changed in place")
    _assert_same(found, persample._by_vmap(probe, modules, NAMES))


class _InPlace(nn.Module):
    """conv → BN → in-place ReLU: the BN output the identity would read is overwritten by the activation."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _Embedded(nn.Module):
    """A weighted module no identity covers (an embedding added to the features)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.position = nn.Embedding(1, 4)
        self.head = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.conv(x).mean((2, 3)) + self.position(torch.zeros(len(x), dtype=torch.long))
        return self.head(features)


def test_an_output_changed_in_place_falls_back_to_vmap():
    probe = _probe(_InPlace, "cifar10", 4)
    modules = weighted_modules(probe.model)
    rules = {m: persample.identity_of(m) for m in modules.values()}
    assert persample._by_identities(probe, modules, rules, NAMES) is None
    grads = persample._sample_grads(probe, frozenset(NAMES))
    _assert_same([grads[n] for n in NAMES], persample._by_vmap(probe, modules, NAMES))


def test_a_module_no_identity_covers_takes_vmap():
    probe = _probe(_Embedded, "cifar10", 4)
    modules = weighted_modules(probe.model)
    assert persample.identity_of(probe.model.position) is None
    grads = persample._sample_grads(probe, frozenset(NAMES))
    assert set(grads["logit_sample_grads"]) == set(modules)
    _assert_same([grads[n] for n in NAMES], persample._by_vmap(probe, modules, NAMES))
