"""The local executor: runs a plan in this process (``--jobs 1``) or in N worker processes.

Every run is looked up by its config hash first: a finished (or diverged) run is reused, never
retrained. Otherwise the run's lock is taken (``audit.executors.lock``; a run locked by another
``audit run`` is retried later, see ``audit.executors.schedule``), and an unfinished run with a
checkpoint is resumed in its own MLflow run. An exception in one run fails that run only; the audit
goes on and reports it. ``execute_one`` is also what a Ray task runs (``audit.executors.ray``).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit import events
from audit.events import report_epoch
from audit.executors.lock import RunLock, describe
from audit.executors.schedule import InlineBackend, OnEvent, Outcome, drive
from audit.plan import Plan, PlannedRun
from audit.track import Tracker, portable_uri
from audit.train import checkpoint
from audit.train.distributed import Runtime, run_training

__all__ = ["MlflowRunLogger", "Outcome", "execute", "execute_one"]


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
        tags = {f"audit.dataset_{k}": v for k, v in info.items() if k != "device"}
        tags["audit.dataset_fingerprint"] = info["fingerprint"]
        tags["audit.device"] = info.get("device", "cpu")
        self.tracker.set_tags(self.run_id, tags)
        if manifest is not None and manifest.exists():
            self.tracker.log_artifact(self.run_id, manifest, "data")

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        if epoch <= self.logged_until:
            return
        self.tracker.log_metrics(self.run_id, metrics, step=epoch)
        self.logged_until = epoch
        if self.label:
            report_epoch(self.label, epoch, self.epochs, metrics)

    def artifact(self, path: Path, folder: str = "weights") -> None:
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


def _runtime_tags(runtime: Runtime) -> dict[str, str]:
    return {"audit.placement": runtime.placement, "audit.processes": str(runtime.processes)}


def _open_run(run: PlannedRun, tracker: Tracker, ckpt_dir: Path, profile: str, claim_files: dict[str, Path],
              runtime: Runtime) -> tuple[str, bool, int]:
    """(MLflow run id, resume?, last logged epoch). Call with the run's lock held.

    An unfinished run (running / failed) whose checkpoint is on disk is resumed in place. Unfinished
    runs without one were left by a process that died before its first checkpoint: an empty one is
    reused, the others are marked failed ("abandoned") so only one live run per config remains.
    """
    info = checkpoint.peek(ckpt_dir)
    unfinished = tracker.unfinished(run.config_hash)
    if info is not None:
        mine = next((r for r in unfinished if r.run_id == info["run_id"]), None)
        if mine is not None:
            resumes = int(mine.tags.get("audit.resumes", "0")) + 1
            tracker.reopen(mine.run_id, {"audit.resumes": str(resumes), "audit.resumed_at_epoch": str(info["epoch"]),
                                         **_runtime_tags(runtime)})
            return mine.run_id, True, tracker.last_step(mine.run_id)
        checkpoint.discard(ckpt_dir)  # a checkpoint of a run the store does not hold as unfinished
    reuse = None
    for old in unfinished:
        if old.status == "running" and reuse is None and tracker.last_step(old.run_id) == 0:
            reuse = old.run_id
        elif old.status == "running":
            tracker.set_tags(old.run_id, {"audit.error": "abandoned: interrupted with no checkpoint to resume"})
            tracker.finish(old.run_id, "failed")
    if reuse is not None:
        tracker.reopen(reuse, {**run.tags(profile), **_runtime_tags(runtime)})
        return reuse, False, 0
    first = run.roles[0]
    name = f"{first.claim}-{first.variant}-s{first.seed}"
    run_id = tracker.start(run.config_hash, run.config.flat_params(),
                           {**run.tags(profile), **_runtime_tags(runtime)}, name)
    for claim in run.claims:
        if claim in claim_files:
            tracker.log_artifact(run_id, claim_files[claim], "claims")
    return run_id, False, 0


def execute_one(run: PlannedRun, tracker: Tracker, workdir: Path, profile: str, claim_files: dict[str, Path],
                runtime: Runtime = Runtime()) -> Outcome:
    """Reuse, resume or train one planned run; never raises for a training failure.

    Returns status ``busy`` (nothing done) when another live process holds the run's lock.
    """
    found = tracker.find(run.config_hash)
    if found is not None and found.status in ("finished", "diverged"):
        tracker.add_roles(found.run_id, run.tags(profile))
        return Outcome(run.config_hash, found.run_id, "reused", found.status)
    lock, owner = RunLock.try_acquire(workdir / "locks", run.config_hash)
    if lock is None:
        return Outcome(run.config_hash, None, "busy", f"being trained by {describe(owner)}")
    with lock:
        found = tracker.find(run.config_hash)  # finished by another process while we looked
        if found is not None and found.status in ("finished", "diverged"):
            tracker.add_roles(found.run_id, run.tags(profile))
            return Outcome(run.config_hash, found.run_id, "reused", found.status)
        init_weights = None
        if run.config.init_from:
            init_weights = workdir / "checkpoints" / run.config.init_from / "final.pt"
            if not init_weights.exists():
                return Outcome(run.config_hash, None, "failed", f"weights of {run.config.init_from} are missing")
        ckpt_dir = workdir / "checkpoints" / run.config_hash
        run_id, resume, logged = _open_run(run, tracker, ckpt_dir, profile, claim_files, runtime)
        make_logger = LoggerFactory(tracker.uri, run_id, logged, tracker, run.label, run.config.train.epochs)
        try:
            result = run_training(run.config, make_logger, workdir, init_weights, run_id, resume, runtime)
        except Exception as exc:  # a failed run is a result, not the end of the audit
            tracker.set_tags(run_id, {"audit.error": f"{type(exc).__name__}: {exc}"[:5000]})
            tracker.finish(run_id, "failed")
            return Outcome(run.config_hash, run_id, "failed", traceback.format_exc(limit=3))
        tracker.set_tags(run_id, {"audit.epochs_run": str(result.epochs)})
        tracker.finish(run_id, result.status)
        checkpoint.discard(ckpt_dir)
        return Outcome(run.config_hash, run_id, result.status, f"resumed at epoch {logged}" if resume else "")


# ---------------------------------------------------------------------- worker processes (--jobs N)
_WORKER: dict[str, Tracker] = {}


def _init_worker(threads: int | None, gpu_slots: Any, epoch_events: Any = None) -> None:
    """Threads per worker, on a GPU machine this worker's own GPUs (set before CUDA starts), and where
    its epoch events go (the parent's live view, through a queue; None: plain lines)."""
    if epoch_events is not None:
        events.send_to(epoch_events)
    if gpu_slots is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu_slots.get()
    if threads:
        import torch

        torch.set_num_threads(threads)


def _gpu_slots(ctx: Any, jobs: int, per_worker: int) -> Any:
    """A queue of CUDA_VISIBLE_DEVICES values, one per worker (round-robin when GPUs are fewer); None on CPU."""
    import torch

    count = torch.cuda.device_count()
    if count == 0:
        return None
    visible = (os.environ.get("CUDA_VISIBLE_DEVICES") or ",".join(map(str, range(count)))).split(",")[:count]
    slots = ctx.Queue()
    for worker in range(jobs):
        slots.put(",".join(visible[(worker * per_worker + i) % count] for i in range(per_worker)))
    return slots


def _work(run: PlannedRun, uri: str, workdir: Path, profile: str, claim_files: dict[str, Path],
          runtime: Runtime) -> Outcome:
    """One run in a worker process (its tracker opened once per process; the parent made the store)."""
    tracker = _WORKER.get(uri) or _WORKER.setdefault(uri, Tracker(uri))
    return execute_one(run, tracker, workdir, profile, claim_files, runtime)


class PoolBackend:
    """``--jobs N``: N spawned worker processes, one run each at a time."""

    def __init__(self, jobs: int, work: Callable[[PlannedRun], Outcome], threads: int | None,
                 gpus_per_worker: int = 1) -> None:
        self.capacity, self._work, self._threads, self._gpus = jobs, work, threads, gpus_per_worker
        ctx = multiprocessing.get_context("spawn")
        self._relay = events.Relay(ctx) if events.has_sink() else None   # a live view here: workers send to it
        self._pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.capacity, mp_context=ctx, initializer=_init_worker,
                                   initargs=(self._threads, _gpu_slots(ctx, self.capacity, self._gpus),
                                             self._relay.queue if self._relay else None))

    def submit(self, run: PlannedRun) -> Future[Outcome]:
        return self._pool.submit(self._work, run)

    def recover(self, exc: BaseException) -> bool:
        """A worker died (killed, out of memory): start a fresh pool; the run resumes from its checkpoint."""
        if not isinstance(exc, BrokenProcessPool):
            return False
        if getattr(self._pool, "_broken", True):
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new()
        return True

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._relay is not None:
            self._relay.close()


def execute(plan: Plan, tracker: Tracker, workdir: Path, claim_files: dict[str, Path],
            on_event: OnEvent | None = None, jobs: int = 1, runtime: Runtime = Runtime(),
            poll: float = 2.0) -> list[Outcome]:
    """Run the plan; ``tracker`` (made in this process) has already created the store and experiment."""
    if jobs <= 1:
        if runtime.threads:
            import torch

            torch.set_num_threads(runtime.threads)
        work = functools.partial(execute_one, tracker=tracker, workdir=workdir, profile=plan.profile,
                                 claim_files=claim_files, runtime=runtime)
        return drive(plan, InlineBackend(work), on_event, poll)
    threads = runtime.threads or max(1, (os.cpu_count() or 1) // jobs)
    work = functools.partial(_work, uri=portable_uri(tracker.uri), workdir=workdir.resolve(), profile=plan.profile,
                             claim_files={k: Path(v).resolve() for k, v in claim_files.items()},
                             runtime=runtime)
    gpus = 2 if runtime.placement == "two-device" else runtime.processes
    return drive(plan, PoolBackend(jobs, work, threads, gpus), on_event, poll)
