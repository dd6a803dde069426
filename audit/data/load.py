"""``load_dataset``: config → listing → subset → cache entry → ``Dataset``, the one entry point.

``data.path`` is a folder or an archive read in place (``audit.data.tree``, ``audit.data.archive``).
``source: embedded`` needs no path: it is the Tiny ImageNet slice shipped in ``audit/data/embedded/``
(800 real images of 10 classes, provenance in PROVENANCE.md beside it; ``bench/make_smoke_slice.py``
cuts it), read in place like any Tiny ImageNet zip, so a smoke run needs no download.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path

from audit.config import DataConfig
from audit.data.cache import content_fingerprint, open_or_build
from audit.data.cifar import cifar_folder, list_cifar_python
from audit.data.dataset import Dataset, Split, stored_size
from audit.data.errors import DataError
from audit.data.sources import Listing, list_ilsvrc2012, list_imagefolder
from audit.data.subset import apply_subset
from audit.data.synthetic import list_synthetic
from audit.data.tiny import is_tiny_imagenet, list_tiny_imagenet
from audit.data.tree import Tree, is_image, open_tree


def detect_layout(tree: Tree) -> str:
    """cifar_python (python batches), tiny_imagenet (wnids.txt, val/val_annotations.txt), ilsvrc2012
    (train/ plus a flat val/ of images) or imagefolder (anything else; it reports what it misses)."""
    if cifar_folder(tree) is not None:
        return "cifar_python"
    if is_tiny_imagenet(tree):
        return "tiny_imagenet"
    if tree.is_dir("train") and tree.is_dir("val") and any(is_image(f) for f, _ in tree.scan("val")[1]):
        return "ilsvrc2012"
    return "imagefolder"


def detect_source(path: str) -> str:
    """The layout of ``--data PATH``: a folder, a zip or a tar (compressed or not), read in place."""
    return detect_layout(open_tree(path))


EMBEDDED = Path(__file__).with_name("embedded") / "tiny-imagenet-smoke.zip"


def embedded_classes() -> int:
    """How many classes the embedded slice has (its wnids.txt)."""
    return len(open_tree(str(EMBEDDED)).read_text("wnids.txt").split())


LISTERS = {"imagefolder": list_imagefolder, "ilsvrc2012": list_ilsvrc2012, "tiny_imagenet": list_tiny_imagenet,
           "cifar_python": list_cifar_python, "embedded": list_tiny_imagenet}


def resolve_listing(cfg: DataConfig, cache_dir: Path | None = None) -> Listing:
    """The source's classes and items, before any subset; archive indexes are kept in the cache."""
    if cfg.source == "synthetic":
        return list_synthetic(cfg.synthetic)
    path = str(EMBEDDED) if cfg.source == "embedded" else cfg.path
    return LISTERS[cfg.source](open_tree(path, Path(cache_dir) / "archives" if cache_dir else None))


def check_listings(configs: Iterable[DataConfig], cache_dir: Path) -> None:
    """List every distinct data set (and subset) the configs read, without decoding a pixel.

    Why: a layout or labels mistake (a labels file naming images that are not in the archive, a class
    with no images) is then one DataError naming the file or archive member before anything trains,
    not a failed run after others have trained. Generated sets have nothing to check.
    """
    seen: set[str] = set()
    for cfg in configs:
        key = cfg.model_dump_json(include={"source", "path", "classes", "images_per_class",
                                           "val_images_per_class", "subset_seed"})
        if cfg.source != "synthetic" and key not in seen:
            seen.add(key)
            apply_subset(resolve_listing(cfg, cache_dir), cfg)


@functools.lru_cache(maxsize=64)
def source_fingerprint(source: str, path: str) -> str:
    """The content fingerprint of the data at ``path`` (what a run's identity holds instead of the path).

    Listing reads names and sizes only (no image is decoded; an archive's index is read once per
    process), and is memoised per process: a plan asks once per data set, not once per run.
    """
    return content_fingerprint(resolve_listing(DataConfig(source=source, path=path)))


def load_dataset(cfg: DataConfig, cache_dir: Path, input_size: int | None = None) -> Dataset:
    """Build (once) or open the cached data set; DataError (naming the path) on user mistakes.

    ``input_size`` is the model's input size; it sets the stored size S when neither ``data.resize``
    nor ``data.crop`` does (rules in ``audit.data.dataset``).
    """
    size = stored_size(cfg, input_size)
    whole = resolve_listing(cfg, cache_dir)
    if cfg.fingerprint and content_fingerprint(whole) != cfg.fingerprint:
        raise DataError(f"{whole.where}: the data changed since the run was planned (fingerprint "
                        f"{content_fingerprint(whole)}, planned {cfg.fingerprint}): plan the run again")
    listing = apply_subset(whole, cfg)
    entry = open_or_build(listing, size, Path(cache_dir), cfg.max_bad_fraction)
    classes = list(entry.meta["classes"])
    return Dataset(
        name=listing.name,
        train=Split(entry.x["train"], entry.y["train"]),
        val=Split(entry.x["val"], entry.y["val"]),
        classes=classes,
        fingerprint=entry.meta["fingerprint"],
        manifest_path=entry.path / "manifest.csv",
        bad_files=list(entry.meta["bad_files"]),
        mean_image=entry.stats["mean_image"],
        channel_std=entry.stats["channel_std"],
        pca_eigvals=entry.stats["pca_eigvals"],
        pca_eigvecs=entry.stats["pca_eigvecs"],
        cache_dir=entry.path,
        class_names={c: listing.class_names.get(c, c) for c in classes},
    )
