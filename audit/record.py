"""The run record: the one module that knows the names runs are stored under in MLflow.

Tags, params, metrics and artifacts are named here once; analyse, report, estimate and the
executors read and write runs through these names and accessors, never through hand-typed
``"tags.audit.…"`` strings. A run arrives from ``Tracker.runs_frame`` as a row of a pandas frame
(MLflow's ``tags.*``, ``params.*`` and ``metrics.*`` columns); the accessors turn it into typed
values: its roles (the comma-joined ``audit.variants`` and kin), status, seed, profile, metrics and
its fully resolved config (the ``config.json`` artifact, whole, where params are cut at 6,000
characters).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

import pandas as pd
from pydantic import ValidationError

from audit.config import RunConfig


class Tag:
    """Tag keys on every audit run (``audit.*``)."""

    CONFIG_HASH = "audit.config_hash"
    STATUS = "audit.status"            # one of STATUSES
    CLAIMS = "audit.claims"            # comma-joined claim ids
    VARIANT = "audit.variant"          # the first role's variant (a readable name in the MLflow UI)
    VARIANTS = "audit.variants"        # comma-joined claim:variant the run is evidence for
    TUNING = "audit.tuning"            # comma-joined claim:variant the run tunes
    PROBES = "audit.probes"            # comma-joined claim:variant the run probes
    PROBE_NOTE = "audit.probe_note"
    AUDITS = "audit.audits"            # comma-joined id@digest of the pre-registered audits it ran under
    SEED = "audit.seed"
    PROFILE = "audit.profile"
    PURPOSE = "audit.purpose"          # evidence / tuning / probe
    GIT_SHA = "audit.git_sha"
    VERSIONS = "audit.versions"        # python, torch, torchvision, numpy of the process that started the run
    ERROR = "audit.error"
    RESUMES = "audit.resumes"
    RESUMED_AT_EPOCH = "audit.resumed_at_epoch"
    PLACEMENT = "audit.placement"
    PROCESSES = "audit.processes"
    EPOCHS_RUN = "audit.epochs_run"
    DEVICE = "audit.device"
    DATASET_FINGERPRINT = "audit.dataset_fingerprint"
    TRUNCATED_PARAMS = "audit.truncated_params"  # comma-joined params cut short (the whole value: config.json)
    ORIGIN_RUN = "audit.origin_run"    # an imported run: the MLflow run id it was exported from
    UNEXPORTED = "audit.unexported_artifacts"  # an imported run: JSON {path: bytes} its bundle left out

    @staticmethod
    def dataset(field: str) -> str:
        """``audit.dataset_<field>``: name, classes, train_images, val_images, … (what training loaded)."""
        return f"audit.dataset_{field}"


# where and with what a run ran
ENVIRONMENT_TAGS = (Tag.GIT_SHA, Tag.VERSIONS, Tag.DEVICE, Tag.PLACEMENT, Tag.PROCESSES)
ROLE_TAGS = (Tag.CLAIMS, Tag.VARIANTS, Tag.TUNING, Tag.PROBES, Tag.AUDITS)  # comma-joined sets, merged on reuse

RUNNING, FINISHED, DIVERGED, FAILED = "running", "finished", "diverged", "failed"
STATUSES = (FINISHED, DIVERGED, RUNNING, FAILED)   # best first: the run a config hash is found as
USABLE = frozenset({FINISHED, DIVERGED})            # a result: reused, never retrained, counted in verdicts
ENDED = USABLE | {FAILED}


class Artifact:
    """Artifact paths inside a run."""

    CONFIG = "config.json"             # the fully resolved RunConfig, whole
    WEIGHTS = "weights"                # conv1_init.npy, conv1_final.npy
    PREDICTIONS = "predictions"        # val_probs.npy, val_labels.npy
    CLAIMS = "claims"                  # the claim files the run was planned from
    DATA = "data"                      # the data set's manifest

    @staticmethod
    def weights(name: str) -> str:
        return f"{Artifact.WEIGHTS}/{name}.npy"

    @staticmethod
    def predictions(name: str) -> str:
        return f"{Artifact.PREDICTIONS}/{name}.npy"


# Per-epoch metrics every run logs, with their ranges (holdout_* only with train.holdout_per_class).
_RANGES = {"loss": (0.0, math.inf), "top1_error": (0.0, 100.0), "top5_error": (0.0, 100.0)}
LOGGED_METRICS = {f"{split}_{q}": r for split in ("train", "val", "holdout") for q, r in _RANGES.items()} | {
    "train_loss_running": (0.0, math.inf), "train_top1_error_running": (0.0, 100.0),
    "lr": (0.0, math.inf), "epoch_seconds": (0.0, math.inf),
}
# Metrics an evaluation of a finished run's saved weights logs into that run, by evaluation
# (``audit.train.saved``): no training makes them; ``audit run`` evaluates the runs a claim reads.
_EVALUATED_RANGES = {
    "ten_crop": {f"val_{crops}_{q}": r for crops in ("centre", "10crop") for q, r in _RANGES.items()},
    "retrieval": {"val_nn_feature_agreement": (0.0, 100.0), "val_nn_pixel_agreement": (0.0, 100.0)},
}
EVALUATIONS = {name: tuple(ranges) for name, ranges in _EVALUATED_RANGES.items()}
EVALUATED_METRICS = {m: name for name, metrics in EVALUATIONS.items() for m in metrics}
LOGGED_METRICS |= {m: r for ranges in _EVALUATED_RANGES.values() for m, r in ranges.items()}


def evaluations_of(metrics: list[str | None]) -> set[str]:
    """The saved-weights evaluations that log any of ``metrics``."""
    return {EVALUATED_METRICS[m] for m in metrics if m in EVALUATED_METRICS}


WEIGHTS = ("conv1_init", "conv1_final")   # Artifact.weights(name): the first layer at the start and the end


MAX_PARAM = 6000   # MLflow's limit on a param's value (characters)
TRUNCATED = " …(truncated: the whole value is in config.json)"


# ---------------------------------------------------------------------- frame columns
def tag_col(key: str) -> str:
    """The frame column of a tag key (``Tag.STATUS`` → ``tags.audit.status``)."""
    return f"tags.{key}"


def param_col(name: str) -> str:
    """The frame column of a config field, dotted (``train.lr`` → ``params.train.lr``)."""
    return f"params.{name}"


def metric_col(name: str) -> str:
    """The frame column of a metric's last value (``val_top1_error`` → ``metrics.val_top1_error``)."""
    return f"metrics.{name}"


