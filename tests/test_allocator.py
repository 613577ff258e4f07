"""The allocator policy keeps freed feature maps in the process: repeated passes stop paying page faults."""
from __future__ import annotations

import subprocess
import sys

import pytest

# Passes as PyTorch runs them: a pass's maps (20 × 4 MiB, touched) allocated, then all freed at its end. The
# faults of the later passes are what the policy removes; the first two (the heap growing to the working set)
# fault either way.
PASSES = """
import resource, sys, torch
from zsdist.allocator import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == "policy" else None
def one_pass():
    maps = [torch.ones(64, 16, 32, 32) for _ in range(20)]
    del maps
one_pass()
one_pass()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    one_pass()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PASSES, mode], capture_output=True, text=True, check=True).stdout
    applied, faults = out.split()
    return applied, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the policy is glibc's mallopt")
def test_freed_maps_are_reused_without_page_faults():
    default_applied, default = _faults("default")
    applied, with_policy = _faults("policy")
    assert (default_applied, applied) == ("None", "True")
    assert default >= 5 * 256  # glibc hands freed maps back: each later pass faults megabytes in again
    assert with_policy <= default // 20
