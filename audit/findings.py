"""The published findings table: one markdown row per measured claim, generated from evidence bundles.

The project's audits of record live in ``results/<profile>/`` as evidence bundles; this module turns
them into the table between ``<!-- findings:start -->`` and ``<!-- findings:end -->`` in README.md
(``audit findings --write``), and ``--check`` regenerates it and fails when the committed table
disagrees, so the README can never claim more than the committed evidence shows. The verdicts come
from the same analysis as the HTML report (a bundle exported with ``--audit`` is analysed under that
pre-registered family).
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from audit.analyse.measure import MeasureResult, analyse_audit
from audit.evidence import (
    COMPLETED,
    BundledRun,
    bundled_runs,
    bundles_by_audit,
    evidence_store,
    find_bundles,
    read_manifest,
    registration_of,
)
from audit.record import Tag
from audit.report.scale import ScalePanel, effect_by_scale, scale_panels
from audit.report.store import ReportStore
from audit.report.views import PROFILE_ORDER, measure_views, select_runs
from audit.sections import read_section, replace_section
from audit.spec import Claim, load_claims

START, END = "<!-- findings:start -->", "<!-- findings:end -->"
HEADER = ("| claim | profile | measure | seeds | effect (95% interval) | verdict | paper |\n"
          "|---|---|---|---|---|---|---|")
FIGURE = "effect-by-scale.png"   # written beside the bundles by `audit findings --write`
NONE_YET = "No audit of record has been published yet: `results/` holds no evidence bundles."
PROGRESS = ("| bundle | audit | registered comparisons: runs completed / planned | completed runs (finished or "
            "diverged) | other runs | training time |\n|---|---|---|---|---|---|")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _results(claims: list[Claim], store: Any, registration: Any) -> list[MeasureResult]:
    """Every measure with paired seeds in the store, corrected over the registration's family if any."""
    profile = registration.spec.profile if registration is not None else None
    frame = select_runs(store.runs_frame(), claims, profile)
    if frame.empty:
        return []
    family = registration.family if registration is not None else None
    return analyse_audit(claims, frame, ReportStore(store, frame), profile, family)


def _rows(order: dict[str, int], results: list[MeasureResult]) -> list[tuple[tuple, str]]:
    """(sort key, markdown row) per measure of every claim × profile with results, as the report lists
    them: a measure with no paired seed yet gets its row too; ``order``: claim id → its place."""
    groups: dict[tuple[str, str], list[MeasureResult]] = {}
    for r in results:
        groups.setdefault((r.claim.id, r.profile), []).append(r)
    rows = []
    for (claim_id, profile), group in groups.items():
        claim = group[0].claim
        for place, v in enumerate(measure_views(claim, profile, group)):
            effect = f"{v['mean']} {v['ci']}".strip()
            cells = [claim_id, profile, v["label"], str(v["seeds"]), effect, v["badge"], v["paper"]]
            key = (order.get(claim_id, len(order)), claim_id, PROFILE_ORDER.get(profile, 9), profile, place)
            rows.append((key, "| " + " | ".join(_cell(c) for c in cells) + " |"))
    return rows


@dataclass
class Findings:
    table: str                  # the markdown table, or the line saying there is no evidence yet
    panels: list[ScalePanel]    # effect against scale, one panel per claim

    def section(self, figure_link: str | None = None) -> str:
        """What goes between the README's markers: the table, then the figure when one is drawn."""
        if figure_link is None or not self.panels:
            return self.table
        return self.table + f"\n\n![Each claim's effect at every tier with evidence, beside the paper's]({figure_link})"

    def save_figure(self, path: Path) -> None:
        """The effect-against-scale figure as a PNG without a timestamp or version stamp."""
        fig = effect_by_scale(self.panels)
        fig.savefig(path, format="png", dpi=96, metadata={"Software": None})
        plt.close(fig)


def findings_table(root: Path, claims_dir: Path) -> str:
    """The markdown table (with a line saying so when there is no evidence yet)."""
    return collect(root, claims_dir).table


