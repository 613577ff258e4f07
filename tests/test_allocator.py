"""The allocator policy keeps freed feature maps in the process: repeated passes stop paying page faults."""
from __future__ import annotations

import subprocess
import sys

import pytest

# In a fresh process: where glibc puts a new 16 MiB map (`mallinfo2().hblkhd`: bytes in mmapped blocks), then the
# minor faults of 5 passes after 2 warm-up ones, each pass allocating 20 maps of 4 MiB, touching and freeing them.
PASSES = """
import ctypes, resource, sys, torch
from zsdist.allocator import retain_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
mallinfo2.restype = MallInfo2
applied = retain_freed_memory() if sys.argv[1] == "policy" else None
mapped = mallinfo2().hblkhd
feature_map = torch.ones(4 << 20)
mapped = mallinfo2().hblkhd - mapped
del feature_map

def one_pass():
    maps = [torch.ones(64, 16, 32, 32) for _ in range(20)]
    del maps

one_pass()
one_pass()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    one_pass()
print(applied, mapped, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
PAGES = 5 * 20 * (4 << 20) // 4096  # every page the measured passes touch


def _run(mode: str) -> tuple[str, int, int]:
    out = subprocess.run([sys.executable, "-c", PASSES, mode], capture_output=True, text=True, check=True).stdout
    applied, mapped, faults = out.split()
    return applied, int(mapped), int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the policy is glibc's mallopt")
def test_freed_maps_stay_in_the_heap_and_later_passes_do_not_fault():
    applied, mapped, _ = _run("default")
    assert applied == "None" and mapped >= 16 << 20  # glibc maps a large block of its own, unmapped when freed
    applied, mapped, faults = _run("policy")
    assert applied == "True" and mapped == 0  # from the heap, which keeps what is freed
    assert faults <= PAGES // 50
