"""The scheduling loop shared by every executor: which planned run goes next, and what to do with
its outcome.

A backend (in-process, a process pool, Ray) only submits one run and hands back a future. This loop
keeps up to ``backend.capacity`` runs in flight, holds back a run whose ``init_from`` parent (in the
plan) has no outcome yet, and handles the two outcomes that are not final:

- ``busy``: another process holds the run's lock (an overlapping ``audit run``). The run goes back
  into the queue and is tried again every ``poll`` seconds — other runs go first — until the lock is
  free; by then the other process has usually finished it, and the retry reuses that run.
- a crashed worker (a ``BrokenProcessPool``): the backend is asked to recover and the run is
  resubmitted (it resumes from its checkpoint), at most ``retries`` times.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Protocol

from audit.lifecycle import Outcome
from audit.plan import Plan, PlannedRun

OnEvent = Callable[[str, PlannedRun, "Outcome | None"], None]


class Backend(Protocol):
    capacity: int

    def submit(self, run: PlannedRun) -> Future[Outcome]: ...

    def recover(self, exc: BaseException) -> bool:
        """After ``exc`` came out of a future: make ``submit`` usable again; True to retry the run."""
        ...

    def close(self) -> None: ...


def drive(plan: Plan, backend: Backend, on_event: OnEvent | None = None, poll: float = 2.0,
          retries: int = 2) -> list[Outcome]:
    """Run the plan to the end on ``backend``; outcomes in plan order, one per run."""
    order = plan.ordered()
    pending = list(order)
    running: dict[Future[Outcome], PlannedRun] = {}
    done: dict[str, Outcome] = {}
    not_before: dict[str, float] = {}
    attempts: dict[str, int] = {}
    announced: set[tuple[str, str]] = set()

    def event(kind: str, run: PlannedRun, outcome: Outcome | None) -> None:
        if on_event and (kind not in ("start", "wait") or (kind, run.config_hash) not in announced):
            announced.add((kind, run.config_hash))
            on_event(kind, run, outcome)

    try:
        while pending or running:
            now = time.monotonic()
            for run in list(pending):
                if len(running) >= backend.capacity:
                    break
                parent = run.config.init_from
                if (parent and parent in plan.runs and parent not in done) or not_before.get(run.config_hash, 0) > now:
                    continue
                event("start", run, None)
                pending.remove(run)
                running[backend.submit(run)] = run
            waits = [not_before[r.config_hash] - now for r in pending if r.config_hash in not_before]
            timeout = max(0.05, min(waits)) if waits else None
            if not running:
                time.sleep(timeout or poll)
                continue
            finished, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
            for fut in finished:
                run = running.pop(fut)
                try:
                    outcome = fut.result()
                except Exception as exc:  # the worker died, not the training (that is caught inside)
                    attempts[run.config_hash] = attempts.get(run.config_hash, 0) + 1
                    if attempts[run.config_hash] <= retries and backend.recover(exc):
                        pending.insert(0, run)
                        continue
                    outcome = Outcome(run.config_hash, None, "failed", f"worker failed: {type(exc).__name__}: {exc}")
                if outcome.status == "busy":
                    event("wait", run, outcome)
                    not_before[run.config_hash] = time.monotonic() + poll
                    pending.append(run)
                    continue
                done[run.config_hash] = outcome
                event("end", run, outcome)
    finally:
        backend.close()
    return [done[r.config_hash] for r in order]


class InlineBackend:
    """Runs each submitted run right here, one at a time (``--jobs 1``)."""

    capacity = 1

    def __init__(self, work: Callable[[PlannedRun], Outcome]) -> None:
        self._work = work

    def submit(self, run: PlannedRun) -> Future[Outcome]:
        fut: Future[Outcome] = Future()
        try:
            fut.set_result(self._work(run))
        except Exception as exc:
            fut.set_exception(exc)
        return fut

    def recover(self, exc: BaseException) -> bool:
        return False

    def close(self) -> None:
        pass
