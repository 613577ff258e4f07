"""The evaluator's fast forms (zsdist.networks.fast): the same function as the network as built, forward, backward
and double backward, with the stand-ins actually in place; the hand-written double backwards against finite
differences (gradgradcheck, float64)."""
from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zsdist.bench.work import Work
from zsdist.data import load_batch
from zsdist.networks.blocks import Zeros
from zsdist.networks.fast import (
    BoxMean,
    PrunedCell,
    SecondOrderConv,
    SecondOrderNorm,
    _BatchNorm,
    _BoxMean,
    _Conv,
    fast_forms,
    inputs_only,
    second_order,
)
from zsdist.networks.nb201 import Cell, Zero
from zsdist.proxies.introspect import batch_statistics, layer_weights
from zsdist.proxies.probe import Probe
from zsdist.spaces import create_space

# NB201 9009: avg-pool, skip, none and 1×1 conv edges; 0: every edge none; NATS-SSS's cell and a TransNAS micro
# cell hold none edges of their own kind (Zeros, some of them strided).
NETWORKS = [("nb201", "9009", "cifar10", 32), ("nb201", "0", "cifar10", 32), ("nats_sss", "0", "cifar10", 32),
            ("transnas_micro", "64-41414-1_02_313", "class_scene", 64)]


def _build(space: str, arch: str, dataset: str) -> nn.Module:
    s = create_space(space)
    torch.manual_seed(0)
    return s.build(int(arch) if arch.isdigit() else s.parse(arch), dataset)


