"""Run small, memory-bound CPU tensor ops (batch gathers, augmentation) on one thread.

Why: on this 2-core machine, shared with other processes, torch's intra-op threads made a 128-image
gather or crop 5–15× slower than one thread (each op waits for a descheduled peer thread). One thread
already moves 30–50k images/s, far above what any model here trains at. GPU work is left alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def single_thread(device: torch.device | str = "cpu") -> Iterator[None]:
    """Set torch's CPU threads to 1 for the block (restored after); no-op for other devices."""
    if torch.device(device).type != "cpu":
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
