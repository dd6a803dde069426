"""The HTML report: what analyse found, beside the paper's numbers, with the evidence one click down.

Knows nothing about training: it reads runs through the tracker (one query for the frame of runs,
histories and artifacts only for the figures and measures that need them), asks ``analyse`` for
verdicts and renders one self-contained page (figures embedded as data URIs) with jinja2,
autoescaping every string that comes from a claim file or MLflow.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as md
import platform
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from audit import record
from audit.analyse.measure import Family, MeasureResult, RunStore, analyse_audit, analyse_registered
from audit.record import Tag
from audit.report import figures
from audit.report.appendix import probe_appendix, registration_view, tuning_appendix
from audit.report.colour import colour_view
from audit.report.evidence import section_figures
from audit.report.headline import PAPER_TABLE1, PAPER_TABLE2, headline_rows
from audit.report.scale import effect_by_scale_uri, scale_panels
from audit.report.store import ReportStore, Store
from audit.report.views import (
    PROFILE_ORDER,
    claim_runs,
    comparability,
    measure_views,
    provenance,
    run_rows,
    select_runs,
    what_was_run,
)
from audit.spec import Claim

PACKAGES = ("alexnet-audit", "torch", "torchvision", "numpy", "mlflow", "pandas", "scipy", "matplotlib", "jinja2",
            "pydantic")


def versions() -> dict[str, str]:
    """Package versions of the environment the report was built in (training runs record their commit)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _section(claim: Claim, profile: str, runs: pd.DataFrame, results: list[MeasureResult],
             store: RunStore, registration_tags: set[str] | None) -> dict[str, Any]:
    """Everything one claim at one profile shows: measures, runs of every status, figures."""
    spec = claim.profiles.get(profile)
    statuses = record.tags(runs, Tag.STATUS)
    return {
        "anchor": f"claim-{claim.id}-{profile}", "claim": claim, "profile": profile, "spec": spec,
        "scientific": spec is not None and spec.scientific, "comparable": comparability(claim, profile),
        "measures": measure_views(claim, profile, results), "ran": what_was_run(claim, profile, runs),
        "runs": run_rows(claim, runs, results, registration_tags, spec.tune_param if spec else "train.lr"),
        "tuned_param": (spec.tune_param if spec else "train.lr").removeprefix("train.").replace("_", " "),
        "figures": section_figures(claim, runs, results, store),
        "tuning": results[0].tuning if results else {},
        "colour_runs": colour_view(results, store),
        "n_failed": int((statuses == record.FAILED).sum()), "n_diverged": int((statuses == record.DIVERGED).sum()),
        "n_unfinished": int((~statuses.isin(record.ENDED)).sum()),
        "n_runs": len(runs), "scale": None,
    }


def build_sections(claims: list[Claim], frame: pd.DataFrame, results: list[MeasureResult],
                   store: RunStore, registration_tags: set[str] | None = None) -> list[dict[str, Any]]:
    """One section per claim × profile that has runs, even when none of them finished."""
    sections = []
    for claim in sorted(claims, key=lambda c: c.paper_order):
        runs = claim_runs(frame, claim.id)
        profiles = record.profiles(runs)
        for profile in sorted(profiles, key=lambda p: (PROFILE_ORDER.get(p, 9), p)):
            mine = [r for r in results if r.claim.id == claim.id and r.profile == profile]
            here = runs[record.of_profile(runs, profile)]
            sections.append(_section(claim, profile, here, mine, store, registration_tags))
    return sections


def render(context: dict[str, Any]) -> str:
    env = jinja2.Environment(loader=jinja2.PackageLoader("audit.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(**context)


def build_report(claims: list[Claim], tracker: Store, out: Path, profile: str | None = None,
                 registration: Any = None, families: list[Family] | None = None) -> Path:
    """Read the store once, analyse, draw and write one self-contained HTML file; return its path.

    ``registration`` (audit.registration.Registration): the report is that pre-registered audit's.
    ``families``: without one, the registered audits whose runs the store holds (evidence bundles),
    each read under its own family at its profile.
    """
    if registration is not None:
        profile = registration.spec.profile
    frame = select_runs(tracker.runs_frame(), claims, profile)
    store = ReportStore(tracker, frame)
    family = registration.family if registration is not None else None
    if frame.empty:
        results = []
    elif family is None and families:
        results = analyse_registered(claims, frame, store, families)
    else:
        results = analyse_audit(claims, frame, store, profile, family)
    tags = registration.tags if registration is not None else None
    sections = build_sections(claims, frame, results, store, tags)
    views = [m for s in sections for m in s["measures"]]
    rows = [figures.ForestRow(**m["forest"]) for m in views if m["forest"]]
    forest = figures.forest(rows) if rows else None
    panels = scale_panels(results)
    for panel in panels:   # the claim's own panel, in its first section
        first = next(s for s in sections if s["claim"].id == panel.claim)
        first["scale"] = effect_by_scale_uri([panel])
    profiles = sorted({s["profile"] for s in sections}, key=lambda p: (PROFILE_ORDER.get(p, 9), p))
    html = render({
        "sections": sections, "forest": forest, "scale": effect_by_scale_uri(panels),
        "headline": headline_rows(frame, claims, store),
        "table1": PAPER_TABLE1, "table2": PAPER_TABLE2, "provenance": provenance(frame), "versions": versions(),
        "tracking_uri": tracker.uri, "n_runs": len(frame), "profiles": profiles,
        "built": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "any_smoke": any(not s["scientific"] for s in sections),
        "any_comparable": any(s["spec"] is not None and s["spec"].comparable_with_paper for s in sections),
        "claims_without_runs": [c for c in claims if not any(s["claim"].id == c.id for s in sections)],
        "filter_profile": profile, "claim_ids": [c.id for c in claims],
        "registration": registration_view(registration, frame),
        "bundle_families": [] if registration is not None else [(f.name, f.profile) for f in families or []],
        "tuning_appendix": tuning_appendix(results, frame),
        "probe_appendix": probe_appendix(frame),
    })
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out
