"""Tracking: a run reused by another claim records that claim's variant, so analysis finds it."""

from __future__ import annotations

from pathlib import Path

from audit.analyse.measure import runs_for
from audit.track import Tracker


def test_reuse_by_another_claim_adds_its_roles(workdir: Path) -> None:
    tracker = Tracker()
    run_id = tracker.start("abc", {"seed": "0"}, {"audit.claims": "lrn", "audit.variants": "lrn:with_lrn",
                                                  "audit.profile": "smoke", "audit.seed": "0"}, "baseline")
    tracker.finish(run_id, "finished")
    tracker.add_roles(run_id, {"audit.claims": "depth", "audit.variants": "depth:full"})
    frame = tracker.runs_frame()
    assert frame.loc[0, "tags.audit.claims"] == "depth,lrn"
    assert list(runs_for(frame, "depth", "full", "smoke")["run_id"]) == [run_id]
    assert list(runs_for(frame, "lrn", "with_lrn", "smoke")["run_id"]) == [run_id]


def test_two_trackers_in_one_process_each_read_their_own_store(tmp_path: Path) -> None:
    """mlflow.search_runs reads a process-wide URI: each Tracker's frame must still be its own store's."""
    first, second = (Tracker(f"sqlite:///{tmp_path / name / 'mlflow.db'}", artifact_root=tmp_path / name / "artifacts")
                     for name in ("one", "two"))
    for tracker, claim in ((first, "lrn"), (second, "relu")):
        run_id = tracker.start(claim, {"seed": "0"}, {"audit.claims": claim, "audit.profile": "smoke",
                                                      "audit.seed": "0"}, claim)
        tracker.finish(run_id, "finished")
    assert list(first.runs_frame()["tags.audit.claims"]) == ["lrn"]
    assert list(second.runs_frame()["tags.audit.claims"]) == ["relu"]


def test_a_run_records_its_commit_and_its_software(workdir: Path) -> None:
    """A reviewer re-deriving a verdict needs the versions behind each run, not only the report's."""
    import platform

    import torch

    tracker = Tracker()
    run_id = tracker.start("abc", {"seed": "0"}, {"audit.claims": "lrn", "audit.profile": "smoke"}, "baseline")
    tags = tracker.client.get_run(run_id).data.tags
    expected = f"python {platform.python_version()}, torch {torch.__version__.split('+')[0]}"
    assert tags["audit.versions"].startswith(expected)
    assert "torchvision " in tags["audit.versions"] and "numpy " in tags["audit.versions"]
    assert tags["audit.git_sha"]