def tag_filter(key: str, value: str) -> str:
    """An MLflow search filter for runs whose tag ``key`` is ``value``."""
    return f"tags.`{key}` = '{value}'"


def column(frame: pd.DataFrame, name: str, default: Any = "") -> pd.Series:
    """A column as strings ('' when missing), or as floats when the default is a number."""
    if name not in frame.columns:
        return pd.Series([default] * len(frame), index=frame.index, dtype=object if isinstance(default, str) else float)
    if isinstance(default, str):
        return frame[name].fillna(default).astype(str)
    return pd.to_numeric(frame[name], errors="coerce")


def tags(frame: pd.DataFrame, key: str) -> pd.Series:
    """A tag of every run, as strings ('' when unset)."""
    return column(frame, tag_col(key))


def params(frame: pd.DataFrame, name: str) -> pd.Series:
    """A config field of every run, as its param string ('' when unset)."""
    return column(frame, param_col(name))


def metrics(frame: pd.DataFrame, name: str) -> pd.Series:
    """A metric's last value of every run (NaN when unset)."""
    return column(frame, metric_col(name), math.nan)


def split_roles(value: Any) -> list[str]:
    """A comma-joined role tag as its list ('' and NaN: none)."""
    return [r for r in value.split(",") if r] if isinstance(value, str) else []


def roles(frame: pd.DataFrame, key: str = Tag.VARIANTS) -> pd.Series:
    """Every 'claim:variant' each run serves under ``key`` (evidence by default; Tag.TUNING, Tag.PROBES)."""
    return tags(frame, key).map(split_roles)


def serving(frame: pd.DataFrame, role: str, key: str = Tag.VARIANTS) -> pd.Series:
    """Which runs serve ``role`` ('claim:variant') under ``key``."""
    return roles(frame, key).map(lambda rs: role in rs)


def usable(frame: pd.DataFrame) -> pd.Series:
    """Which runs are results (finished or diverged)."""
    return tags(frame, Tag.STATUS).isin(USABLE)


def with_status(frame: pd.DataFrame, status: str) -> pd.Series:
    return tags(frame, Tag.STATUS) == status


def of_profile(frame: pd.DataFrame, profile: str) -> pd.Series:
    return tags(frame, Tag.PROFILE) == profile


def profiles(frame: pd.DataFrame) -> list[str]:
    """The profiles the runs were made at, sorted."""
    return sorted({p for p in tags(frame, Tag.PROFILE) if p})


# ---------------------------------------------------------------------- one run (a row of the frame)
def tag(run: pd.Series, key: str) -> str:
    value = run.get(tag_col(key))
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def param(run: pd.Series, name: str) -> str:
    value = run.get(param_col(name))
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def metric(run: pd.Series, name: str) -> float:
    """A metric's last value (NaN when the run has none)."""
    try:
        return float(run.get(metric_col(name), math.nan))
    except (TypeError, ValueError):
        return math.nan


