"""One split of the cache: items → bytes where they lie → decoded S×S uint8 rows, packed in item order.

A reader hands out batches in the order it reads best (``audit.data.tree.Reader``): in item order
from folders, zips and plain tars, whose bytes the worker threads read by offset while they decode;
in stream order from a compressed tar. Each decoded image is written at its item's row. Once every
item of a run of ``CHUNK`` is in, that run's good rows move down over the holes its bad images left
and go to the statistics, run by run in item order, whatever the read order. So a folder, a zip and
a tar of the same images give the same bytes and the same statistics, bit for bit.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from audit.data.preprocess import preprocess_buffers, resize_centre_crop
from audit.data.sources import Item, Listing
from audit.data.stats import StatsAccumulator

CHUNK = 256  # images per decode task, and per packing run
Decoded = tuple[list[int], torch.Tensor, list[int]]  # (positions, good images in position order, bad positions)


def _decode(load: Callable[[], list[bytearray | None]], positions: list[int], size: int) -> Decoded:
    x, bad = preprocess_buffers(load(), size)
    return positions, x, [positions[i] for i in bad]


def decoded(listing: Listing, items: list[Item], size: int) -> Iterator[Decoded]:
    """The items decoded and resized, batch by batch, in the reader's order."""
    if listing.arrays is not None:
        pixels = listing.arrays()
        for start in range(0, len(items), CHUNK):
            idx = [it.index for it in items[start:start + CHUNK]]
            x = resize_centre_crop(torch.from_numpy(np.ascontiguousarray(pixels[idx])), size)
            yield list(range(start, start + len(idx))), x, []
        return
    assert listing.tree is not None
    names = [it.name for it in items]
    workers = max(1, min(8, os.cpu_count() or 1))
    with listing.tree.reader() as reader, ThreadPoolExecutor(workers) as pool:
        pending: deque[Future[Decoded]] = deque()
        for positions, load in reader.batches(names, CHUNK):
            pending.append(pool.submit(_decode, load, positions, size))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def write_split(listing: Listing, items: list[Item], size: int, path: Path, advance: Callable[[int], None],
                acc: StatsAccumulator | None) -> tuple[np.ndarray, list[str]]:
    """Write the split's good images to ``path`` (raw uint8 [n_good, 3, S, S]); (labels, bad names)."""
    n = len(items)
    out = np.memmap(path, dtype=np.uint8, mode="w+", shape=(max(n, 1), 3, size, size))
    bad, done = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    labels: list[int] = []
    bad_names: list[str] = []
    cursor = packed = 0  # rows written so far; items whose run has been packed
    for positions, x, bad_pos in decoded(listing, items, size):
        skip = set(bad_pos)
        good = np.array([p for p in positions if p not in skip], dtype=np.int64)
        if len(good) and good[-1] - good[0] == len(good) - 1:
            out[good[0]:good[-1] + 1] = x.numpy()
        elif len(good):
            out[good] = x.numpy()
        bad[bad_pos] = True
        done[positions] = True
        advance(len(positions))
        while packed < n and done[packed:min(n, packed + CHUNK)].all():
            end = min(n, packed + CHUNK)
            rows = packed + np.flatnonzero(~bad[packed:end])
            if cursor == packed and len(rows) == end - packed:
                block = out[packed:end]  # nothing to move
            else:
                block = out[rows]
                out[cursor:cursor + len(rows)] = block
            if acc is not None and len(rows):
                acc.update(torch.from_numpy(np.asarray(block)))
            labels += [items[r].label for r in rows]
            bad_names += [items[p].name for p in range(packed, end) if bad[p]]
            cursor += len(rows)
            packed = end
    if packed < n:
        raise RuntimeError(f"{listing.where}: the reader left {n - packed} images unread")  # a bug, not the user's
    out.flush()
    del out
    os.truncate(path, cursor * 3 * size * size)  # bad files leave no holes: good images are packed
    return np.asarray(labels, dtype=np.int64), bad_names
