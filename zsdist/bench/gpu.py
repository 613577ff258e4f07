"""`zsdist bench gpu`: architectures per second per GPU with 1, 2, 4 and 8 architectures in flight.

Each architecture in flight is a thread with its own CUDA stream running the same `evaluate()` as a shard (every
proxy, NB201 cells, CIFAR-10 batch of 64 from pinned memory); utilisation is sampled from the driver while they
run. Without a GPU it is a dry run: it says what it would do and estimates the nightly NB201 workflow (15,625
cells × 3 datasets × every proxy) on one data-centre GPU from quantities measured here on the CPU: the FLOPs one
cell's proxies execute and the number of operators they launch, at a stated GPU rate and per-operator host cost.
"""
from __future__ import annotations

import subprocess
import threading
import time

import torch

from zsdist.bench.work import Work
from zsdist.data import load_batch
from zsdist.proxies import resolve_proxies
from zsdist.proxies.evaluate import evaluate
from zsdist.spaces import create_space

IN_FLIGHT = (1, 2, 4, 8)
NIGHTLY_CELLS = 15_625
# Relative work of the nightly datasets against CIFAR-10 (32×32): CIFAR-100 the same, ImageNet16-120 a quarter.
NIGHTLY_DATASETS = {"cifar10": 1.0, "cifar100": 1.0, "imagenet16_120": 0.25}
# Stated assumptions of the estimate: FP32 convolutions of 16–64 channels sustain about a third of an H100/H200's
# 67 TFLOP/s FP32 peak; each operator costs the host about 10 µs (Python, dispatch, kernel launch).
GPU_RATE = 20e12
HOST_SECONDS_PER_OP = 10e-6
SEED = 0


def _cells(quick: bool) -> list[int]:
    return create_space("nb201").sample(2 if quick else 8, SEED)


def _per_cell_work(cells: list[int], batch_size: int) -> tuple[float, float]:
    """Mean FLOPs and operators of every proxy on one NB201 cell (CIFAR-10), counted on the CPU."""
    space, batch, proxies = create_space("nb201"), load_batch("cifar10", batch_size, SEED), resolve_proxies("all")
    flops = ops = 0.0
    for cell in cells:
        with Work() as work:
            evaluate(lambda: space.build(cell, "cifar10"), batch, proxies, SEED)
        flops += work.flops
        ops += work.ops
    return flops / len(cells), ops / len(cells)


def estimate(flops_per_cell: float, ops_per_cell: float, in_flight: int) -> float:
    """Hours of the nightly NB201 workflow on one GPU: the larger of its arithmetic at GPU_RATE and the host's
    operator launches, which `in_flight` processes (Ray's fractional num_gpus) issue side by side."""
    cells = NIGHTLY_CELLS * sum(NIGHTLY_DATASETS.values())
    arithmetic = cells * flops_per_cell / GPU_RATE
    launches = NIGHTLY_CELLS * len(NIGHTLY_DATASETS) * ops_per_cell * HOST_SECONDS_PER_OP / in_flight
    return max(arithmetic, launches) / 3600


def _utilisation(samples: list[float], stop: threading.Event) -> None:
    while not stop.wait(0.2):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                  "-i", str(torch.cuda.current_device())], capture_output=True, text=True, timeout=5)
            samples.append(float(out.stdout.split()[0]))
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            return


def _measure(cells: list[int], in_flight: int) -> tuple[float, float]:
    """Architectures per second and mean GPU utilisation (%) with `in_flight` threads, one CUDA stream each."""
    space, proxies = create_space("nb201"), resolve_proxies("all")
    batch = load_batch("cifar10", 64, SEED)
    batch = type(batch)(batch.inputs.pin_memory(), batch.labels.pin_memory())
    queue = list(cells)
    lock = threading.Lock()

    def worker() -> None:
        with torch.cuda.stream(torch.cuda.Stream()):
            while True:
                with lock:
                    if not queue:
                        return
                    cell = queue.pop()
                evaluate(lambda: space.build(cell, "cifar10"), batch, proxies, SEED, "cuda")

    samples: list[float] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_utilisation, args=(samples, stop))
    threads = [threading.Thread(target=worker) for _ in range(in_flight)]
    torch.cuda.synchronize()
    start = time.perf_counter()
    sampler.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    torch.cuda.synchronize()
    took = time.perf_counter() - start
    stop.set()
    sampler.join()
    return len(cells) / took, sum(samples) / len(samples) if samples else float("nan")


def run(quick: bool) -> str:
    return report(_cells(quick), counted=1 if quick else 2, batch_size=64)


def report(cells: list[int], counted: int, batch_size: int) -> str:
    """The estimate from `counted` of `cells` on the CPU; with CUDA, the measured rates on all of them."""
    flops, ops = _per_cell_work(cells[:counted], batch_size)
    lines = [f"every proxy, NB201 CIFAR-10 cells, batch {batch_size}: {flops / 1e9:.1f} GFLOP and {ops:,.0f} "
             f"operators per cell (mean of {len(cells[:counted])} cells, counted on the CPU)",
             f"nightly NB201 estimate (15,625 cells × {', '.join(NIGHTLY_DATASETS)}; assumed {GPU_RATE / 1e12:.0f} "
             f"TFLOP/s sustained, {HOST_SECONDS_PER_OP * 1e6:.0f} µs host time per operator):"]
    lines += [f"  {n} architecture{'s' if n > 1 else ''} in flight: {estimate(flops, ops, n):.1f} h" for n in IN_FLIGHT]
    if not torch.cuda.is_available():
        lines += ["dry run (no CUDA device): with a GPU this runs every proxy on "
                  f"{len(cells) * 4} NB201 cells per setting with {', '.join(map(str, IN_FLIGHT))} architectures in "
                  "flight (threads, one CUDA stream each, pinned batch) and prints architectures/s and GPU "
                  "utilisation (nvidia-smi) per setting"]
        return "\n".join(lines)
    lines.append(f"measured on {torch.cuda.get_device_name()}:")
    _measure(cells[:1], 1)  # warm-up: CUDA context, kernels, vmap setup
    for n in IN_FLIGHT:
        rate, busy = _measure(cells * 4, n)
        lines.append(f"  {n} in flight: {rate:.2f} architectures/s, GPU utilisation {busy:.0f}%")
    return "\n".join(lines)
