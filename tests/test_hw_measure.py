"""Measured latency on this machine's CPU: timing statistics, row contents, failures as rows."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from hw_models.measure import cpu_name, measure
from zsdist.errors import ZsdistError
from zsdist.hardware import DEVICES, latency_rows


def tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 10))


def test_measure_reports_median_spread_and_restores_threads():
    before = torch.get_num_threads()
    timing = measure(tiny(), torch.randn(1, 3, 32, 32), "cpu", warmup=2, repeats=7, threads=1)
    assert timing.median_ms > 0 and timing.spread_ms >= 0
    assert (timing.repeats, timing.warmup, timing.threads, timing.batch_size) == (7, 2, 1, 1)
    assert timing.dtype == "float32" and timing.device_name == cpu_name() and timing.device_name
    assert torch.get_num_threads() == before


def test_larger_work_takes_longer():
    """A network with ~100× the multiply-adds must time slower: the clock measures the forward pass."""
    small = measure(tiny(), torch.randn(1, 3, 32, 32), warmup=2, repeats=9)
    big = nn.Sequential(*[nn.Conv2d(64 if i else 3, 64, 3, padding=1) for i in range(4)])
    large = measure(big, torch.randn(1, 3, 32, 32), warmup=2, repeats=9)
    assert large.median_ms > small.median_ms


def test_cpu_row_has_the_latency_schema_and_records_what_affects_the_number():
    from zsdist.store import SCHEMAS

    rows = latency_rows("toy", 0, "tiny", "cifar10", tiny, ["cpu"], batch_size=2)
    assert set(rows[0]) == set(SCHEMAS["latency"].names)
    row = rows[0]
    assert row["status"] == "ok" and row["source"] == "measured" and row["latency_ms"] > 0
    assert row["batch_size"] == 2 and row["energy_mj"] is None
    details = json.loads(row["details"])
    assert {"device_name", "threads", "repeats", "warmup", "dtype", "spread_ms"} <= set(details)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error row of a machine without CUDA")
def test_cuda_without_a_gpu_is_an_error_row_not_an_exception():
    rows = latency_rows("toy", 0, "tiny", "cifar10", tiny, ["cuda", "cpu"])
    assert rows[0]["status"] == "error" and "CUDA" in rows[0]["error"] and rows[0]["latency_ms"] is None
    assert rows[1]["status"] == "ok"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_row_names_the_gpu():
    row = latency_rows("toy", 0, "tiny", "cifar10", tiny, ["cuda"])[0]
    assert row["status"] == "ok" and json.loads(row["details"])["device_name"] == torch.cuda.get_device_name(0)


def test_unknown_device_suggests_the_closest():
    with pytest.raises(ZsdistError, match="did you mean 'raspi4'"):
        DEVICES.get("raspi")


def test_interleaved_timing_gives_each_network_its_median():
    from zsdist.bench.latency import interleaved_ms

    x = torch.randn(1, 3, 32, 32)
    small, large = nn.Conv2d(3, 4, 3), nn.Sequential(nn.Conv2d(3, 64, 3), nn.Conv2d(64, 64, 3))
    ms = interleaved_ms([(small, x), (large, x)], rounds=3, runs=3)
    assert ms.shape == (2,) and 0 < ms[0] < ms[1]
