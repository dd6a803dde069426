"""The training loop: one RunConfig in, per-epoch metrics out. Knows nothing about claims.

Lean on purpose (nanoGPT-style): data are uint8 tensors in memory, augmentation happens on whole
batches, and the loop is SGD with momentum and weight decay under torch's step or plateau scheduler
(``audit.train.schedule``). A seed fixes initialisation (torch's global RNG) and the data order and
augmentation stream (one ``torch.Generator``), so two variants with the same seed see the same images
in the same order.

Each epoch logs eval-mode figures (``audit.train.evaluate``): ``val_*``, ``train_*`` (the whole
training set or a fixed slice of it, ``audit.train.slices``) and ``holdout_*`` (a slice never trained
on, which the plateau schedule reads); the minibatch figures as they ran are ``train_*_running``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from audit.config import RunConfig, TrainConfig
from audit.data import Augmenter, Dataset, load_dataset
from audit.models import build_model
from audit.models.placement import place
from audit.record import Artifact
from audit.train import checkpoint
from audit.train.allocator import keep_freed_memory
from audit.train.distributed import Dist, Runtime
from audit.train.evaluate import autocast, evaluate, fmt
from audit.train.schedule import Schedule
from audit.train.slices import TrainingSlices, split_training


class RunLogger(Protocol):
    """Where the loop reports; the executor connects it to tracking."""

    def dataset(self, info: dict[str, str], manifest: Path | None) -> None: ...
    def epoch(self, epoch: int, metrics: dict[str, float]) -> None: ...
    def artifact(self, path: Path, folder: str = Artifact.WEIGHTS) -> None: ...


@dataclass
class TrainResult:
    status: str                     # finished / diverged
    epochs: int
    last: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None


def device_name() -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def sgd(params: Iterable[nn.Parameter], cfg: TrainConfig) -> torch.optim.SGD:
    """SGD with momentum and weight decay, fused where torch has the kernel (CPU and CUDA).

    The same update as the plain loop (PyTorch's form of the paper's rule), in one pass over each
    tensor with no temporaries: on the CPU the plain version allocates a weight-sized copy per layer
    for the weight decay; AlexNet's optimiser step took 76 ms that way against 35 ms fused (1 thread).
    """
    params = list(params)
    kwargs = {"lr": cfg.lr, "momentum": cfg.momentum, "weight_decay": cfg.weight_decay}
    try:
        return torch.optim.SGD(params, fused=True, **kwargs)
    except (RuntimeError, TypeError):  # a device or dtype without the fused kernel
        return torch.optim.SGD(params, **kwargs)


def _fit_epoch(model: nn.Module, opt: torch.optim.Optimizer, schedule: Schedule, data: Dataset,
               fit: torch.Tensor, aug: Augmenter, gen: torch.Generator, cfg: RunConfig, ctx: Dist,
               epoch: int, steps: int) -> dict[str, float]:
    """One pass of SGD over the fit slice in a seeded order; the running minibatch figures (dropout on,
    augmented, weights moving) under ``*_running`` names, and the last step's rate."""
    device = ctx.device
    model.train()
    order = fit[torch.randperm(len(fit), generator=gen)]
    loss_sum, correct = torch.zeros((), device=device), torch.zeros((), device=device)
    lr = 0.0
    for step in range(steps):
        lr = schedule.at_step(epoch, step)
        idx = order[step * cfg.train.batch_size:(step + 1) * cfg.train.batch_size]
        x, y = data.train.batch(idx)
        x, y = ctx.shard(aug.train_batch(x.to(device), gen), y.to(device))
        with autocast(cfg.train, device):
            logits = model(fmt(x, cfg))
            loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.detach()
        correct += (logits.argmax(1) == y).sum()
    if ctx.world > 1:  # the mean of the ranks' mean losses is the global batch's mean loss
        loss_sum, correct = ctx.sum(loss_sum) / ctx.world, ctx.sum(correct)
    return {"train_loss_running": loss_sum.item() / steps,
            "train_top1_error_running": 100.0 * (1 - correct.item() / (steps * cfg.train.batch_size)),
            "lr": lr}


def _measure(model: nn.Module, data: Dataset, slices: TrainingSlices, aug: Augmenter, cfg: RunConfig,
             device: torch.device) -> dict[str, float]:
    """The epoch's eval-mode figures: validation, training error (``train_*``) and the held-out slice."""
    metrics = evaluate(model, data.val, aug, cfg, device, "val")
    metrics.update(evaluate(model, data.train, aug, cfg, device, "train", slices.measure))
    metrics.update(evaluate(model, data.train, aug, cfg, device, "holdout", slices.holdout))
    return metrics


