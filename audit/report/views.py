"""View models: what the template shows, as plain strings and dicts, computed from analyse's results.

Nothing here renders HTML (the template does, autoescaping every string) and nothing reads MLflow
beyond the one frame of runs: the template can then stay free of logic and this module testable.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pandas as pd

from audit import record
from audit.analyse.measure import MeasureResult
from audit.config import flatten
from audit.record import Tag, column, roles
from audit.spec import Claim, Measure

PROFILE_ORDER = {"smoke": 0, "cifar": 1, "cifar2012": 2, "tiny": 3, "imagenet": 4, "full": 5}  # by scale
ARCH_NOTES = {
    "cifar_fig1": "The four-layer CIFAR-10 net (conv 32 5×5 → max-pool 3/2 → conv 32 5×5 → avg-pool 3/2 → conv 64 "
                  "5×5 → avg-pool 3/2 → fc10) is our best reading, not documented by the paper: the paper names no "
                  "net for Figure 1, and this one follows the authors' cuda-convnet layer files.",
    "cifar_lrn": "The CIFAR-10 net of the LRN pair comes from the authors' cuda-convnet layer files; the paper does "
                 "not describe it.",
}
POSITION = {"consistent": ("lies inside", ""), "smaller": ("lies outside", " (the measured effect is smaller)"),
            "larger": ("lies outside", " (the measured effect is larger)")}


def fmt(x: float | None, digits: int = 2) -> str:
    """A number for people: — for missing, ∞ for unbounded, a true minus sign."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.{digits}f}".replace("-", "−")


def select_runs(frame: pd.DataFrame, claims: list[Claim], profile: str | None) -> pd.DataFrame:
    """The runs of these claims (and this profile), tuning and probe runs included: what a report is about."""
    if frame.empty:
        return frame
    ids = {c.id for c in claims}
    both = roles(frame) + roles(frame, Tag.TUNING) + roles(frame, Tag.PROBES)
    mask = both.map(lambda rs: any(r.split(":")[0] in ids for r in rs))
    if profile:
        mask &= record.of_profile(frame, profile)
    return frame[mask]


def claim_runs(frame: pd.DataFrame, claim: str) -> pd.DataFrame:
    mask = roles(frame).map(lambda rs: any(r.startswith(claim + ":") for r in rs))
    return frame[mask]


def unit_of(m: Measure) -> str:
    """The forest plot's panel: percentage points, a ratio, or the measure's own unit."""
    if m.scale == "ratio":
        return "×"
    return m.unit


def _num(m: Measure, x: float) -> str:
    if m.scale == "ratio":
        return fmt(x) + "×"
    return fmt(x)


def _interval(m: Measure, lo: float, hi: float, seeds: int) -> str:
    """[lo, hi]; a side left open by censoring reads "at least" / "at most"."""
    if seeds < 2 or (math.isinf(lo) and math.isinf(hi)) or math.isnan(lo):
        return f"no interval ({seeds} seed{'s' if seeds != 1 else ''})"
    if math.isinf(hi):
        return f"at least {_num(m, lo)} (censored)"
    if lo == -math.inf or (m.scale == "ratio" and lo == 0):
        return f"at most {_num(m, hi)} (censored)"
    return f"[{_num(m, lo)}, {_num(m, hi)}]"


def slug(label: str) -> str:
    """A verdict label as a CSS class: 'supported, but negligible' → 'supported-but-negligible'."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def size_judgement(r: MeasureResult, ci: str) -> str:
    """Where the paper's number lies against the interval, in words ("the paper's 6× lies outside [1.3, 2.1]")."""
    if not r.claim.profiles[r.profile].scientific:
        return "its numbers are not compared with the paper's (smoke)"
    if r.paper is None:
        return "the paper gives no number for this setting"
    m = r.measure
    paper = f"{r.paper:g}" + ("×" if m.scale == "ratio" else f" {m.unit}")
    where = POSITION.get(r.verdict.paper)
    if where is None:
        return f"no interval to set the paper's {paper} against"
    return f"the paper's {paper.replace('-', '−')} {where[0]} {ci}{where[1]}"


def _value(v: Any) -> str:
    return ("≥ " if v.censored else "") + fmt(v.value)


def comparability(claim: Claim, profile: str) -> str:
    """Whether a claim's numbers at this profile can be set beside the paper's, in a few words."""
    spec = claim.profiles.get(profile)
    if spec is None:
        return "unknown profile"
    if not spec.scientific:
        return "no — smoke profile (a few hundred images, small nets)"
    if spec.comparable_with_paper:
        return "yes — the paper's scale"
    return f"no — {profile} scale, the direction only"


