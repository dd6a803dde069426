"""One run's life: find it, reuse it, resume it, abandon what cannot be resumed, train it, finish it.

Executors only schedule (which run, where, when); ``live`` is what they call for each planned run,
in this process, a worker process or a Ray task. A run is looked up by its config hash first: a
finished (or diverged) run is reused, never retrained. Otherwise the run's lock is taken
(``audit.lock``; a run locked by another ``audit run`` is ``busy`` and retried later), and
an unfinished run with a checkpoint is resumed in its own MLflow run. An exception in one run fails
that run only: the audit goes on and reports it. A finished run that a claim reads through an
evaluation of its saved weights (``audit.train.saved``: ten crops, retrieval) is evaluated once,
under its lock, and the figures join the run; nothing trains for that.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

from audit import record
from audit.events import report_epoch
from audit.lock import RunLock, describe
from audit.plan import PlannedRun
from audit.record import EVALUATIONS, Tag
from audit.track import TrackedRun, Tracker
from audit.train import checkpoint
from audit.train.distributed import Runtime, run_training
from audit.train.loop import TrainResult
from audit.train.saved import evaluate_saved

__all__ = ["LoggerFactory", "MlflowRunLogger", "Outcome", "live"]


@dataclass(frozen=True)
class Outcome:
    config_hash: str
    run_id: str | None
    status: str          # reused / finished / diverged / failed (busy: locked elsewhere, retried)
    detail: str = ""


@dataclass
class MlflowRunLogger:
    """Connects the training loop's reports to one MLflow run; never logs an epoch twice.

    Each new epoch is also reported (``audit.events``): one plain line (the run, its epoch, loss and
    errors), or an update of the live view on a terminal. A long run is never silent, and a CI log
    gets one line per epoch.
    """

    tracker: Tracker
    run_id: str
    artifacts: list[Path] = field(default_factory=list)
    logged_until: int = 0    # last epoch already in MLflow (a resumed run replays from its checkpoint)
    label: str = ""          # e.g. "relu tanh seed 0 lr 0.03": what the progress line names
    epochs: int = 0          # the run's budget, for "epoch 3/40"

    def dataset(self, info: dict[str, str], manifest: Path | None) -> None:
        tags = {Tag.dataset(k): v for k, v in info.items() if k != "device"}
        tags[Tag.DATASET_FINGERPRINT] = info["fingerprint"]
        tags[Tag.DEVICE] = info.get("device", "cpu")
        self.tracker.set_tags(self.run_id, tags)
        if manifest is not None and manifest.exists():
            self.tracker.log_artifact(self.run_id, manifest, record.Artifact.DATA)

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        if epoch <= self.logged_until:
            return
        self.tracker.log_metrics(self.run_id, metrics, step=epoch)
        self.logged_until = epoch
        if self.label:
            report_epoch(self.label, epoch, self.epochs, metrics)

    def artifact(self, path: Path, folder: str = record.Artifact.WEIGHTS) -> None:
        self.tracker.log_artifact(self.run_id, path, folder)


@dataclass
class LoggerFactory:
    """Makes the run's logger where training happens (a DDP rank opens its own tracker; it pickles)."""

    uri: str
    run_id: str
    logged_until: int
    tracker: Tracker | None = field(default=None, repr=False)
    label: str = ""
    epochs: int = 0

    def __call__(self) -> MlflowRunLogger:
        return MlflowRunLogger(self.tracker or Tracker(self.uri), self.run_id, logged_until=self.logged_until,
                               label=self.label, epochs=self.epochs)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "tracker": None}


@dataclass(frozen=True)
class Opened:
    """The MLflow run a planned run trains in, and whether it continues from a checkpoint."""

    run_id: str
    resumed: bool = False
    logged: int = 0          # the last epoch already in MLflow


def _runtime_tags(runtime: Runtime) -> dict[str, str]:
    return {Tag.PLACEMENT: runtime.placement, Tag.PROCESSES: str(runtime.processes)}


