"""The Ray executor: one Ray task per planned run, on a local or existing Ray cluster.

Each task asks for ``--gpus-per-run`` GPUs and ``--cpus-per-run`` CPUs and runs the same
``audit.lifecycle.live`` as the local executor (reuse → lock → resume or start → train), so runs carry the
same tags wherever they ran. Ray retries a task whose worker died (``max_retries``); the retry finds
the dead worker's lock stale and resumes from its checkpoint. Workers log straight to the tracking
URI (a relative SQLite path is made absolute first; across machines use an ``mlflow server`` and a
shared ``--runs-dir`` for checkpoints and locks). The driver made the store before any task starts.

Ray is an optional extra (``pip install ".[ray]"``): it is imported only here, only when asked for.
Workers must be able to import this package (same environment, or installed on the cluster's nodes).
"""

from __future__ import annotations

import functools
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from audit.executors.schedule import OnEvent, drive
from audit.lifecycle import Outcome, live
from audit.plan import Plan, PlannedRun
from audit.spec import SpecError
from audit.track import Tracker, portable_uri
from audit.train.distributed import Runtime


class RayUnavailable(SpecError):
    """``--executor ray`` without Ray installed, or no cluster at ``--address`` (a user error: exit 2)."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailable('--executor ray needs Ray: pip install "alexnet-audit[ray]"') from None
    return ray


_TRACKERS: dict[str, Tracker] = {}


def _task(run: PlannedRun, uri: str, workdir: Path, profile: str, claim_files: dict[str, Path],
          runtime: Runtime) -> Outcome:
    """The body of one Ray task (runs on a worker)."""
    if runtime.threads:
        import torch

        torch.set_num_threads(runtime.threads)
    tracker = _TRACKERS.get(uri) or _TRACKERS.setdefault(uri, Tracker(uri))
    return live(run, tracker, workdir, profile, claim_files, runtime)


class RayBackend:
    def __init__(self, address: str | None, gpus: float, cpus: float, retries: int,
                 work: functools.partial) -> None:
        ray = self._raymod = _ray()
        self._owned = not ray.is_initialized()
        if self._owned:
            try:
                ray.init(address=address, include_dashboard=False, logging_level="warning")
            except (ConnectionError, ValueError) as exc:
                raise RayUnavailable(f"cannot reach a Ray cluster at {address}: {exc}") from None
        total = ray.cluster_resources()
        self.gpus = gpus if total.get("GPU", 0) > 0 else 0.0
        fits = [total.get("CPU", 1) / max(cpus, 1e-9)] + ([total["GPU"] / self.gpus] if self.gpus else [])
        self.capacity = max(1, int(min(fits)))
        self._remote = ray.remote(num_gpus=self.gpus, num_cpus=cpus, max_retries=retries,
                                  retry_exceptions=False)(_task)
        self._work = work

    def submit(self, run: PlannedRun) -> Future[Outcome]:
        return self._remote.remote(run, **self._work.keywords).future()

    def recover(self, exc: BaseException) -> bool:
        return False  # Ray has already retried the task max_retries times

    def close(self) -> None:
        if self._owned:
            self._raymod.shutdown()


def execute(plan: Plan, tracker: Tracker, workdir: Path, claim_files: dict[str, Path],
            on_event: OnEvent | None = None, address: str | None = None, gpus_per_run: float = 0,
            cpus_per_run: float = 1, runtime: Runtime = Runtime(), retries: int = 2,
            poll: float = 2.0) -> list[Outcome]:
    """Run the plan on Ray; ``tracker`` (made here, in the driver) has created the store already."""
    runtime = Runtime(runtime.placement, runtime.processes, runtime.threads or max(1, int(cpus_per_run)))
    work = functools.partial(_task, uri=portable_uri(tracker.uri), workdir=workdir.resolve(), profile=plan.profile,
                             claim_files={k: Path(v).resolve() for k, v in claim_files.items()}, runtime=runtime)
    backend = RayBackend(address, gpus_per_run, cpus_per_run, retries, work)
    return drive(plan, backend, on_event, poll)
