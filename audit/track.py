"""The only module that talks to MLflow.

One experiment holds the whole audit ("alexnet-audit"), one MLflow run per RunConfig, found again
by the tag ``audit.config_hash`` so a finished run is reused and an unfinished one resumed.
Metrics are logged in batches (one call per epoch), never one call per value.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

EXPERIMENT = "alexnet-audit"
DEFAULT_URI = "sqlite:///runs/mlflow.db"
_TAG = "audit."


def default_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass(frozen=True)
class TrackedRun:
    run_id: str
    status: str          # audit.status: running / finished / diverged / failed
    tags: dict[str, str]


class Tracker:
    """A handle on the audit's MLflow store; create it once in the parent before any worker."""

    def __init__(self, uri: str | None = None, artifact_root: str | Path = "runs/artifacts") -> None:
        import mlflow
        from mlflow.tracking import MlflowClient

        self.uri = uri or default_uri()
        if self.uri.startswith("sqlite:///"):
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(self.uri)
        self.client = MlflowClient(tracking_uri=self.uri)
        self._artifact_root = Path(artifact_root)
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
    def find(self, config_hash: str) -> TrackedRun | None:
        """The best run for a config: finished beats diverged beats running beats failed."""
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`audit.config_hash` = '{config_hash}'", max_results=50
        )
        if not runs:
            return None
        rank = {"finished": 0, "diverged": 1, "running": 2, "failed": 3}
        best = min(runs, key=lambda r: (rank.get(r.data.tags.get("audit.status", "failed"), 4),
                                        -r.info.start_time))
        return TrackedRun(best.info.run_id, best.data.tags.get("audit.status", "failed"), dict(best.data.tags))

    # ------------------------------------------------------------------ writing
    def start(self, config_hash: str, params: dict[str, str], tags: dict[str, str], name: str) -> str:
        from mlflow.entities import Param

        run = self.client.create_run(self.experiment_id, run_name=name,
                                     tags={"audit.config_hash": config_hash, "audit.status": "running",
                                           "audit.git_sha": git_sha(), **tags})
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
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

    def add_claims(self, run_id: str, claims: list[str]) -> None:
        """Record that more claims use this run (runs are shared across claims)."""
        current = self.client.get_run(run_id).data.tags.get("audit.claims", "")
        merged = sorted(set(filter(None, current.split(","))) | set(claims))
        if ",".join(merged) != current:
            self.set_tags(run_id, {"audit.claims": ",".join(merged)})

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)

    def finish(self, run_id: str, status: str) -> None:
        """status: finished / diverged / failed (the audit's own tag; MLflow's state follows)."""
        self.set_tags(run_id, {"audit.status": status})
        self.client.set_terminated(run_id, "FINISHED" if status in ("finished", "diverged") else "FAILED")

    # ------------------------------------------------------------------ reading
    def runs_frame(self) -> pd.DataFrame:
        """Every run of the audit in one query: params.*, metrics.* (last values) and tags.*."""
        import mlflow

        df = mlflow.search_runs([self.experiment_id], max_results=100_000, output_format="pandas")
        return df if isinstance(df, pd.DataFrame) else pd.DataFrame()

    def history(self, run_id: str, keys: list[str]) -> pd.DataFrame:
        """Per-epoch values of the given metrics, one row per step."""
        rows: dict[int, dict[str, Any]] = {}
        for key in keys:
            for m in self.client.get_metric_history(run_id, key):
                rows.setdefault(m.step, {"step": m.step})[key] = m.value
        return pd.DataFrame(sorted(rows.values(), key=lambda r: r["step"]))

    def download_artifact(self, run_id: str, path: str, dst: str | Path) -> Path:
        return Path(self.client.download_artifacts(run_id, path, str(dst)))
