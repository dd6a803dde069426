"""Keep large CPU tensors on the heap, so every training step does not pay for fresh pages.

glibc's malloc serves every block over 32 MB (its largest mmap threshold) with a fresh ``mmap``
and returns it to the kernel on ``free``; it also trims the heap top whenever more than twice the
threshold is free. A training step allocates and frees the same large activations every time
(AlexNet at 224 px, batch 32: conv1's maps are 37 MB), so each step page-faults them in again:
measured with ``bench/train.py --allocator both``, that cost our AlexNet a third of its
throughput and torchvision's about a tenth on this CPU.

``keep_freed_memory()`` tells malloc to serve large blocks from the heap and keep freed memory for
reuse (``mallopt``: no mmap, trim threshold 1 GB, top pad 256 MB) — what the environment variables
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...`` would do, but from inside the process. The
function computed is unchanged; the price is that the process keeps its peak memory until it exits.
Only glibc has ``mallopt``; elsewhere (macOS, musl) this does nothing. ``AUDIT_KEEP_FREED_MEMORY=0``
turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
TRIM_THRESHOLD_BYTES = 1 << 30
TOP_PAD_BYTES = 256 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Tune glibc malloc for repeated large allocations (once per process); True if it applied."""
    if os.environ.get("AUDIT_KEEP_FREED_MEMORY", "1") == "0":
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = [mallopt(M_MMAP_MAX, 0), mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES), mallopt(M_TOP_PAD, TOP_PAD_BYTES)]
    return all(done)
