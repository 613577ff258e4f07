"""`zsdist bench proxies`: every registered proxy on a fixed NB201 sample, in shared passes and one by one.

The ratio (sum of the separate evaluations / the shared one) is the saving of sharing the passes; both are timed
in the same run, on one CPU thread, on the same batch (cifar10, 64 images, seed 0).
"""
from __future__ import annotations

import time

import torch

from zsdist.bench import register_bench
from zsdist.data import load_batch
from zsdist.proxies import resolve_proxies
from zsdist.proxies.evaluate import evaluate
from zsdist.spaces import create_space

BATCH = 64
SEED = 0


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


@register_bench("proxies")
def bench_proxies(quick: bool) -> str:
    """Seconds per architecture: the whole set shared vs each proxy alone (wall clock, network build included)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        space = create_space("nb201")
        arch_ids = space.sample(3 if quick else 12, SEED)
        batch = load_batch("cifar10", BATCH, SEED)
        proxies = resolve_proxies("all")
        builds = [lambda a=a: space.build(a, "cifar10") for a in arch_ids]
        evaluate(builds[0], batch, proxies, SEED)  # warm-up: one-time kernel and vmap setup, not measured
        shared = sum(_timed(lambda b=b: evaluate(b, batch, proxies, SEED)) for b in builds) / len(builds)
        alone = {p.name: sum(_timed(lambda b=b: evaluate(b, batch, [p], SEED)) for b in builds) / len(builds)
                 for p in proxies}
    finally:
        torch.set_num_threads(threads)
    total = sum(alone.values())
    lines = [f"NB201 cifar10, batch {BATCH}, {len(arch_ids)} architectures (seed {SEED}), 1 CPU thread",
             f"{'proxy':16s} {'alone s/arch':>12s}"]
    lines += [f"{name:16s} {seconds:12.3f}" for name, seconds in sorted(alone.items(), key=lambda kv: -kv[1])]
    lines += [f"{'sum alone':16s} {total:12.3f}", f"{'shared':16s} {shared:12.3f}",
              f"ratio alone/shared: {total / shared:.2f}x"]
    return "\n".join(lines)
