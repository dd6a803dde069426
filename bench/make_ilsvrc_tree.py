"""Build an ILSVRC-2012-layout tree from an ImageFolder tree (e.g. CIFAR-10 as JPEG folders).

Why: users bring ImageNet as distributed — ``train/<wnid>/<wnid>_<n>.JPEG`` and a *flat* ``val/``
whose labels live in a separate file — and the ``ilsvrc2012`` source must be tested on that layout
without ImageNet itself. The output mirrors both label conventions:

    OUT/train/<wnid>/<wnid>_<i>.JPEG
    OUT/val/ILSVRC2012_val_<00000001>.JPEG                 (classes shuffled together, as in the real val set)
    OUT/LOC_val_solution.csv, OUT/LOC_synset_mapping.txt   (Kaggle style; mapping sorted by wnid)
    OUT/ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt + synsets.txt
                                                          (devkit style; IDs deliberately NOT in wnid order)

wnids are made-up but well-formed (``n`` + 8 digits from a hash of the class name). Files are
symlinked by default (``--copy`` to copy). Usage:

    python bench/make_ilsvrc_tree.py path/to/cifar10 runs/ilsvrc-cifar \
        --per-class 100 --val-per-class 20
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sys
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="ImageFolder tree with train/ and val/ or test/")
    ap.add_argument("out", type=Path, help="where to write the ILSVRC-layout tree")
    ap.add_argument("--per-class", type=int, default=None, help="train images per class (default all)")
    ap.add_argument("--val-per-class", type=int, default=None, help="val images per class (default all)")
    ap.add_argument("--copy", action="store_true", help="copy files instead of symlinking them")
    ap.add_argument("--labels", choices=["csv", "devkit", "both"], default="both")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        print(f"{args.out}: exists and is not empty", file=sys.stderr)
        return 2
    counts = make_tree(args.src, args.out, args.per_class, args.val_per_class, args.copy, args.labels,
                       args.seed)
    print(f"{args.out}: {counts['classes']} classes, {counts['train']} train, {counts['val']} val images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
