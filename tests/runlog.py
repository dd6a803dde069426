"""Writing runs with chosen numbers into a real MLflow store, for tests of the analysis and the report.

Nothing trains: each run gets the tags the executor writes and a per-epoch history chosen by the
test, logged through ``audit.track.Tracker`` into a SQLite file, so the analysis reads them exactly
as it reads trained runs.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from mlflow.entities import Metric

from audit.track import Tracker

_ids = itertools.count()


def store(tmp_path: Path) -> Tracker:
    return Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=tmp_path / "artifacts")


def log_run(tracker: Tracker, claim: str, variant: str, seed: int, history: list[dict[str, float]], *,
            profile: str = "cifar", status: str = "finished", lr: float = 0.01, epochs: int | None = None,
            tuning: bool = False, classes: int = 10, val_images: int = 10_000, train_images: int = 50_000,
            audits: str = "", probe: str = "") -> str:
    """One run serving claim:variant (as evidence, tuning or a probe) with ``history[i]`` logged at epoch i + 1."""
    role = f"{claim}:{variant}"
    tags = {"audit.claims": claim, "audit.variant": variant, "audit.seed": str(seed), "audit.profile": profile,
            "audit.variants": "" if tuning or probe else role, "audit.tuning": role if tuning else "",
            "audit.probes": role if probe else "", "audit.probe_note": probe,
            "audit.dataset_classes": str(classes), "audit.dataset_val_images": str(val_images),
            "audit.dataset_train_images": str(train_images), "audit.dataset_name": "test data",
            "audit.audits": audits, "audit.purpose": "probe" if probe else "tuning" if tuning else "evidence"}
    params = {"train.epochs": str(epochs or len(history)), "train.lr": str(lr)}
    run_id = tracker.start(f"cfg{next(_ids):012d}", params, tags, f"{claim}-{variant}-{seed}")
    batch = [Metric(k, float(v), 0, step) for step, metrics in enumerate(history, start=1) for k, v in metrics.items()]
    tracker.client.log_batch(run_id, metrics=batch)   # every epoch in one call, as a finished run's history
    tracker.finish(run_id, status)
    return run_id


LRN_CIFAR_LR = 0.001   # a rate of lrn's cifar grid: its evidence runs must sit at the rate tuning chose


def log_lrn_tuning(tracker: Tracker, audits: str = "") -> None:
    """Finished tuning runs of lrn's cifar grid that choose LRN_CIFAR_LR for both nets (held-out error)."""
    for variant in ("with_lrn", "without_lrn"):
        for lr in (0.0003, 0.001, 0.003):
            for seed in (1000, 1001):
                log_run(tracker, "lrn", variant, seed, [{"holdout_top1_error": 30.0 if lr == LRN_CIFAR_LR else 40.0}],
                        lr=lr, tuning=True, audits=audits)


def errors(*values: float, metric: str = "val_top1_error") -> list[dict[str, float]]:
    """A history in which ``metric`` takes these values, one per epoch."""
    return [{metric: v} for v in values]


def log_weights(tracker: Tracker, run_id: str, name: str, weights, folder: Path) -> None:  # noqa: ANN001 - an array
    """A conv1 weights artifact (``weights/NAME.npy``), as the training loop logs it."""
    import numpy as np

    path = folder / f"{name}.npy"
    np.save(path, weights)
    tracker.log_artifact(run_id, path, "weights")
