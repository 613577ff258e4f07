"""Proxy values on networks where the answer is known by hand, and the evaluator's failure handling."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from zsdist.data import Batch, load_batch
from zsdist.errors import ZsdistError
from zsdist.proxies import get_proxy, resolve_proxies
from zsdist.proxies.base import Proxy
from zsdist.proxies.evaluate import evaluate
from zsdist.proxies.naswot import hamming_kernel
from zsdist.spaces import create_space


def _value(name: str, build, batch: Batch) -> float:
    (result,) = evaluate(build, batch, [get_proxy(name)], seed=0)
    assert result.status == "ok", result.error
    return result.value


def _batch(n: int, d: int) -> Batch:
    torch.manual_seed(1)
    return Batch(inputs=torch.randn(n, d), labels=torch.arange(n) % 2)


def test_hamming_kernel_counts_agreeing_units():
    torch.manual_seed(0)
    codes = [torch.rand(5, 7) > 0.5, torch.rand(5, 3) > 0.3]
    full = torch.cat(codes, dim=1)
    for i, j in itertools.product(range(5), repeat=2):
        assert hamming_kernel(codes)[i, j] == (full[i] == full[j]).sum()


def test_naswot_is_logdet_of_the_relu_code_kernel():
    batch = _batch(6, 10)
    build = lambda: nn.Sequential(nn.ReLU(), nn.Linear(10, 2))  # codes are exactly inputs > 0
    codes = (batch.inputs > 0).double()
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
    assert _value("naswot", build, batch) == pytest.approx(torch.linalg.slogdet(kernel)[1].item(), rel=1e-12)


def test_naswot_without_relu_is_an_error_row():
    (result,) = evaluate(lambda: nn.Linear(10, 2), _batch(4, 10), [get_proxy("naswot")], seed=0)
    assert result.status == "error" and "ReLU" in result.error and result.value is None


def test_synflow_of_a_two_layer_net_is_twice_the_path_norm():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4, bias=False), nn.ReLU(), nn.Linear(4, 3, bias=False))
    w1, w2 = net[0].weight.abs().double(), net[2].weight.abs().double()
    path_norm = (w2 @ w1 @ torch.ones(5, dtype=torch.float64)).sum().item()
    # every layer's Σ|θ ∂R/∂θ| equals R for a bias-free ReLU chain with positive input
    assert _value("synflow", lambda: net, _batch(2, 5)) == pytest.approx(2 * path_norm, rel=1e-12)


def test_synflow_beyond_float32_range_stays_finite():
    depth, width = 30, 32

    def build():
        layers = [nn.Linear(width, width, bias=False) for _ in range(depth)]
        for layer in layers:
            nn.init.constant_(layer.weight, 20.0)
        return nn.Sequential(*layers)

    value = _value("synflow", build, _batch(2, width))
    expected = math.log(depth) + math.log(width) + depth * math.log(20.0 * width)  # L · 1ᵀ(20·W·1)^L
    assert math.isfinite(value) and value > 3.4e38
    assert math.log(value) == pytest.approx(expected, rel=1e-9)


def test_params_and_flops_of_a_small_conv_net():
    build = lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(8, 10))
    batch = Batch(inputs=torch.randn(2, 3, 6, 6), labels=torch.zeros(2, dtype=torch.long))
    assert _value("params", build, batch) == 3 * 8 * 9 + 8 + 8 * 10 + 10
    assert _value("flops", build, batch) == 36 * 8 * 27 + 36 * 8 + 80 + 10


def test_nan_value_becomes_status_nan_not_a_crash():
    broken = Proxy("broken", lambda probe: float("nan"), True, frozenset())
    result, params = evaluate(lambda: nn.Linear(3, 2), _batch(2, 3), [broken, get_proxy("params")], seed=0)
    assert (result.status, result.value) == ("nan", None)
    assert (params.status, params.value) == ("ok", 8.0)


def test_a_network_that_fails_to_build_fails_every_row_with_the_reason():
    def build():
        raise RuntimeError("bad cell")

    results = evaluate(build, _batch(2, 3), resolve_proxies(["params", "naswot"]), seed=0)
    assert [(r.status, "bad cell" in r.error) for r in results] == [("error", True)] * 2


def test_shared_evaluation_equals_each_proxy_alone():
    space = create_space("nb201")
    batch = load_batch("cifar10", 16, 0)
    build = lambda: space.build(10798, "cifar10")
    together = {r.proxy: (r.status, r.value) for r in evaluate(build, batch, resolve_proxies("all"), seed=0)}
    alone = {name: (r.status, r.value) for name in together
             for r in evaluate(build, batch, [get_proxy(name)], seed=0)}
    assert {n: s for n, (s, _) in together.items()} == {n: s for n, (s, _) in alone.items()}
    for name, (status, value) in together.items():
        if status == "ok":
            assert value == pytest.approx(alone[name][1], rel=1e-6), name


def test_unknown_proxy_names_the_closest():
    with pytest.raises(ZsdistError, match="did you mean 'synflow'"):
        resolve_proxies(["synflw"])


def test_the_catalog_is_the_registry_without_torch():
    """The CLI and validation read catalog.json; it must say what the registry says."""
    import json

    from zsdist.proxies import PROXIES, get_proxy
    from zsdist.proxies.catalog import CATALOG, entry

    assert json.loads(CATALOG.read_text()) == [entry(get_proxy(n)) for n in PROXIES.names()], \
        "a proxy changed: run `python -m zsdist.proxies.catalog`"
