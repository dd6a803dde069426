"""Data layouts on disk → a ``Listing``: class names and (file, label) items per split.

Listing is cheap (names and sizes only, no decoding), so it runs on every load: its manifest is what
the fingerprint hashes, and the cache is only rebuilt when the files change.

- ``imagefolder``: ``PATH/train/<class>/…`` and ``PATH/val/<class>/…`` (or ``test/`` when there is no
  ``val/``). Class folders may nest images in sub-folders; non-image files and hidden files are ignored.
- ``ilsvrc2012``: ``PATH/train/<wnid>/*.JPEG`` and ``PATH/val/``, either already sorted into
  ``val/<wnid>/`` folders or flat (``ILSVRC2012_val_00000001.JPEG`` …) with labels from, in this order:

  1. ``LOC_val_solution.csv`` (Kaggle: ``ImageId,PredictionString``, the first token is the wnid);
  2. ``ILSVRC2012_validation_ground_truth.txt`` (devkit: one 1-based ILSVRC2012_ID per line, in val
     file order; a file named ``ILSVRC2012_val_<n>`` takes line n) plus the ID → wnid map from the
     devkit's ``meta.mat`` (needs scipy) or ``synsets.txt`` (one wnid per line, line i = ILSVRC2012_ID i).
     ``LOC_synset_mapping.txt`` is *not* accepted as that map: it is sorted by wnid, while the devkit
     IDs are not (ID 1 is n02119789), so reading it as ID order would mislabel the whole val set.

  Each file is looked for in ``PATH``, ``PATH/val``, ``PATH/ILSVRC2012_devkit_t12/data``,
  ``PATH/devkit/data``, ``PATH/devkit`` and up to three parents of ``PATH`` (Kaggle's layout puts the
  CSV three levels above ``Data/CLS-LOC``); the ID map is looked for beside the ground-truth file first.
  Val images whose wnid has no ``train/`` folder are dropped with a warning (a train subset with the
  full val set); val images without a label are an error.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from audit.data.errors import DataError

log = logging.getLogger(__name__)

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
SPLITS = ("train", "val")


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
    root: Path | None
    classes: list[str]
    items: dict[str, list[Item]]
    arrays: Callable[[], np.ndarray] | None = None  # uint8 [N, 3, h, w] for array-backed sources
    extra: str = ""  # more fingerprint material (e.g. the generator's config)
    notes: list[str] = field(default_factory=list)

    def with_items(self, classes: list[str], items: dict[str, list[Item]], note: str | None) -> Listing:
        return replace(self, classes=classes, items=items, notes=self.notes + ([note] if note else []))


def existing_dir(path: str | os.PathLike[str] | None, what: str = "data path") -> Path:
    """``path`` resolved against the working directory; a DataError unless it is a folder."""
    if not path:
        raise DataError(f"{what} is not set")
    p = Path(path).expanduser().resolve()
    if not p.exists():
        raise DataError(f"{p}: {what} does not exist")
    if not p.is_dir():
        raise DataError(f"{p}: {what} is not a folder")
    return p


def is_image(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTS


def _subdirs(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _images_under(folder: Path, root: Path) -> list[tuple[str, int]]:
    """(name relative to root, bytes) of every image under folder, recursively, sorted."""
    found: list[tuple[str, int]] = []
    stack = [folder]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                if e.name.startswith("."):
                    continue
                if e.is_dir():
                    stack.append(Path(e.path))
                elif is_image(e.name) and e.is_file():
                    found.append((Path(e.path).relative_to(root).as_posix(), e.stat().st_size))
    return sorted(found)


def _class_items(root: Path, split_dir: Path, names: list[str], index: dict[str, int]) -> list[Item]:
    items: list[Item] = []
    for cls in names:
        files = _images_under(split_dir / cls, root)
        if not files:
            raise DataError(f"{split_dir / cls}: empty class folder (no images)")
        items.extend(Item(n, index[cls], b) for n, b in files)
    return items


def _train_classes(root: Path) -> tuple[Path, list[str]]:
    train = root / "train"
    if not train.is_dir():
        raise DataError(f"{root}: expected a train/ folder of class folders (and val/ or test/)")
    classes = _subdirs(train)
    if not classes:
        raise DataError(f"{train}: no class folders")
    return train, classes


def _folder_val(root: Path, val: Path, classes: list[str]) -> list[Item]:
    index = {c: i for i, c in enumerate(classes)}
    names = _subdirs(val)
    unknown = [n for n in names if n not in index]
    if unknown:
        raise DataError(f"{val / unknown[0]}: class folder has no counterpart in {root / 'train'}")
    return _class_items(root, val, names, index)


def list_imagefolder(path: str | None) -> Listing:
    """An ImageFolder tree: train/ and val/ (or test/) folders of class folders."""
    root = existing_dir(path)
    train, classes = _train_classes(root)
    val = next((root / v for v in ("val", "test") if (root / v).is_dir()), None)
    if val is None:
        raise DataError(f"{root}: expected a val/ or test/ folder of class folders beside train/")
    index = {c: i for i, c in enumerate(classes)}
    items = {"train": _class_items(root, train, classes, index), "val": _folder_val(root, val, classes)}
    _check_nonempty(items, root)
    return Listing("imagefolder", f"imagefolder:{root.name}", root, classes, items)


def _check_nonempty(items: dict[str, list[Item]], root: Path) -> None:
    for split in SPLITS:
        if not items[split]:
            raise DataError(f"{root}: the {split} split has no images")


# --- ILSVRC-2012 ---------------------------------------------------------------------------------

def _search_dirs(root: Path) -> list[Path]:
    dirs = [root, root / "val", root / "ILSVRC2012_devkit_t12" / "data", root / "devkit" / "data",
            root / "devkit", *list(root.parents)[:3]]
    return list(dict.fromkeys(d for d in dirs if d.is_dir()))


def _find(name: str, dirs: list[Path]) -> Path | None:
    return next((d / name for d in dirs if (d / name).is_file()), None)


def _labels_from_csv(csv_path: Path, files: list[str]) -> list[str]:
    labels: dict[str, str] = {}
    with open(csv_path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header or [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
            raise DataError(f"{csv_path}: expected the header ImageId,PredictionString")
        for row in reader:
            if len(row) >= 2 and row[1].split():
                labels[row[0].strip()] = row[1].split()[0]
    out = []
    for f in files:
        stem = Path(f).stem
        if stem not in labels:
            raise DataError(f"{csv_path}: no label for val image {f} (ground truth does not match the files)")
        out.append(labels[stem])
    return out


def _id_to_wnid(gt: Path, dirs: list[Path]) -> dict[int, str]:
    near = [gt.parent, *dirs]
    meta = _find("meta.mat", near)
    if meta is not None:
        try:
            from scipy.io import loadmat  # optional: only needed for the devkit's meta.mat
        except ImportError:
            meta = None
        else:
            synsets = loadmat(meta, squeeze_me=True)["synsets"]
            return {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets if int(s["num_children"]) == 0}
    txt = _find("synsets.txt", near)
    if txt is not None:
        wnids = [ln.split()[0] for ln in txt.read_text().splitlines() if ln.strip()]
        return {i + 1: w for i, w in enumerate(wnids)}
    hint = " (LOC_synset_mapping.txt is sorted by wnid, not by ILSVRC2012_ID, so it cannot serve)" \
        if _find("LOC_synset_mapping.txt", near) else ""
    raise DataError(f"{gt}: found no ILSVRC2012_ID → wnid map: put the devkit's meta.mat (with scipy) or a "
                    f"synsets.txt (line i = wnid of ID i) beside it{hint}")


def _labels_from_devkit(gt: Path, files: list[str], dirs: list[Path]) -> list[str]:
    try:
        ids = [int(t) for t in gt.read_text().split()]
    except ValueError as exc:
        raise DataError(f"{gt}: expected one integer ILSVRC2012_ID per line ({exc})") from None
    id_map = _id_to_wnid(gt, dirs)
    numbers = [re.search(r"_(\d+)$", Path(f).stem) for f in files]
    if all(numbers):
        rows = [int(m.group(1)) - 1 for m in numbers if m]
        if max(rows) >= len(ids) or min(rows) < 0:
            raise DataError(f"{gt}: {len(ids)} labels, but {files[rows.index(max(rows))]} needs line "
                            f"{max(rows) + 1} (ground truth does not match the files)")
    elif len(ids) == len(files):
        rows = list(range(len(files)))
    else:
        raise DataError(f"{gt}: {len(ids)} labels but {len(files)} val images (ground truth does not match)")
    out = []
    for r in rows:
        if ids[r] not in id_map:
            raise DataError(f"{gt}: line {r + 1} has ILSVRC2012_ID {ids[r]}, unknown to the ID → wnid map")
        out.append(id_map[ids[r]])
    return out


def _flat_val(root: Path, val: Path, classes: list[str]) -> list[Item]:
    files = sorted((e.name, e.stat().st_size) for e in os.scandir(val) if is_image(e.name) and e.is_file())
    if not files:
        raise DataError(f"{val}: the val split has no images")
    names = [f for f, _ in files]
    dirs = _search_dirs(root)
    if (csv_path := _find("LOC_val_solution.csv", dirs)) is not None:
        wnids = _labels_from_csv(csv_path, names)
    elif (gt := _find("ILSVRC2012_validation_ground_truth.txt", dirs)) is not None:
        wnids = _labels_from_devkit(gt, names, dirs)
    else:
        raise DataError(f"{val}: flat val folder but no labels: looked for LOC_val_solution.csv or "
                        f"ILSVRC2012_validation_ground_truth.txt in {', '.join(str(d) for d in dirs)}")
    index = {c: i for i, c in enumerate(classes)}
    items = [Item(f"val/{f}", index[w], b) for (f, b), w in zip(files, wnids, strict=True) if w in index]
    if len(items) < len(files):
        log.warning("%s: %d val images belong to classes without a train/ folder; skipped",
                    val, len(files) - len(items))
    return items


def list_ilsvrc2012(path: str | None) -> Listing:
    """The ILSVRC-2012 layout: train/<wnid>/ plus a flat (or sorted) val/ folder."""
    root = existing_dir(path)
    train, classes = _train_classes(root)
    val = root / "val"
    if not val.is_dir():
        raise DataError(f"{root}: expected a val/ folder beside train/")
    index = {c: i for i, c in enumerate(classes)}
    flat = any(is_image(e.name) for e in os.scandir(val))
    sorted_val = not flat and bool(_subdirs(val))
    val_items = _folder_val(root, val, classes) if sorted_val else _flat_val(root, val, classes)
    items = {"train": _class_items(root, train, classes, index), "val": val_items}
    _check_nonempty(items, root)
    return Listing("ilsvrc2012", f"ilsvrc2012:{root.name}", root, classes, items)
