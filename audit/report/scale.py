"""Effect against scale: each claim's primary measure at every tier that has runs, beside the paper's number.

The picture of whether a claim strengthens, holds or fades as the setting approaches the paper's
(smoke → cifar → tiny → imagenet → full). Built from analysed results only, so the report and the
README's figure (``audit findings --write``) draw the same thing from the same evidence.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field

import matplotlib.pyplot as plt

from audit.analyse.measure import MeasureResult
from audit.report.figures import draw_effect, ratio_axis, set_margins, to_data_uri, verdict_legend
from audit.report.views import PROFILE_ORDER, measure_view, unit_of


@dataclass
class ScalePoint:
    profile: str
    mean: float
    lo: float
    hi: float
    paper: float | None
    badge: str


@dataclass
class ScalePanel:
    claim: str
    label: str
    unit: str              # "×": a ratio, drawn on a log axis; else a difference in this unit
    points: list[ScalePoint] = field(default_factory=list)


def scale_panels(results: list[MeasureResult]) -> list[ScalePanel]:
    """One panel per claim, in the paper's order: its primary measure (the claim file's first) at every
    profile with a result."""
    panels: dict[str, ScalePanel] = {}
    order = {r.claim.id: r.claim.paper_order for r in results}
    for r in results:
        if r.measure.id != r.claim.measure[0].id:
            continue
        v = measure_view(r)
        panel = panels.setdefault(r.claim.id, ScalePanel(r.claim.id, v["label"], unit_of(r.measure)))
        iv = r.interval
        panel.points.append(ScalePoint(r.profile, iv.mean, iv.lo, iv.hi, r.paper, v["badge"]))
    for panel in panels.values():
        panel.points.sort(key=lambda p: (PROFILE_ORDER.get(p.profile, 9), p.profile))
    return sorted(panels.values(), key=lambda p: order[p.claim])   # in the paper's order, as the tables


def _draw(ax: plt.Axes, panel: ScalePanel, tiers: list[str]) -> None:
    x = {t: i for i, t in enumerate(tiers)}
    ax.axhline(1.0 if panel.unit == "×" else 0.0, color="grey", ls=":", lw=1)
    if panel.unit == "×":
        ax.set_yscale("log")
        ratio_axis(ax.yaxis)
    for p in panel.points:
        draw_effect(ax, x[p.profile], p.mean, p.lo, p.hi, p.paper, p.badge, vertical=True, paper_offset=0.18,
                    paper_size=4)
    ax.set_xticks(range(len(tiers)), tiers, fontsize=7)
    ax.set_xlim(-0.5, len(tiers) - 0.5)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_ylabel("ratio" if panel.unit == "×" else panel.unit.strip() or "effect", fontsize=7)
    ax.set_title(textwrap.fill(f"{panel.claim}: {panel.label}", 44), fontsize=7)
    ax.grid(alpha=0.3, axis="y")


def effect_by_scale(panels: list[ScalePanel], columns: int = 3) -> plt.Figure:
    """A grid of panels (one per claim), every panel on the same tiers: those any claim has results at."""
    tiers = sorted({p.profile for panel in panels for p in panel.points},
                   key=lambda t: (PROFILE_ORDER.get(t, 9), t))
    cols = max(1, min(columns, len(panels)))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(0.6 + 2.9 * cols, 0.5 + 2.3 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        _draw(ax, panel, tiers)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    verdict_legend(fig, {p.badge for panel in panels for p in panel.points}, max_columns=4)
    set_margins(fig, left=0.6, bottom=0.85, top=0.45, wspace=0.45, hspace=0.75)
    return fig


def effect_by_scale_uri(panels: list[ScalePanel], columns: int = 3) -> str | None:
    """The figure as a data URI for the HTML report (None: nothing measured yet)."""
    return to_data_uri(effect_by_scale(panels, columns)) if panels else None
