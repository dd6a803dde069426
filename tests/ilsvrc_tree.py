"""A tiny ILSVRC-2012-layout tree for tests: train/<wnid>/*.JPEG, a flat val/ and its label CSV."""

from __future__ import annotations

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
