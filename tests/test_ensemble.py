"""Ensembles from saved predictions (claims/ensemble.yaml): the paper's "5 CNNs" with no new training.

Runs and their ``predictions/val_probs.npy`` are written with chosen numbers into a real MLflow store
(tests/runlog.py); nothing trains. That `audit plan` lists only reused runs for the claim once its
source runs exist is shown on really trained runs in tests/test_smoke_audit.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audit.analyse.ensemble import error
from audit.analyse.measure import analyse_claim
from audit.spec import SpecError, load_claim
from audit.track import Tracker
from tests.conftest import load_edited
from tests.runlog import errors, log_run, store

REPO = Path(__file__).resolve().parents[1]
CLAIM = REPO / "claims" / "ensemble.yaml"
LABELS = np.arange(10) % 4   # 10 validation images of 4 classes


def member(wrong: int) -> np.ndarray:
    """Confident and right on every image but ``wrong``, where it puts 0.6 on the next class."""
    probs = np.full((10, 4), 0.1 / 3, dtype=np.float16)
    probs[np.arange(10), LABELS] = 0.9
    probs[wrong] = 0.0
    probs[wrong, LABELS[wrong]], probs[wrong, (LABELS[wrong] + 1) % 4] = 0.4, 0.6
    return probs


def log_member(tracker: Tracker, seed: int, probs: np.ndarray | None, folder: Path) -> str:
    """A run of the claim's one variant with its saved predictions, as a finished run logs them (none if diverged)."""
    run_id = log_run(tracker, "ensemble", "single", seed, errors(10.0), profile="tiny", classes=4, val_images=10,
                     status="diverged" if probs is None else "finished")
    own = folder / run_id
    own.mkdir()
    for name, array in (("val_probs", probs), ("val_labels", LABELS)):
        if array is not None:
            np.save(own / f"{name}.npy", array)
            tracker.log_artifact(run_id, own / f"{name}.npy", "predictions")
    return run_id


def test_error_is_the_top_k_error_in_percent() -> None:
    assert error(member(3).astype(np.float32), LABELS, 1) == pytest.approx(10.0)
    assert error(member(3).astype(np.float32), LABELS, 2) == 0.0


def test_each_disjoint_group_is_compared_with_its_own_members(tmp_path: Path) -> None:
    claim = load_claim(CLAIM)
    tracker = store(tmp_path)
    for seed in range(11):   # each net wrong on one image of its own: averaging five corrects every one
        log_member(tracker, seed, member(seed % 10), tmp_path)
    results = {r.measure.id: r for r in analyse_claim(claim, "tiny", tracker.runs_frame(), tracker)}
    five = results["top1"]
    assert [r.seed for r in five.rows] == [0, 5]                     # seeds 0-4 and 5-9; seed 10 left out
    assert [(r.treatment.value, r.baseline.value, r.effect) for r in five.rows] == [pytest.approx((0, 10, -10))] * 2
    assert [len(r.members) for r in five.rows] == [5, 5] and five.rows[0].treatment.flag.endswith("0, 1, 2, 3, 4")
    assert len(results["top1_pair"].rows) == 5
    # two nets wrong on different images: the average is 0.65/0.35 right on both of them
    assert [r.effect for r in results["top1_pair"].rows] == pytest.approx([-10.0] * 5)


def test_a_diverged_member_guesses_uniformly(tmp_path: Path) -> None:
    claim = load_claim(CLAIM)
    tracker = store(tmp_path)
    log_member(tracker, 0, member(0), tmp_path)
    log_member(tracker, 1, None, tmp_path)
    pair = next(r for r in analyse_claim(claim, "tiny", tracker.runs_frame(), tracker) if r.measure.id == "top1_pair")
    (row,) = pair.rows
    # the uniform member has error 100 - (ties broken towards class 0: 3 of 10 images are class 0) = 70
    assert row.baseline.value == pytest.approx((10.0 + 70.0) / 2)
    assert row.treatment.value == pytest.approx(10.0)             # the finished member's vote decides


@pytest.mark.parametrize(("old", "new", "message"), [
    ("    members: 2\n", "", "kind ensemble needs members"),
    ("    baseline: single\n    expect: decrease\n    paper: -2.6", "    baseline: other\n    expect: decrease\n"
     "    paper: -2.6", "one variant as both treatment and baseline"),
    ("    kind: ensemble\n    members: 5\n    metric: val_top1_error", "    metric: val_top1_error",
     "a claim compares at least two variants"),
    ("members: 5\n    metric: val_top5_error", "members: 5\n    metric: train_top5_error", "metric is one of"),
])
def test_an_ensemble_measure_is_checked(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_edited(CLAIM, tmp_path, old, new)
