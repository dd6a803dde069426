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