@dataclass
class _Training:
    """One run being trained: its data, model, optimiser, schedule and generator, and the epochs done.

    ``train`` reads as: set up (``_setup``), continue from a checkpoint (``resume_from``), then per
    epoch fit, measure (``epoch``) and checkpoint (``checkpoint``), and finally save the weights and
    predictions (``finish``).
    """

    cfg: RunConfig
    ctx: Dist
    data: Dataset
    slices: TrainingSlices
    net: nn.Module            # the model as built (the initial weights; canonical layout)
    model: nn.Module          # placed and, for data-parallel ranks, wrapped
    opt: torch.optim.Optimizer
    schedule: Schedule
    aug: Augmenter
    gen: torch.Generator      # the data order and augmentation stream
    steps: int
    ckpt_dir: Path
    run_id: str
    status: str = "finished"
    stop: bool = False
    history: list[tuple[int, dict[str, float]]] = field(default_factory=list)

    def resume_from(self, saved: checkpoint.Checkpoint, logger: RunLogger) -> None:
        """Continue where the checkpoint stopped, replaying its epochs to the logger (which skips those it has)."""
        checkpoint.load_optimizer_state(self.model, self.opt, saved.optimizer)
        self.schedule.load_state_dict(saved.schedule)
        checkpoint.load_rng_state(self.gen, saved.rng[self.ctx.rank % len(saved.rng)])
        self.status, self.stop, self.history = saved.status, saved.stop, saved.history
        for done, metrics in self.history:
            logger.epoch(done, metrics)

    def epoch(self, epoch: int) -> dict[str, float]:
        """One epoch (0-based) of SGD, then its eval-mode figures; a non-finite loss ends the run as diverged."""
        cfg = self.cfg
        t0 = time.perf_counter()
        metrics = _fit_epoch(self.model, self.opt, self.schedule, self.data, self.slices.fit, self.aug, self.gen,
                             cfg, self.ctx, epoch, self.steps)
        if not math.isfinite(metrics["train_loss_running"]):
            self.status, self.stop = "diverged", True
            metrics.update({"train_loss": math.nan, "train_top1_error": math.nan})  # not measurable
        else:
            metrics.update(_measure(checkpoint.unwrap(self.model), self.data, self.slices, self.aug, cfg,
                                    self.ctx.device))
            threshold = cfg.train.stop_at_train_error
            self.stop = threshold is not None and metrics["train_top1_error"] <= threshold
        self.schedule.end_epoch(epoch, metrics.get("holdout_top1_error"))
        metrics["epoch_seconds"] = time.perf_counter() - t0
        self.history.append((epoch + 1, metrics))
        return metrics

    def checkpoint(self) -> None:
        """Save the state after the last epoch (rank 0 writes; every rank's RNG state is in it)."""
        rng = self.ctx.gather(checkpoint.rng_state(self.gen))
        if self.ctx.is_main:
            checkpoint.Checkpoint(
                run_id=self.run_id, config_hash=self.cfg.config_hash, epoch=len(self.history), status=self.status,
                stop=self.stop, history=self.history, schedule=self.schedule.state_dict(), rng=rng,
                model=checkpoint.model_state(self.model),
                optimizer=checkpoint.optimizer_state(self.model, self.opt)).save(self.ckpt_dir)

    def finish(self, logger: RunLogger) -> TrainResult:
        """Save the final weights (``final.pt``), conv1's filters and, for a finished run, the predictions."""
        core = checkpoint.unwrap(self.model)
        final = self.ckpt_dir / "final.pt"
        if self.ctx.is_main:
            state = checkpoint.model_state(self.model)
            torch.save(state, final)
            if core is not self.net:  # placed elsewhere: the built net holds the initial weights
                self.net.load_state_dict(state)
            _save_first_layer(self.net, self.ckpt_dir / "conv1_final.npy", logger)
            if self.status == "finished":
                _save_predictions(core, self.data, self.aug, self.cfg, self.ctx.device, self.ckpt_dir, logger)
        return TrainResult(self.status, len(self.history), self.history[-1][1] if self.history else {}, final)


def _load_data(cfg: RunConfig, workdir: Path, logger: RunLogger) -> tuple[Dataset, TrainingSlices]:
    """The cached data set and its training slices, reported to the logger."""
    data = load_dataset(cfg.data, workdir / "cache", cfg.model.input_size)
    slices = split_training(data.train.y, cfg.train, len(data.val))
    logger.dataset({"name": data.name, "fingerprint": data.fingerprint, "classes": str(len(data.classes)),
                    "class_names": data.readable_classes(),
                    "train_images": str(len(data.train.y)), "val_images": str(len(data.val.y)),
                    "holdout_images": str(len(slices.holdout)), "train_eval_images": str(len(slices.measure)),
                    "bad_files": str(len(data.bad_files)), "device": device_name()}, data.manifest_path)
    return data, slices


