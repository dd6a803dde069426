"""The local executor: runs a plan in this process, one run after another.

Every run is looked up by its config hash first: a finished (or diverged) run is reused, never
retrained. An exception in one run fails that run only; the audit goes on and reports it.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from audit.plan import Plan, PlannedRun
from audit.track import Tracker
from audit.train import RunLogger, train


@dataclass
class Outcome:
    config_hash: str
    run_id: str | None
    status: str          # reused / finished / diverged / failed
    detail: str = ""


@dataclass
class MlflowRunLogger(RunLogger):
    """Connects the training loop's reports to one MLflow run."""

    tracker: Tracker
    run_id: str
    artifacts: list[Path] = field(default_factory=list)

    def dataset(self, info: dict[str, str], manifest: Path | None) -> None:
        tags = {f"audit.dataset_{k}": v for k, v in info.items() if k != "device"}
        tags["audit.dataset_fingerprint"] = info["fingerprint"]
        tags["audit.device"] = info.get("device", "cpu")
        self.tracker.set_tags(self.run_id, tags)
        if manifest is not None and manifest.exists():
            self.tracker.log_artifact(self.run_id, manifest, "data")

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.tracker.log_metrics(self.run_id, metrics, step=epoch)

    def artifact(self, path: Path) -> None:
        self.tracker.log_artifact(self.run_id, path, "weights")


def run_tags(run: PlannedRun, profile: str) -> dict[str, str]:
    first = run.roles[0]
    return {"audit.claims": ",".join(run.claims), "audit.variant": first.variant,
            "audit.variants": ",".join(sorted({f"{r.claim}:{r.variant}" for r in run.roles})),
            "audit.seed": str(first.seed), "audit.profile": profile,
            "audit.lr_grid": "1" if any(r.lr is not None for r in run.roles) else "0"}


def execute_one(run: PlannedRun, tracker: Tracker, workdir: Path, profile: str,
                claim_files: dict[str, Path]) -> Outcome:
    """Reuse or train one planned run; never raises for a training failure."""
    found = tracker.find(run.config_hash)
    if found is not None and found.status in ("finished", "diverged"):
        tracker.add_claims(found.run_id, run.claims)
        return Outcome(run.config_hash, found.run_id, "reused", found.status)
    init_weights = None
    if run.config.init_from:
        init_weights = workdir / "checkpoints" / run.config.init_from / "final.pt"
        if not init_weights.exists():
            return Outcome(run.config_hash, None, "failed", f"weights of {run.config.init_from} are missing")
    name = f"{run.roles[0].claim}-{run.roles[0].variant}-s{run.roles[0].seed}"
    run_id = tracker.start(run.config_hash, run.config.flat_params(), run_tags(run, profile), name)
    for claim in run.claims:
        if claim in claim_files:
            tracker.log_artifact(run_id, claim_files[claim], "claims")
    try:
        result = train(run.config, MlflowRunLogger(tracker, run_id), workdir, init_weights)
    except Exception as exc:  # a failed run is a result, not the end of the audit
        tracker.set_tags(run_id, {"audit.error": f"{type(exc).__name__}: {exc}"[:5000]})
        tracker.finish(run_id, "failed")
        return Outcome(run.config_hash, run_id, "failed", traceback.format_exc(limit=3))
    tracker.set_tags(run_id, {"audit.epochs_run": str(result.epochs)})
    tracker.finish(run_id, result.status)
    return Outcome(run.config_hash, run_id, result.status)


def execute(plan: Plan, tracker: Tracker, workdir: Path, claim_files: dict[str, Path],
            on_event: Callable[[str, PlannedRun, Outcome | None], None] | None = None) -> list[Outcome]:
    outcomes = []
    for run in plan.ordered():
        if on_event:
            on_event("start", run, None)
        outcome = execute_one(run, tracker, workdir, plan.profile, claim_files)
        outcomes.append(outcome)
        if on_event:
            on_event("end", run, outcome)
    return outcomes
