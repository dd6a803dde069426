"""The preprocessed-image cache: built once per (manifest, S), memory-mapped by every run afterwards.

An entry is a folder ``<cache_dir>/<name>-S<S>-<fingerprint>/`` holding

- ``{train,val}_x.u8``: raw uint8 arrays [N, 3, S, S] (memory-mapped copy-on-write when opened),
- ``{train,val}_y.npy``: int64 labels, ``stats.npz``: mean image, channel std, RGB PCA of train,
- ``manifest.csv`` (split,file,label,class,bytes — the MLflow artifact), ``meta.json``, ``bad_files.log``.

Why this way: decoding is the slow part (ImageFolder + PIL decodes every image every epoch); the
fingerprint hashes the manifest (names, labels, byte sizes), S and the preprocessing version, so a
changed file or subset gets a new entry, never a stale one. Names are relative to the data root, so
a zip or tar read in place and the folder it was made from share one entry. Builds are written into
a temporary folder and renamed into place (an interrupted build leaves no half entry), under a file
lock so concurrent runs build once and then share the same pages.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from audit.data.errors import DataError
from audit.data.pipeline import write_split
from audit.data.sources import SPLITS, Listing
from audit.data.stats import StatsAccumulator
from audit.data.threads import single_thread

log = logging.getLogger(__name__)

PREPROCESS_VERSION = 1


def manifest_csv(listing: Listing) -> str:
    """The manifest: one row per image, relative names, labels, class names, byte sizes."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["split", "file", "label", "class", "bytes"])
    for split in SPLITS:
        for it in listing.items[split]:
            w.writerow([split, it.name, it.label, listing.classes[it.label], it.nbytes])
    return buf.getvalue()


def fingerprint(listing: Listing, size: int, manifest: str) -> str:
    """Hash of the manifest (files, labels, sizes), S, the source's extra material and our version."""
    head = f"preprocess={PREPROCESS_VERSION}\nsource={listing.source}\nS={size}\n{listing.extra}\n"
    return hashlib.sha256((head + manifest).encode()).hexdigest()[:16]


def content_fingerprint(listing: Listing) -> str:
    """Hash of a whole source's manifest (names relative to its root, labels, sizes): the data by content.

    Where the data lie does not enter it, so a moved folder, or a zip of it, has the same fingerprint.
    """
    head = f"source={listing.source}\n{listing.extra}\n"
    return hashlib.sha256((head + manifest_csv(listing)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Entry:
    """An opened cache entry."""

    path: Path
    meta: dict
    x: dict[str, torch.Tensor]
    y: dict[str, torch.Tensor]
    stats: dict[str, torch.Tensor]


def entry_path(cache_dir: Path, listing: Listing, size: int, fp: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", listing.name).strip("-") or "data"
    return cache_dir / f"{slug}-S{size}-{fp}"


def _open(path: Path) -> Entry:
    meta = json.loads((path / "meta.json").read_text())
    s = meta["size"]
    x, y = {}, {}
    for split in SPLITS:
        n = meta["counts"][split]
        arr = np.memmap(path / f"{split}_x.u8", dtype=np.uint8, mode="c", shape=(n, 3, s, s))
        x[split] = torch.from_numpy(arr)
        y[split] = torch.from_numpy(np.load(path / f"{split}_y.npy"))
    with np.load(path / "stats.npz") as z:
        stats = {k: torch.from_numpy(z[k].astype(np.float32)) for k in z.files}
    return Entry(path, meta, x, y, stats)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # no POSIX locks (Windows): concurrent builds just race to os.replace
        yield
        return
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal; silence elsewhere (CI logs, workers) and under ``audit run``'s
    live view, which a second display would garble."""
    from audit import events

    if not sys.stderr.isatty() or events.has_sink():
        yield lambda n: None
        return
    try:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
    except ImportError:
        yield lambda n: None
        return
    cols = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn())
    with Progress(*cols, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _check_bad(listing: Listing, split: str, bad: list[str], n_good: int, max_bad: float,
               log_path: Path) -> None:
    total = len(listing.items[split])
    if n_good and len(bad) <= max_bad * total:
        return
    log_path.write_text("".join(f"{split}\t{b}\n" for b in bad))
    first = f" (first: {listing.tree.describe(bad[0]) if listing.tree else bad[0]})" if bad else ""
    raise DataError(f"{listing.where}: {len(bad)} of {total} {split} images are unreadable{first} (more than "
                    f"data.max_bad_fraction = {max_bad:g}); they are listed in {log_path}")


def _build(listing: Listing, size: int, entry: Path, fp: str, manifest: str, max_bad: float) -> None:
    tmp = entry.parent / f".{entry.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    try:
        counts, bad_all = {}, []
        acc = StatsAccumulator(size)
        total = sum(len(listing.items[s]) for s in SPLITS)
        log.info("building the image cache %s (%d images at %dpx)", entry, total, size)
        with single_thread(), _progress(total, f"caching {listing.name} at {size}px") as advance:
            for split in SPLITS:
                labels, bad = write_split(listing, listing.items[split], size, tmp / f"{split}_x.u8", advance,
                                          acc if split == "train" else None)
                _check_bad(listing, split, bad, len(labels), max_bad,
                           entry.parent / f"{entry.name}.bad_files.log")
                np.save(tmp / f"{split}_y.npy", labels)
                counts[split] = len(labels)
                bad_all += [f"{split}\t{b}" for b in bad]
        np.savez(tmp / "stats.npz", **acc.result())
        (tmp / "manifest.csv").write_text(manifest)
        (tmp / "bad_files.log").write_text("".join(b + "\n" for b in bad_all))
        meta = {"version": PREPROCESS_VERSION, "name": listing.name, "source": listing.source,
                "root": listing.where if listing.root else None, "classes": listing.classes,
                "size": size, "counts": counts, "bad_files": [b.split("\t", 1)[1] for b in bad_all],
                "fingerprint": fp, "notes": listing.notes,
                "build_seconds": round(time.perf_counter() - t0, 2)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        os.replace(tmp, entry)  # atomic: the entry appears complete or not at all
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if bad_all:
        log.warning("%s: skipped %d unreadable images (listed in %s)", listing.where, len(bad_all),
                    entry / "bad_files.log")


def open_or_build(listing: Listing, size: int, cache_dir: Path, max_bad: float) -> Entry:
    """The cache entry for this listing at size S, built first if needed (once, under a lock)."""
    manifest = manifest_csv(listing)
    fp = fingerprint(listing, size, manifest)
    entry = entry_path(cache_dir, listing, size, fp)
    if not (entry / "meta.json").is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        with _locked(cache_dir / f".{entry.name}.lock"):
            if not (entry / "meta.json").is_file():
                for stale in cache_dir.glob(f".{entry.name}.tmp-*"):  # left by a killed build
                    shutil.rmtree(stale, ignore_errors=True)
                _build(listing, size, entry, fp, manifest, max_bad)
    return _open(entry)
