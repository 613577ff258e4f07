"""`zsdist bench proxies`: every proxy on NB201 cells of every size, against the floor its definition sets.

Per cell and proxy (alone, and the whole set in shared passes): CPU seconds on one thread, the FLOPs executed
(torch.utils.flop_counter's formulas: convolutions and matrix products, forward and backward), the floor, and
their ratio. The floor is the fewest passes a proxy's definition needs (FLOOR, stated in words), each pass's FLOPs
counted the same way on this cell, divided by the rate this machine sustains on the cell's own convolutions and
matrix products, measured in the same run; the floor's passes run on the forms the evaluator runs
(zsdist.networks.fast), so a 3×3 average pool's sums count as the depthwise convolution they are there. Beside
it, the survey's 8 proxies computed the reference protocol's way (zsdist.bench.reference: alone, a fresh copy
each, own passes, default layout, on the network as built) give zsdist's speed-up, and the reference's time over
the 8's own floor the most any implementation could reach on that cell.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from zsdist.allocator import retain_freed_memory
from zsdist.bench.work import Work
from zsdist.data import Batch, load_batch
from zsdist.networks.fast import fast_forms
from zsdist.proxies import resolve_proxies
from zsdist.proxies.evaluate import evaluate
from zsdist.proxies.introspect import batch_statistics, layer_weights
from zsdist.spaces import create_space

BATCH = 64
SEED = 0
# NB201 cells from the smallest to the largest: every edge none (the skeleton alone), skip, avg-pool, a mixed
# cell, every edge a 3×3 convolution (the most FLOPs of the space).
CELLS = {"all none": 0, "all skip": 3906, "all pool": 15624, "mixed": 9009, "all conv3x3": 11718}
QUICK_CELLS = ("all pool", "all conv3x3")
REPEATS = 3  # the whole set and the reference comparison: best of 3, so one slow moment of a shared machine
# does not decide a headline ratio (each proxy alone: one run)

# The passes a definition cannot do without, in words, and which of PASSES they are.
FLOOR: dict[str, tuple[str, tuple[str, ...]]] = {
    "params": ("none: reads the weights", ()),
    "l2_norm": ("none: reads the weights", ()),
    "flops": ("forward of 1 image", ("forward_1",)),
    "az_complexity": ("forward of 1 image", ("forward_1",)),
    **{name: ("forward + loss backward", ("forward", "backward"))
       for name in ("grad_norm", "snip", "plain", "fisher", "tf_tas", "tf_tas_diversity", "tf_tas_saliency")},
    "zico": ("forward + loss backward (the two halves together)", ("forward", "backward")),
    "grasp": ("forward + loss backward + Hessian-gradient product", ("forward", "backward", "hvp")),
    "jacob_cov": ("forward + input backward", ("forward", "input_backward")),
    "epe_nas": ("forward + input backward", ("forward", "input_backward")),
    **{name: ("forward", ("forward",)) for name in ("naswot", "linear_regions", "swap", "meco")},
    "ntk": ("forward + per-sample backward + N×N kernel", ("forward", "backward", "kernel")),
    "gradsign": ("forward + per-sample loss backward", ("forward", "backward")),
    "synflow": ("float64 forward + backward of 1 input", ("synflow",)),
    "zen": ("2 forwards (own init)", ("forward", "forward")),
    **{f"az_{part}": ("forward + block-wise input backward (own init)", ("forward", "input_backward"))
       for part in ("expressivity", "progressivity", "trainability")},
}
# The whole set: each distinct pass once. Zen's and AZ-NAS's passes (own init), ZiCo's (half-batch statistics)
# and the per-sample passes (statistics held constant) run on other weights or statistics: passes of their own.
SET_FLOOR = ("forward_1",  # FLOPs count
             "forward", "backward", "hvp", "input_backward",  # the shared train pass and its graph's reuses
             "forward", "backward", "backward", "kernel",  # per-sample logit and loss gradients, NTK kernel
             "synflow", "forward", "forward",  # synflow, zen
             "forward", "input_backward", "forward", "backward")  # AZ-NAS, ZiCo
# The survey's 8 in shared passes: the train pass with grasp's Hessian-gradient product and jacob_cov's input
# backward on its graph, and synflow's; l2_norm reads the weights.
SURVEY_FLOOR = ("forward", "backward", "hvp", "input_backward", "synflow")


def _cpu(run: Callable[[], object]) -> float:
    start = time.process_time()
    run()
    return time.process_time() - start


def _best(run: Callable[[], object]) -> float:
    return min(_cpu(run) for _ in range(REPEATS))


def _flops(run: Callable[[], object]) -> float:
    with Work() as work:
        run()
    return float(work.flops)


def _pass_flops(net: nn.Module, batch: Batch) -> dict[str, float]:
    """FLOPs of each floor pass on this network, counted on its plainest implementation."""
    x, y = batch.inputs, batch.labels
    weights = list(layer_weights(net).values())

    def forward_backward(create_graph: bool = False) -> tuple:
        loss = F.cross_entropy(net(x), y)
        return torch.autograd.grad(loss, weights, create_graph=create_graph, allow_unused=True)

    def hvp() -> None:
        grads = [g for g in forward_backward(create_graph=True) if g is not None]
        torch.autograd.grad(sum((g.detach() * g).sum() for g in grads), weights, allow_unused=True)

    def input_backward() -> None:
        inputs = x.detach().requires_grad_(True)
        torch.autograd.grad(net(inputs).sum(), inputs)

    params = sum(w.numel() for w in net.parameters() if w.dim() > 0 and w.requires_grad)
    with batch_statistics(net):
        forward = _flops(lambda: net(x))
        fwd_bwd = _flops(forward_backward)
        with_hvp = _flops(hvp)
        with_input = _flops(input_backward)
    synflow = 2 * _flops(lambda: net(x[:1]))  # forward + backward of one input, float64
    return {"forward_1": forward / len(x), "forward": forward, "backward": fwd_bwd - forward,
            "hvp": with_hvp - fwd_bwd, "input_backward": with_input - forward,
            "kernel": 2.0 * len(x) ** 2 * params, "synflow": synflow}


def conv_rate(net: nn.Module, batch: Batch, repeats: int = 3) -> float:
    """FLOP/s this machine sustains on the network's own convolutions and matrix products: each conv / linear
    layer's forward, run bare on its recorded input (no other op between), best of `repeats`."""
    calls: list[tuple[nn.Module, torch.Tensor]] = []
    handles = [m.register_forward_hook(lambda m, inp, _out: calls.append((m, inp[0].detach())))
               for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        net(batch.inputs)
    for handle in handles:
        handle.remove()
    with torch.no_grad():
        flops = _flops(lambda: [m(a) for m, a in calls])
        best = min(_cpu(lambda: [m(a) for m, a in calls]) for _ in range(repeats))
    return flops / best


def _matmul_rate() -> float:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    return 2 * 1024**3 * 4 / min(_cpu(lambda: [a @ b for _ in range(4)]) for _ in range(3))


def _survey_speedup(space, cell: int, batch: Batch) -> tuple[float, float]:
    """CPU seconds of the survey's 8 proxies: the reference protocol vs zsdist's evaluator, same cell."""
    from zsdist.bench.reference import SURVEY

    def reference() -> None:
        torch.manual_seed(SEED)
        net = space.build(cell, "cifar10")
        for fn in SURVEY.values():
            fn(net, batch)

    proxies = resolve_proxies(list(SURVEY))
    ours = _best(lambda: evaluate(lambda: space.build(cell, "cifar10"), batch, proxies, SEED))
    return _best(reference), ours


def run(quick: bool) -> str:
    """Per cell: each proxy alone and the whole set, seconds / FLOPs / floor / ratio; the reference speed-up."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    retain_freed_memory()  # as in a launch's workers (zsdist.run), for zsdist and the reference protocol alike
    try:
        return report({k: v for k, v in CELLS.items() if not quick or k in QUICK_CELLS}, BATCH)
    finally:
        torch.set_num_threads(threads)


def report(cells: dict[str, int], batch_size: int, names: str | list[str] = "all") -> str:
    """The benchmark's table for `cells` (label → NB201 id) on a CIFAR-10 batch of `batch_size`."""
    space = create_space("nb201")
    batch = load_batch("cifar10", batch_size, SEED)
    proxies = resolve_proxies(names)
    matmul = _matmul_rate()
    lines = [f"NB201 cifar10, batch {batch_size}, seed {SEED}, 1 CPU thread, CPU seconds (the whole set and the "
             f"survey's 8: best of {REPEATS}); FLOPs: conv + matmul (torch.utils.flop_counter's formulas); 1024² fp32 "
             f"matmul here: {matmul / 1e9:.1f} GFLOP/s"]
    speedups = []
    for label, cell in cells.items():
        build = lambda: space.build(cell, "cifar10")
        torch.manual_seed(SEED)
        net = fast_forms(build()).to(memory_format=torch.channels_last)  # the forms the evaluator runs
        layout = Batch(batch.inputs.contiguous(memory_format=torch.channels_last), batch.labels)
        rate = conv_rate(net, layout)
        passes = _pass_flops(net, layout)
        evaluate(build, batch, proxies, SEED)  # warm-up: one-time kernel and vmap setup, not measured
        lines += ["", f"cell {cell} ({label}): the network's convs sustain {rate / 1e9:.1f} GFLOP/s",
                  f"{'proxy':18s} {'s':>7s} {'GFLOP':>8s} {'floor GFLOP':>11s} {'floor s':>8s} {'ratio':>6s}  floor"]
        rows = []
        for proxy in proxies:
            seconds = _cpu(lambda: evaluate(build, batch, [proxy], SEED))
            flops = _flops(lambda: evaluate(build, batch, [proxy], SEED))
            words, needed = FLOOR[proxy.name]
            rows.append((proxy.name, seconds, flops, sum(passes[p] for p in needed), words))
        seconds = _best(lambda: evaluate(build, batch, proxies, SEED))
        rows.append(("ALL (shared)" if names == "all" else "SET (shared)", seconds,
                     _flops(lambda: evaluate(build, batch, proxies, SEED)),
                     sum(passes[p] for p in (SET_FLOOR if names == "all" else ())), "each distinct pass once"))
        for name, seconds, flops, floor, words in rows:
            floor_s = floor / rate
            ratio = f"{seconds / floor_s:6.1f}" if floor_s > 0 else f"{'—':>6s}"
            lines.append(f"{name:18s} {seconds:7.3f} {flops / 1e9:8.2f} {floor / 1e9:11.2f} {floor_s:8.3f} {ratio}  "
                         f"{words}")
        reference, ours = _survey_speedup(space, cell, batch)
        speedups.append(reference / ours)
        floor_s = sum(passes[p] for p in SURVEY_FLOOR) / rate
        lines.append(f"survey's 8 proxies: reference protocol {reference:.2f} s, zsdist {ours:.2f} s: "
                     f"{reference / ours:.1f}x (their floor, {floor_s:.2f} s, allows at most "
                     f"{reference / floor_s:.1f}x)")
    speedups.sort()
    lines += ["", f"survey's 8 proxies, zsdist vs the reference protocol: median {speedups[len(speedups) // 2]:.1f}x "
                  f"(from {speedups[0]:.1f}x to {speedups[-1]:.1f}x over {len(speedups)} cells)"]
    return "\n".join(lines)
