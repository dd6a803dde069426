"""The local executor: runs a plan in this process (``--jobs 1``) or in N worker processes.

It only schedules: each run's life (reuse, lock, resume, train, finish) is ``audit.lifecycle.live``,
the same function a Ray task runs (``audit.executors.ray``).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from audit import events
from audit.executors.schedule import InlineBackend, OnEvent, drive
from audit.lifecycle import Outcome, live
from audit.plan import Plan, PlannedRun
from audit.track import Tracker, portable_uri
from audit.train.distributed import Runtime

__all__ = ["Outcome", "execute"]


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
    return live(run, tracker, workdir, profile, claim_files, runtime)


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
        work = functools.partial(live, tracker=tracker, workdir=workdir, profile=plan.profile,
                                 claim_files=claim_files, runtime=runtime)
        return drive(plan, InlineBackend(work), on_event, poll)
    threads = runtime.threads or max(1, (os.cpu_count() or 1) // jobs)
    work = functools.partial(_work, uri=portable_uri(tracker.uri), workdir=workdir.resolve(), profile=plan.profile,
                             claim_files={k: Path(v).resolve() for k, v in claim_files.items()},
                             runtime=runtime)
    gpus = 2 if runtime.placement == "two-device" else runtime.processes
    return drive(plan, PoolBackend(jobs, work, threads, gpus), on_event, poll)
