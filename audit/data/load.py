"""``load_dataset``: config → listing → subset → cache entry → ``Dataset``, the one entry point."""

from __future__ import annotations

import os
from pathlib import Path

from audit.config import DataConfig
from audit.data.cache import open_or_build
from audit.data.cifar import LAYOUTS, list_cifar_python
from audit.data.dataset import Dataset, Split, stored_size
from audit.data.sources import Listing, existing_dir, is_image, list_ilsvrc2012, list_imagefolder
from audit.data.subset import apply_subset
from audit.data.synthetic import list_synthetic


def detect_source(path: str) -> str:
    """The layout of a data folder, for ``--data PATH``: cifar_python (python batches), ilsvrc2012
    (train/ plus a flat val/ of images) or imagefolder (anything else; it reports what it misses)."""
    root = existing_dir(path)
    for folder, layout in LAYOUTS.items():
        if (root / layout[2]).is_file() or (root / folder / layout[2]).is_file():
            return "cifar_python"
    val = root / "val"
    if (root / "train").is_dir() and val.is_dir() and any(is_image(e.name) for e in os.scandir(val)):
        return "ilsvrc2012"
    return "imagefolder"


def resolve_listing(cfg: DataConfig) -> Listing:
    """The source's classes and items, before any subset."""
    if cfg.source == "synthetic":
        return list_synthetic(cfg.synthetic)
    if cfg.source == "imagefolder":
        return list_imagefolder(cfg.path)
    if cfg.source == "ilsvrc2012":
        return list_ilsvrc2012(cfg.path)
    return list_cifar_python(cfg.path)


def load_dataset(cfg: DataConfig, cache_dir: Path, input_size: int | None = None) -> Dataset:
    """Build (once) or open the cached data set; DataError (naming the path) on user mistakes.

    ``input_size`` is the model's input size; it sets the stored size S when neither ``data.resize``
    nor ``data.crop`` does (rules in ``audit.data.dataset``).
    """
    size = stored_size(cfg, input_size)
    listing = apply_subset(resolve_listing(cfg), cfg)
    entry = open_or_build(listing, size, Path(cache_dir), cfg.max_bad_fraction)
    return Dataset(
        name=listing.name,
        train=Split(entry.x["train"], entry.y["train"]),
        val=Split(entry.x["val"], entry.y["val"]),
        classes=list(entry.meta["classes"]),
        fingerprint=entry.meta["fingerprint"],
        manifest_path=entry.path / "manifest.csv",
        bad_files=list(entry.meta["bad_files"]),
        mean_image=entry.stats["mean_image"],
        channel_std=entry.stats["channel_std"],
        pca_eigvals=entry.stats["pca_eigvals"],
        pca_eigvecs=entry.stats["pca_eigvecs"],
        cache_dir=entry.path,
    )
