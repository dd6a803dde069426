"""A claim's figures: which ones its measures call for, and the histories and weights they need.

Histories are fetched one metric at a time through the store, whose cache the analysis has already
filled for the measures that needed them (epochs to a threshold, to converge); only runs shown in a
figure are read. conv1 weights come from each run's ``weights/`` artifacts, also cached.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from audit import record
from audit.analyse.colour import chromatic_fraction
from audit.analyse.measure import MeasureResult, RunStore
from audit.analyse.stats import t_interval
from audit.record import Artifact, Tag
from audit.report import figures
from audit.spec import Claim, Measure

GAP_KINDS = ("overfitting_gap", "epochs_to_converge")
MAX_CURVES = 10   # seeds drawn per variant in a learning-curve figure: more lines add clutter, not evidence


def curve(store: RunStore, run_id: str, keys: Iterable[str]) -> pd.DataFrame:
    """Per-epoch values of several metrics, fetched one metric at a time (shares the analysis' cache)."""
    merged: pd.DataFrame | None = None
    for key in keys:
        hist = store.history(run_id, [key])
        merged = hist if merged is None else merged.merge(hist, on="step", how="outer")
    return merged.sort_values("step") if merged is not None else pd.DataFrame(columns=["step"])


def _paired_runs(r: MeasureResult, variant: str) -> list[tuple[int, str]]:
    """(seed, run id) of a variant's runs that entered a measure's statistics."""
    if variant == r.measure.treatment:
        return [(row.seed, row.treatment_run) for row in r.rows]
    return [(row.seed, row.baseline_run) for row in r.rows]


def _curves(store: RunStore, seeds: list[tuple[int, str]], keys: list[str]) -> list[tuple[int, pd.DataFrame]]:
    return [(s, curve(store, rid, keys)) for s, rid in seeds[:MAX_CURVES]]


def _shown(seeds: int) -> str:
    return f" The first {MAX_CURVES} of {seeds} seeds are drawn." if seeds > MAX_CURVES else ""


def _variant_runs(runs: pd.DataFrame, claim: str, variant: str) -> list[tuple[int, str]]:
    """(seed, run id) of a variant's completed runs (for variants no measure pairs, e.g. a pre-training)."""
    picked = runs[record.serving(runs, f"{claim}:{variant}") & record.usable(runs)]
    return sorted((int(s), rid) for s, rid in zip(record.tags(picked, Tag.SEED), picked["run_id"]))


def _threshold_figures(results: list[MeasureResult], store: RunStore) -> list[dict[str, str]]:
    out, seen = [], set()
    for r in results:
        m = r.measure
        if m.kind != "epochs_to_threshold" or (m.metric, m.treatment, m.baseline) in seen:
            continue
        seen.add((m.metric, m.treatment, m.baseline))
        curves = {v: _curves(store, _paired_runs(r, v), [m.metric]) for v in (m.baseline, m.treatment)}
        title = f"{figures.pretty(m.metric)} per epoch: {m.baseline} (solid) vs {m.treatment} (dashed)"
        out.append({"title": f"Figure 1 style: {title}", "uri": figures.learning_curves(curves, m.metric, m.threshold),
                    "caption": f"One line per seed, the learning rate chosen per variant; the dotted line is the "
                               f"{m.threshold:g}% threshold. A run that stops at the threshold ends there."
                               + _shown(len(r.rows))})
    return out


def _gap_figure(results: list[MeasureResult], store: RunStore) -> list[dict[str, str]]:
    r = next((r for r in results if r.measure.kind in GAP_KINDS), None)
    if r is None:
        return []
    m = r.measure
    keys = ["train_top1_error", "val_top1_error"]
    curves = {v: _curves(store, _paired_runs(r, v), keys) for v in (m.treatment, m.baseline)}
    return [{"title": f"Training vs validation error: {m.treatment} and {m.baseline}",
             "uri": figures.train_val_curves(curves),
             "caption": "Solid: error on the training set; dashed: on the validation set; one line per seed. "
                        "The space between them is the overfitting gap." + _shown(len(r.rows))}]


def _stage_figure(claim: Claim, runs: pd.DataFrame, results: list[MeasureResult],
                  store: RunStore) -> list[dict[str, str]]:
    children = {v: o.init_from for v, o in claim.variants.items() if o.init_from}
    if not children:
        return []
    panels = []
    for child, parent in children.items():
        pre = {parent: _curves(store, _variant_runs(runs, claim.id, parent), ["val_top1_error"])}
        others = [r.measure.baseline for r in results if r.measure.treatment == child] or \
                 [v for v in claim.variants if v not in (child, parent)]
        target = {v: _curves(store, _variant_runs(runs, claim.id, v), ["val_top1_error"])
                  for v in [child, *dict.fromkeys(others)]}
        panels += [(f"pre-training: {parent} (its own, larger validation set)", pre),
                   ("target set: fine-tuned vs from scratch", target)]
    return [{"title": "Pre-training, then fine-tuning, vs training from scratch",
             "uri": figures.stage_curves(panels),
             "caption": "Validation top-1 error per epoch, one line per seed. The pre-training curve is measured "
                        "on the larger set's own validation split, so its level is not comparable."
                        + _shown(len(_variant_runs(runs, claim.id, next(iter(children)))))}]


def _bar_unit(m: Measure) -> str:
    if m.kind in ("epochs_to_threshold", "epochs_to_converge"):
        return "epochs"
    if m.kind == "overfitting_gap":
        return "val − train top-1 error (pp)"
    if m.kind == "colour_index":
        return "colour-specialisation index"
    return figures.pretty(m.metric) + " (%)"


def _bars_figure(results: list[MeasureResult]) -> list[dict[str, str]]:
    panels = []
    for r in results:
        m = r.measure
        bars = []
        for label, values in ((m.treatment, [row.treatment.value for row in r.rows]),
                              (m.baseline + (f" ({m.baseline_metric})" if m.baseline_metric else ""),
                               [row.baseline.value for row in r.rows])):
            finite = [v for v in values if math.isfinite(v)]
            ci = t_interval(finite)
            bars.append((label, values, (ci.lo, ci.hi) if len(finite) > 1 else None))
        panels.append(figures.BarPanel(m.label or m.id, _bar_unit(m), bars))
    if not panels:
        return []
    return [{"title": "Per-variant values with 95% intervals", "uri": figures.variant_bars(panels),
             "caption": "Bars: the mean over seeds; whiskers: 95% t-interval; dots: one per seed. A run that "
                        "never reached a threshold is counted at its budget."}]


def _weights(store: RunStore, run_id: str, name: str) -> np.ndarray | None:
    try:
        return np.load(store.artifact(run_id, Artifact.weights(name)))
    except Exception:  # noqa: BLE001 - any store: a run without the artifact shows no grid
        return None


def _towers(c: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """(colour tower's c, other tower's c, its name): the tower with the higher median is the colour one."""
    half = len(c) // 2
    a, b = c[:half], c[half:]
    return (a, b, "A") if np.median(a) >= np.median(b) else (b, a, "B")


def _colour_figures(results: list[MeasureResult], store: RunStore) -> list[dict[str, str]]:
    colour = [r for r in results if r.measure.kind == "colour_index"]
    if not colour:
        return []
    groups: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for r in colour:
        m = r.measure
        groups.setdefault((m.treatment, m.metric), _paired_runs(r, m.treatment))
        groups.setdefault((m.baseline, m.baseline_metric or m.metric), _paired_runs(r, m.baseline))
    out, dist = [], []
    for (variant, name), seeds in groups.items():
        pooled: list[tuple[np.ndarray, np.ndarray]] = []
        for i, (seed, rid) in enumerate(seeds):
            w = _weights(store, rid, name)
            if w is None or w.ndim != 4 or w.shape[1] != 3:
                continue
            c = chromatic_fraction(w)
            hi, lo, tower = _towers(c)
            pooled.append((hi, lo))
            if i == 0:
                when = "at initialisation" if name.endswith("init") else "after training"
                out.append({"title": f"conv1 kernels of {variant}, seed {seed}, {when} (Figure 3 style)",
                            "uri": figures.kernel_grid(w, c, f"{variant}, seed {seed}, {when}", tower),
                            "caption": "Each kernel scaled to [0, 1] on its own; the number under it is its "
                                       "chromatic fraction c (0: grey, about 2/3: random). Tower A holds the first "
                                       "half of conv1's channels, tower B the second."})
        if pooled:
            label = f"{variant}, {'initial' if name.endswith('init') else 'trained'} ({len(pooled)} seeds)"
            dist.append((label, np.concatenate([p[0] for p in pooled]), np.concatenate([p[1] for p in pooled])))
    if dist:
        out.append({"title": "Chromatic fraction c of every conv1 kernel, per tower",
                    "uri": figures.colour_distribution(dist),
                    "caption": "Per seed the tower with the higher median c is called the colour tower (the paper: "
                               "modulo a renumbering of the GPUs); black bars are medians over all seeds."})
    return out


def section_figures(claim: Claim, runs: pd.DataFrame, results: list[MeasureResult],
                    store: RunStore) -> list[dict[str, Any]]:
    """Every figure a claim's measures call for, in reading order."""
    if not results:
        return []
    return (_threshold_figures(results, store) + _gap_figure(results, store)
            + _stage_figure(claim, runs, results, store) + _colour_figures(results, store) + _bars_figure(results))
