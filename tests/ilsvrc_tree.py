"""ILSVRC-2012-layout trees for tests: train/<wnid>/*.JPEG, a flat val/ and its label files.

``make_ilsvrc_tree`` writes a tiny one from random pixels; ``make_tree`` rebuilds an ImageFolder tree
(e.g. CIFAR-10 as JPEG folders) in that layout, with both label conventions (the Kaggle CSV and the
devkit's ground truth, whose IDs are deliberately not in wnid order). ``bench/make_ilsvrc_tree.py`` is
the command-line front of ``make_tree``.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from pathlib import Path

import numpy as np
from PIL import Image


def make_ilsvrc_tree(root: Path, wnids: list[str], per_class: int = 2, size: int = 12, seed: int = 0) -> Path:
    """Write ``per_class`` small JPEGs per class to train/ and val/ (labelled by LOC_val_solution.csv)."""
    rng = np.random.default_rng(seed)
    rows = ["ImageId,PredictionString"]
    (root / "val").mkdir(parents=True)
    for c, wnid in enumerate(wnids):
        (root / "train" / wnid).mkdir(parents=True)
        for i in range(per_class):
            for split in ("train", "val"):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                if split == "train":
                    path = root / "train" / wnid / f"{wnid}_{i}.JPEG"
                else:
                    stem = f"ILSVRC2012_val_{c * per_class + i + 1:08d}"
                    path = root / "val" / f"{stem}.JPEG"
                    rows.append(f"{stem},{wnid} 0 0 {size} {size}")
                Image.fromarray(pixels).save(path, "JPEG")
    (root / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    return root


EXTS = {".jpg", ".jpeg", ".png", ".bmp"}


def fake_wnid(name: str) -> str:
    return "n" + str(int(hashlib.sha256(name.encode()).hexdigest(), 16))[:8]


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTS and not p.name.startswith("."))


def _place(src: Path, dst: Path, copy: bool) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if copy:
        shutil.copyfile(src, dst)
    else:
        os.symlink(src.resolve(), dst)


def make_tree(src: Path, out: Path, per_class: int | None = None, val_per_class: int | None = None,
              copy: bool = False, labels: str = "both", seed: int = 0) -> dict[str, int]:
    """Write the tree; returns counts. ``labels``: csv, devkit or both."""
    src = Path(src)
    val_src = next((src / v for v in ("val", "test") if (src / v).is_dir()), None)
    if not (src / "train").is_dir() or val_src is None:
        raise SystemExit(f"{src}: expected train/ and val/ or test/ folders of class folders")
    classes = sorted(d.name for d in (src / "train").iterdir() if d.is_dir())
    wnid = {c: fake_wnid(c) for c in classes}
    if len(set(wnid.values())) != len(classes):
        raise SystemExit("wnid collision; rename a class")
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    n_train = 0
    for c in classes:
        for i, p in enumerate(_images(src / "train" / c)[:per_class]):
            _place(p, out / "train" / wnid[c] / f"{wnid[c]}_{i}.JPEG", copy)
            n_train += 1
    val = [(p, c) for c in classes if (val_src / c).is_dir() for p in _images(val_src / c)[:val_per_class]]
    rng.shuffle(val)
    by_wnid = sorted(wnid.values())
    id_order = by_wnid[:]
    rng.shuffle(id_order)  # the devkit's ILSVRC2012_IDs are not in wnid order: keep tools honest
    ilsvrc_id = {w: i + 1 for i, w in enumerate(id_order)}
    names = {w: c for c, w in wnid.items()}
    rows, gt = ["ImageId,PredictionString"], []
    for i, (p, c) in enumerate(val, start=1):
        stem = f"ILSVRC2012_val_{i:08d}"
        _place(p, out / "val" / f"{stem}.JPEG", copy)
        rows.append(f"{stem},{wnid[c]} 0 0 31 31")
        gt.append(str(ilsvrc_id[wnid[c]]))
    if labels in ("csv", "both"):
        (out / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
        (out / "LOC_synset_mapping.txt").write_text("".join(f"{w} {names[w]}\n" for w in by_wnid))
    if labels in ("devkit", "both"):
        dev = out / "ILSVRC2012_devkit_t12" / "data"
        dev.mkdir(parents=True, exist_ok=True)
        (dev / "ILSVRC2012_validation_ground_truth.txt").write_text("\n".join(gt) + "\n")
        (dev / "synsets.txt").write_text("".join(f"{w}\n" for w in id_order))
    return {"classes": len(classes), "train": n_train, "val": len(val)}