def measure_view(r: MeasureResult) -> dict[str, Any]:
    """One measure of one claim at one profile, formatted for the summary and the claim's section."""
    m, iv, v, paper = r.measure, r.interval, r.verdict, r.paper
    spec = r.claim.profiles[r.profile]
    badge = v.label if spec.scientific else "smoke only"
    unit = "×" if m.scale == "ratio" else f" {m.unit}"
    if m.kind == "ensemble":
        effect = f"ensemble of {m.members} {m.treatment} nets − their mean"
    elif m.baseline_metric:
        effect = f"{m.metric}({m.treatment}) − {m.baseline_metric}({m.baseline})"
    else:
        effect = f"{m.treatment} / {m.baseline}" if m.scale == "ratio" else f"{m.treatment} − {m.baseline}"
    ci = _interval(m, iv.lo, iv.hi, len(r.effects.values))
    size = size_judgement(r, ci)
    direction = {"supported": "direction holds", "supported, but negligible": "direction holds, size negligible",
                 "contradicted": "direction reversed"}.get(v.label)
    sentence = f"{badge.capitalize()}: " + (f"{direction}; {size}" if direction and spec.scientific else v.reason)
    if not direction or not spec.scientific:
        sentence += f"; {size}"
    if v.seeds_needed and spec.scientific:
        sentence += f"; about {v.seeds_needed} seeds would give 80% power at the smallest effect that matters"
    censored = sum(1 for row in r.rows if row.treatment.censored or row.baseline.censored)
    diverged = sum(1 for row in r.rows for x in (row.treatment, row.baseline) if x.flag.startswith("diverged"))
    return {
        "id": m.id, "label": m.label or m.id, "kind": m.kind, "metric": m.metric, "effect": effect,
        "paper": "—" if paper is None else f"{paper:g}{unit}".replace("-", "−"),
        "mean": fmt(iv.mean) + unit, "ci": ci, "verdict": v.label, "badge": badge, "badge_class": slug(badge),
        "reason": v.reason, "sentence": sentence + ".", "size": size, "position": v.paper if spec.scientific else "—",
        "seeds": _seeds(r), "p": fmt(r.p, 3), "adjusted_p": fmt(r.adjusted_p, 3),
        "family": r.family, "family_size": r.family_size, "exploratory": r.exploratory,
        "censored": censored, "diverged": diverged,
        "datasets": ", ".join(r.datasets) or "—", "threshold": m.threshold, "scale": m.scale,
        "rows": [{"seed": row.seed, "t": _value(row.treatment), "b": _value(row.baseline),
                  "flags": "; ".join(f for f in (row.treatment.flag, row.baseline.flag) if f)
                  + ("" if row.used else " — both censored: effect unknown, not counted"),
                  "effect": ("≥ " if row.censored > 0 else "≤ " if row.censored < 0 else "") + _num(m, row.effect),
                  "t_run": row.treatment_run, "b_run": row.baseline_run,
                  "censored": bool(row.censored) or not row.used,
                  "diverged": any(x.flag.startswith("diverged") for x in (row.treatment, row.baseline))}
                 for row in r.rows],
        "treatment": m.treatment, "baseline": m.baseline + (f" ({m.baseline_metric})" if m.baseline_metric else ""),
        "failed": r.failed_runs,
        "forest": {"label": f"{r.claim.id}: {m.label or m.id} [{r.profile}]", "mean": iv.mean, "lo": iv.lo,
                   "hi": iv.hi, "paper": paper, "unit": unit_of(m), "badge": badge},
    }


def _seeds(r: MeasureResult) -> int | str:
    """Seeds in the effect; "k of n" while a registered comparison still waits for some."""
    k = len(r.rows)
    return f"{k} of {r.planned_seeds}" if r.planned_seeds and k < r.planned_seeds else k


