"""The HTML report: what analyse found, beside the paper's numbers, with the evidence one click down.

Knows nothing about training: it reads runs through the tracker, asks ``analyse`` for verdicts and
renders one self-contained page (figures embedded as data URIs) with jinja2, autoescaping all text
that comes from claim files or MLflow.
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib.metadata as md
import math
import platform
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from audit.analyse.measure import MeasureResult, analyse_audit
from audit.report import figures
from audit.spec import Claim
from audit.track import Tracker

PAPER_TABLE = [  # (model, data set, top-1, top-5, note)
    ("Sparse coding", "ILSVRC-2010 test", 47.1, 28.2, "earlier method"),
    ("SIFT + FVs", "ILSVRC-2010 test", 45.7, 25.7, "earlier method"),
    ("CNN (AlexNet)", "ILSVRC-2010 test", 37.5, 17.0, "one net, 10 crops"),
    ("1 CNN", "ILSVRC-2012 val", 40.7, 18.2, ""),
    ("5 CNNs", "ILSVRC-2012 val", 38.1, 16.4, "averaged predictions"),
    ("1 CNN*", "ILSVRC-2012 val", 39.0, 16.6, "pre-trained on Fall 2011, six conv layers"),
    ("7 CNNs*", "ILSVRC-2012 val", 36.7, 15.4, ""),
    ("7 CNNs*", "ILSVRC-2012 test", None, 15.3, "the competition entry"),
]
BASELINE_MODEL = {"params.model.arch": "alexnet", "params.model.activation": "relu", "params.model.lrn": "true",
                  "params.model.pooling": "overlapping", "params.model.dropout": "0.5",
                  "params.model.remove_conv": "null", "params.model.towers": "2"}
PACKAGES = ("alexnet-audit", "torch", "torchvision", "mlflow", "pandas", "matplotlib", "pydantic")


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.{digits}f}"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def headline_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Runs of the unmodified AlexNet, grouped by profile and data set: measured errors beside the paper's."""
    if frame.empty or not set(BASELINE_MODEL) <= set(frame.columns):
        return []
    mask = pd.Series(True, index=frame.index)
    for col, value in BASELINE_MODEL.items():
        mask &= frame[col].astype(str) == value
    base = frame[mask & frame["tags.audit.status"].isin(["finished", "diverged"])]
    rows = []
    keys = ["tags.audit.profile", "tags.audit.dataset_name", "params.model.input_size", "params.train.epochs"]
    for key, group in base.groupby([k for k in keys if k in base.columns], dropna=False):
        profile, dataset, size, epochs = (list(key) + [None] * 4)[:4]
        comparable = profile == "full" and "ilsvrc" in str(dataset).lower() and str(size) == "224"
        rows.append({"profile": profile, "dataset": dataset, "size": size, "epochs": epochs,
                     "seeds": len(group), "top1": _fmt(group["metrics.val_top1_error"].mean(), 1),
                     "top5": _fmt(group["metrics.val_top5_error"].mean(), 1),
                     "comparable": comparable, "runs": list(group["run_id"])})
    return rows


def _claim_figures(results: list[MeasureResult], history: Any) -> list[dict[str, str]]:
    """Learning curves of the runs behind a claim's measures (histories fetched only here)."""
    out = []
    seen: set[tuple[str, str]] = set()
    for r in results:
        m = r.measure
        metric = m.metric if m.kind in ("epochs_to_threshold", "best") else "val_top1_error"
        if (metric, m.treatment + m.baseline) in seen or not r.rows:
            continue
        seen.add((metric, m.treatment + m.baseline))
        curves: dict[str, list] = {m.treatment: [], m.baseline: []}
        for row in r.rows:
            curves[m.treatment].append((row.seed, history(row.treatment_run, [metric])))
            curves[m.baseline].append((row.seed, history(row.baseline_run, [metric])))
        label = metric.replace("_", " ").replace("top1", "top-1") + " (%)"
        title = f"{r.claim.id}: {metric} per epoch, one line per seed"
        out.append({"title": title, "uri": figures.learning_curves(curves, metric, label, m.threshold, title)})
    return out


