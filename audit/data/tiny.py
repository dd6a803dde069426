"""Tiny ImageNet as released (``tiny-imagenet-200.zip`` and subsets of it), as a folder or its zip.

    ROOT/wnids.txt                         the classes, one wnid per line
    ROOT/words.txt                         wnid<TAB>readable names (WordNet's list; may hold more wnids)
    ROOT/train/<wnid>/images/<wnid>_<i>.JPEG   (+ <wnid>_boxes.txt, ignored)
    ROOT/val/images/val_<i>.JPEG
    ROOT/val/val_annotations.txt           val_<i>.JPEG<TAB>wnid<TAB>box…
    ROOT/test/images/…                     unlabelled: ignored

Classes are the wnids of wnids.txt, sorted (as ImageFolder sorts them) and relabelled 0..N−1; class
names come from words.txt. Items are named as in the release (``train/<wnid>/images/…``,
``val/images/…``), so a folder and its zip give the same fingerprint.
"""

from __future__ import annotations

import logging

from audit.data.errors import DataError
from audit.data.labels import class_names, match, pairs
from audit.data.sources import Item, Listing, as_tree, check_nonempty
from audit.data.tree import Tree, join

log = logging.getLogger(__name__)

ANNOTATIONS = "val/val_annotations.txt"


def is_tiny_imagenet(tree: Tree) -> bool:
    return tree.is_file("wnids.txt") and tree.is_file(ANNOTATIONS) and tree.is_dir("train")


def _wnids(tree: Tree) -> list[str]:
    wnids = [ln.split()[0] for ln in tree.read_text("wnids.txt").splitlines() if ln.strip()]
    if not wnids:
        raise DataError(f"{tree.describe('wnids.txt')}: lists no classes")
    if len(set(wnids)) != len(wnids):
        raise DataError(f"{tree.describe('wnids.txt')}: lists a class twice")
    return sorted(wnids)


def list_tiny_imagenet(path: str | Tree | None) -> Listing:
    """The Tiny ImageNet layout; a DataError naming the file (or archive member) that does not fit."""
    tree = as_tree(path)
    classes = _wnids(tree)
    index = {c: i for i, c in enumerate(classes)}
    train: list[Item] = []
    for wnid in classes:
        files = tree.images_under(join("train", wnid))
        if not files:
            raise DataError(f"{tree.describe(join('train', wnid))}: no training images for {wnid}, listed in "
                            f"{tree.describe('wnids.txt')}")
        train.extend(Item(n, index[wnid], b) for n, b in files)
    extra = [d for d in tree.scan("train")[0] if d not in index]
    if extra:
        log.warning("%s: %d class folders not in wnids.txt ignored (%s …)", tree.describe("train"), len(extra),
                    extra[0])
    images = tree.images_under("val/images")
    names = [n.rpartition("/")[2] for n, _ in images]
    where = tree.describe(ANNOTATIONS)
    wnids = match(pairs(tree, ANNOTATIONS), names, where)
    unknown = sorted({w for w in wnids if w not in index})
    if unknown:
        raise DataError(f"{where}: labels val images with {unknown[0]}, which is not in wnids.txt")
    val = [Item(n, index[w], b) for (n, b), w in zip(images, wnids, strict=True)]
    items = {"train": train, "val": val}
    check_nonempty(items, tree)
    return Listing("tiny_imagenet", f"tiny_imagenet:{tree.name}", tree.path, classes, items, tree=tree,
                   class_names=class_names(tree, classes, [""]))
