"""Faster stand-ins for modules whose PyTorch kernels are slow in the passes proxies run: the same function (values
equal up to float reassociation), swapped in by the Probe on the network it evaluates.

Only proxy evaluation uses them: latency features and measured latency keep the network as built, since these are
forms for the evaluator's passes (forward, backward, GraSP's double backward), not what a device runs.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from zsdist.networks.blocks import Zeros
from zsdist.networks.nb201 import Cell, Zero

Rewrite = Callable[[nn.Module], "nn.Module | None"]
REWRITES: dict[type[nn.Module], Rewrite] = {}


def rewrites(kind: type[nn.Module]) -> Callable[[Rewrite], Rewrite]:
    """Register `fn` as the rewrite of modules of exactly type `kind`: it returns the stand-in, or None to keep
    the module (a configuration it does not cover)."""

    def add(fn: Rewrite) -> Rewrite:
        REWRITES[kind] = fn
        return fn

    return add


def fast_forms(model: nn.Module) -> nn.Module:
    """`model` with every module a rewrite covers replaced, in place (children keep their names, so parameter
    names, order and init are those of the network as built; a stand-in takes its module's mode)."""
    for name, child in list(model.named_children()):
        setattr(model, name, fast_forms(child))
    rewrite = REWRITES.get(type(model))
    stand_in = rewrite(model) if rewrite else None
    if stand_in is None:
        return model
    stand_in.training = model.training
    return stand_in


def _box(x: torch.Tensor) -> torch.Tensor:
    """Σ over each position's 3×3 neighbourhood (zero padding), per channel: a depthwise convolution of ones."""
    channels = x.shape[-3]
    return F.conv2d(x, x.new_ones(channels, 1, 3, 3), padding=1, groups=channels)


def _divisor(x: torch.Tensor, include_pad: bool) -> torch.Tensor | float:
    """9, or each position's count of neighbours inside the map (4 in corners, 6 on edges, 9 inside)."""
    return 9.0 if include_pad else _box(x.new_ones(1, *x.shape[-2:]))


class _BoxMean(torch.autograd.Function):
    """3×3 stride-1 mean; its backward is a box sum too (the kernel is symmetric), written with differentiable
    operations so that a double backward (GraSP's) is one more convolution, not a grouped convolution's double
    backward, which PyTorch runs group by group."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, include_pad: bool) -> torch.Tensor:
        return _box(x) / _divisor(x, include_pad)

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:
        ctx.include_pad = inputs[1]

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return _box(grad / _divisor(grad, ctx.include_pad)), None


class BoxMean(nn.AvgPool2d):
    """nn.AvgPool2d(3, 1, 1) as `_BoxMean` on CPU float32, where PyTorch's pooling kernel takes about 5×
    (channels-last) to 25× (default layout) a depthwise convolution's time on a batch of NB201 feature maps.
    Elsewhere (synflow's float64 pass, whose depthwise convolution runs channel by channel; CUDA, not measured)
    PyTorch's pooling. Still an AvgPool2d to every isinstance check."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda or x.dtype != torch.float32:
            return super().forward(x)
        return _BoxMean.apply(x, self.count_include_pad)


@rewrites(nn.AvgPool2d)
def _avg_pool(pool: nn.Module) -> nn.Module | None:
    assert isinstance(pool, nn.AvgPool2d)
    plain = (pool.kernel_size, pool.stride, pool.padding) in {(3, 1, 1), ((3, 3), (1, 1), (1, 1))}
    if not plain or pool.ceil_mode or pool.divisor_override is not None:
        return None
    return BoxMean(3, 1, 1, count_include_pad=pool.count_include_pad)


class _Passes(threading.local):
    """What the current thread's passes ask of the second-order stand-ins (one architecture per thread)."""

    second_order = False
    inputs_only = False


_PASSES = _Passes()


@contextlib.contextmanager
def _passes_with(flag: str, value: bool) -> Iterator[None]:
    before = getattr(_PASSES, flag)
    setattr(_PASSES, flag, value)
    try:
        yield
    finally:
        setattr(_PASSES, flag, before)


def second_order(enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """Passes run inside will be differentiated twice (GraSP's Hessian-gradient product): batch norms and
    convolutions record nodes whose backward has a hand-written backward of its own. Elsewhere they are PyTorch's
    modules, whose nodes compute only the gradients a backward asks for."""
    return _passes_with("second_order", enabled)


def inputs_only() -> contextlib.AbstractContextManager[None]:
    """A backward through a second-order graph that asks for input gradients only (the input Jacobian): a custom
    node's `needs_input_grad` says what requires a gradient, not what this backward wants, so it is told."""
    return _passes_with("inputs_only", True)


def _per_channel(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A vector of channel values shaped to broadcast over `like` (N×C×...)."""
    return t.view(1, -1, *([1] * (like.dim() - 2)))


class _BatchNorm(torch.autograd.Function):
    """Batch norm on batch statistics (no running statistics updated): PyTorch's own forward and backward
    kernels, with the backward an `_BatchNormBackward`, so that a double backward takes its hand-written form."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
        y, mean, invstd = torch.native_batch_norm(x, weight, bias, None, None, True, 0.0, eps)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None]:
        x, weight, mean, invstd = ctx.saved_tensors
        return (*_BatchNormBackward.apply(x, weight, mean, invstd, grad, ctx.eps), None)


class _BatchNormBackward(torch.autograd.Function):
    """(x, γ, ∂y) → (∂x, ∂γ, ∂β) by PyTorch's kernel; its own backward (GraSP's Hessian-gradient product runs
    it once per norm) is the closed form below: about ten passes over the map and a few channel sums, where
    PyTorch's generic double backward of batch norm makes about sixty, a third to a half of that product's time
    on NB201 cells.

    With x̂ = (x − μ)·s, s = (σ² + ε)^−½, A = Σ∂y, B = Σ∂y·x̂ (sums over all but the channel axis, M terms),
    ∂x = γs(∂y − A/M − x̂B/M). For cotangents X, Γ, Β of (∂x, ∂γ, ∂β), with C = ΣX·x̂, D = ΣX, E = ΣX·∂y:
      ∂y ← γsX + (Γ − γsC/M)·x̂ + Β − γsD/M
      γ  ← s(E − AD/M − BC/M)
      x  ← s·X̄ − s·ΣX̄/M − x̂·s(ΣX̄x̂ + γs(E − AD/M − BC/M))/M,  X̄ = Γ·∂y − γs(B·X + C·∂y)/M
    (x̂ is a function of x through μ and s; the last term is ∂x's own dependence on s.)
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, mean: torch.Tensor, invstd: torch.Tensor,
                grad: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        dx, dweight, dbias = torch.ops.aten.native_batch_norm_backward(
            grad, x, weight, None, None, mean, invstd, True, eps, [True, True, True])
        ctx.save_for_backward(x, weight, mean, invstd, grad, dweight, dbias)
        return dx, dweight, dbias

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gdx: torch.Tensor, gdweight: torch.Tensor,
                 gdbias: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight, mean, invstd, grad, b, a = ctx.saved_tensors
        dims = [d for d in range(x.dim()) if d != 1]
        m = x.numel() / x.shape[1]

        def affine(*terms: tuple[torch.Tensor, torch.Tensor], shift: torch.Tensor) -> torch.Tensor:
            """shift + Σ map·coefficient over per-channel coefficients, one fused pass per term."""
            out = _per_channel(shift, x)
            for tensor, coefficient in terms:
                out = torch.addcmul(out, tensor, _per_channel(coefficient, x))
            return out

        xhat = affine((x, invstd), shift=-mean * invstd)  # PyTorch's own forward transform: x·s − μs
        c, d = (gdx * xhat).sum(dims), gdx.sum(dims)
        gs = weight * invstd
        ggrad = affine((gdx, gs), (xhat, gdweight - gs * c / m), shift=gdbias - gs * d / m) \
            if ctx.needs_input_grad[4] else None
        if not (ctx.needs_input_grad[0] or ctx.needs_input_grad[1]):
            return None, None, None, None, ggrad, None
        e = (gdx * grad).sum(dims) - (a * d + b * c) / m
        sum_xbar = gdweight * a - gs * (b * d + c * a) / m
        sum_xbar_xhat = gdweight * b - 2 * gs * b * c / m
        gx = affine((grad, invstd * gdweight - gs * invstd * c / m), (gdx, -gs * invstd * b / m),
                    (xhat, -invstd * (sum_xbar_xhat + gs * e) / m), shift=-invstd * sum_xbar / m)
        return gx, invstd * e, None, None, ggrad, None


class SecondOrderNorm(nn.BatchNorm2d):
    """nn.BatchNorm2d that, inside `second_order()` and on batch statistics updating no running statistics (the
    evaluator's train pass), runs as `_BatchNorm`: the same forward and backward kernels, and a double backward
    in closed form. Everywhere else nn.BatchNorm2d's own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = self.training or self.running_mean is None  # nn.BatchNorm2d's own rule
        updates = self.training and self.track_running_stats and self.running_mean is not None
        if not (_PASSES.second_order and batch and not updates):
            return super().forward(x)
        self._check_input_dim(x)
        return _BatchNorm.apply(x, self.weight, self.bias, self.eps)


@rewrites(nn.BatchNorm2d)
def _batch_norm(norm: nn.Module) -> nn.Module | None:
    assert isinstance(norm, nn.BatchNorm2d)
    if not norm.affine:
        return None
    norm.__class__ = SecondOrderNorm  # a subclass with no state of its own: the module itself, its tensors untouched
    return norm


Geometry = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], int]  # stride, padding, dilation, groups


def _conv_backward(grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, geometry: Geometry,
                   mask: list[bool]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PyTorch's convolution backward kernel: (∂x, ∂w, ∂bias) of conv(x, w) for output gradient `grad`."""
    stride, padding, dilation, groups = geometry
    return torch.ops.aten.convolution_backward(grad, x, weight, None, stride, padding, dilation, False,
                                               [0] * len(stride), groups, mask)


class _Conv(torch.autograd.Function):
    """A bias-free convolution: PyTorch's forward and backward kernels, the backward a `_ConvBackward`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, geometry: Geometry) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.geometry = geometry
        return F.conv2d(x, weight, None, *geometry)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        x, weight = ctx.saved_tensors
        mask = (ctx.needs_input_grad[0], ctx.needs_input_grad[1] and not _PASSES.inputs_only)
        return (*_ConvBackward.apply(x, weight, grad, ctx.geometry, mask), None)


class _ConvBackward(torch.autograd.Function):
    """(x, w, ∂y) → (∂x, ∂w). Both are bilinear, so its backward is four kernels PyTorch already has: for cotangents
    X, W of (∂x, ∂w): ∂y ← conv(X, w) + conv(x, W), w ← the weight gradient of conv(X, ·) for ∂y, x ← the input
    gradient of conv(·, W) for ∂y. PyTorch's own double backward of a convolution gets w's term from a
    convolution of the batch-transposed maps (the batch as channels, a kernel the size of the map), about twice
    the time of the weight-gradient kernel plus a copy of both maps."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor, geometry: Geometry,
                mask: tuple[bool, bool]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        ctx.save_for_backward(x, weight, grad)
        ctx.geometry = geometry
        ctx.set_materialize_grads(False)
        dx, dweight, _ = _conv_backward(grad, x, weight, geometry, [*mask, False])
        return dx, dweight

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gdx: torch.Tensor | None, gdweight: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        x, weight, grad = ctx.saved_tensors
        geometry, (need_x, need_weight, need_grad) = ctx.geometry, ctx.needs_input_grad[:3]
        gx = _conv_backward(grad, x, gdweight, geometry, [True, False, False])[0] \
            if need_x and gdweight is not None else None
        gweight = _conv_backward(grad, gdx, weight, geometry, [False, True, False])[1] \
            if need_weight and gdx is not None else None
        terms = [F.conv2d(a, w, None, *geometry) for a, w in ((gdx, weight), (x, gdweight)) if w is not None
                 and a is not None] if need_grad else []
        return gx, gweight, sum(terms[1:], terms[0]) if terms else None, None, None


class SecondOrderConv(nn.Conv2d):
    """A bias-free, zero-padded nn.Conv2d that runs as `_Conv` inside `second_order()`; elsewhere nn.Conv2d's own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _PASSES.second_order:
            return super().forward(x)
        return _Conv.apply(x, self.weight, (self.stride, self.padding, self.dilation, self.groups))


@rewrites(nn.Conv2d)
def _conv(conv: nn.Module) -> nn.Module | None:
    assert isinstance(conv, nn.Conv2d)
    if conv.bias is not None or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return None
    conv.__class__ = SecondOrderConv
    return conv


class PrunedCell(Cell):
    """A cell whose nodes skip their `none` edges: such an edge adds x·0, exact zeros, so the node is the sum of its
    other edges (a node with only none edges keeps one, so the cell's input still gets its zero gradient). Saves
    a multiplication per none edge in every forward, backward and double backward."""

    def __init__(self, edges: list[nn.Module]) -> None:
        super().__init__(edges)
        self.inputs = {t: [(e, s) for e, s in pairs if not isinstance(edges[e], (Zero, Zeros))] or pairs[:1]
                       for t, pairs in self.inputs.items()}

    @staticmethod
    def node_sum(terms: list[torch.Tensor]) -> torch.Tensor:
        """Σ from the first term: starting at 0 copies the map once per node."""
        first, *rest = terms
        return sum(rest, first)


@rewrites(Cell)
def _cell(cell: nn.Module) -> nn.Module:
    assert isinstance(cell, Cell)
    return PrunedCell(list(cell.edges))