def _result_view(r: MeasureResult) -> dict[str, Any]:
    m = r.measure
    unit = "×" if m.scale == "ratio" else f" {m.unit}"
    effect = f"{m.treatment} / {m.baseline}" if m.scale == "ratio" else f"{m.treatment} − {m.baseline}"
    if m.baseline_metric:
        effect = f"{m.metric}({m.treatment}) − {m.baseline_metric}({m.baseline})"
    return {
        "id": m.id, "label": m.label or m.id, "kind": m.kind, "metric": m.metric, "effect": effect,
        "paper": "—" if m.paper is None else f"{m.paper:g}{unit}", "mean": _fmt(r.interval.mean) + unit,
        "ci": f"[{_fmt(r.interval.lo)}, {_fmt(r.interval.hi)}]", "verdict": r.verdict.label,
        "badge": "smoke only" if not r.claim.profiles[r.profile].scientific else r.verdict.label,
        "reason": r.verdict.reason, "position": r.verdict.paper, "seeds": len(r.rows),
        "seeds_needed": r.verdict.seeds_needed, "p": _fmt(r.p, 3),
        "adjusted_p": _fmt(r.adjusted_p, 3) if r.adjusted_p is not None else "—",
        "profile": r.profile, "datasets": ", ".join(r.datasets) or "—", "threshold": m.threshold,
        "scientific": r.claim.profiles[r.profile].scientific,
        "comparable": r.claim.profiles[r.profile].comparable_with_paper,
        "rows": [{"seed": row.seed, "t": _fmt(row.treatment.value), "b": _fmt(row.baseline.value),
                  "flags": "; ".join(f for f in (row.treatment.flag, row.baseline.flag) if f),
                  "effect": _fmt(row.effect), "t_run": row.treatment_run, "b_run": row.baseline_run}
                 for row in r.rows],
        "grid": r.grid, "chosen_lr": r.chosen_lr, "failed": r.failed_runs,
        "forest": {"label": f"{r.claim.id}: {m.label or m.id} ({r.profile})", "mean": r.interval.mean,
                   "lo": r.interval.lo, "hi": r.interval.hi, "paper": m.paper, "scale": m.scale},
    }


def _provenance(frame: pd.DataFrame) -> list[dict[str, str]]:
    cols = {"run_id": "run", "tags.audit.config_hash": "config", "tags.audit.claims": "claims",
            "tags.audit.variant": "variant", "tags.audit.seed": "seed", "tags.audit.profile": "profile",
            "tags.audit.status": "status", "tags.audit.dataset_name": "data",
            "tags.audit.dataset_fingerprint": "fingerprint", "tags.audit.device": "device",
            "tags.audit.git_sha": "git"}
    present = [c for c in cols if c in frame.columns]
    return [{cols[c]: ("" if pd.isna(v) else str(v)) for c, v in row.items()}
            for _, row in frame[present].iterrows()]


def build_report(claims: list[Claim], tracker: Tracker, out: Path, profile: str | None = None) -> Path:
    frame = tracker.runs_frame()
    history = functools.lru_cache(maxsize=None)(lambda run_id, keys: tracker.history(run_id, list(keys)))

    def hist(run_id: str, keys: list[str]) -> pd.DataFrame:
        return history(run_id, tuple(keys))

    results = analyse_audit(claims, frame, hist, profile) if not frame.empty else []
    sections = []
    for claim in claims:
        mine = [r for r in results if r.claim.id == claim.id]
        for prof in sorted({r.profile for r in mine}):
            group = [r for r in mine if r.profile == prof]
            sections.append({"claim": claim, "profile": prof, "measures": [_result_view(r) for r in group],
                             "figures": _claim_figures(group, hist),
                             "profile_spec": claim.profiles[prof]})
    views = [m for s in sections for m in s["measures"]]
    forest_uri = figures.forest([m["forest"] for m in views]) if views else None
    env = jinja2.Environment(loader=jinja2.PackageLoader("audit.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    html = env.get_template("report.html.j2").render(
        sections=sections, forest=forest_uri, headline=headline_rows(frame), paper_table=PAPER_TABLE,
        provenance=_provenance(frame), versions=_versions(), tracking_uri=tracker.uri,
        built=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        any_smoke=any(not m["scientific"] for m in views), claims_without_runs=[
            c for c in claims if not any(s["claim"].id == c.id for s in sections)])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html)
    return out
