"""The live view of ``audit run``: fed real epoch events, from this process and from a worker process.

The plain lines (one per epoch, "[k/N runs done; ...]") that CI logs and pipes get are checked end to
end in tests/test_end_to_end.py; here, that they stay the default wherever no live view is showing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from audit import events
from audit.executors.local import PoolBackend
from audit.executors.schedule import Outcome
from audit.lifecycle import MlflowRunLogger
from audit.live import LiveView
from audit.plan import build_plan
from audit.progress import Progress
from audit.spec import load_claims
from audit.train import train
from tests.conftest import REPO
from tests.runlog import store
from tests.test_end_to_end import tiny_config


def _screen(view: LiveView) -> str:
    console = Console(record=True, force_terminal=True, width=140)
    console.print(view)
    return console.export_text()


@pytest.fixture
def view(tmp_path: Path) -> LiveView:
    tracker = store(tmp_path)
    progress = Progress(tracker, jobs=1)
    progress.plan(build_plan(load_claims([REPO / "claims" / "relu.yaml"]), "smoke", 1, None))
    return LiveView(progress)


def test_the_live_view_shows_each_active_run_as_it_trains(view: LiveView, tmp_path: Path) -> None:
    tracker = view.progress.tracker
    run = next(iter(build_plan(load_claims([REPO / "claims" / "relu.yaml"]), "smoke", 1, None).runs.values()))
    view.started(run)
    assert "starting" in _screen(view) and "0/8 runs done" in _screen(view)
    run_id = tracker.start(run.config_hash, {}, {}, "live")
    logger = MlflowRunLogger(tracker, run_id, label=run.label, epochs=2)
    previous = events.set_sink(view.epoch)
    try:
        train(tiny_config(), logger, tmp_path / "runs")      # a real run: its two epochs reach the view
    finally:
        events.set_sink(previous)
    screen = _screen(view)
    last = tracker.client.get_metric_history(run_id, "train_loss")[-1].value
    assert run.label in screen and "2/2" in screen and f"{last:.3f}" in screen, screen
    assert "val err" in screen and "%" in screen

    view.ended(run)
    view.progress.done(run, False, 3.0)
    screen = _screen(view)
    assert "1/8 runs done" in screen and run.label not in screen


def _epochs_in_a_worker(label: str) -> Outcome:
    """What a worker's training loop does, as far as the view is concerned: report epochs."""
    for epoch in (1, 2, 3):
        events.report_epoch(label, epoch, 3, {"train_loss": 2.0 / epoch, "val_top1_error": 90.0 - epoch,
                                              "lr": 0.01})
    return Outcome(label, None, "finished")


def test_epochs_in_worker_processes_reach_the_parents_view(view: LiveView) -> None:
    got: list[events.EpochEvent] = []
    previous = events.set_sink(got.append)          # the parent shows a live view: its pool relays
    try:
        pool = PoolBackend(2, _epochs_in_a_worker, threads=1)
        outcomes = [pool.submit(label).result(timeout=120) for label in ("relu tanh seed 0", "relu relu seed 0")]
        pool.close()
    finally:
        events.set_sink(previous)
    assert [o.status for o in outcomes] == ["finished", "finished"]
    assert sorted((e.label, e.epoch) for e in got) == sorted((label, k) for label in ("relu tanh seed 0",
                                                                                      "relu relu seed 0")
                                                             for k in (1, 2, 3))
    assert got[0].metrics.keys() <= set(events.SHOWN)                 # only what the view shows travels


def test_without_a_view_an_epoch_is_one_plain_line(capsys: pytest.CaptureFixture[str]) -> None:
    events.report_epoch("relu tanh seed 0 lr 0.03", 3, 12, {"train_loss": 1.25, "train_top1_error": 40.0,
                                                             "val_top1_error": 45.5, "epoch_seconds": 2.0})
    assert capsys.readouterr().out == ("    epoch 3/12  relu tanh seed 0 lr 0.03  loss 1.250  train 40.0%  "
                                       "val 45.5%  2.0s\n")
