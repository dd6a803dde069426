"""What the loop measures: training error in eval mode, a plateau steered by a held-out training slice
(never the validation split), and every claim's profiles set up that way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from audit.config import DataConfig, ModelConfig, RunConfig, SyntheticConfig, TrainConfig, deep_merge
from audit.data import Augmenter, DataError, Split, load_dataset
from audit.models import build_model
from audit.spec import load_claims
from audit.train import loop, train
from audit.train.schedule import Schedule
from audit.train.slices import split_training

from .conftest import REPO
from .test_resilience import Recorder

CLAIMS = REPO / "claims"


def tiny(train: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
         data: dict[str, Any] | None = None) -> RunConfig:
    """10 classes × 12 training images of 32 px synthetic data, a width-1/8 AlexNet with dropout."""
    return RunConfig(
        model=ModelConfig(**{"width": 0.125, "input_size": 28, "fc_width": 32, "dropout": 0.5, "init": "torch",
                             **(model or {})}),
        data=DataConfig(**{"synthetic": SyntheticConfig(classes=10, train_per_class=12, val_per_class=4, size=32),
                           "normalise": "unit", "crop": 28, "resize": 32, **(data or {})}),
        train=TrainConfig(**{"epochs": 1, "batch_size": 16, "lr": 0.05, "schedule": "constant", **(train or {})}))


def final_model(cfg: RunConfig, workdir: Path) -> tuple[torch.nn.Module, Any, Augmenter]:
    """The trained net (from final.pt), the data set and its evaluation transform."""
    data = load_dataset(cfg.data, workdir / "cache", cfg.model.input_size)
    net = build_model(cfg.model, len(data.classes))
    net.load_state_dict(torch.load(workdir / "checkpoints" / cfg.config_hash / "final.pt"))
    return net, data, Augmenter(cfg.data, data, cfg.model.input_size)


@torch.no_grad()
def explicit_pass(net: torch.nn.Module, aug: Augmenter, split: Split, idx: torch.Tensor,
                  training: bool) -> tuple[float, float]:
    """(loss, top-1 error %) on split[idx] without augmentation, dropout on (training) or off."""
    net.train(training)
    x = aug.eval_batch(split.x[idx])
    views = x if x.dim() == 5 else x[None]
    probs = torch.stack([F.softmax(net(v), dim=1) for v in views]).mean(0)
    y = split.y[idx]
    return F.nll_loss(probs.log(), y).item(), 100.0 * int((probs.argmax(1) != y).sum()) / len(y)


# ---------------------------------------------------------------------- configuration
def test_plateau_without_a_holdout_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="holdout_per_class"):
        TrainConfig(schedule="plateau")
    assert TrainConfig(schedule="plateau", holdout_per_class=1).holdout_per_class == 1
    assert TrainConfig().schedule == "step", "the default needs no holdout"


# ---------------------------------------------------------------------- the slices
def test_slices_are_fixed_stratified_and_disjoint() -> None:
    counts = [30, 30, 31, 29, 40, 12, 30, 30, 25, 33]
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(3))]
    cfg = TrainConfig(holdout_per_class=3, train_eval_images=52)
    torch.manual_seed(1)
    s = split_training(labels, cfg, val_images=40)
    torch.manual_seed(2)
    again = split_training(labels, cfg, val_images=40)
    for name in ("fit", "holdout", "measure"):
        assert torch.equal(getattr(s, name), getattr(again, name)), f"{name} follows torch's global seed"
    assert torch.bincount(labels[s.holdout], minlength=10).tolist() == [3] * 10
    assert sorted(s.fit.tolist() + s.holdout.tolist()) == list(range(len(labels)))
    assert set(s.measure.tolist()) <= set(s.fit.tolist()) and len(s.measure) == 52
    per_class = torch.bincount(labels[s.measure], minlength=10)
    assert int(per_class.max() - per_class.min()) <= 1, f"not stratified: {per_class.tolist()}"
    assert all(torch.equal(t, t.sort().values) for t in (s.fit, s.holdout, s.measure))

    assert len(split_training(labels, TrainConfig(holdout_per_class=3), val_images=40).measure) == 40
    whole = split_training(labels, TrainConfig(holdout_per_class=3, eval_train=True), val_images=40)
    assert torch.equal(whole.measure, whole.fit)
    none_held = split_training(labels, TrainConfig(), val_images=40)
    assert torch.equal(none_held.fit, torch.arange(len(labels))) and len(none_held.holdout) == 0
    with pytest.raises(DataError, match="holdout_per_class = 12"):
        split_training(labels, TrainConfig(holdout_per_class=12), val_images=40)


# ---------------------------------------------------------------------- the loop
def test_training_error_is_an_eval_mode_pass_not_the_running_error(workdir: Path) -> None:
    """With dropout, train_* is the eval-mode error of the epoch's final weights on the fixed slice;
    the minibatch figures stay as *_running. 37 measured images against 7 × 16 trained ones: the two
    error rates can only coincide at 0 or 100%."""
    cfg = tiny({"epochs": 2, "train_eval_images": 37})
    log = Recorder()
    train(cfg, log, workdir)
    last = log.epochs[-1][1]
    assert {"train_loss", "train_top1_error", "train_top5_error", "train_loss_running",
            "train_top1_error_running", "val_top1_error", "lr", "epoch_seconds"} - {*last, "epoch_seconds"} == set()
    net, data, aug = final_model(cfg, workdir)
    measure = split_training(data.train.y, cfg.train, len(data.val)).measure
    assert len(measure) == 37
    loss, err = explicit_pass(net, aug, data.train, measure, training=False)
    assert 0 < last["train_top1_error"] < 100
    assert last["train_top1_error"] == pytest.approx(err, abs=1e-9)
    assert last["train_loss"] == pytest.approx(loss, rel=1e-5)
    assert last["train_top1_error"] != last["train_top1_error_running"]
    assert last["train_loss"] != last["train_loss_running"]
    torch.manual_seed(0)
    dropout_loss, _ = explicit_pass(net, aug, data.train, measure, training=True)
    assert dropout_loss != pytest.approx(loss, rel=1e-5), "dropout on must change the figure"


def test_the_plateau_reads_the_holdout_which_is_never_trained_on(workdir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tiny({"epochs": 3, "lr": 0.02, "schedule": "plateau", "plateau_patience": 0, "holdout_per_class": 2},
               {"init": "kaiming"})  # learns a little: the held-out and validation errors part ways
    read_in_training: list[torch.Tensor] = []
    watched: list[float | None] = []
    training = [False]
    batch, fit_epoch, end_epoch = Split.batch, loop._fit_epoch, Schedule.end_epoch

    def spy_batch(self: Split, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if training[0]:
            read_in_training.append(idx.clone())
        return batch(self, idx)

    def spy_fit_epoch(*args: Any, **kwargs: Any) -> dict[str, float]:
        training[0] = True
        try:
            return fit_epoch(*args, **kwargs)
        finally:
            training[0] = False

    def spy_end_epoch(self: Schedule, epoch: int, value: float | None) -> None:
        watched.append(value)
        end_epoch(self, epoch, value)

    monkeypatch.setattr(Split, "batch", spy_batch)
    monkeypatch.setattr(loop, "_fit_epoch", spy_fit_epoch)
    monkeypatch.setattr(Schedule, "end_epoch", spy_end_epoch)
    log = Recorder()
    train(cfg, log, workdir)

    data = load_dataset(cfg.data, workdir / "cache", cfg.model.input_size)
    holdout = split_training(data.train.y, cfg.train, len(data.val)).holdout
    seen = torch.cat(read_in_training)
    assert len(seen) == 3 * (100 // 16) * 16, "every training step read its batch"
    assert not set(seen.tolist()) & set(holdout.tolist()), "a held-out image was trained on"
    held_out, val = ([m[f"{k}_top1_error"] for _, m in log.epochs] for k in ("holdout", "val"))
    assert held_out != val, "the two splits agree in this run: the test cannot tell them apart"
    assert watched == held_out
    net, _, aug = final_model(cfg, workdir)
    loss, err = explicit_pass(net, aug, data.train, holdout, training=False)
    assert log.epochs[-1][1]["holdout_top1_error"] == pytest.approx(err, abs=1e-9)
    assert log.epochs[-1][1]["holdout_loss"] == pytest.approx(loss, rel=1e-5)


# ---------------------------------------------------------------------- every claim's profiles
def _resolved() -> list[tuple[str, str, str, RunConfig, bool]]:
    """(claim, profile, variant, config, whether an overfitting gap reads the variant) for all claims."""
    out = []
    for claim in load_claims([CLAIMS]):
        gap = {v for m in claim.measure if m.kind == "overfitting_gap" for v in (m.treatment, m.baseline)}
        for profile in claim.profiles:
            for variant in claim.variants:
                tree = deep_merge({"data": {"path": "."}}, claim.run_overrides(profile, variant))
                out.append((claim.id, profile, variant, RunConfig.model_validate(tree), variant in gap))
    return out


def test_no_profile_steers_a_plateau_by_the_validation_split() -> None:
    configs = _resolved()
    assert any(cfg.train.schedule == "plateau" for *_, cfg, _ in configs), "the test would check nothing"
    for claim, profile, variant, cfg, _ in configs:
        if cfg.train.schedule == "plateau":
            assert cfg.train.holdout_per_class > 0, f"{claim}/{profile}/{variant}: plateau without a holdout"


def test_overfitting_gaps_read_eval_mode_training_errors(tmp_path: Path) -> None:
    """Config level: the two sides of every gap measure the training error alike. Loop level: a tiny
    run with each profile's measuring settings (and dropout) logs the eval-mode error of its final weights."""
    gaps = [(c, p, v, cfg) for c, p, v, cfg, gap in _resolved() if gap]
    assert {c for c, *_ in gaps} >= {"dropout", "overlapping_pooling"}
    protocol: dict[tuple[str, str], set[tuple[Any, ...]]] = {}
    settings: dict[tuple[Any, ...], str] = {}
    for claim, profile, variant, cfg in gaps:
        t = cfg.train
        protocol.setdefault((claim, profile), set()).add(
            (t.eval_train, t.train_eval_images, t.holdout_per_class, cfg.data.eval_crops))
        key = (t.eval_train, t.train_eval_images, min(t.holdout_per_class, 2), cfg.data.eval_crops)
        settings.setdefault(key, f"{claim}/{profile}/{variant}")
    for where, sides in protocol.items():
        assert len(sides) == 1, f"{where}: the variants measure training error differently: {sides}"

    assert len(settings) <= 6, f"keep this test small: {settings}"
    for (eval_train, images, holdout, crops), where in settings.items():  # with dropout: where the mode matters
        cfg = tiny({"eval_train": eval_train, "train_eval_images": images, "holdout_per_class": holdout,
                    "schedule": "plateau" if holdout else "constant"}, data={"eval_crops": crops})
        log = Recorder()
        train(cfg, log, tmp_path)  # one folder: the runs share the data cache, checkpoints go by config
        net, data, aug = final_model(cfg, tmp_path)
        measure = split_training(data.train.y, cfg.train, len(data.val)).measure
        loss, err = explicit_pass(net, aug, data.train, measure, training=False)
        last = log.epochs[-1][1]
        assert last["train_top1_error"] == pytest.approx(err, abs=1e-9), where
        assert last["train_loss"] == pytest.approx(loss, rel=1e-5), where
