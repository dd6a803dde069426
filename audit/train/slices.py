"""Fixed slices of the training split: what is trained on, what is held out, what the training error reads.

- ``holdout``: ``train.holdout_per_class`` images of every class, never trained on, evaluated each
  epoch as ``holdout_*``. The plateau schedule watches them, so the validation split — the one the
  verdicts read — never steers training.
- ``fit``: the rest, the images the optimiser sees.
- ``measure``: the images whose eval-mode error is logged as ``train_*``: all of ``fit`` with
  ``train.eval_train``, else a class-stratified slice of ``fit`` (``train.train_eval_images``, or as
  many as the validation split). Measured in eval mode, without augmentation, so the overfitting gap
  (val − train) compares like with like instead of counting dropout's noise as "training error".

The slices depend on the labels alone, shuffled by a fixed generator and never the run's seed: every
seed and every variant of a claim holds out, and measures, the same images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from audit.config import TrainConfig
from audit.data import DataError

SLICE_SEED = 20_120  # fixed on purpose: the slices must not move with the run's seed


@dataclass(frozen=True)
class TrainingSlices:
    """Indices into the training split, each ascending (sorted reads from the memory map)."""

    fit: torch.Tensor       # trained on
    holdout: torch.Tensor   # never trained on; drives the plateau schedule
    measure: torch.Tensor   # a subset of fit; its eval-mode error is the logged training error


def _shuffled_ranks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed shuffle of the indices, and each shuffled image's rank among its class's images."""
    n = len(labels)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(SLICE_SEED))
    y = labels[perm]
    grouped = torch.argsort(y, stable=True)  # by class, in shuffled order within each class
    counts = torch.bincount(y)
    first = torch.cumsum(counts, 0) - counts
    rank = torch.empty(n, dtype=torch.long)
    rank[grouped] = torch.arange(n) - first[y[grouped]]
    return perm, rank


def split_training(labels: torch.Tensor, cfg: TrainConfig, val_images: int) -> TrainingSlices:
    """The three slices for a training split with these labels; DataError if a class would be emptied."""
    k = cfg.holdout_per_class
    counts = torch.bincount(labels)
    present = counts[counts > 0]
    if k and len(present) and int(present.min()) <= k:
        raise DataError(f"train.holdout_per_class = {k}, but a class has only {int(present.min())} "
                        "training images: nothing of it would be left to train on")
    perm, rank = _shuffled_ranks(labels)
    kept = torch.nonzero(rank >= k).flatten()  # positions in perm
    fit = perm[kept].sort().values
    holdout = perm[rank < k].sort().values
    want = len(fit) if cfg.eval_train else cfg.train_eval_images or val_images
    if want >= len(fit):
        return TrainingSlices(fit, holdout, fit)
    # round robin over classes: every class's first fit image, then every class's second, ...
    key = rank[kept] * len(labels) + kept
    chosen = kept[torch.argsort(key)[:want]]
    return TrainingSlices(fit, holdout, perm[chosen].sort().values)
