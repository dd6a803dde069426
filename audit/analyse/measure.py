"""From tracked runs to per-claim measurements: a number per run, an effect per seed, a verdict.

Runs are found by their tags (``audit.variants`` holds every claim:variant a run serves), so the
analysis needs no access to the data or the training code. Per-epoch histories are fetched only
for measures that need them (epochs to a threshold, best value), and conv1 weights for the colour
index, through a ``RunStore`` (the tracker).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from audit.analyse.colour import colour_specialisation
from audit.analyse.stats import Interval, Verdict, decide, holm, p_value, t_interval
from audit.spec import Claim, Measure


class RunStore(Protocol):
    """Read access to tracked runs beyond the one-query frame (the tracker provides it)."""

    def history(self, run_id: str, keys: list[str]) -> pd.DataFrame: ...
    def artifact(self, run_id: str, path: str) -> Path: ...


@dataclass(frozen=True)
class Value:
    value: float
    flag: str = ""          # e.g. "never reached: counted at its budget", "diverged"


@dataclass
class SeedRow:
    seed: int
    treatment_run: str
    baseline_run: str
    treatment: Value
    baseline: Value
    effect: float           # on the display scale (difference, or ratio)


@dataclass
class MeasureResult:
    claim: Claim
    measure: Measure
    profile: str
    rows: list[SeedRow]
    interval: Interval      # display scale
    verdict: Verdict
    p: float
    adjusted_p: float | None = None
    paper: float | None = None  # the paper's number at this profile (Claim.paper_number)
    chosen_lr: dict[str, float] = field(default_factory=dict)
    grid: list[dict] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    failed_runs: list[str] = field(default_factory=list)

    @property
    def additive(self) -> list[float]:
        """Per-seed effects on the additive scale the statistics use."""
        return [self.measure.additive(r.effect) for r in self.rows]


def _roles(frame: pd.DataFrame) -> pd.Series:
    col = frame.get("tags.audit.variants")
    if col is None:
        return pd.Series([[] for _ in range(len(frame))], index=frame.index)
    return col.fillna("").map(lambda s: s.split(","))


def runs_for(frame: pd.DataFrame, claim: str, variant: str, profile: str) -> pd.DataFrame:
    """Completed runs (finished or diverged) serving claim:variant in a profile."""
    if frame.empty:
        return frame
    role = f"{claim}:{variant}"
    mask = _roles(frame).map(lambda roles: role in roles) & (frame["tags.audit.profile"] == profile)
    return frame[mask]


def run_value(run: pd.Series, m: Measure, metric: str, store: RunStore) -> Value:
    """One run's number for a measure."""
    diverged = run.get("tags.audit.status") == "diverged"
    flag = "diverged" if diverged else ""
    if m.kind in ("epochs_to_threshold", "epochs_to_converge"):
        hist = store.history(run["run_id"], [metric])
        values = hist[metric] if metric in hist else pd.Series(dtype=float)
        target = m.threshold if m.kind == "epochs_to_threshold" else values.min() + (m.tolerance or 0.0)
        reached = hist[values <= target] if len(values) else hist
        if len(reached):
            return Value(float(reached["step"].iloc[0]), flag)
        budget = float(run.get("params.train.epochs", len(hist)))
        return Value(budget, f"{flag or 'never reached'}: counted at its budget")
    if m.kind == "best":
        hist = store.history(run["run_id"], [metric])
        return Value(float(hist[metric].min()), flag)
    if m.kind == "overfitting_gap":
        gap = run.get("metrics.val_top1_error", math.nan) - run.get("metrics.train_top1_error", math.nan)
        return Value(float(gap), flag)
    if m.kind == "colour_index":
        weights = np.load(store.artifact(run["run_id"], f"weights/{metric}.npy"))
        return Value(colour_specialisation(weights, permutations=200).index, flag)
    value = float(run.get(f"metrics.{metric}", math.nan))
    if diverged and math.isnan(value):
        classes = float(run.get("tags.audit.dataset_classes", 10) or 10)
        return Value(100.0 * (1 - 1 / classes), "diverged: counted at chance error")
    return Value(value, flag)


def _by_seed(runs: pd.DataFrame) -> dict[int, pd.Series]:
    """Newest run per seed."""
    out: dict[int, pd.Series] = {}
    for _, run in runs.sort_values("start_time").iterrows():
        out[int(run["tags.audit.seed"])] = run
    return out


