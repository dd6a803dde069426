"""Data layouts → a ``Listing``: class names and (file, label) items per split.

Listing is cheap (names and sizes only, no decoding), so it runs on every load: its manifest is what
the fingerprint hashes, and the cache is only rebuilt when the files change. Every layout is read
from a ``Tree`` (``audit.data.tree``): a folder, a zip or tar read in place (``audit.data.archive``),
or a folder holding one archive per split. Item names are relative to the data root, so the same
images give the same manifest, and the same fingerprint, from a folder or from an archive of it.

- ``imagefolder``: ``ROOT/train/<class>/…`` and ``ROOT/val/<class>/…`` (or ``test/`` when there is no
  ``val/``). Class folders may nest images in sub-folders; non-image files and hidden files are ignored.
- ``ilsvrc2012``: ``ROOT/train/<wnid>/*.JPEG`` and ``ROOT/val/``, either already sorted into
  ``val/<wnid>/`` folders or flat (``ILSVRC2012_val_00000001.JPEG`` …) with labels from a label file
  (``audit.data.labels``). Val images whose wnid has no ``train/`` folder are dropped with a warning
  (a train subset with the full val set); val images without a label are an error. As distributed,
  ``ILSVRC2012_img_train.tar`` (a tar of per-class tars) and ``ILSVRC2012_img_val.tar`` (a flat tar)
  are read in place from the folder that holds them both and the val labels: a labels file beside
  them or inside the val tar, or ``ILSVRC2012_devkit_t12.tar.gz`` (its ground truth and meta.mat).
- ``tiny_imagenet``: ``audit.data.tiny``; ``cifar_python``: ``audit.data.cifar``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from audit.data.errors import DataError
from audit.data.labels import class_names, val_wnids
from audit.data.tree import IMAGE_EXTS, Tree, is_image, join, open_tree

log = logging.getLogger(__name__)

SPLITS = ("train", "val")
__all__ = ["IMAGE_EXTS", "SPLITS", "Item", "Listing", "is_image", "list_ilsvrc2012", "list_imagefolder"]


@dataclass(frozen=True)
class Item:
    """One image: a name relative to the root (or a synthetic id), its label and its size in bytes."""

    name: str
    label: int
    nbytes: int = 0
    index: int = -1  # row in ``Listing.arrays()`` for array-backed sources


@dataclass(frozen=True)
class Listing:
    """A resolved source: classes, items per split, and how to get the pixels."""

    source: str
    name: str
    root: Path | None  # the folder or archive on disk
    classes: list[str]
    items: dict[str, list[Item]]
    arrays: Callable[[], np.ndarray] | None = None  # uint8 [N, 3, h, w] for array-backed sources
    extra: str = ""  # more fingerprint material (e.g. the generator's config)
    notes: list[str] = field(default_factory=list)
    tree: Tree | None = None  # where file-backed items are read from
    class_names: dict[str, str] = field(default_factory=dict)  # class → readable name, where one is known

    @property
    def where(self) -> str:
        """The data set's location for messages: a folder, an archive or ``archive:root/``."""
        return self.tree.describe("") if self.tree else str(self.root or self.name)

    def with_items(self, classes: list[str], items: dict[str, list[Item]], note: str | None) -> Listing:
        return replace(self, classes=classes, items=items, notes=self.notes + ([note] if note else []))


def as_tree(path: str | Tree | None) -> Tree:
    return path if isinstance(path, Tree) else open_tree(path)


def _class_items(tree: Tree, split: str, names: list[str], index: dict[str, int]) -> list[Item]:
    items: list[Item] = []
    for cls in names:
        files = tree.images_under(join(split, cls))
        if not files:
            raise DataError(f"{tree.describe(join(split, cls))}: empty class folder (no images)")
        items.extend(Item(n, index[cls], b) for n, b in files)
    return items


def _train_classes(tree: Tree) -> list[str]:
    if not tree.is_dir("train"):
        raise DataError(f"{tree.describe()}: expected a train/ folder of class folders (and val/ or test/)")
    classes = tree.scan("train")[0]
    if not classes:
        raise DataError(f"{tree.describe('train')}: no class folders")
    return classes


def _folder_val(tree: Tree, val: str, classes: list[str]) -> list[Item]:
    index = {c: i for i, c in enumerate(classes)}
    names = tree.scan(val)[0]
    unknown = [n for n in names if n not in index]
    if unknown:
        raise DataError(f"{tree.describe(join(val, unknown[0]))}: class folder has no counterpart in "
                        f"{tree.describe('train')}")
    return _class_items(tree, val, names, index)


def check_nonempty(items: dict[str, list[Item]], tree: Tree) -> None:
    for split in SPLITS:
        if not items[split]:
            raise DataError(f"{tree.describe()}: the {split} split has no images")


def list_imagefolder(path: str | Tree | None) -> Listing:
    """An ImageFolder tree: train/ and val/ (or test/) folders of class folders."""
    tree = as_tree(path)
    classes = _train_classes(tree)
    val = next((v for v in ("val", "test") if tree.is_dir(v)), None)
    if val is None:
        raise DataError(f"{tree.describe()}: expected a val/ or test/ folder of class folders beside train/")
    index = {c: i for i, c in enumerate(classes)}
    items = {"train": _class_items(tree, "train", classes, index), "val": _folder_val(tree, val, classes)}
    check_nonempty(items, tree)
    return Listing("imagefolder", f"imagefolder:{tree.name}", tree.path, classes, items, tree=tree)


def _flat_val(tree: Tree, classes: list[str], files: list[tuple[str, int]]) -> list[Item]:
    if not files:
        raise DataError(f"{tree.describe('val')}: the val split has no images")
    wnids = val_wnids(tree, [f for f, _ in files])
    index = {c: i for i, c in enumerate(classes)}
    items = [Item(f"val/{f}", index[w], b) for (f, b), w in zip(files, wnids, strict=True) if w in index]
    if len(items) < len(files):
        log.warning("%s: %d val images belong to classes without a train/ folder; skipped",
                    tree.describe("val"), len(files) - len(items))
    return items


def list_ilsvrc2012(path: str | Tree | None) -> Listing:
    """The ILSVRC-2012 layout: train/<wnid>/ plus a flat (or sorted) val/ folder."""
    tree = as_tree(path)
    classes = _train_classes(tree)
    if not tree.is_dir("val"):
        raise DataError(f"{tree.describe()}: expected a val/ folder beside train/")
    index = {c: i for i, c in enumerate(classes)}
    sub, files = tree.scan("val")
    flat = [(f, b) for f, b in files if is_image(f)]
    val_items = _folder_val(tree, "val", classes) if sub and not flat else _flat_val(tree, classes, flat)
    items = {"train": _class_items(tree, "train", classes, index), "val": val_items}
    check_nonempty(items, tree)
    return Listing("ilsvrc2012", f"ilsvrc2012:{tree.name}", tree.path, classes, items, tree=tree,
                   class_names=class_names(tree, classes))
