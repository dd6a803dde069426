"""Evaluation passes: loss, top-1 and top-5 error of a model in eval mode, without augmentation.

Every per-epoch figure the verdicts read comes from here — validation, training (whole set or a fixed
slice, ``audit.train.slices``) and the held-out slice — so they are measured alike: eval mode
(dropout off), the centre crop or the 10 crops of ``data.eval_crops``, softmax averaged over crops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from audit.config import RunConfig, TrainConfig
from audit.data import Augmenter, Split


def autocast(cfg: TrainConfig, device: torch.device) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")


def fmt(x: torch.Tensor, cfg: RunConfig) -> torch.Tensor:
    """The memory layout the run trains in."""
    return x.contiguous(memory_format=torch.channels_last) if cfg.train.channels_last else x


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, aug: Augmenter, cfg: RunConfig, device: torch.device,
             prefix: str, idx: torch.Tensor | None = None, batch: int = 500,
             keep: list[torch.Tensor] | None = None) -> dict[str, float]:
    """``{prefix}_loss``, ``{prefix}_top1_error`` and ``{prefix}_top5_error`` (%) on ``split`` (or the
    images ``idx`` of it, ascending); empty when there are no images.

    ``keep`` collects the per-image probabilities (for ensembles of seeds in the report).
    """
    if idx is not None and len(idx) == len(split):
        idx = None  # ascending and distinct, so all of it: read in slices, not gathers
    n = len(split) if idx is None else len(idx)
    if n == 0:
        return {}
    model.eval()
    loss_sum, top1, top5 = 0.0, 0, 0
    for i in range(0, n, batch):
        xb, yb = (split.x[i:i + batch], split.y[i:i + batch]) if idx is None else split.batch(idx[i:i + batch])
        x = aug.eval_batch(xb.to(device))
        y = yb.to(device)
        views = x if x.dim() == 5 else x.unsqueeze(0)
        with autocast(cfg.train, device):
            probs = torch.stack([F.softmax(model(fmt(v, cfg)).float(), dim=1) for v in views]).mean(0)
        if keep is not None:
            keep.append(probs.cpu())
        loss_sum += F.nll_loss(torch.log(probs.clamp_min(1e-12)), y, reduction="sum").item()
        ranked = probs.topk(min(5, probs.shape[1]), dim=1).indices
        top1 += (ranked[:, 0] == y).sum().item()
        top5 += (ranked == y[:, None]).any(dim=1).sum().item()
    return {f"{prefix}_loss": loss_sum / n, f"{prefix}_top1_error": 100.0 * (1 - top1 / n),
            f"{prefix}_top5_error": 100.0 * (1 - top5 / n)}
