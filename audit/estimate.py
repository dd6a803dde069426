"""What a plan will cost, from rates measured on real runs.

A rate is seconds per training image per epoch (evaluation included), measured for a *cost key*
(network, width, input size, precision, whether the training set is re-evaluated each epoch).
Rates come first from finished runs in the user's own store (their machine), then from
``audit/measured_rates.json`` written by ``bench/audit.py`` on the reference machine.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from audit import record
from audit.config import RunConfig

RATES_FILE = Path(__file__).with_name("measured_rates.json")


def cost_key(cfg: RunConfig) -> str:
    m, t = cfg.model, cfg.train
    return (f"{m.arch}|w{m.width:g}|fc{m.fc_width or 0}|{m.input_size}px|{t.precision}"
            f"|evaltrain{int(t.eval_train)}|crops{cfg.data.eval_crops}")


def train_images(cfg: RunConfig, known: dict[str, int] | None = None) -> int | None:
    """Training images per epoch, when the config or an earlier run of the same data says so."""
    d = cfg.data
    if d.source == "synthetic" and d.images_per_class is None:
        return d.synthetic.classes * d.synthetic.train_per_class
    if d.images_per_class and isinstance(d.classes, int):
        return d.classes * d.images_per_class
    if d.images_per_class and isinstance(d.classes, list):
        return len(d.classes) * d.images_per_class
    return (known or {}).get(d.fingerprint or d.path or "")


def rates_from_store(frame: pd.DataFrame, store: record.ArtifactSource) -> tuple[dict[str, float], dict[str, int]]:
    """Seconds per image-epoch by cost key, and training-set sizes by data fingerprint (or path), from finished runs.

    Each run's config is read whole from its ``config.json`` (``store`` reads artifacts).
    """
    if frame.empty:
        return {}, {}
    done = frame[record.with_status(frame, record.FINISHED)]
    seconds = record.metrics(done, "epoch_seconds")
    rates: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    for (_, run), took in zip(done.iterrows(), seconds):
        n = record.dataset_count(run, "train_images")
        cfg = record.config(run, store) if n and not math.isnan(took) else None
        if cfg is None:
            continue
        if cfg.data.fingerprint or cfg.data.path:
            sizes[cfg.data.fingerprint or cfg.data.path or ""] = n
        rates.setdefault(cost_key(cfg), []).append(took / n)
    return {k: sorted(v)[len(v) // 2] for k, v in rates.items()}, sizes


def known_rates(tracker: Any) -> tuple[dict[str, float], dict[str, int]]:
    """Rates (this store's finished runs over the reference machine's) and training-set sizes by data."""
    frame = tracker.runs_frame()
    measured, sizes = rates_from_store(frame, record.RunFiles(tracker, frame))
    return {**load_rates(), **measured}, sizes


def load_rates() -> dict[str, float]:
    if RATES_FILE.exists():
        return {k: float(v) for k, v in json.loads(RATES_FILE.read_text()).get("rates", {}).items()}
    return {}


def estimate_seconds(cfg: RunConfig, rates: dict[str, float], sizes: dict[str, int]) -> float | None:
    """Upper bound (runs that stop at a threshold may end sooner); None when no rate is known."""
    rate, n = rates.get(cost_key(cfg)), train_images(cfg, sizes)
    if rate is None or n is None:
        return None
    return cfg.train.epochs * n * rate


def human(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}min"
    return f"{seconds / 3600:.1f}h"
