"""Gradient, Jacobian and NTK proxies on tiny networks whose values follow from closed forms or an independent
computation (numpy, or plain autograd in a loop), and every shared pass of the evaluator on an NB201 cell against
the same definition computed alone."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zsdist.data import Batch, load_batch
from zsdist.proxies import get_proxy, resolve_proxies
from zsdist.proxies.evaluate import evaluate
from zsdist.proxies.introspect import LAYERS, batch_statistics
from zsdist.proxies.jacobian import K
from zsdist.proxies.probe import Probe
from zsdist.spaces import create_space

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


def test_every_benchmark_name_is_a_module_with_run():
    import importlib

    from zsdist.bench import BenchName

    assert "proxies" in {b.value for b in BenchName}
    assert all(callable(importlib.import_module(f"zsdist.bench.{b.value}").run) for b in BenchName)


# ---- NB201: every sped-up path of the shared evaluator against the proxy's definition, computed alone ----------
# The references run each definition the plain way (zsdist.bench.reference for the survey's 8, here for the
# rest): a fresh copy of the same network per proxy, its own forward and backward passes, no sharing. They use
# the layout the evaluator uses (channels-last), so the comparison pins the shared passes, not reassociation.

NB201_CELL = 9009  # conv 3×3, conv 1×1, avg-pool and skip edges: every kind of NB201 layer


@pytest.fixture(scope="module")
def cell():
    torch.set_num_threads(1)
    space = create_space("nb201")
    batch = load_batch("cifar10", 8, 0)
    build = lambda: space.build(NB201_CELL, "cifar10")
    together = {r.proxy: r for r in evaluate(build, batch, resolve_proxies("all"), seed=0)}
    torch.manual_seed(0)
    net = build().to(memory_format=torch.channels_last)
    return net, Batch(batch.inputs.contiguous(memory_format=torch.channels_last), batch.labels), together


def _fresh(net: nn.Module) -> nn.Module:
    return copy.deepcopy(net).train()


def _layer_weights(net: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in net.modules() if isinstance(m, LAYERS)]


def _loss_backward(net: nn.Module, batch: Batch) -> nn.Module:
    F.cross_entropy(net(batch.inputs), batch.labels).backward()
    return net


def _check(together: dict, name: str, expected: float, rel: float = 1e-5) -> None:
    result = together[name]
    assert result.status == "ok", result.error
    expected = expected.detach() if isinstance(expected, torch.Tensor) else expected
    assert result.value == pytest.approx(float(expected), rel=rel), name


def test_the_reference_protocol_gives_the_evaluators_values(cell):
    """grad_norm, snip, plain, l2_norm, fisher (shared train pass), grasp (its Hessian-gradient product on the
    shared graph), jacob_cov (the input backward on the shared forward), synflow (no copy, functional_call)."""
    from zsdist.bench.reference import SURVEY

    net, batch, together = cell
    for name, reference in SURVEY.items():
        _check(together, name, reference(net, batch), rel=1e-4)


def test_the_reference_protocol_runs_the_reference_implementations_passes(cell):
    """The baseline costs what the reference implementation runs: GraSP takes its gradient in a pass of its own
    before the pass it differentiates twice, and the input Jacobian's `.backward()` takes every weight's gradient."""
    from zsdist.bench.proxies import _flops, _pass_flops
    from zsdist.bench.reference import grasp, input_jacobian

    net, batch, _ = cell
    passes = _pass_flops(net, batch)  # the bench's floor passes, counted on this network
    forward_backward = passes["forward"] + passes["backward"]
    assert _flops(lambda: grasp(net, batch)) >= 2 * forward_backward + passes["hvp"]
    assert _flops(lambda: input_jacobian(net, batch)) >= forward_backward


def test_epe_nas_reads_the_same_input_jacobian_as_its_own_pass_on_an_nb201_cell(cell):
    from zsdist.bench.reference import input_jacobian

    net, batch, together = cell
    jac = input_jacobian(net, batch).numpy()
    labels = batch.labels.numpy()
    scores = [np.log(np.abs(np.corrcoef(jac[labels == c])) + K).sum() for c in np.unique(labels)
              if (labels == c).sum() >= 2]
    _check(together, "epe_nas", np.abs(scores).sum())


def test_ntk_and_gradsign_equal_one_backward_per_sample_on_an_nb201_cell(cell):
    net, batch, together = cell
    stats, handles = {}, []
    frozen = _fresh(net)
    def record(module: nn.Module, args: tuple) -> None:
        stats[module] = args[0].mean((0, 2, 3)), args[0].var((0, 2, 3), unbiased=False)

    for m in frozen.modules():
        if isinstance(m, nn.BatchNorm2d):
            handles.append(m.register_forward_pre_hook(record))
    with torch.no_grad():
        frozen(batch.inputs)
    for h in handles:
        h.remove()
    frozen.eval()
    for m, (mean, var) in stats.items():
        m.running_mean, m.running_var = mean, var
    every = [m.weight for m in frozen.modules() if isinstance(getattr(m, "weight", None), nn.Parameter)]
    rows, signs = [], 0
    for x, y in zip(batch.inputs, batch.labels):
        logits = frozen(x[None])
        logit_grads = torch.autograd.grad(logits.sum(), every, retain_graph=True)
        rows.append(torch.cat([g.flatten() for g in logit_grads]).double())
        signs = signs + torch.cat([torch.sign(g).flatten() for g in torch.autograd.grad(
            F.cross_entropy(logits, y[None]), _layer_weights(frozen))])
    jac = torch.stack(rows)
    eig = torch.linalg.eigvalsh(jac @ jac.T)
    _check(together, "ntk", eig[-1] / eig[0], rel=1e-3)
    _check(together, "gradsign", signs.abs().sum(), rel=1e-3)


def test_zico_equals_two_half_batch_backwards_on_an_nb201_cell(cell):
    net, batch, together = cell
    per_half = []
    for idx in (slice(0, 4), slice(4, 8)):
        weights = _layer_weights(_loss_backward(copied := _fresh(net), Batch(batch.inputs[idx], batch.labels[idx])))
        per_half.append([w.grad.double() for w in weights])
        del copied
    score = 0.0
    for a, b in zip(*per_half):
        grads = torch.stack([a, b])
        std, keep = grads.std(0, unbiased=False), grads.std(0, unbiased=False) != 0
        total = (grads.abs().mean(0)[keep] / std[keep]).sum()
        score += math.log(total) if total > 0 else 0.0
    _check(together, "zico", score)


def test_every_pass_leaves_the_probed_network_pristine():
    space, batch = create_space("nb201"), load_batch("cifar10", 4, 0)
    probe = Probe(lambda: space.build(NB201_CELL, "cifar10"), batch, seed=0)
    before = {k: v.clone() for k, v in probe.model.state_dict().items()}
    with batch_statistics(probe.model):
        assert all(m.training for m in probe.model.modules())
    probe.model.eval()
    for proxy in resolve_proxies("all"):
        try:
            proxy.fn(probe)
        except ValueError:
            pass  # proxies undefined on NB201 (TF-TAS): their passes still ran
    assert not any(m.training for m in probe.model.modules())  # modes restored after every pass
    assert all(p.grad is None for p in probe.model.parameters())
    for k, v in probe.model.state_dict().items():
        assert torch.equal(v, before[k]), k  # no running statistics updated, no weight touched


def test_the_proxy_benchmark_states_a_floor_for_every_proxy_and_prints_every_row():
    from zsdist.bench.proxies import FLOOR, report

    assert set(FLOOR) == {p.name for p in resolve_proxies("all")}
    names = ["params", "snip", "jacob_cov", "synflow"]
    text = report({"all pool": 15624}, batch_size=4, names=names)
    rows = {line.split()[0] for line in text.splitlines() if line and not line.startswith(("NB201", "cell", "proxy"))}
    assert set(names) <= rows and "SET" in rows
    assert "survey's 8 proxies, zsdist vs the reference protocol" in text
    assert "(their floor, " in text and "allows at most" in text


@pytest.mark.parametrize("groups", [1, 4, 8])
def test_the_work_counter_charges_each_convolution_gradient_what_the_forward_costs(groups):
    """Per-sample gradients run as one convolution with a group per sample: torch's own formula would count the
    weight gradient `groups` times over."""
    from zsdist.bench.work import Work

    conv = nn.Conv2d(8, 16, 3, padding=1, groups=groups, bias=False)
    x = torch.randn(2, 8, 5, 5, requires_grad=True)
    with Work() as forward:
        y = conv(x)
    with Work() as both:
        torch.autograd.grad(y.sum(), [x, conv.weight], retain_graph=True)
    with Work() as weight_only:
        torch.autograd.grad(y.sum(), [conv.weight])
    assert forward.flops == 2 * 2 * 16 * 25 * (8 // groups) * 9  # 2 FLOPs per MAC
    assert both.flops == 2 * forward.flops and weight_only.flops == forward.flops


def test_the_gpu_benchmark_runs_as_a_dry_run_without_cuda(monkeypatch):
    from zsdist.bench import BenchName
    from zsdist.bench.gpu import IN_FLIGHT, report

    assert BenchName("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    text = report([15624], counted=1, batch_size=2)
    assert "dry run (no CUDA device)" in text
    hours = [float(line.split(":")[1].split()[0]) for line in text.splitlines() if "in flight:" in line]
    assert len(hours) == len(IN_FLIGHT) and all(h > 0 for h in hours) and hours == sorted(hours, reverse=True)
