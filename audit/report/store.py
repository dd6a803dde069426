"""The report's read access to runs: the tracker, with a local store's artifacts read in place.

MLflow's ``download_artifacts`` looks the run up twice and copies the file for every artifact; a
report of hundreds of runs reads hundreds of conv1 weights and predictions. When a run's artifact
URI is a local folder (the default ``runs/`` store) the file is read where it lies; any other store
(an ``mlflow server``, a bucket) goes through the tracker as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

import pandas as pd

from audit.analyse.measure import RunStore


class Store(RunStore, Protocol):
    """What the report reads: the one frame of runs, plus the histories and artifacts analyse needs."""

    uri: str

    def runs_frame(self) -> pd.DataFrame: ...


def local_folder(uri: str) -> Path | None:
    """The folder behind a file: URI (or a plain path); None for remote stores."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and uri:
        return Path(uri)
    return None


class ReportStore:
    """A RunStore over a tracker and its frame of runs (histories cached by the tracker)."""

    def __init__(self, tracker: Store, frame: pd.DataFrame) -> None:
        self.tracker = tracker
        self.uri = tracker.uri
        roots = frame["artifact_uri"] if "artifact_uri" in frame.columns else pd.Series(dtype=str)
        self._roots = {rid: local_folder(str(uri)) for rid, uri in zip(frame.get("run_id", []), roots) if uri}

    def history(self, run_id: str, keys: list[str]) -> pd.DataFrame:
        return self.tracker.history(run_id, keys)

    def artifact(self, run_id: str, path: str) -> Path:
        root = self._roots.get(run_id)
        if root is not None and root.is_dir():
            local = root / path
            if not local.is_file():
                raise FileNotFoundError(f"run {run_id} has no artifact {path}")
            return local
        return self.tracker.artifact(run_id, path)
