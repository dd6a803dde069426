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
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.ilsvrc_tree import make_tree  # noqa: E402


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
