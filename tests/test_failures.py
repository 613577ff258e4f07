"""Per-architecture failures become row statuses: out of memory (retried on a split batch), timeouts."""
from __future__ import annotations

import os
import time

import pytest
import torch
from torch import nn

from zsdist.data import Batch
from zsdist.limits import ArchTimeout, time_limit
from zsdist.proxies import get_proxy
from zsdist.proxies.evaluate import evaluate
from zsdist.shard import evaluate_with_splits

RAM = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class Hungry(nn.Module):
    """Reserves RAM/3 bytes per sample: a batch of 8 or 4 cannot be allocated, a batch of 2 can."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.empty(x.shape[0] * (RAM // 3), dtype=torch.uint8)  # a real allocation request
        return x


class Slow(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(5)
        return x


def _batch(n: int) -> Batch:
    torch.manual_seed(0)
    return Batch(torch.randn(n, 6), torch.zeros(n, dtype=torch.long))


def test_out_of_memory_is_retried_on_a_split_batch():
    build = lambda: nn.Sequential(Hungry(), nn.ReLU(), nn.Linear(6, 2))
    (whole,) = evaluate(build, _batch(8), [get_proxy("naswot")], seed=0)
    assert whole.status == "oom" and "allocate" in whole.error
    (result, split), (params, params_split) = evaluate_with_splits(
        build, _batch(8), [get_proxy("naswot"), get_proxy("params")], seed=0, device="cpu")
    assert (result.status, split) == ("ok", 4) and result.value is not None
    assert (params.status, params_split) == ("ok", 1)


def test_a_slow_architecture_times_out_without_swallowing_the_limit():
    start = time.monotonic()
    with pytest.raises(ArchTimeout, match="0.5 s limit"):
        with time_limit(0.5):
            evaluate(lambda: nn.Sequential(Slow(), nn.ReLU(), nn.Linear(6, 2)), _batch(4), [get_proxy("naswot")], 0)
    assert time.monotonic() - start < 4
