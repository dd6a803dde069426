"""The only module that talks to MLflow.

One experiment holds the whole audit ("alexnet-audit"), one MLflow run per RunConfig, found again
by the tag ``audit.config_hash`` so a finished run is reused and an unfinished one resumed.
Metrics are logged in batches (one call per epoch), never one call per value.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from audit import record
from audit.record import Tag

if TYPE_CHECKING:
    from audit.config import RunConfig

EXPERIMENT = "alexnet-audit"
DEFAULT_URI = "sqlite:///runs/mlflow.db"


def default_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def portable_uri(uri: str) -> str:
    """The same store as seen from any working directory: relative SQLite paths made absolute.

    Worker processes (``--jobs``, Ray tasks) may start elsewhere; they must log to this very store.
    """
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    return uri


@contextlib.contextmanager
def _first_use_lock(uri: str) -> Iterator[None]:
    """Serialise opening a SQLite store: two processes creating a fresh database at once corrupt it."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(Path(uri.removeprefix("sqlite:///")).with_suffix(".init.lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> str:
    """The software a run's numbers depend on, beside its commit: ``python 3.11.9, torch 2.14.1, ...``."""
    import platform
    from importlib import metadata

    found = [f"python {platform.python_version()}"]
    for name in ("torch", "torchvision", "numpy"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


@dataclass(frozen=True)
class TrackedRun:
    run_id: str
    status: str          # audit.status: running / finished / diverged / failed
    tags: dict[str, str]

    @classmethod
    def of(cls, run: Any) -> TrackedRun:
        """From an MLflow run entity (a run without a status tag counts as failed)."""
        return cls(run.info.run_id, run.data.tags.get(Tag.STATUS, record.FAILED), dict(run.data.tags))


class Tracker:
    """A handle on the audit's MLflow store; create it once in the parent before any worker."""

    def __init__(self, uri: str | None = None, artifact_root: str | Path = "runs/artifacts") -> None:
        import mlflow
        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines drown the audit's own
        self.uri = portable_uri(uri or default_uri())  # MLflow caches stores by URI: relative paths would alias
        if self.uri.startswith("sqlite:///"):
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(self.uri)
        self._artifact_root = Path(artifact_root)
        self._downloads: tempfile.TemporaryDirectory[str] | None = None  # removed with the tracker
        with _first_use_lock(self.uri):  # the client opens (and on first use creates) the database
            self.client = MlflowClient(tracking_uri=self.uri)
            self.experiment_id = self._ensure_experiment()

    def _ensure_experiment(self) -> str:
        exp = self.client.get_experiment_by_name(EXPERIMENT)
        if exp is not None:
            return exp.experiment_id
        location = None
        if not self.uri.startswith("http"):
            self._artifact_root.mkdir(parents=True, exist_ok=True)
            location = self._artifact_root.resolve().as_uri()
        try:
            return self.client.create_experiment(EXPERIMENT, artifact_location=location)
        except Exception:  # another process created it between our look and our create
            exp = self.client.get_experiment_by_name(EXPERIMENT)
            if exp is None:
                raise
            return exp.experiment_id

    # ------------------------------------------------------------------ finding runs
    def _runs_of(self, config_hash: str) -> list[Any]:
        return self.client.search_runs([self.experiment_id], max_results=50,
                                       filter_string=record.tag_filter(Tag.CONFIG_HASH, config_hash))

    def find(self, config_hash: str) -> TrackedRun | None:
        """The best run for a config: finished beats diverged beats running beats failed."""
        runs = [(TrackedRun.of(r), r.info.start_time) for r in self._runs_of(config_hash)]
        if not runs:
            return None
        rank = {s: i for i, s in enumerate(record.STATUSES)}
        return min(runs, key=lambda rs: (rank.get(rs[0].status, len(rank)), -rs[1]))[0]

    def get(self, run_id: str) -> TrackedRun | None:
        """One run by id (None if the store does not know it)."""
        from mlflow.exceptions import MlflowException

        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return None
        return TrackedRun.of(run)

    def unfinished(self, config_hash: str) -> list[TrackedRun]:
        """Runs of a config left running or failed (candidates for resuming)."""
        found = [TrackedRun.of(r) for r in self._runs_of(config_hash)]
        return [r for r in found if r.status in (record.RUNNING, record.FAILED)]

    def params(self, run_id: str) -> dict[str, str]:
        """A run's params (dotted config fields, as strings)."""
        return dict(self.client.get_run(run_id).data.params)

    def metric_names(self, run_id: str) -> set[str]:
        """The metrics a run has logged."""
        return set(self.client.get_run(run_id).data.metrics)

    def last_step(self, run_id: str, key: str = "train_loss") -> int:
        """The last epoch logged to a run (0: none), so a resumed run never logs a step twice."""
        return max((m.step for m in self.client.get_metric_history(run_id, key)), default=0)

    def reopen(self, run_id: str, tags: dict[str, str]) -> None:
        """Mark an interrupted or failed run as running again (it is being resumed)."""
        self.set_tags(run_id, {Tag.STATUS: record.RUNNING, **tags})
        if Tag.ERROR in self.client.get_run(run_id).data.tags:
            self.client.delete_tag(run_id, Tag.ERROR)
        self.client.update_run(run_id, status="RUNNING")

    # ------------------------------------------------------------------ writing
    def start_config(self, config: RunConfig, tags: dict[str, str], name: str) -> str:
        """A new run of ``config``: its params (for the MLflow UI) and the whole config as ``config.json``."""
        params, cut = record.param_values(config)
        extra = {Tag.TRUNCATED_PARAMS: ",".join(cut)} if cut else {}
        run_id = self.start(config.config_hash, params, {**tags, **extra}, name)
        self.client.log_text(run_id, record.config_json(config), record.Artifact.CONFIG)
        return run_id

    def start(self, config_hash: str, params: dict[str, str], tags: dict[str, str], name: str) -> str:
        """A new run with these params as they are (``start_config`` is the executor's way in)."""
        from mlflow.entities import Param

        run = self.client.create_run(self.experiment_id, run_name=name,
                                     tags={Tag.CONFIG_HASH: config_hash, Tag.STATUS: record.RUNNING,
                                           Tag.GIT_SHA: git_sha(), Tag.VERSIONS: versions(), **tags})
        items = [Param(k, str(v)[:record.MAX_PARAM]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run.info.run_id, params=items[i:i + 100])
        return run.info.run_id

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        self.client.log_batch(run_id, metrics=batch)

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def add_roles(self, run_id: str, tags: dict[str, str]) -> None:
        """Record that more claims use this run: merge the comma-separated claims and variants tags.

        Runs are shared across claims; the analysis finds a run by its ``audit.variants`` roles.
        """
        current = self.client.get_run(run_id).data.tags
        merged = {}
        for key in record.ROLE_TAGS:
            have = current.get(key, "")
            wanted = set(record.split_roles(have)) | set(record.split_roles(tags.get(key, "")))
            union = ",".join(sorted(wanted))
            if union != have:
                merged[key] = union
        if merged:
            self.set_tags(run_id, merged)

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)

    def finish(self, run_id: str, status: str) -> None:
        """status: finished / diverged / failed (the audit's own tag; MLflow's state follows)."""
        self.set_tags(run_id, {Tag.STATUS: status})
        self.client.set_terminated(run_id, "FINISHED" if status in record.USABLE else "FAILED")

    # ------------------------------------------------------------------ reading
    def runs_frame(self) -> pd.DataFrame:
        """Every run of the audit in one query: params.*, metrics.* (last values) and tags.*.

        ``mlflow.search_runs`` reads the process-wide tracking URI, which the last Tracker made set:
        point it at this store for the query, then put it back, so two trackers never read each other.
        """
        import mlflow

        before = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(self.uri)
        try:
            df = mlflow.search_runs([self.experiment_id], max_results=100_000, output_format="pandas")
        finally:
            mlflow.set_tracking_uri(before)
        return df if isinstance(df, pd.DataFrame) else pd.DataFrame()

    def history(self, run_id: str, keys: list[str]) -> pd.DataFrame:
        """Per-epoch values of the given metrics, one row per step (cached: runs do not change once read)."""
        return self._history(run_id, tuple(keys)).copy()

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one tracker per command; the cache dies with it
    def _history(self, run_id: str, keys: tuple[str, ...]) -> pd.DataFrame:
        rows: dict[int, dict[str, Any]] = {}
        for key in keys:
            for m in self.client.get_metric_history(run_id, key):
                rows.setdefault(m.step, {"step": m.step})[key] = m.value
        return pd.DataFrame(sorted(rows.values(), key=lambda r: r["step"]), columns=["step", *keys])

    @functools.lru_cache(maxsize=4096)  # noqa: B019
    def artifact(self, run_id: str, path: str) -> Path:
        """A local copy of one artifact (downloaded once per tracker)."""
        if self._downloads is None:
            self._downloads = tempfile.TemporaryDirectory(prefix="audit-artifacts-")
        return Path(self.client.download_artifacts(run_id, path, str(Path(self._downloads.name) / run_id)))
