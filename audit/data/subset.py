"""Deterministic subsets: which classes, and which images per class, from ``data.subset_seed``.

- ``classes: N`` → N classes drawn without replacement from the sorted class list by a RNG seeded with
  the subset seed; ``classes: [names or wnids]`` → exactly those. Either way the chosen classes are
  sorted by name and relabelled 0..N−1, so the same subset always gets the same labels.
- ``images_per_class`` / ``val_images_per_class``: each class draws its images independently (a RNG
  seeded by seed, split and class name) from its sorted file list, kept in file order. A class's
  images therefore do not change when other classes are added or removed. Classes with fewer images
  keep all they have.

Same seed → identical subset; another seed → a different one (unless a count covers everything).
"""

from __future__ import annotations

import random

from audit.config import DataConfig
from audit.data.errors import DataError
from audit.data.sources import Item, Listing


def _rng(*key: object) -> random.Random:
    # str seeds are hashed with SHA-512 by random.seed: stable across processes and Python versions
    return random.Random(":".join(str(k) for k in key))


def choose_classes(classes: list[str], want: int | list[str] | None, seed: int, where: str) -> list[str]:
    """The chosen class names, sorted."""
    if want is None:
        return list(classes)
    if isinstance(want, int):
        if not 1 <= want <= len(classes):
            raise DataError(f"{where}: data.classes = {want}, but the data set has {len(classes)} classes")
        return sorted(_rng("classes", seed).sample(sorted(classes), want))
    missing = [c for c in want if c not in classes]
    if missing:
        raise DataError(f"{where}: unknown class(es) in data.classes: {', '.join(missing[:5])}")
    if len(set(want)) != len(want):
        raise DataError(f"{where}: data.classes lists a class twice")
    return sorted(want)


def _per_class(items: list[Item], k: int | None, seed: int, split: str, classes: list[str]) -> list[Item]:
    if k is None:
        return items
    by_class: dict[int, list[Item]] = {}
    for it in items:
        by_class.setdefault(it.label, []).append(it)
    chosen: list[Item] = []
    for label in sorted(by_class):
        group = by_class[label]
        if len(group) > k:
            keep = set(_rng("images", seed, split, classes[label]).sample(range(len(group)), k))
            group = [g for i, g in enumerate(group) if i in keep]
        chosen.extend(group)
    return chosen


def apply_subset(listing: Listing, cfg: DataConfig) -> Listing:
    """The listing restricted to the configured classes and images per class, relabelled."""
    if cfg.classes is None and cfg.images_per_class is None and cfg.val_images_per_class is None:
        return listing
    where = listing.where
    names = choose_classes(listing.classes, cfg.classes, cfg.subset_seed, where)
    new_label = {listing.classes.index(c): i for i, c in enumerate(names)}
    items: dict[str, list[Item]] = {}
    for split, k in (("train", cfg.images_per_class), ("val", cfg.val_images_per_class)):
        kept = [Item(it.name, new_label[it.label], it.nbytes, it.index)
                for it in listing.items[split] if it.label in new_label]
        items[split] = _per_class(kept, k, cfg.subset_seed, split, names)
        if not items[split]:
            raise DataError(f"{where}: the {split} split has no images of the chosen classes")
    note = (f"subset: {len(names)} of {len(listing.classes)} classes, {cfg.images_per_class or 'all'} "
            f"train / {cfg.val_images_per_class or 'all'} val images per class, seed {cfg.subset_seed}")
    return listing.with_items(names, items, note)