def collect(root: Path, claims_dir: Path) -> Findings:
    """The table and the scale panels of every bundle under ``root``, each audit over its own family."""
    rows: list[tuple[tuple, str]] = []
    results: list[MeasureResult] = []
    order = {c.id: i for i, c in enumerate(sorted(load_claims([claims_dir]), key=lambda c: c.paper_order))}
    for audit_file, bundles in bundles_by_audit(root).items():
        registration = registration_of(audit_file, bundles) if audit_file is not None else None
        wanted = {c for b in bundles for c in read_manifest(b)["selection"].get("claims", [])}
        claims = registration.claims if registration else [c for c in load_claims([claims_dir]) if c.id in wanted]
        with evidence_store(root, bundles) as store:
            found = _results(claims, store, registration)
        rows += _rows(order, found)
        results += found
    body = [HEADER] + [row for _, row in sorted(rows, key=lambda kv: kv[0])]
    table = "\n".join(body) + ("\n\n" + NONE_YET if not rows else "")
    if find_bundles(root):
        table += ("\n\nThe runs behind it, per bundle (every status; a run's training time is its epochs' wall "
                  "time):\n\n" + progress_table(root))
    return Findings(table, scale_panels(results))


def _training_seconds(run: BundledRun) -> float:
    """The run's epochs' wall time (``epoch_seconds``, one value per epoch however often it resumed)."""
    return sum({step: value for key, step, value in run.metrics() if key == "epoch_seconds"}.values())


def _counts(counter: Counter) -> str:
    return ", ".join(f"{n} {name}" for name, n in sorted(counter.items())) or "none"


def _registered_progress(registration: Any, runs: list[BundledRun]) -> str:
    """Per registered claim: its (variant, seed) runs completed out of every variant × its registered seeds."""
    done: set[tuple[str, str, int]] = set()
    for run in runs:
        if run.meta["status"] in COMPLETED and run.meta["tags"].get(Tag.SEED, "").isdigit():
            for role in filter(None, run.meta["tags"].get(Tag.VARIANTS, "").split(",")):
                claim, _, variant = role.partition(":")
                done.add((claim, variant, int(run.meta["tags"][Tag.SEED])))
    parts = []
    for claim in registration.claims:
        seeds = registration.seeds[claim.id]
        got = sum((claim.id, v, seed) in done for v in claim.variants for seed in range(seeds))
        parts.append(f"{claim.id} {got}/{len(claim.variants) * seeds}")
    return ", ".join(parts)


def progress_table(root: Path) -> str:
    """Per bundle: how far its registered comparisons are, what its runs are and the training time they took."""
    from audit.registration import load_registration

    rows = [PROGRESS]
    for bundle in find_bundles(root):
        runs = bundled_runs(bundle)
        selection = read_manifest(bundle)["selection"]
        audit_file = selection.get("audit_file")
        registered = (_registered_progress(load_registration(audit_file), runs)
                      if audit_file and Path(audit_file).is_file() else "—")
        done = Counter(r.meta["tags"].get(Tag.PURPOSE, "evidence") for r in runs if r.meta["status"] in COMPLETED)
        other = Counter(r.meta["status"] for r in runs if r.meta["status"] not in COMPLETED)
        hours = sum(_training_seconds(r) for r in runs) / 3600
        cells = [f"{bundle.relative_to(root).as_posix()}/", selection.get("audit") or "— (not pre-registered)",
                 registered, _counts(done), _counts(other), f"{hours:.1f} h"]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows)


def write(readme: Path, table: str) -> None:
    readme.write_text(replace_section(readme.read_text(), START, END, table))


def check(readme: Path, table: str) -> str | None:
    """None when the README's findings section is this table; else a unified diff (or what is missing)."""
    committed = read_section(readme.read_text(), START, END)
    if committed is None:
        return f"{readme}: no findings section ({START} … {END})"
    if committed == table.strip():
        return None
    diff = difflib.unified_diff(committed.splitlines(), table.strip().splitlines(), f"{readme} (committed)",
                                "generated from the evidence", lineterm="")
    return "\n".join(diff)
