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

import pandas as pd

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
    return (known or {}).get(d.path or "")


def rates_from_store(frame: pd.DataFrame) -> tuple[dict[str, float], dict[str, int]]:
    """Seconds per image-epoch by cost key, and training-set sizes by data path, from finished runs."""
    need = {"metrics.epoch_seconds", "tags.audit.dataset_train_images", "tags.audit.status"}
    if frame.empty or not need <= set(frame.columns):
        return {}, {}
    done = frame[frame["tags.audit.status"] == "finished"]
    rates: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    for _, run in done.iterrows():
        try:
            cfg = RunConfig.model_validate(_unflatten(run))
            n = int(run["tags.audit.dataset_train_images"])
        except (ValueError, TypeError):
            continue
        if cfg.data.path:
            sizes[cfg.data.path] = n
        rates.setdefault(cost_key(cfg), []).append(float(run["metrics.epoch_seconds"]) / max(n, 1))
    return {k: sorted(v)[len(v) // 2] for k, v in rates.items()}, sizes


def _unflatten(run: pd.Series) -> dict:
    tree: dict = {}
    for col, value in run.items():
        if not isinstance(col, str) or not col.startswith("params.") or pd.isna(value):
            continue
        *path, leaf = col.removeprefix("params.").split(".")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        try:
            node[leaf] = json.loads(value)
        except (json.JSONDecodeError, TypeError):
            node[leaf] = value
    return tree


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