def checkpoints(workdir: Path, config_hash: str) -> Path:
    """Where a run's checkpoints, final weights and first-layer filters lie."""
    return workdir / "checkpoints" / config_hash


def find_result(run: PlannedRun, tracker: Tracker, profile: str) -> Outcome | None:
    """A finished (or diverged) run of this config, now also serving this plan's roles; None if none."""
    found = tracker.find(run.config_hash)
    if found is None or found.status not in record.USABLE:
        return None
    tracker.add_roles(found.run_id, run.tags(profile))
    return Outcome(run.config_hash, found.run_id, "reused", found.status)


def resume(tracker: Tracker, mine: TrackedRun, epoch: int, runtime: Runtime) -> Opened:
    """Reopen an interrupted run whose checkpoint (at ``epoch``) is on disk."""
    resumes = int(mine.tags.get(Tag.RESUMES, "0")) + 1
    tracker.reopen(mine.run_id, {Tag.RESUMES: str(resumes), Tag.RESUMED_AT_EPOCH: str(epoch),
                                 **_runtime_tags(runtime)})
    return Opened(mine.run_id, True, tracker.last_step(mine.run_id))


def abandon(tracker: Tracker, run_id: str) -> None:
    """Mark a run left running with nothing to resume as failed, so one live run per config remains."""
    tracker.set_tags(run_id, {Tag.ERROR: "abandoned: interrupted with no checkpoint to resume"})
    tracker.finish(run_id, record.FAILED)


def start(run: PlannedRun, tracker: Tracker, profile: str, claim_files: dict[str, Path], runtime: Runtime) -> Opened:
    """A new MLflow run: tags, params, the whole config (``config.json``) and the claim files."""
    first = run.roles[0]
    run_id = tracker.start_config(run.config, {**run.tags(profile), **_runtime_tags(runtime)},
                                  f"{first.claim}-{first.variant}-s{first.seed}")
    for claim in run.claims:
        if claim in claim_files:
            tracker.log_artifact(run_id, claim_files[claim], record.Artifact.CLAIMS)
    return Opened(run_id)


def open_run(run: PlannedRun, tracker: Tracker, ckpt_dir: Path, profile: str, claim_files: dict[str, Path],
             runtime: Runtime) -> Opened:
    """The MLflow run to train in. Call with the run's lock held.

    An unfinished run (running / failed) whose checkpoint is on disk is resumed in place. Unfinished
    runs without one were left by a process that died before its first checkpoint: an empty one is
    reused, the others are abandoned.
    """
    info = checkpoint.peek(ckpt_dir)
    unfinished = tracker.unfinished(run.config_hash)
    if info is not None:
        mine = next((r for r in unfinished if r.run_id == info["run_id"]), None)
        if mine is not None:
            return resume(tracker, mine, info["epoch"], runtime)
        checkpoint.discard(ckpt_dir)  # a checkpoint of a run the store does not hold as unfinished
    reuse = None
    for old in unfinished:
        if old.status == record.RUNNING and reuse is None and tracker.last_step(old.run_id) == 0:
            reuse = old.run_id
        elif old.status == record.RUNNING:
            abandon(tracker, old.run_id)
    if reuse is not None:
        tracker.reopen(reuse, {**run.tags(profile), **_runtime_tags(runtime)})
        return Opened(reuse)
    return start(run, tracker, profile, claim_files, runtime)


def fail(tracker: Tracker, run: PlannedRun, run_id: str, exc: Exception) -> Outcome:
    """A run that raised: failed in the store, with its error; the audit goes on."""
    tracker.set_tags(run_id, {Tag.ERROR: f"{type(exc).__name__}: {exc}"[:5000]})
    tracker.finish(run_id, record.FAILED)
    return Outcome(run.config_hash, run_id, record.FAILED, traceback.format_exc(limit=3))


