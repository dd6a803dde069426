"""The ``at_epoch`` measure (bias_one's "early stages of learning"): the metric as it stood after one epoch.

Runs are written with chosen histories into a real MLflow store (tests/runlog.py); nothing trains.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.analyse.measure import analyse_claim
from audit.spec import SpecError, load_claim
from tests.conftest import load_edited
from tests.runlog import errors, log_run, store

REPO = Path(__file__).resolve().parents[1]
CLAIM = REPO / "claims" / "bias_one.yaml"


def test_the_value_is_the_metric_after_that_epoch_and_a_run_that_ended_before_has_none(tmp_path: Path) -> None:
    claim = load_claim(CLAIM)
    assert claim.measure[0].kind == "at_epoch" and claim.measure[0].epoch == 2
    tracker = store(tmp_path)
    for seed in range(3):  # after epoch 2: 60, 59, 58 against 70; the final epoch says the opposite
        log_run(tracker, "bias_one", "bias_one", seed, errors(80, 60 - seed, 45, metric="train_top1_error"),
                profile="tiny")
        log_run(tracker, "bias_one", "bias_zero", seed, errors(85, 70, 40, metric="train_top1_error"), profile="tiny")
    log_run(tracker, "bias_one", "bias_one", 3, errors(80, 60, metric="train_top1_error"), profile="tiny")
    log_run(tracker, "bias_one", "bias_zero", 3, errors(90, metric="train_top1_error"), profile="tiny", epochs=10)
    result = analyse_claim(claim, "tiny", tracker.runs_frame(), tracker)[0]
    rows = {r.seed: r for r in result.rows}
    assert [rows[s].effect for s in range(3)] == pytest.approx([-10.0, -11.0, -12.0])
    assert all(rows[s].used for s in range(3))
    assert not rows[3].used and rows[3].baseline.flag == "no train_top1_error after epoch 2: the run ended before it"
    assert result.interval.mean == pytest.approx(-11.0)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("    epoch: 2\n", "", "kind at_epoch needs an epoch"),
    ("    kind: at_epoch\n", "", "only at_epoch reads a epoch; kind final ignores it"),
    ("    epoch: 2\n", "    epoch: 0\n", "greater than or equal to 1"),
])
def test_an_epoch_goes_with_at_epoch_only(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_edited(CLAIM, tmp_path, old, new)
