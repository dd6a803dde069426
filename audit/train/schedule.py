"""The learning-rate schedule: torch's own epoch-level schedulers, with a linear per-step warm-up on top.

- ``step``: ``StepLR`` (lr / 10 every ``step_epochs``); ``constant``: the same with gamma 1.
- ``plateau``: ``ReduceLROnPlateau`` on the held-out slice's top-1 error (``audit.train.slices``),
  lr / 10 after more than ``plateau_patience`` epochs without a strict improvement; warm-up epochs
  are not counted.

The scheduler owns the rate between epochs (its ``state_dict`` goes into the checkpoint); the warm-up
only scales it within the first ``warmup_epochs`` and hands it back unscaled at each epoch's end, so
the scheduler never sees a warmed-up rate as its own.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau, StepLR

from audit.config import TrainConfig


class Schedule:
    """One run's learning rate: ``at_step`` before each minibatch, ``end_epoch`` after each epoch."""

    def __init__(self, opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> None:
        self.opt, self.cfg, self.steps = opt, cfg, steps_per_epoch
        self.scheduler: LRScheduler | ReduceLROnPlateau
        if cfg.schedule == "plateau":
            self.scheduler = ReduceLROnPlateau(opt, mode="min", factor=0.1, patience=cfg.plateau_patience,
                                               threshold=0.0, threshold_mode="abs")
        else:
            gamma = 0.1 if cfg.schedule == "step" else 1.0
            self.scheduler = StepLR(opt, step_size=cfg.step_epochs, gamma=gamma)
        self._epoch_lrs = self._lrs()

    def _lrs(self) -> list[float]:
        return [float(g["lr"]) for g in self.opt.param_groups]

    def at_step(self, epoch: int, step: int) -> float:
        """Set the rate for this minibatch (warmed up in the first epochs); returns it."""
        if step == 0:
            self._epoch_lrs = self._lrs()
        if epoch < self.cfg.warmup_epochs:
            warm = (epoch * self.steps + step + 1) / (self.cfg.warmup_epochs * self.steps)
            for group, lr in zip(self.opt.param_groups, self._epoch_lrs):
                group["lr"] = lr * warm
        return float(self.opt.param_groups[0]["lr"])

    def end_epoch(self, epoch: int, holdout_top1_error: float | None) -> None:
        """Advance the scheduler after epoch ``epoch`` (0-based); a plateau needs the held-out error."""
        for group, lr in zip(self.opt.param_groups, self._epoch_lrs):
            group["lr"] = lr
        if isinstance(self.scheduler, ReduceLROnPlateau):
            if holdout_top1_error is not None and epoch + 1 >= self.cfg.warmup_epochs:
                self.scheduler.step(holdout_top1_error)
        else:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """After the optimiser's state (which holds the groups' current rates) has been loaded."""
        self.scheduler.load_state_dict(state)
        self._epoch_lrs = self._lrs()
