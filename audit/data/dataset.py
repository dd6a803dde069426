"""What a loaded data set is: uint8 images + labels per split, and the training-set statistics.

Sizes (docs/paper.md §3 scaled to small inputs): images are stored once at S×S (shorter side resized to S,
then centre crop), and the network sees C×C crops, C = ``data.crop`` or the model's ``input_size``.

- ``data.resize`` set → S = resize.
- else ``data.crop`` set → S = round(crop · 256/224) (the paper's 256/224 ratio: 224 → 256, 56 → 64).
- else (no crop) → S = input_size: the stored image is the network input, as is.
- with no ``input_size`` at all (callers that only want the images) → the source's native size
  (synthetic: ``synthetic.size``; CIFAR batches: 32; Tiny ImageNet and the embedded slice: 64), else the paper's 256.

With ``data.resize`` set and no crop, S may exceed the input size: the Augmenter then takes the
centre C×C crop in training too (no translations), which is the "without crops" ablation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from audit.config import DataConfig
from audit.data.threads import single_thread


@dataclass(frozen=True)
class Split:
    """One split: preprocessed images (memory-mapped when cached) and their labels."""

    x: torch.Tensor  # uint8 [N, 3, S, S]
    y: torch.Tensor  # int64 [N]

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x[idx], y[idx]) — the same as indexing, but the gather from the memory map runs on one
        thread (``audit.data.threads``: several times faster on a busy machine)."""
        with single_thread():
            return self.x[idx], self.y[idx]


@dataclass(frozen=True)
class Dataset:
    """A resolved data set with everything a run logs about it and the statistics augmentation needs."""

    name: str
    train: Split
    val: Split
    classes: list[str]
    fingerprint: str  # hash of manifest (files, labels, sizes) + S + subset (+ generator config)
    manifest_path: Path | None  # CSV: split,file,label,class,bytes; log it as an MLflow artifact
    bad_files: list[str]  # unreadable images skipped while building (relative to the root)
    mean_image: torch.Tensor  # float32 [3, S, S], per-pixel mean of the training set, 0–255 units
    channel_std: torch.Tensor  # float32 [3], per-channel std of (x − mean image) over the training set
    pca_eigvals: torch.Tensor  # float32 [3], eigenvalues of the RGB covariance (0–255 units), descending
    pca_eigvecs: torch.Tensor  # float32 [3, 3], columns are the matching eigenvectors
    cache_dir: Path | None = field(default=None, compare=False)  # the cache entry holding the arrays
    # class → readable name (words.txt, LOC_synset_mapping.txt), the class itself where none is known
    class_names: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def size(self) -> int:
        """The stored image size S."""
        return int(self.train.x.shape[-1])

    def readable_classes(self, limit: int = 100) -> str:
        """The classes as a reader knows them (words.txt's first name: "goldfish", not n01443537), in label
        order, "; "-joined and cut after ``limit`` so that the line fits an MLflow tag."""
        names = [self.class_names.get(c, c).split(",")[0].strip() or c for c in self.classes]
        more = f"; … {len(names) - limit} more" if len(names) > limit else ""
        return "; ".join(names[:limit]) + more


NATIVE_SIZE = {"cifar_python": 32, "tiny_imagenet": 64, "embedded": 64}
PAPER_STORED, PAPER_CROP = 256, 224


def stored_size(cfg: DataConfig, input_size: int | None = None) -> int:
    """The stored size S, by the rules in the module docstring."""
    if cfg.resize is not None:
        return cfg.resize
    if cfg.crop is not None:
        return round(cfg.crop * PAPER_STORED / PAPER_CROP)
    if input_size is not None:
        return input_size
    if cfg.source == "synthetic":
        return cfg.synthetic.size
    return NATIVE_SIZE.get(cfg.source, PAPER_STORED)