def status(run: pd.Series) -> str:
    return tag(run, Tag.STATUS)


def seed(run: pd.Series) -> int:
    return int(tag(run, Tag.SEED))


def profile(run: pd.Series) -> str:
    return tag(run, Tag.PROFILE)


def run_roles(run: pd.Series, key: str = Tag.VARIANTS) -> list[str]:
    """The 'claim:variant' roles of one run under ``key``."""
    return split_roles(tag(run, key))


def variants_of(run: pd.Series, claim: str) -> list[str]:
    """The variants of ``claim`` this run is evidence for."""
    return [r.split(":", 1)[1] for r in run_roles(run) if r.startswith(claim + ":")]


def dataset_count(run: pd.Series, field: str) -> int:
    """A count recorded when the data were loaded (classes, val_images, …); 0 when unknown."""
    try:
        return int(float(tag(run, Tag.dataset(field)) or 0))
    except ValueError:
        return 0


# ---------------------------------------------------------------------- writing a config
def param_values(cfg: RunConfig) -> tuple[dict[str, str], list[str]]:
    """The config as MLflow params (for the UI), and the names of those cut at MAX_PARAM characters.

    A cut value ends in TRUNCATED; readers take the config from the ``config.json`` artifact instead.
    """
    out, cut = {}, []
    for key, value in cfg.flat_params().items():
        if len(value) > MAX_PARAM:
            value = value[:MAX_PARAM - len(TRUNCATED)] + TRUNCATED
            cut.append(key)
        out[key] = value
    return out, cut


def config_json(cfg: RunConfig) -> str:
    return cfg.model_dump_json(indent=2)


# ---------------------------------------------------------------------- reading a config and artifacts
class ArtifactSource(Protocol):
    def artifact(self, run_id: str, path: str) -> Path: ...


class UnknownRun(LookupError):
    """A config hash the store holds no readable run for; ``str()`` is one line for the user."""


def config(run: pd.Series, store: ArtifactSource) -> RunConfig | None:
    """A run (a row of the frame) as its fully resolved config; None when that cannot be read."""
    prefix = param_col("")
    values = {col.removeprefix(prefix): str(v) for col, v in run.items()
              if isinstance(col, str) and col.startswith(prefix) and not pd.isna(v)}
    return run_config(str(run["run_id"]), values, store)


def run_config(run_id: str, values: dict[str, str], store: ArtifactSource) -> RunConfig | None:
    """A run's fully resolved config from its ``config.json``; None when it has none or it does not validate.

    Runs logged before the artifact existed fall back to their params (``values``), unless one was
    truncated.
    """
    from mlflow.exceptions import MlflowException  # what a remote store raises for a missing artifact

    try:
        return RunConfig.model_validate_json(store.artifact(run_id, Artifact.CONFIG).read_text())
    except (OSError, ValidationError, ValueError, MlflowException):
        pass
    tree = _unflatten(values)
    if tree is None:
        return None
    try:
        return RunConfig.model_validate(tree)
    except (ValidationError, ValueError, TypeError):
        return None


def config_by_hash(tracker: Any, config_hash: str) -> RunConfig:
    """The fully resolved config of the run a config hash names (``audit show``); UnknownRun if none."""
    found = tracker.find(config_hash)
    if found is None:
        raise UnknownRun(f"{config_hash}: no run with this config hash in {tracker.uri}")
    cfg = run_config(found.run_id, tracker.params(found.run_id), tracker)
    if cfg is None:
        raise UnknownRun(f"{config_hash}: run {found.run_id} has no config.json and its params are truncated "
                         "or no longer valid")
    return cfg


def _unflatten(values: dict[str, str]) -> dict | None:
    """Dotted params as a config tree; None when a value was truncated."""
    tree: dict = {}
    for key, value in values.items():
        if value.endswith(TRUNCATED) or len(value) >= MAX_PARAM:
            return None
        *path, leaf = key.split(".")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        try:
            node[leaf] = json.loads(value)
        except json.JSONDecodeError:
            node[leaf] = value
    return tree


def local_folder(uri: str) -> Path | None:
    """The folder behind a file: URI (or a plain path); None for remote stores."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and uri:
        return Path(uri)
    return None


class RunFiles:
    """Artifacts of a frame's runs, read in place when the store keeps them in a local folder.

    MLflow's ``download_artifacts`` looks the run up twice and copies the file for every artifact;
    a report of hundreds of runs reads hundreds of weights and configs. Any other store (an
    ``mlflow server``, a bucket) goes through the tracker, which downloads once per run and path.
    """

    def __init__(self, tracker: Any, frame: pd.DataFrame) -> None:
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