def finish(tracker: Tracker, run: PlannedRun, opened: Opened, result: TrainResult, ckpt_dir: Path) -> Outcome:
    """A run trained to its end: its status in the store, and its resume state dropped."""
    tracker.set_tags(opened.run_id, {Tag.EPOCHS_RUN: str(result.epochs)})
    tracker.finish(opened.run_id, result.status)
    checkpoint.discard(ckpt_dir)
    return Outcome(run.config_hash, opened.run_id, result.status,
                   f"resumed at epoch {opened.logged}" if opened.resumed else "")


def unevaluated(run: PlannedRun, tracker: Tracker, outcome: Outcome) -> list[str]:
    """The evaluations the plan asks of a finished run whose figures the run does not have yet."""
    finished = outcome.status == record.FINISHED or (outcome.status == "reused" and outcome.detail == record.FINISHED)
    if not run.evaluations or outcome.run_id is None or not finished:
        return []
    logged = tracker.metric_names(outcome.run_id)
    return sorted(name for name in run.evaluations if not set(EVALUATIONS[name]) <= logged)


def evaluate(run: PlannedRun, tracker: Tracker, workdir: Path, outcome: Outcome) -> Outcome:
    """Log the missing saved-weights evaluations into the run (call with its lock held)."""
    missing = unevaluated(run, tracker, outcome)
    if not missing or outcome.run_id is None:
        return outcome
    names, weights = ", ".join(missing), checkpoints(workdir, run.config_hash) / "final.pt"
    if not weights.exists():
        return _noted(outcome, f"not evaluated ({names}): its final weights are not on this machine ({weights})")
    try:
        metrics = evaluate_saved(run.config, weights, workdir, missing)
    except Exception as exc:  # the run stays as it is; the measure shows it has no figure
        return _noted(outcome, f"evaluation {names} failed: {type(exc).__name__}: {exc}")
    tracker.log_metrics(outcome.run_id, metrics, step=tracker.last_step(outcome.run_id))
    return _noted(outcome, f"evaluated {names} from its saved weights")


def _noted(outcome: Outcome, note: str) -> Outcome:
    return replace(outcome, detail=f"{outcome.detail}; {note}" if outcome.detail else note)


def live(run: PlannedRun, tracker: Tracker, workdir: Path, profile: str, claim_files: dict[str, Path],
         runtime: Runtime = Runtime()) -> Outcome:
    """Reuse, resume or train one planned run; never raises for a training failure.

    Returns status ``busy`` (nothing done) when another live process holds the run's lock.
    """
    reused = find_result(run, tracker, profile)
    if reused is not None and not unevaluated(run, tracker, reused):
        return reused
    lock, owner = RunLock.try_acquire(workdir / "locks", run.config_hash)
    if lock is None:
        return Outcome(run.config_hash, None, "busy", f"being trained by {describe(owner)}")
    with lock:
        reused = find_result(run, tracker, profile)  # finished by another process while we looked
        if reused is not None:
            return evaluate(run, tracker, workdir, reused)
        init_weights = None
        if run.config.init_from:
            init_weights = checkpoints(workdir, run.config.init_from) / "final.pt"
            if not init_weights.exists():
                return Outcome(run.config_hash, None, record.FAILED, f"weights of {run.config.init_from} are missing")
        ckpt_dir = checkpoints(workdir, run.config_hash)
        opened = open_run(run, tracker, ckpt_dir, profile, claim_files, runtime)
        make_logger = LoggerFactory(tracker.uri, opened.run_id, opened.logged, tracker, run.label,
                                    run.config.train.epochs)
        try:
            result = run_training(run.config, make_logger, workdir, init_weights, opened.run_id, opened.resumed,
                                  runtime)
        except Exception as exc:  # a failed run is a result, not the end of the audit
            return fail(tracker, run, opened.run_id, exc)
        return evaluate(run, tracker, workdir, finish(tracker, run, opened, result, ckpt_dir))