def _passes(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """Logits, the CE gradients of the input and of the weights, and GraSP's Hessian-gradient product."""
    weights = list(layer_weights(net).values())
    inputs = x.clone().requires_grad_(True)
    with batch_statistics(net), second_order():  # as the evaluator's train pass when GraSP is wanted
        logits = net(inputs)
        loss = F.cross_entropy(logits, y)
        with inputs_only():
            (dx,) = torch.autograd.grad(loss, inputs, retain_graph=True)  # (Σ logits: rounding noise under BN)
        grads = torch.autograd.grad(loss, weights, create_graph=True)
        hg = torch.autograd.grad(sum((g.detach() * g).sum() for g in grads), weights)
    return [logits, dx, *grads, *hg]


@pytest.mark.parametrize("space,arch,dataset,size", NETWORKS)
def test_fast_forms_compute_the_network_as_built(space, arch, dataset, size):
    torch.manual_seed(1)
    x = torch.randn(8, 3, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (8,))
    built = _build(space, arch, dataset).to(memory_format=torch.channels_last)
    fast = fast_forms(_build(space, arch, dataset)).to(memory_format=torch.channels_last)
    assert [n for n, _ in fast.named_parameters()] == [n for n, _ in built.named_parameters()]
    assert all(torch.equal(a, b) for a, b in zip(fast.state_dict().values(), built.state_dict().values()))
    cells = [m for m in fast.modules() if isinstance(m, Cell)]
    assert cells and all(type(m) is PrunedCell for m in cells)
    assert all(type(m) is SecondOrderNorm for m in fast.modules() if isinstance(m, nn.BatchNorm2d))
    assert all(type(m) is SecondOrderConv for m in fast.modules() if isinstance(m, nn.Conv2d) and m.bias is None)
    for got, want in zip(_passes(fast, x, y), _passes(built, x, y)):  # float reassociation only
        assert torch.linalg.norm(got - want) <= 1e-5 * torch.linalg.norm(want) + 1e-12


def test_pools_become_box_means_and_none_edges_are_skipped():
    net = fast_forms(_build("nb201", "9009", "cifar10"))  # per cell: 2 avg-pool edges, one none edge
    pools = [m for m in net.modules() if isinstance(m, nn.AvgPool2d)]
    assert sum(type(m) is BoxMean for m in pools) == 30
    assert sum(type(m) is nn.AvgPool2d for m in pools) == 2  # the reductions' 2×2 shortcut pools: not covered
    cell = next(m for m in net.modules() if isinstance(m, PrunedCell))
    skipped = {e for e, edge in enumerate(cell.edges) if isinstance(edge, (Zero, Zeros))}
    assert skipped and not skipped & {e for pairs in cell.inputs.values() for e, _ in pairs}
    assert Probe(lambda: _build("nb201", "9009", "cifar10"), load_batch("cifar10", 2, 0), seed=0).model.cells[0] \
        .__class__ is PrunedCell  # the evaluator runs these forms


def test_a_cell_of_none_edges_still_gives_its_input_a_zero_gradient():
    net = fast_forms(_build("nb201", "0", "cifar10"))
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    (dx,) = torch.autograd.grad(net(x).sum(), x)
    assert dx.shape == x.shape and not dx.any()


def test_the_box_mean_and_its_backward_are_differentiable_twice():
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    for include_pad in (False, True):
        pool = nn.AvgPool2d(3, 1, 1, count_include_pad=include_pad)
        assert torch.allclose(_BoxMean.apply(x, include_pad), pool(x))
        assert torch.autograd.gradgradcheck(lambda a: _BoxMean.apply(a, include_pad), x)
    per_sample = torch.func.vmap(lambda a: _BoxMean.apply(a[None], False)[0])(x)  # the per-sample fallback
    assert torch.allclose(per_sample, nn.AvgPool2d(3, 1, 1, count_include_pad=False)(x))


def test_the_batch_norm_runs_pytorchs_kernels_and_a_closed_form_double_backward():
    torch.manual_seed(0)
    x = (torch.randn(8, 5, 6, 6) * 3 + 2).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    weight, bias = torch.randn(5, requires_grad=True), torch.randn(5, requires_grad=True)
    ours = _BatchNorm.apply(x, weight, bias, 1e-5)
    theirs = F.batch_norm(x, None, None, weight, bias, True, 0.0, 1e-5)
    gy = torch.randn_like(ours)
    assert torch.equal(ours, theirs)  # the forward and the first backward: the same kernels, the same bits
    assert all(torch.equal(a, b) for a, b in zip(torch.autograd.grad(ours, (x, weight, bias), gy),
                                                 torch.autograd.grad(theirs, (x, weight, bias), gy)))
    for shape in ((4, 3, 5, 4), (6, 2, 3, 3)):  # a large mean, so x̂'s dependence on μ and σ is exercised
        args = [(torch.randn(*shape, dtype=torch.float64) * 3 + 1).requires_grad_(True),
                torch.randn(shape[1], dtype=torch.float64, requires_grad=True),
                torch.randn(shape[1], dtype=torch.float64, requires_grad=True)]
        assert torch.autograd.gradgradcheck(lambda a, w, b: _BatchNorm.apply(a, w, b, 1e-5), args)


@pytest.mark.parametrize("geometry,groups", [(((1, 1), (1, 1), (1, 1)), 1), (((2, 2), (0, 0), (1, 1)), 1),
                                             (((1, 1), (2, 2), (2, 2)), 2)])
def test_the_convolution_runs_pytorchs_kernels_and_a_double_backward_of_four(geometry, groups):
    torch.manual_seed(0)
    geometry = (*geometry, groups)
    x = torch.randn(3, 4, 6, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(6, 4 // groups, 3, 3, dtype=torch.float64, requires_grad=True)
    ours, theirs = _Conv.apply(x, weight, geometry), F.conv2d(x, weight, None, *geometry)
    gy = torch.randn_like(ours)
    assert torch.equal(ours, theirs)
    assert all(torch.equal(a, b) for a, b in zip(torch.autograd.grad(ours, (x, weight), gy),
                                                 torch.autograd.grad(theirs, (x, weight), gy)))
    assert torch.autograd.gradgradcheck(lambda a, w: _Conv.apply(a, w, geometry), (x, weight))
    fixed = x.detach()  # a first layer: only the weight is differentiated
    assert torch.autograd.gradgradcheck(lambda w: _Conv.apply(fixed, w, geometry), (weight,))


def test_the_stand_ins_keep_pytorchs_own_path_in_every_other_mode():
    torch.manual_seed(0)
    x = torch.randn(6, 4, 5, 5)
    built = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4))
    fast = fast_forms(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)))
    fast.load_state_dict(built.state_dict())
    assert [type(m) for m in fast] == [SecondOrderConv, SecondOrderNorm]
    x.requires_grad_(True)
    for _ in range(2):  # train mode updating running statistics, then eval mode reading them
        out = fast(x)
        assert torch.equal(out, built(x)) and type(out.grad_fn).__name__ == "NativeBatchNormBackward0"
        assert all(torch.equal(a, b) for a, b in zip(fast.state_dict().values(), built.state_dict().values()))
        fast.eval(), built.eval()
    with batch_statistics(fast), batch_statistics(built):
        out = fast(x)  # a train pass nobody differentiates twice
        assert torch.equal(out, built(x)) and type(out.grad_fn).__name__ == "NativeBatchNormBackward0"
        with second_order():  # the evaluator's train pass when GraSP is wanted: the stand-ins' path
            out = fast(x)
        assert torch.equal(out, built(x)) and type(out.grad_fn).__name__ == "_BatchNormBackward"
        assert type(out.grad_fn.next_functions[0][0]).__name__ == "_ConvBackward"
    assert torch.equal(fast[1].running_mean, built[1].running_mean)  # and no running statistic moved


def test_an_input_gradient_through_the_second_order_graph_computes_no_weight_gradient():
    conv = fast_forms(nn.Conv2d(4, 5, 3, padding=1, bias=False))
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    with second_order():
        y = conv(x)
    forward = 2 * y.numel() * 4 * 3 * 3
    for context, kernels in ((inputs_only, 1), (contextlib.nullcontext, 2)):  # ∂x alone, or ∂x and ∂w
        with Work() as work, context():
            torch.autograd.grad(y.sum(), x, retain_graph=True)
        assert work.flops == kernels * forward