def _pick_lr(claim: Claim, profile: str, variant: str, runs: pd.DataFrame, store: RunStore,
             grid_log: list[dict]) -> tuple[pd.DataFrame, float | None]:
    """With a learning-rate grid: keep the rate whose runs do best on the claim's first measure."""
    grid = claim.profiles[profile].lr_grid.get(variant)
    if not grid or runs.empty:
        return runs, None
    first = claim.measure[0]
    lrs = runs["params.train.lr"].astype(float)
    scores: dict[float, float] = {}
    for lr in grid:
        subset = runs[(lrs - lr).abs() < 1e-12]
        values = [run_value(r, first, first.metric, store).value for _, r in subset.iterrows()]
        scores[lr] = sum(values) / len(values) if values else math.inf
        grid_log.append({"variant": variant, "lr": lr, "runs": len(values), "mean": scores[lr]})
    best = min(scores, key=lambda lr: scores[lr])
    for row in grid_log:
        if row["variant"] == variant:
            row["chosen"] = row["lr"] == best
    return runs[(lrs - best).abs() < 1e-12], best


def analyse_claim(claim: Claim, profile: str, frame: pd.DataFrame, store: RunStore) -> list[MeasureResult]:
    scientific = claim.profiles[profile].scientific
    results = []
    grid_log: list[dict] = []
    chosen: dict[str, float] = {}
    picked: dict[str, pd.DataFrame] = {}
    failed: dict[str, list[str]] = {}
    for variant in claim.variants:
        runs = runs_for(frame, claim.id, variant, profile)
        status = runs["tags.audit.status"] if not runs.empty else pd.Series(dtype=str)
        failed[variant] = list(runs.loc[status == "failed", "run_id"]) if not runs.empty else []
        done = runs[status.isin(["finished", "diverged"])] if not runs.empty else runs
        picked[variant], lr = _pick_lr(claim, profile, variant, done, store, grid_log)
        if lr is not None:
            chosen[variant] = lr
    for m in claim.measure:
        treat, base = _by_seed(picked[m.treatment]), _by_seed(picked[m.baseline])
        rows = []
        for seed in sorted(set(treat) & set(base)):
            t = run_value(treat[seed], m, m.metric, store)
            b = run_value(base[seed], m, m.baseline_metric or m.metric, store)
            effect = t.value / b.value if m.scale == "ratio" and b.value else t.value - b.value
            rows.append(SeedRow(seed, treat[seed]["run_id"], base[seed]["run_id"], t, b, effect))
        rows = [r for r in rows if not math.isnan(r.effect)]
        additive = [m.additive(r.effect) for r in rows]
        ci = t_interval(additive)
        display = Interval(*(math.exp(v) if m.scale == "ratio" and math.isfinite(v) else v
                             for v in (ci.mean, ci.lo, ci.hi))) if rows else ci
        runs_used = [picked[m.treatment], picked[m.baseline]]
        datasets = sorted({str(d) for r in runs_used if not r.empty
                           for d in r.get("tags.audit.dataset_name", pd.Series(dtype=str)).dropna()})
        paper = claim.paper_number(m, profile)
        results.append(MeasureResult(
            claim, m, profile, rows, display, decide(additive, m.expect, m.additive(m.smallest_effect), scientific,
                                                           m.additive(paper)),
            p_value(additive), paper=paper, chosen_lr=chosen, grid=grid_log, datasets=datasets,
            failed_runs=failed[m.treatment] + failed[m.baseline]))
    return results


def analyse_audit(claims: list[Claim], frame: pd.DataFrame, store: RunStore,
                  profile: str | None = None) -> list[MeasureResult]:
    """Every claim with runs in the store, per profile; Holm correction across the audit's claims."""
    results: list[MeasureResult] = []
    profiles = [profile] if profile else sorted(set(frame.get("tags.audit.profile", pd.Series(dtype=str)).dropna()))
    for claim in claims:
        for prof in profiles:
            if prof in claim.profiles:
                found = [r for r in analyse_claim(claim, prof, frame, store) if r.rows]
                results += found
    for prof in {r.profile for r in results}:
        group = [r for r in results if r.profile == prof and r.measure is r.claim.measure[0]]
        for r, adj in zip(group, holm([r.p for r in group])):
            r.adjusted_p = adj
            m = r.measure
            r.verdict = decide(r.additive, m.expect, m.additive(m.smallest_effect),
                               r.claim.profiles[prof].scientific, m.additive(r.paper), adj if len(group) > 1 else None)
    return results