def _setup(cfg: RunConfig, logger: RunLogger, workdir: Path, init_weights: Path | None, run_id: str,
           saved: checkpoint.Checkpoint | None, runtime: Runtime, ctx: Dist) -> _Training:
    """Data, the seeded model (from the checkpoint, another run's weights or fresh), optimiser and schedule."""
    data, slices = _load_data(cfg, workdir, logger)
    torch.manual_seed(cfg.seed)
    net = build_model(cfg.model, len(data.classes))
    if ctx.world > 1:  # same initial weights on every rank, but each rank's own dropout masks
        torch.manual_seed(cfg.seed * 7919 + ctx.rank + 1)
    ckpt_dir = workdir / "checkpoints" / cfg.config_hash
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    if saved is not None:
        net.load_state_dict(saved.model)
    else:
        if init_weights is not None:
            _load_backbone(net, init_weights)
        if ctx.is_main:
            _save_first_layer(net, ckpt_dir / "conv1_init.npy", logger)
    placed = place(net, runtime.placement, ctx.device)
    if cfg.train.channels_last:
        placed.to(memory_format=torch.channels_last)
    model = ctx.wrap(placed)
    aug = Augmenter(cfg.data, data, cfg.model.input_size)
    gen = torch.Generator().manual_seed(10_007 * cfg.seed + 1)
    opt = sgd(model.parameters(), cfg.train)
    steps = max(1, len(slices.fit) // cfg.train.batch_size)  # drop the last partial batch: fixed shapes
    return _Training(cfg, ctx, data, slices, net, model, opt, Schedule(opt, cfg.train, steps), aug, gen, steps,
                     ckpt_dir, run_id)


def train(cfg: RunConfig, logger: RunLogger, workdir: Path, init_weights: Path | None = None, *,
          run_id: str = "", resume: bool = False, runtime: Runtime | None = None,
          dist: Dist | None = None) -> TrainResult:
    """Train one run to the end (or to divergence / the stop threshold) and save its final weights.

    Every epoch ends in a checkpoint (``audit.train.checkpoint``) written *before* the epoch's metrics
    are reported; ``resume`` continues from it and first replays the saved metrics to ``logger``
    (which skips the epochs it already has). ``runtime`` places the model; ``dist`` is this process's
    rank when the executor runs data-parallel ranks (``audit.train.distributed``).
    """
    runtime, ctx = runtime or Runtime(), dist or Dist()
    if ctx.device.type == "cpu":
        keep_freed_memory()  # large activations stay on the heap between steps (see allocator.py)
    folder = workdir / "checkpoints" / cfg.config_hash
    saved = checkpoint.Checkpoint.load(folder) if resume and checkpoint.peek(folder) else None
    run = _setup(cfg, logger, workdir, init_weights, run_id, saved, runtime, ctx)
    if saved is not None:
        run.resume_from(saved, logger)
    for epoch in range(len(run.history), cfg.train.epochs):
        if run.stop:
            break
        metrics = run.epoch(epoch)
        run.checkpoint()
        logger.epoch(epoch + 1, metrics)
    return run.finish(logger)


def _save_predictions(model: nn.Module, data: Dataset, aug: Augmenter, cfg: RunConfig, device: torch.device,
                      ckpt_dir: Path, logger: RunLogger) -> None:
    """The final model's validation softmax, so that seeds can be ensembled ("5 CNNs") without retraining."""
    probs: list[torch.Tensor] = []
    evaluate(model, data.val, aug, cfg, device, "val", keep=probs)
    for name, array in (("val_probs", torch.cat(probs).half().numpy()), ("val_labels", data.val.y.numpy())):
        path = ckpt_dir / f"{name}.npy"
        np.save(path, array)
        logger.artifact(path, Artifact.PREDICTIONS)


def _save_first_layer(model: nn.Module, path: Path, logger: RunLogger) -> None:
    """The conv1 filters, for Figure-3-style grids and the colour analysis."""
    conv1 = getattr(model, "conv1", None)
    if isinstance(conv1, nn.Conv2d):
        np.save(path, conv1.weight.detach().float().cpu().numpy())
        logger.artifact(path)


def _load_backbone(model: nn.Module, weights: Path) -> None:
    """Start from another run's weights; layers whose shapes differ (the classifier) stay fresh."""
    state = torch.load(weights, map_location="cpu", weights_only=True)
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(usable, strict=False)
