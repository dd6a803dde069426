"""End to end on the embedded Tiny ImageNet slice (relu's smoke profile): audit run → MLflow → report, then reuse."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.config import DataConfig, ModelConfig, RunConfig, SyntheticConfig, TrainConfig
from audit.track import Tracker
from audit.train import train

from .conftest import REPO

RELU = str(REPO / "claims" / "relu.yaml")


class ListLogger:
    """Collects what the loop reports (the unit under test here is the loop, not MLflow)."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def dataset(self, info: dict[str, str], manifest: Path | None) -> None:
        self.info = info

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.epochs.append({k: v for k, v in metrics.items() if k != "epoch_seconds"})

    def artifact(self, path: Path, folder: str = "weights") -> None:
        pass


def tiny_config(seed: int = 0) -> RunConfig:
    return RunConfig(
        model=ModelConfig(width=0.125, input_size=28, fc_width=64, dropout=0.5, init="torch"),
        data=DataConfig(synthetic=SyntheticConfig(classes=10, train_per_class=12, val_per_class=4, size=32),
                        normalise="unit", pca_noise=0.1, crop=28, resize=32),
        train=TrainConfig(epochs=2, batch_size=16, lr=0.01, schedule="constant", eval_train=True),
        seed=seed)


def test_same_seed_gives_identical_metrics(workdir: Path) -> None:
    cfg = tiny_config()
    runs = []
    for _ in range(2):
        log = ListLogger()
        result = train(cfg, log, workdir / "runs")
        assert result.status == "finished" and result.epochs == 2
        runs.append(log.epochs)
    assert runs[0] == runs[1]
    other = ListLogger()
    train(cfg.model_copy(update={"seed": 1}), other, workdir / "runs")
    assert other.epochs != runs[0]


@pytest.mark.slow
def test_smoke_run_report_and_reuse(workdir: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["run", RELU, "--seeds", "1"])
    assert first.exit_code == 0, first.output
    # the grid (3 rates × 2 variants) on the tuning seed 1000, then the verdict's seed 0 at the chosen rates
    assert "8 finished" in first.output and "tuning chose the learning rates" in first.output
    # never silent: one line per epoch of every run, and runs done of the total after each one
    assert "epoch 1/40  relu relu seed 1000 lr 0.01 (tuning)  loss" in first.output
    assert "[8/8 runs done;" in first.output and first.output.count("runs done") == 8

    second = runner.invoke(main, ["run", RELU, "--seeds", "1"])
    assert second.exit_code == 0, second.output
    assert "8 reused" in second.output and "0 finished" in second.output

    tracker = Tracker()
    frame = tracker.runs_frame()
    assert len(frame) == 8 and sorted(frame["tags.audit.purpose"]) == ["evidence"] * 2 + ["tuning"] * 6
    assert set(frame.loc[frame["tags.audit.purpose"] == "tuning", "tags.audit.seed"]) == {"1000"}
    run = frame.iloc[0]
    for tag in ("config_hash", "claims", "variant", "seed", "profile", "dataset_fingerprint", "git_sha", "status"):
        assert isinstance(run[f"tags.audit.{tag}"], str) and run[f"tags.audit.{tag}"], tag
    assert run["tags.audit.status"] == "finished"
    assert run["params.model.arch"] == "cifar_fig1" and "params.train.lr" in frame.columns
    hist = tracker.history(run["run_id"], ["train_top1_error", "val_top1_error", "lr", "epoch_seconds"])
    assert list(hist["step"]) == list(range(1, len(hist) + 1)) and len(hist) >= 1
    artifacts = {a.path for a in tracker.client.list_artifacts(run["run_id"])}
    assert {"claims", "weights"} <= artifacts

    out = runner.invoke(main, ["report", "--claims", str(REPO / "claims")])
    assert out.exit_code == 0, out.output
    html = (workdir / "reports" / "index.html").read_text()
    assert "ReLUs train several times faster" in html
    assert "smoke only" in html and "Smoke results are not scientific verdicts" in html
    assert "37.5" in html and "15.3" in html and 'id="measured-table"' in html
    assert html.count("data:image/png;base64,") >= 2  # forest plot + Figure-1 curves
