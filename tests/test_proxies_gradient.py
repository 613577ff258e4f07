"""Gradient, Jacobian and NTK proxies on tiny networks whose values follow from closed forms or an independent
computation (numpy, or plain autograd in a loop)."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zsdist.data import Batch
from zsdist.proxies import get_proxy, resolve_proxies
from zsdist.proxies.evaluate import evaluate
from zsdist.proxies.jacobian import K

N, D, C = 6, 9, 4
MINE = ["grad_norm", "snip", "plain", "l2_norm", "fisher", "grasp", "jacob_cov", "epe_nas", "ntk", "gradsign", "zico"]


def _value(name: str, build, batch: Batch) -> float:
    (result,) = evaluate(build, batch, [get_proxy(name)], seed=0)
    assert result.status == "ok", result.error
    return result.value


def _batch(n: int = N, d: int = D, classes: int = C) -> Batch:
    torch.manual_seed(1)
    return Batch(inputs=torch.randn(n, d), labels=torch.arange(n) % classes)


def _linear(d: int = D, c: int = C) -> nn.Linear:
    torch.manual_seed(2)
    return nn.Linear(d, c, bias=False)


def _closed_form(net: nn.Linear, batch: Batch):
    """W, X, softmax P, one-hot Y and the mean-CE gradient G = (P − Y)ᵀX / N, all float64."""
    w, x = net.weight.detach().double(), batch.inputs.double()
    p = torch.softmax(x @ w.T, 1)
    y = F.one_hot(batch.labels, w.shape[0]).double()
    return w, x, p, y, (p - y).T @ x / len(x)


def test_loss_gradient_saliencies_of_a_linear_net_match_the_closed_form_gradient():
    net, batch = _linear(), _batch()
    w, x, p, y, g = _closed_form(net, batch)
    build = lambda: net
    assert _value("grad_norm", build, batch) == pytest.approx(g.norm().item(), rel=1e-5)
    assert _value("snip", build, batch) == pytest.approx((w * g).abs().sum().item(), rel=1e-5)
    assert _value("plain", build, batch) == pytest.approx((w * g).sum().item(), rel=1e-4)
    assert _value("l2_norm", build, batch) == pytest.approx(w.norm().item(), rel=1e-6)
    activation_grad = (x @ w.T) * (p - y) / len(x)  # output ⊙ ∂L/∂output, N×C
    assert _value("fisher", build, batch) == pytest.approx(0.5 * activation_grad.pow(2).mean(0).sum().item(), rel=1e-5)


def test_grasp_of_a_linear_net_is_minus_theta_times_the_softmax_hessian_gradient_product():
    net, batch = _linear(), _batch()
    w, x, p, _, g = _closed_form(net, batch)
    hg = torch.zeros_like(w)
    for xi, pi in zip(x, p):  # Hessian of mean CE for logits W x: (diag p − p pᵀ) ⊗ x xᵀ / N
        hg += ((torch.diag(pi) - torch.outer(pi, pi)) @ (g @ xi)).outer(xi) / len(x)
    assert _value("grasp", lambda: net, batch) == pytest.approx(-(w * hg).sum().item(), rel=1e-4)


def test_gradsign_counts_sign_agreement_of_the_per_sample_gradients():
    net, batch = _linear(), _batch()
    _, x, p, y, _ = _closed_form(net, batch)
    per_sample = (p - y)[:, :, None] * x[:, None, :]  # ∂CE_i/∂W = (p_i − y_i) x_iᵀ
    expected = torch.sign(per_sample).sum(0).abs().sum().item()
    assert _value("gradsign", lambda: net, batch) == expected


def test_ntk_of_a_linear_model_is_the_condition_number_of_the_gram_matrix():
    net, batch = _linear(), _batch()  # N < D: X Xᵀ is full rank
    x = batch.inputs.double()
    eig = torch.linalg.eigvalsh(C * x @ x.T)  # ∂(Σ_c w_c·x_i)/∂W = 1 x_iᵀ, so Θ = C · X Xᵀ
    assert _value("ntk", lambda: net, batch) == pytest.approx((eig[-1] / eig[0]).item(), rel=1e-4)


def test_ntk_with_batch_norm_uses_the_batch_statistics_held_constant():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(D, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, C))
    batch = _batch()
    # independent: plain autograd, one sample at a time, BN in eval mode on the batch's own statistics
    frozen = copy.deepcopy(net).eval()
    with torch.no_grad():
        hidden = net[0](batch.inputs)
    frozen[1].running_mean, frozen[1].running_var = hidden.mean(0), hidden.var(0, unbiased=False)
    torch.testing.assert_close(frozen(batch.inputs), net(batch.inputs))  # the train-mode forward, unchanged
    weights = [frozen[i].weight for i in (0, 1, 3)]
    rows = []
    for xi in batch.inputs:
        grads = torch.autograd.grad(frozen(xi[None]).sum(), weights)
        rows.append(torch.cat([g.flatten() for g in grads]).double())
    jac = torch.stack(rows)
    eig = torch.linalg.eigvalsh(jac @ jac.T)
    assert _value("ntk", lambda: net, batch) == pytest.approx((eig[-1] / eig[0]).item(), rel=1e-3)


def test_a_sample_without_gradient_makes_the_ntk_singular_status_nan():
    net, batch = _linear(), _batch()
    batch = Batch(torch.cat([batch.inputs[:-1], torch.zeros(1, D)]), batch.labels)  # x = 0: a zero NTK row
    (result,) = evaluate(lambda: net, batch, [get_proxy("ntk")], seed=0)
    assert (result.status, result.value) == ("nan", None)


def test_zico_of_a_linear_net_uses_the_two_half_batch_gradients():
    net, batch = _linear(), _batch()
    halves = []
    for idx in (slice(0, N // 2), slice(N // 2, N)):
        half = Batch(batch.inputs[idx], batch.labels[idx])
        halves.append(_closed_form(net, half)[-1])
    g = torch.stack(halves)
    std, mean_abs = g.std(0, unbiased=False), g.abs().mean(0)
    assert _value("zico", lambda: net, batch) == pytest.approx(math.log((mean_abs / std).sum().item()), rel=1e-5)


class Square(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


def _jacobian_rows(net: nn.Sequential, batch: Batch) -> np.ndarray:
    """∂(Σ_c f_c)/∂x of f = W(x ⊙ x): 2 x ⊙ (Wᵀ1), per sample."""
    return (2 * batch.inputs * net[1].weight.detach().sum(0)).double().numpy()


def test_jacob_cov_of_a_linear_map_has_one_nonzero_correlation_eigenvalue():
    net, batch = _linear(), _batch()  # every Jacobian row is Wᵀ1: the correlation matrix is all ones
    expected = -((N - 1) * (math.log(K) + 1 / K) + math.log(N + K) + 1 / (N + K))
    assert _value("jacob_cov", lambda: net, batch) == pytest.approx(expected, rel=1e-6)


def test_jacob_cov_matches_numpy_on_input_dependent_jacobians():
    torch.manual_seed(4)
    net, batch = nn.Sequential(Square(), nn.Linear(D, C)), _batch()
    eig = np.linalg.eigvalsh(np.corrcoef(_jacobian_rows(net, batch)))
    expected = -np.sum(np.log(eig + K) + 1 / (eig + K))
    assert _value("jacob_cov", lambda: net, batch) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("classes", [3, 101])
def test_epe_nas_matches_numpy_per_class_correlation_scores(classes):
    torch.manual_seed(5)
    net = nn.Sequential(Square(), nn.Linear(D, classes))
    batch = Batch(inputs=torch.randn(8, D), labels=torch.tensor([0, 0, 0, 1, 1, 2, 2, 2]))
    jac, labels = _jacobian_rows(net, batch), batch.labels.numpy()
    scores = []
    for c in range(3):
        rows = jac[labels == c]
        score = np.log(np.abs(np.corrcoef(rows)) + K).sum()
        scores.append(score / len(rows) if classes > 100 else score)
    scores = np.array(scores)
    expected = np.abs(scores).sum() if classes <= 100 else np.abs(scores[:, None] - scores[None, :]).sum() / 3
    assert _value("epe_nas", lambda: net, batch) == pytest.approx(expected, rel=1e-5)


def test_directions_and_needs_are_declared():
    assert [p.name for p in resolve_proxies(MINE) if not p.higher_is_better] == ["ntk"]
    assert "grads" in get_proxy("snip").needs and "act_grads" in get_proxy("fisher").needs
    assert get_proxy("jacob_cov").needs <= get_proxy("epe_nas").needs
    assert not get_proxy("l2_norm").needs and not get_proxy("zico").needs


def test_input_independent_output_makes_jacobian_proxies_nan():
    net = _linear()
    nn.init.zeros_(net.weight)  # constant output: every Jacobian row is zero, the correlation undefined
    results = evaluate(lambda: net, _batch(), resolve_proxies(["jacob_cov", "epe_nas", "params"]), seed=0)
    assert [(r.status, r.value) for r in results] == [("nan", None), ("nan", None), ("ok", float(D * C))]


def test_non_finite_weights_give_status_nan_not_a_crash():
    net = _linear()
    with torch.no_grad():
        net.weight[0, 0] = float("inf")
    results = evaluate(lambda: net, _batch(), resolve_proxies(["grad_norm", "snip", "l2_norm", "zico"]), seed=0)
    assert {r.proxy: r.status for r in results} == {"grad_norm": "nan", "snip": "nan", "l2_norm": "nan",
                                                    "zico": "nan"}


def test_a_network_without_conv_or_linear_layers_is_an_error_row_with_the_reason():
    results = evaluate(lambda: nn.Sequential(nn.BatchNorm1d(D)), _batch(), resolve_proxies(MINE[:6]), seed=0)
    for r in results:
        assert r.status == "error" and "conv and linear" in r.error, (r.proxy, r.error)


def test_the_proxy_benchmark_is_registered():
    from zsdist.bench import BENCHES

    assert "proxies" in BENCHES