def missing_view(claim: Claim, m: Measure, profile: str) -> dict[str, Any]:
    """A measure with no paired seed (its runs failed or are missing): shown, never silently left out."""
    unit = "×" if m.scale == "ratio" else f" {m.unit}"
    paper = claim.paper_number(m, profile)
    reason = (f"no seed has a completed run of both {m.treatment} and {m.baseline} at profile {profile}; "
              "see the runs table") if m.kind != "ensemble" else (
              f"fewer than {m.members} completed runs of {m.treatment} at profile {profile}: no ensemble; "
              "see the runs table")
    return {"id": m.id, "label": m.label or m.id, "kind": m.kind, "metric": m.metric,
            "effect": f"{m.treatment} vs {m.baseline}", "paper": "—" if paper is None else f"{paper:g}{unit}",
            "mean": "—", "ci": "", "verdict": "no result", "badge": "no result", "badge_class": "no-result",
            "reason": reason, "sentence": f"No result: {reason}.", "size": "", "position": "—", "seeds": 0, "p": "—",
            "adjusted_p": "—", "family": "", "family_size": 0, "exploratory": False, "censored": 0, "diverged": 0,
            "datasets": "—", "threshold": m.threshold, "scale": m.scale, "rows": [],
            "treatment": m.treatment, "baseline": m.baseline, "failed": [], "forest": None}


def measure_views(claim: Claim, profile: str, results: list[MeasureResult]) -> list[dict[str, Any]]:
    """Every measure of the claim in its file's order; one without paired seeds says so.

    The report and the README's findings table both list these, so the two always show the same rows.
    """
    if not results:
        return []
    done = {r.measure.id: measure_view(r) for r in results}
    return [done.get(m.id) or missing_view(claim, m, profile) for m in claim.measure]


def _overrides(claim: Claim, profile: str, variant: str) -> str:
    """A variant's changes to the claim's profile, as key=value (empty: the unmodified net)."""
    layers = {**claim.variants[variant].as_dict()}
    extra = claim.profiles[profile].variants.get(variant) if profile in claim.profiles else None
    flat = flatten(layers)
    if extra is not None:
        flat.update(flatten(extra.as_dict()))
    parts = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in sorted(flat.items())]
    if claim.variants[variant].init_from:
        parts.append(f"starts from {claim.variants[variant].init_from}'s final weights")
    return ", ".join(parts) or "unchanged"


def _distinct(frame: pd.DataFrame, name: str) -> str:
    """The distinct values of a frame column (``record.tag_col`` / ``param_col``), shortest first."""
    values = sorted({v for v in column(frame, name) if v}, key=lambda s: (len(s), s))
    return ", ".join(values) or "—"


def what_was_run(claim: Claim, profile: str, runs: pd.DataFrame) -> dict[str, Any]:
    """Variants, seeds, data, epochs and scale behind a claim's numbers at one profile."""
    seeds = sorted({int(s) for s in record.tags(runs, Tag.SEED) if s.lstrip("-").isdigit()})
    archs = {a for a in record.params(runs, "model.arch") if a}
    tag, param = record.tag_col, record.param_col
    return {
        "variants": [{"name": v, "changes": _overrides(claim, profile, v)} for v in claim.variants],
        "seeds": seeds, "datasets": _distinct(runs, tag(Tag.dataset("name"))),
        "classes": _distinct(runs, tag(Tag.dataset("classes"))),
        "class_names": " | ".join(sorted({v for v in record.tags(runs, Tag.dataset("class_names")) if v})),
        "train_images": _distinct(runs, tag(Tag.dataset("train_images"))),
        "epochs": _distinct(runs, param("train.epochs")), "epochs_run": _distinct(runs, tag(Tag.EPOCHS_RUN)),
        "input_size": _distinct(runs, param("model.input_size")), "width": _distinct(runs, param("model.width")),
        "archs": ", ".join(sorted(archs)) or "—", "devices": _distinct(runs, tag(Tag.DEVICE)),
        "crops": _distinct(runs, param("data.eval_crops")),
        "arch_notes": [ARCH_NOTES[a] for a in sorted(archs) if a in ARCH_NOTES],
    }


def registered(run: pd.Series, tags: set[str] | None) -> str:
    """Whether a run was made under the report's registration (any of its ``tags``): '', 'yes', or why not."""
    if tags is None:
        return ""
    audits = record.run_roles(run, Tag.AUDITS)
    if tags & set(audits):
        return "yes"
    same = [a for a in audits if a.split("@")[0] in {t.split("@")[0] for t in tags}]
    return "no: under another version of this audit" if same else "no: made outside this audit"


