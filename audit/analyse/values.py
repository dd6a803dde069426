"""One run's number for a measure: crossings interpolated, censoring and divergence made explicit.

The rules (README.md, "Verdicts"):
- a crossing of a threshold is interpolated linearly between the two evaluations around it (an
  untrained net sits at chance before the first one), so epochs are fractional; a run that never
  crosses is *censored*: its value is "at least its budget";
- a diverged run counts at the measure's worst value: chance error (chance loss), never crossing
  (censored at the budget), and an overfitting gap of 0 (both errors at chance);
- ``at_epoch`` reads the metric as it stood after one early epoch; a run that ended before it has no value;
- every value carries its *resolution*: one image of the split it was measured on for an error rate,
  one evaluation interval (an epoch) for a crossing, so that ties never read as certainty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from audit import record
from audit.analyse.colour import colour_specialisation
from audit.record import Artifact, dataset_count
from audit.spec import Measure

CROSSINGS = ("epochs_to_threshold", "epochs_to_converge")


class RunStore(Protocol):
    """Read access to tracked runs beyond the one-query frame (the tracker provides it)."""

    def history(self, run_id: str, keys: list[str]) -> pd.DataFrame: ...
    def artifact(self, run_id: str, path: str) -> Path: ...


@dataclass(frozen=True)
class Value:
    value: float
    flag: str = ""              # e.g. "never reached 25: at least its budget", "diverged"
    resolution: float = 0.0     # the measure's step for this run, in its own units
    censored: bool = False      # the true value is at least ``value`` (a crossing never reached)


def chance(metric: str, classes: int) -> float | None:
    """The metric's value for a net that guesses: the worst value an error or a loss can usefully take."""
    if "top5" in metric and "error" in metric:
        return 100.0 * (1 - min(5, classes) / classes)
    if "error" in metric:
        return 100.0 * (1 - 1 / classes)
    if "loss" in metric:
        return math.log(classes)
    return None


def resolution(run: pd.Series, metric: str) -> float:
    """One image of the split an error rate was measured on, in percentage points (0 for losses)."""
    if "error" not in metric:
        return 0.0
    if metric.startswith("val"):
        n = dataset_count(run, "val_images")
    elif metric.startswith("holdout"):
        n = dataset_count(run, "holdout_images")
    else:   # the training error is measured on the whole set or a fixed slice of it (train_eval_images)
        n = dataset_count(run, "train_eval_images") or dataset_count(run, "train_images")
    return 100.0 / n if n else 0.0


def crossing(steps: list[float], values: list[float], target: float, start: float | None) -> float | None:
    """The fractional step at which ``values`` first reach ``target`` (≤), linear between evaluations.

    ``start`` is the value before the first evaluation (step 0); None: a crossing at the first
    evaluation is taken at that evaluation. None when the target is never reached.
    """
    prev_s, prev_v = (0.0, start) if start is not None else (None, None)
    for s, v in zip(steps, values):
        if v <= target:
            if prev_v is None or prev_v <= target or prev_s is None:
                return float(s)
            return prev_s + (prev_v - target) / (prev_v - v) * (s - prev_s)
        prev_s, prev_v = float(s), v
    return None


def _classes(run: pd.Series) -> int:
    return dataset_count(run, "classes") or 10


def _budget(run: pd.Series, hist: pd.DataFrame) -> float:
    try:
        return float(record.param(run, "train.epochs"))
    except (TypeError, ValueError):
        return float(len(hist))


def run_value(run: pd.Series, m: Measure, metric: str, store: RunStore) -> Value:
    """One run's number for a measure (``metric``: the measure's, or the baseline's own metric)."""
    diverged = record.status(run) == record.DIVERGED
    classes = _classes(run)
    if m.kind in CROSSINGS:
        hist = store.history(run["run_id"], [metric])
        budget = _budget(run, hist)
        if diverged:
            return Value(budget, "diverged: never reaches it, at least its budget", 1.0, censored=True)
        values = hist[metric].tolist() if metric in hist else []
        steps = hist["step"].tolist() if metric in hist else []
        target = m.threshold if m.kind == "epochs_to_threshold" else min(values, default=math.nan) + m.tolerance
        when = crossing(steps, values, target, chance(metric, classes)) if values else None
        if when is None:
            return Value(budget, f"never reached {target:g}: at least its budget", 1.0, censored=True)
        return Value(when, "", 1.0)
    res = resolution(run, metric)
    if m.kind == "overfitting_gap":
        if diverged:
            return Value(0.0, "diverged: both errors at chance", res * math.sqrt(2))
        gap = record.metric(run, "val_top1_error") - record.metric(run, "train_top1_error")
        train_res = resolution(run, "train_top1_error")
        return Value(gap, "", math.hypot(resolution(run, "val_top1_error"), train_res))
    if m.kind == "colour_index":
        weights = np.load(store.artifact(run["run_id"], Artifact.weights(metric)))
        return Value(colour_specialisation(weights, permutations=0).index, "diverged" if diverged else "")
    if diverged:
        worst = chance(metric, classes)
        if worst is None:
            return Value(math.nan, "diverged: the metric has no worst value")
        return Value(worst, "diverged: counted at chance", res)
    if m.kind == "at_epoch":
        hist = store.history(run["run_id"], [metric])
        after = hist.loc[hist["step"] == m.epoch, metric] if metric in hist else []
        if len(after) == 0:
            return Value(math.nan, f"no {metric} after epoch {m.epoch}: the run ended before it")
        return Value(float(after.iloc[-1]), "", res)
    if m.kind == "best":
        hist = store.history(run["run_id"], [metric])
        best = hist[metric].min() if m.better == "lower" else hist[metric].max()
        return Value(float(best), "", res)
    return Value(record.metric(run, metric), "", res)
