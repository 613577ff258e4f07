"""linear_regions, swap, meco, zen and the AZ-NAS components on tiny networks whose values are known by hand."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from zsdist.data import Batch, load_batch
from zsdist.proxies import get_proxy, resolve_proxies
from zsdist.proxies.activation import SWAP_MU, SWAP_SIGMA, distinct_rows
from zsdist.proxies.aznas import block_expressivity, block_trainability, find_blocks
from zsdist.proxies.evaluate import evaluate
from zsdist.proxies.meco import min_correlation_eigenvalue
from zsdist.proxies.zen import zen_score
from zsdist.spaces import create_space


def _result(name: str, build, batch: Batch):
    (result,) = evaluate(build, batch, [get_proxy(name)], seed=0)
    return result


def _value(name: str, build, batch: Batch) -> float:
    result = _result(name, build, batch)
    assert result.status == "ok", result.error
    return result.value


def _staircase() -> nn.Module:
    """1-D input, three ReLUs with kinks at 0, 1, 2: unit k is active exactly when x > k."""
    net = nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.copy_(torch.tensor([0.0, -1.0, -2.0]))
    return net


def _points(*xs: float) -> Batch:
    inputs = torch.tensor(xs, dtype=torch.float32).unsqueeze(1)
    return Batch(inputs=inputs, labels=torch.zeros(len(xs), dtype=torch.long))


def test_distinct_rows_matches_a_set_of_tuples_across_word_boundaries():
    torch.manual_seed(0)
    for rows, width in [(50, 3), (40, 64), (30, 65), (20, 200)]:
        bits = torch.rand(rows, width) > 0.8
        bits[rows // 2:] = bits[: rows - rows // 2]  # force duplicates
        assert distinct_rows(bits) == len({tuple(r.tolist()) for r in bits})


def test_linear_regions_of_a_1d_relu_net_count_the_intervals_hit():
    assert _value("linear_regions", _staircase, _points(-1, -0.5, 0.5, 1.5, 1.7, 3)) == 4
    assert _value("linear_regions", _staircase, _points(-2, -1)) == 1
    # 70 samples (more than one 64-bit word per unit for swap, below) in every interval
    xs = torch.linspace(-1, 3, 70).tolist()
    assert _value("linear_regions", _staircase, _points(*xs)) == 4


def test_swap_counts_distinct_unit_patterns_times_the_size_regulariser():
    regulariser = math.exp(-((10 / 1e6 - SWAP_MU) ** 2) / SWAP_SIGMA)  # the staircase has 10 parameters
    # x = -1, 0.5, 1.5, 3: units see 0111, 0011, 0001 → 3 distinct sample-wise patterns
    assert _value("swap", _staircase, _points(-1, 0.5, 1.5, 3)) == pytest.approx(3 * regulariser, rel=1e-12)
    assert _value("swap", _staircase, _points(-1, 3)) == pytest.approx(1 * regulariser, rel=1e-12)
    xs = torch.linspace(-1, 3, 70).tolist()
    assert _value("swap", _staircase, _points(*xs)) == pytest.approx(3 * regulariser, rel=1e-12)


def test_activation_pattern_proxies_without_relu_are_error_rows():
    for name in ("linear_regions", "swap"):
        result = _result(name, lambda: nn.Linear(1, 2), _points(0.0, 1.0))
        assert result.status == "error" and "ReLU" in result.error


def test_min_correlation_eigenvalue_of_known_correlations():
    a = torch.tensor([1.0, -1.0, 1.0, -1.0])
    b = torch.tensor([1.0, 1.0, -1.0, -1.0])
    assert min_correlation_eigenvalue(torch.stack([a, b], 1)) == pytest.approx(1.0)  # uncorrelated: P = I
    c = 0.6 * a + 0.8 * b  # corr(a, c) = 0.6 → eigenvalues 1 ± 0.6
    assert min_correlation_eigenvalue(torch.stack([a, c], 1)) == pytest.approx(0.4)
    assert min_correlation_eigenvalue(torch.stack([a, 3 * a + 1], 1)) == pytest.approx(0.0, abs=1e-12)
    # a dead (constant) channel has undefined correlations, taken as 0: its eigenvalue is 0
    assert min_correlation_eigenvalue(torch.stack([a, b, torch.zeros(4)], 1)) == pytest.approx(0.0, abs=1e-12)


def test_meco_sums_the_conv_layers_of_the_first_sample():
    a = torch.tensor([1.0, -1.0, 1.0, -1.0])
    b = torch.tensor([1.0, 1.0, -1.0, -1.0])
    first = torch.stack([a, 0.6 * a + 0.8 * b]).view(1, 2, 2, 2)  # channels × 2×2 grid
    inputs = torch.cat([first, torch.randn(3, 2, 2, 2)])

    def build():
        conv1, conv2 = nn.Conv2d(2, 2, 1, bias=False), nn.Conv2d(2, 2, 1, bias=False)
        with torch.no_grad():
            conv1.weight.copy_(torch.eye(2).view(2, 2, 1, 1))  # keeps the 0.6 correlation
            conv2.weight.copy_(torch.tensor([[1.0, 0.0], [-0.75, 1.25]]).view(2, 2, 1, 1))  # back to a, b
        return nn.Sequential(conv1, conv2, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))

    batch = Batch(inputs=inputs, labels=torch.zeros(4, dtype=torch.long))
    assert _value("meco", build, batch) == pytest.approx(0.4 + 1.0, rel=1e-6)  # the linear layer has 1 position


def test_meco_without_feature_maps_is_an_error_row():
    result = _result("meco", lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)),
                     Batch(torch.randn(4, 3), torch.zeros(4, dtype=torch.long)))
    assert result.status == "error" and "feature maps" in result.error


def test_zen_score_of_a_linear_net_is_the_log_norm_of_the_perturbation():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 5, 1, bias=False), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 2))
    x, noise = torch.randn(8, 3, 4, 4), torch.randn(8, 3, 4, 4)
    w = net[0].weight.detach().view(5, 3).double()
    diff = 0.01 * torch.einsum("oc,nchw->nohw", w, noise.double())  # f(x + αε) − f(x) = α W ε, no BN term
    expected = math.log(diff.flatten(1).norm(dim=1).mean().item())
    assert zen_score(net, x, noise) == pytest.approx(expected, rel=1e-4)


def test_zen_score_adds_the_log_std_of_each_batchnorm_running_variance():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x, noise = torch.randn(16, 3, 4, 4), torch.randn(16, 3, 4, 4)
    w = net[0].weight.detach().view(4, 3).double()

    def features(inp: torch.Tensor) -> torch.Tensor:
        z = torch.einsum("oc,nchw->nohw", w, inp.double())
        mean, var = z.mean(dim=(0, 2, 3), keepdim=True), z.var(dim=(0, 2, 3), keepdim=True, unbiased=False)
        return (z - mean) / torch.sqrt(var + 1e-5)

    # running_var from 1 at momentum 0.1 over the two passes, with the unbiased batch variances
    var = [torch.einsum("oc,nchw->nohw", w, inp.double()).var(dim=(0, 2, 3)) for inp in (x, x + 0.01 * noise)]
    log_sigma = 0.5 * math.log((0.81 + 0.09 * var[0] + 0.1 * var[1]).mean().item())
    delta = (features(x) - features(x + 0.01 * noise)).flatten(1).norm(dim=1).mean().item()
    assert zen_score(net, x, noise) == pytest.approx(math.log(delta) + log_sigma, rel=1e-4)


def test_zen_uses_its_own_init_and_gaussian_input():
    build = lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(4, 2))

    def scaled():
        net = build()
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(7.0)
        return net

    batch = Batch(torch.randn(6, 3, 8, 8), torch.zeros(6, dtype=torch.long))
    other = Batch(torch.rand(6, 3, 8, 8) * 100, torch.ones(6, dtype=torch.long))
    value = _value("zen", build, batch)
    assert _value("zen", scaled, batch) == value and _value("zen", build, other) == value


def test_zen_without_global_pooling_is_an_error_row():
    result = _result("zen", lambda: nn.Sequential(nn.Conv2d(3, 2, 1), nn.Flatten()),
                     Batch(torch.randn(2, 3, 4, 4), torch.zeros(2, dtype=torch.long)))
    assert result.status == "error" and "global pooling" in result.error


def test_block_expressivity_is_the_entropy_of_the_covariance_spectrum():
    # rows (±√3, ±1) over the four sign pairs: zero mean, covariance diag(3, 1) → p = (3/4, 1/4)
    rows = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]]) * torch.tensor([3 ** 0.5, 1.0])
    feature = rows.view(1, 2, 2, 2).permute(0, 3, 1, 2)  # N×C×H×W whose (N·H·W)×C rows are `rows`
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert block_expressivity(feature) == pytest.approx(expected, rel=1e-6)
    isotropic = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]]).view(1, 2, 2, 2).permute(0, 3, 1, 2)
    assert block_expressivity(isotropic) == pytest.approx(math.log(2), rel=1e-9)


def test_block_trainability_is_zero_at_isometry_and_penalises_gain():
    g_out = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]]).view(1, 2, 2, 2).permute(0, 3, 1, 2)
    assert block_trainability(-g_out, g_out) == pytest.approx(0.0, abs=1e-12)  # an orthogonal Jacobian
    assert block_trainability(2 * g_out, g_out) == pytest.approx(2 - 2 - 0.5, rel=1e-12)  # σ = 2
    # a stride-2 block: the input gradient on the 2× grid is unshuffled into 4 channel groups
    g_in = torch.nn.functional.pixel_shuffle(torch.cat([g_out, torch.zeros(1, 6, 2, 2)], 1), 2)
    assert block_trainability(g_in, g_out) == pytest.approx(0.0, abs=1e-12)


def test_blocks_are_the_nb201_cells_and_reductions():
    net = create_space("nb201").build(10798, "cifar10")
    assert [type(b).__name__ for b in find_blocks(net)] == ["Cell"] * 5 + ["ResidualReduction"] + ["Cell"] * 5 + [
        "ResidualReduction"] + ["Cell"] * 5


def test_az_components_on_nb201_are_finite_and_a_dead_network_is_nan():
    space = create_space("nb201")
    batch = load_batch("imagenet16_120", 8, 0)
    names = ["az_expressivity", "az_progressivity", "az_trainability", "az_complexity"]
    good = evaluate(lambda: space.build(10798, "imagenet16_120"), batch, resolve_proxies(names), seed=0)
    assert all(r.status == "ok" and math.isfinite(r.value) for r in good), good
    assert good[2].value <= 0  # 2 − σ − 1/σ ≤ 0
    dead = evaluate(lambda: space.build(0, "imagenet16_120"), batch, resolve_proxies(names), seed=0)  # all "none"
    assert [r.status for r in dead] == ["nan", "nan", "nan", "ok"]


def test_az_components_read_seeded_noise_not_the_images():
    """AZ-NAS feeds N(0,1) noise of the batch's shape: other images give the same values, another seed others."""
    space, names = create_space("nb201"), ["az_expressivity", "az_progressivity", "az_trainability"]
    batch = load_batch("imagenet16_120", 8, 0)
    other = Batch(torch.rand_like(batch.inputs), batch.labels)
    values = lambda b, seed: [r.value for r in evaluate(lambda: space.build(10798, "imagenet16_120"), b,
                                                          resolve_proxies(names), seed=seed)]
    assert values(other, 0) == values(batch, 0) != values(batch, 1)


def test_directions():
    higher = {"linear_regions", "swap", "meco", "zen", "az_expressivity", "az_progressivity", "az_trainability",
              "az_complexity"}
    assert all(get_proxy(name).higher_is_better for name in higher)
