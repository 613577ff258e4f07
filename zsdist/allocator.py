"""The host allocator's policy where proxies are computed: freed feature maps stay in the process for the next pass.

glibc's malloc serves large blocks from fresh memory mappings and hands back to the kernel what is freed at the
top of its heap once that exceeds the trim threshold (twice the mmap threshold, which it raises on the fly only up
to the largest block freed so far). PyTorch allocates every feature map of every pass anew and frees it when the
pass ends, so each pass of each architecture pays the kernel's page faults and page zeroing again: 11,000 to
140,000 minor faults per NB201 cell of the survey's 8 proxies, a sixth to a third of their time on the smallest
cells (docs/proxies.md). Raising the mmap threshold to glibc's maximum and the trim threshold above a cell's
working set keeps those pages for the next pass. Numbers do not change: only where their bytes live. The price:
a worker holds on to up to TRIM_THRESHOLD of memory it freed, which its next architecture's passes reuse.
"""
from __future__ import annotations

import ctypes
import functools
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit: blocks up to this size come from the heap
TRIM_THRESHOLD = 1 << 30  # freed memory at the heap's top beyond this goes back to the kernel
TOP_PAD = 64 << 20  # the heap grows in steps of at least this, so a growing working set faults less often


@functools.cache
def retain_freed_memory() -> bool:
    """Apply the policy to this process (once; later calls are free). False where malloc is not glibc's (macOS,
    musl): there is nothing to set and nothing changes."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    settings = ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_TOP_PAD, TOP_PAD))
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)
