"""Evaluations of a finished run's saved weights (ten crops, retrieval): the arithmetic, and how
`audit run` evaluates a run once, under its own MLflow run, and says so when the weights are absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from audit import record
from audit.lifecycle import live
from audit.models import build_model
from audit.plan import build_plan
from audit.spec import load_claim
from audit.track import Tracker
from audit.train.saved import _evenly, _vectors, nearest_agreement
from tests.conftest import REPO


def test_nearest_agreement_counts_each_points_nearest_other_point() -> None:
    # two tight pairs far apart; the third pair's points are nearer the first pair than each other
    points = torch.tensor([[0.0], [0.1], [10.0], [10.1], [0.3], [5.0]])
    labels = torch.tensor([0, 0, 1, 1, 1, 1])
    # nearest: 0→1 (same), 1→0 (same), 2→3, 3→2 (same), 4→1 (differs), 5→… |5-0.3|=4.7 < |5-10|: 4 (same)
    assert nearest_agreement(points, labels) == pytest.approx(100 * 5 / 6)
    assert nearest_agreement(points, labels, rows=4) == nearest_agreement(points, labels, rows=1)
    duplicates = torch.zeros(4, 3)          # a point is never its own neighbour, even among equal points
    assert nearest_agreement(duplicates, torch.tensor([0, 1, 2, 3])) == 0.0


def test_evenly_spread_indices() -> None:
    assert _evenly(5, 10).tolist() == [0, 1, 2, 3, 4]
    picked = _evenly(10_000, 5000)
    assert len(picked) == 5000 and picked[0] == 0 and picked[-1] == 9999 and (picked.diff() > 0).all()


class _Split:
    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[idx], torch.zeros(len(idx), dtype=torch.long)


class _Identity:
    def eval_batch(self, x: torch.Tensor) -> torch.Tensor:
        return x.float()


def test_the_features_are_what_the_last_linear_layer_receives() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.ReLU(), nn.Linear(7, 3)).eval()
    x = torch.randn(9, 3, 2, 2)
    cfg = type("Cfg", (), {"train": type("T", (), {"precision": "fp32", "channels_last": False})()})()
    pixels, features = _vectors(net, _Split(x), torch.arange(9), _Identity(), cfg, torch.device("cpu"), batch=4)
    assert torch.equal(pixels, x.flatten(1))
    assert torch.allclose(features, torch.relu(net[1](x.flatten(1))))


@pytest.fixture
def planned(tmp_path: Path):  # noqa: ANN201
    claim = load_claim(REPO / "claims" / "ten_crop.yaml")
    run = next(iter(build_plan([claim], "smoke", 1).runs.values()))
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    run_id = tracker.start_config(run.config, run.tags("smoke"), "ten_crop-alexnet-s0")
    tracker.log_metrics(run_id, {"train_loss": 2.0}, step=4)
    tracker.finish(run_id, record.FINISHED)
    return run, tracker, run_id


def test_a_finished_run_is_evaluated_once_from_its_final_weights(planned, tmp_path: Path) -> None:  # noqa: ANN001
    run, tracker, run_id = planned
    assert run.evaluations == {"ten_crop"}
    absent = live(run, tracker, tmp_path, "smoke", {})
    assert absent.status == "reused" and "not evaluated (ten_crop): its final weights are not on this " \
        "machine" in absent.detail
    assert not tracker.metric_names(run_id) & set(record.EVALUATIONS["ten_crop"])

    torch.manual_seed(0)
    net = build_model(run.config.model, 10)
    (tmp_path / "checkpoints" / run.config_hash).mkdir(parents=True)
    torch.save(net.state_dict(), tmp_path / "checkpoints" / run.config_hash / "final.pt")
    evaluated = live(run, tracker, tmp_path, "smoke", {})
    assert evaluated.status == "reused" and evaluated.detail == "finished; evaluated ten_crop from its saved weights"
    assert set(record.EVALUATIONS["ten_crop"]) <= tracker.metric_names(run_id)
    history = tracker.client.get_metric_history(run_id, "val_10crop_top1_error")
    assert [m.step for m in history] == [4]                      # at the run's last epoch

    again = live(run, tracker, tmp_path, "smoke", {})
    assert again.detail == record.FINISHED                       # nothing left to evaluate
    assert len(tracker.client.get_metric_history(run_id, "val_10crop_top1_error")) == 1
