"""Measured latency on the worker's own CPU or GPU: warm-up, repeated timed runs, median and spread.

Ray-level exclusivity (one timing task per device) is the runner's job; here the timing itself is made stable:
a fixed thread count, eval mode without autograd, and CUDA events with synchronisation on GPUs.
"""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

WARMUP = 10
REPEATS = 50
THREADS = 1


@dataclass(frozen=True)
class Timing:
    median_ms: float
    spread_ms: float  # interquartile range of the timed runs
    repeats: int
    warmup: int
    threads: int
    batch_size: int
    dtype: str
    device: str
    device_name: str


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (platform.processor() is often empty on Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(model: nn.Module, inputs: torch.Tensor, device: str = "cpu", warmup: int = WARMUP,
            repeats: int = REPEATS, threads: int = THREADS, dtype: torch.dtype = torch.float32) -> Timing:
    """Time `repeats` forward passes of `inputs` after `warmup` untimed ones; the model is left in eval mode."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be ≥ 1 and warmup ≥ 0 (got {repeats}, {warmup})")
    target = torch.device(device)
    cuda = target.type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise RuntimeError(f"device '{device}' asked for but CUDA is not available")
    model = model.to(target, dtype).eval()
    inputs = inputs.to(target, dtype)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(inputs)
            times = _time_cuda(model, inputs, repeats) if cuda else _time_cpu(model, inputs, repeats)
    finally:
        torch.set_num_threads(previous)
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    name = torch.cuda.get_device_name(target) if cuda else cpu_name()
    return Timing(float(median), float(q3 - q1), repeats, warmup, threads, int(inputs.shape[0]),
                  str(dtype).removeprefix("torch."), str(target), name)


def _time_cpu(model: nn.Module, inputs: torch.Tensor, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(inputs)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def _time_cuda(model: nn.Module, inputs: torch.Tensor, repeats: int) -> list[float]:
    """One request at a time: each run is bracketed by events and waited for, so runs never overlap."""
    times = []
    torch.cuda.synchronize(inputs.device)
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        model(inputs)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times
