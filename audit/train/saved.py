"""Evaluations of a finished run's saved final weights: claims that need no new training.

Two of the paper's claims are about nets already trained: test-time augmentation (§4.1: the
softmax averaged over ten 224 px patches, the four corners and the centre and their flips, against
the centre patch alone) and Figure 4's retrieval (§6.1: images whose last-hidden-layer vectors are
close are of the same kind, where pixel-space neighbours are not). Both read ``final.pt`` and the
run's own data, and log figures named in ``audit.record.EVALUATIONS`` into the same run, so a
claim's measure compares two metrics of one run, paired by seed like any other.

- ``ten_crop``: ``val_centre_*`` and ``val_10crop_*`` (loss, top-1, top-5 error %), both measured
  here, whatever ``data.eval_crops`` the run trained with.
- ``retrieval``: on up to ``RETRIEVAL_IMAGES`` validation images (evenly spaced, the same images for
  every run of a data set), the % whose nearest other image (Euclidean, as the paper) has the same
  class, in the space of the input to the last linear layer (``val_nn_feature_agreement``) and in
  the space of the centre-cropped, normalised pixels (``val_nn_pixel_agreement``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from audit.config import RunConfig
from audit.data import Augmenter, Dataset, Split, load_dataset
from audit.models import build_model
from audit.record import EVALUATIONS
from audit.train.evaluate import autocast, evaluate, fmt

RETRIEVAL_IMAGES = 5000   # at 224 px the pixel vectors of 5,000 images take 3 GB


def evaluate_saved(cfg: RunConfig, weights: Path, workdir: Path, names: list[str]) -> dict[str, float]:
    """The metrics of the evaluations ``names`` (keys of ``EVALUATIONS``) of the weights in ``weights``."""
    unknown = [n for n in names if n not in EVALUATIONS]
    if unknown:
        raise ValueError(f"no evaluation named {', '.join(unknown)} (known: {', '.join(EVALUATIONS)})")
    data = load_dataset(cfg.data, workdir / "cache", cfg.model.input_size)
    model = build_model(cfg.model, len(data.classes))
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    out: dict[str, float] = {}
    if "ten_crop" in names:
        out |= ten_crop(model, data, cfg, device)
    if "retrieval" in names:
        out |= retrieval(model, data, cfg, device)
    return out


def ten_crop(model: nn.Module, data: Dataset, cfg: RunConfig, device: torch.device) -> dict[str, float]:
    """The validation errors of the centre crop and of the ten crops' averaged softmax."""
    aug = Augmenter(cfg.data, data, cfg.model.input_size)
    out = {}
    for crops, prefix in ((1, "val_centre"), (10, "val_10crop")):
        aug.eval_crops = crops
        out |= evaluate(model, data.val, aug, cfg, device, prefix)
    return out


@torch.no_grad()
def retrieval(model: nn.Module, data: Dataset, cfg: RunConfig, device: torch.device,
              images: int = RETRIEVAL_IMAGES) -> dict[str, float]:
    """Nearest-neighbour class agreement (%) among validation images, in feature and in pixel space."""
    aug = Augmenter(cfg.data, data, cfg.model.input_size)
    aug.eval_crops = 1
    idx = _evenly(len(data.val), images)
    pixels, features = _vectors(model, data.val, idx, aug, cfg, device)
    labels = data.val.y[idx]
    return {"val_nn_feature_agreement": nearest_agreement(features, labels),
            "val_nn_pixel_agreement": nearest_agreement(pixels, labels)}


def nearest_agreement(vectors: torch.Tensor, labels: torch.Tensor, rows: int = 500) -> float:
    """% of rows whose nearest other row (Euclidean) has the same label (distances ``rows`` at a time)."""
    v = vectors.float()
    nearest = []
    for i in range(0, len(v), rows):
        dist = torch.cdist(v[i:i + rows], v)
        dist[torch.arange(len(dist)), torch.arange(i, i + len(dist))] = float("inf")   # not itself
        nearest.append(dist.argmin(dim=1))
    return 100.0 * float((labels[torch.cat(nearest)] == labels).double().mean())


def _evenly(n: int, k: int) -> torch.Tensor:
    """``min(n, k)`` distinct indices spread evenly over ``range(n)``, ascending."""
    return torch.arange(n) if n <= k else torch.linspace(0, n - 1, k).round().long().unique()


def _vectors(model: nn.Module, split: Split, idx: torch.Tensor, aug: Augmenter, cfg: RunConfig,
             device: torch.device, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened centre crops, and what the last linear layer receives, for the images ``idx``."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    seen: list[torch.Tensor] = []
    hook = last.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].float().flatten(1).cpu()))
    pixels = []
    try:
        for i in range(0, len(idx), batch):
            x, _ = split.batch(idx[i:i + batch])
            view = aug.eval_batch(x.to(device))
            pixels.append(view.flatten(1).cpu())
            with autocast(cfg.train, device):
                model(fmt(view, cfg))
    finally:
        hook.remove()
    return torch.cat(pixels), torch.cat(seen)