def run_rows(claim: Claim, runs: pd.DataFrame, results: list[MeasureResult],
             registration_tags: set[str] | None = None, tuned_param: str = "train.lr") -> list[dict[str, str]]:
    """Every run of a claim at a profile, whatever its status: diverged and failed runs are shown.

    ``tuned_param``: the setting the profile's grid tunes (its ``tune_param``), shown for tuned variants.
    """
    used, unread = _read_runs(results)
    paired_seeds = {(v, record.tag(run, Tag.SEED)) for _, run in runs.iterrows() if run["run_id"] in used
                    for v in record.variants_of(run, claim.id)}
    tuned = {v for r in results[:1] for v in r.tuning}
    order = {v: i for i, v in enumerate(claim.variants)}
    out = []
    for _, run in runs.iterrows():
        variants = record.variants_of(run, claim.id)
        status = record.status(run) or "unknown"
        grid = any(v in tuned for v in variants)
        seed = record.tag(run, Tag.SEED)
        if run["run_id"] in used:
            role = "in the statistics"
        elif run["run_id"] in unread:
            role = "not counted: " + unread[run["run_id"]]
        elif status == record.FAILED:
            role = "failed: not in the statistics"
        elif status == record.RUNNING:
            role = "unfinished: not in the statistics"
        elif grid:
            role = "not at the rate the tuning seeds chose (or tuning has not chosen yet)"
        elif any((v, seed) in paired_seeds for v in variants):
            role = "superseded by a newer run of this variant and seed"
        else:
            role = "not paired (no run of the other variant with this seed)"
        setting = record.param(run, tuned_param)
        out.append({
            "variant": ", ".join(variants), "seed": seed, "status": status, "setting": setting if grid else "",
            "epochs": f"{record.tag(run, Tag.EPOCHS_RUN) or '—'} / {record.param(run, 'train.epochs') or '—'}",
            "train1": fmt(_float(record.metric(run, "train_top1_error"))),
            "val1": fmt(_float(record.metric(run, "val_top1_error"))),
            "val5": fmt(_float(record.metric(run, "val_top5_error"))),
            "role": role, "run_id": str(run["run_id"]), "config": record.tag(run, Tag.CONFIG_HASH),
            "error": record.tag(run, Tag.ERROR), "registered": registered(run, registration_tags),
            "_key": (order.get(variants[0], 99) if variants else 99, seed, setting),
        })
    out.sort(key=lambda r: r.pop("_key"))  # type: ignore[arg-type]
    return out


def _read_runs(results: list[MeasureResult]) -> tuple[set[str], dict[str, str]]:
    """Runs counted in some measure's statistics, and the others that were paired, with why they were not."""
    used: set[str] = set()
    unread: dict[str, str] = {}
    for r in results:
        for row in r.rows:
            runs = (row.treatment_run, row.baseline_run, *row.members)
            if row.used:
                used.update(runs)
                continue
            values = (row.treatment, row.baseline)
            why = ("both runs censored: the effect is unknown" if all(v.censored for v in values) else
                   "; ".join(v.flag for v in values if v.flag) or f"{r.measure.metric} has no value")
            for rid in runs:
                unread.setdefault(rid, f"{r.measure.id}: {why}")
    return used, {rid: why for rid, why in unread.items() if rid not in used}


def _float(x: Any) -> float | None:
    try:
        return None if x is None or pd.isna(x) else float(x)
    except (TypeError, ValueError):
        return None


def _counts(frame: pd.DataFrame, name: str) -> list[tuple[str, int]]:
    values = column(frame, name).replace("", "—")
    return sorted(values.value_counts().items(), key=lambda kv: -kv[1])


def provenance(frame: pd.DataFrame) -> dict[str, Any]:
    """Where every number came from: commits, devices, data fingerprints, and every run with its hash."""
    tag = record.tag_col
    cols = {"run_id": "MLflow run", tag(Tag.CONFIG_HASH): "config hash", tag(Tag.VARIANTS): "claim:variant",
            tag(Tag.SEED): "seed", tag(Tag.PROFILE): "profile", tag(Tag.STATUS): "status",
            tag(Tag.dataset("name")): "data", tag(Tag.DATASET_FINGERPRINT): "fingerprint",
            tag(Tag.DEVICE): "device", tag(Tag.GIT_SHA): "git"}
    table = pd.DataFrame({label: column(frame, col) for col, label in cols.items()}, index=frame.index)
    fingerprints = sorted({(n or "—", f or "—") for n, f in zip(record.tags(frame, Tag.dataset("name")),
                                                              record.tags(frame, Tag.DATASET_FINGERPRINT))})
    return {"columns": list(cols.values()), "rows": table.sort_values(["profile", "claim:variant", "seed"])
            .values.tolist(), "commits": _counts(frame, tag(Tag.GIT_SHA)),
            "versions": _counts(frame, tag(Tag.VERSIONS)),
            "devices": _counts(frame, tag(Tag.DEVICE)), "fingerprints": fingerprints,
            "statuses": _counts(frame, tag(Tag.STATUS))}
