"""Matplotlib figures for the report, returned as embeddable PNG data URIs (self-contained HTML).

Pure functions of numbers: they never read runs. Every figure is drawn once, small and at a modest
resolution, because a report of hundreds of runs must build in seconds.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
STYLES = ["-", "--", ":", "-."]
BADGE_COLOURS = {"supported": "#2e7d32", "supported, but negligible": "#81a784", "exploratory": "#5c6bc0",
                 "contradicted": "#c62828", "not supported": "#6d4c41",
                 "inconclusive": "#616161", "in progress": "#90a4ae", "smoke only": "#ef6c00"}
Curves = dict[str, list[tuple[int, pd.DataFrame]]]   # variant -> [(seed, history frame with 'step')]


def to_data_uri(fig: plt.Figure, dpi: int = 96) -> str:
    """PNG bytes as a data URI; margins are set by hand (a tight layout would draw every figure twice)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def set_margins(fig: plt.Figure, left: float = 0.65, right: float = 0.15, bottom: float = 0.5, top: float = 0.35,
                wspace: float = 0.25, hspace: float = 0.2) -> None:
    """Margins in inches, whatever the figure's size."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h, wspace=wspace,
                        hspace=hspace)


def pretty(metric: str) -> str:
    """A metric's name for people: train_top1_error → train top-1 error."""
    return metric.replace("_", " ").replace("top1", "top-1").replace("top5", "top-5")


def _plot_runs(ax: plt.Axes, runs: list[tuple[int, pd.DataFrame]], metric: str, colour: str, style: str,
               label: str) -> None:
    """One line per seed, labelled once; a diverged run simply ends where its metrics end."""
    first = True
    alpha = 0.9 if len(runs) <= 3 else max(0.25, 2.5 / len(runs))
    for _seed, hist in runs:
        if metric in hist and hist[metric].notna().any():
            ax.plot(hist["step"], hist[metric], color=colour, ls=style, lw=1.4, alpha=alpha,
                    label=label if first else None)
            first = False


def learning_curves(curves: Curves, metric: str, threshold: float | None = None, title: str = "") -> str:
    """Figure-1 style: one style per variant (solid, dashed), one line per seed, the threshold dotted."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for i, (variant, runs) in enumerate(curves.items()):
        _plot_runs(ax, runs, metric, COLOURS[i % len(COLOURS)], STYLES[i % len(STYLES)],
                   f"{variant} ({len(runs)} seed{'s' if len(runs) != 1 else ''})")
    if threshold is not None:
        ax.axhline(threshold, color="black", lw=0.8, ls=":", label=f"{threshold:g}% threshold")
    ax.set(xlabel="epoch", ylabel=pretty(metric) + " (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    set_margins(fig)
    return to_data_uri(fig)


def train_val_curves(curves: Curves, title: str = "") -> str:
    """Training (solid) vs validation (dashed) top-1 error, one panel per variant: the overfitting gap."""
    n = max(len(curves), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n + 0.6, 3.3), sharey=True, squeeze=False)
    for i, (ax, (variant, runs)) in enumerate(zip(axes[0], curves.items())):
        colour = COLOURS[i % len(COLOURS)]
        _plot_runs(ax, runs, "train_top1_error", colour, "-", "training")
        _plot_runs(ax, runs, "val_top1_error", colour, "--", "validation")
        ax.set_title(f"{variant} ({len(runs)} seed{'s' if len(runs) != 1 else ''})", fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("top-1 error (%)")
    fig.suptitle(title, fontsize=10)
    set_margins(fig, top=0.55 if title else 0.35, wspace=0.08)
    return to_data_uri(fig)


def stage_curves(panels: list[tuple[str, Curves]], metric: str = "val_top1_error", title: str = "") -> str:
    """Two-stage claims: one panel per stage (pre-training; fine-tuned vs scratch on the target set)."""
    n = max(len(panels), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n + 0.6, 3.3), squeeze=False)
    k = 0
    for ax, (panel_title, curves) in zip(axes[0], panels):
        for variant, runs in curves.items():
            _plot_runs(ax, runs, metric, COLOURS[k % len(COLOURS)], STYLES[k % len(STYLES)], variant)
            k += 1
        ax.set_title(panel_title, fontsize=9)
        ax.set(xlabel="epoch", ylabel=pretty(metric) + " (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    set_margins(fig, top=0.55 if title else 0.35, wspace=0.3)
    return to_data_uri(fig)


@dataclass
class BarPanel:
    """One measure: per-variant values (one per seed), drawn as mean bars with 95% intervals."""

    title: str
    unit: str
    bars: list[tuple[str, list[float], tuple[float, float] | None]]   # label, per-seed values, (lo, hi)


def variant_bars(panels: list[BarPanel]) -> str:
    """Per-variant means with their 95% intervals, every seed as a dot."""
    n = max(len(panels), 1)
    fig, axes = plt.subplots(1, n, figsize=(2.9 * n + 0.6, 3.3), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for x, (_label, values, ci) in enumerate(panel.bars):
            finite = [v for v in values if math.isfinite(v)]
            mean = float(np.mean(finite)) if finite else math.nan
            colour = COLOURS[x % len(COLOURS)]
            ax.bar(x, mean, color=colour, alpha=0.35, width=0.6)
            if ci is not None and all(math.isfinite(v) for v in ci):
                err = [[max(mean - ci[0], 0.0)], [max(ci[1] - mean, 0.0)]]
                ax.errorbar(x, mean, yerr=err, color="black", capsize=5, lw=1.2)
            jitter = np.linspace(-0.12, 0.12, len(finite)) if len(finite) > 1 else np.zeros(len(finite))
            ax.plot(x + jitter, finite, "o", color=colour, ms=3.5)
        ax.set_xticks(range(len(panel.bars)), [textwrap.fill(b[0], 18) for b in panel.bars], fontsize=7)
        ax.set_ylabel(textwrap.fill(panel.unit, 30), fontsize=8)
        ax.set_title(textwrap.fill(panel.title, 40), fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    set_margins(fig, bottom=0.6, top=0.6, wspace=0.5)
    return to_data_uri(fig)


def _mosaic(kernels: np.ndarray, cols: int, text_rows: int) -> np.ndarray:
    """Kernels [n, 3, k, k] → one RGB image, each kernel scaled to [0, 1] on its own (Figure 3)."""
    n, _, k, _ = kernels.shape
    rows = math.ceil(n / cols)
    cell_w, cell_h = k + 1, k + 1 + text_rows
    out = np.ones((rows * cell_h, cols * cell_w, 3))
    for i, w in enumerate(kernels):
        lo, hi = float(w.min()), float(w.max())
        img = (w - lo) / (hi - lo) if hi > lo else np.full_like(w, 0.5)
        r, c = divmod(i, cols)
        out[r * cell_h:r * cell_h + k, c * cell_w:c * cell_w + k] = img.transpose(1, 2, 0)
    return out


def kernel_grid(weights: np.ndarray, c: np.ndarray, title: str, colour_tower: str) -> str:
    """conv1 kernels per tower (first half of channels = A), each with its chromatic fraction c."""
    half = len(weights) // 2
    k = weights.shape[-1]
    cols = min(8, max(half, 1))
    text_rows = max(3, math.ceil(k * 0.55))
    aspect = math.ceil(half / cols) * (k + 1 + text_rows) / (cols * (k + 1))
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 4.3 * aspect + 0.75))
    for ax, name, sl in zip(axes, ("A", "B"), (slice(0, half), slice(half, None))):
        mosaic = _mosaic(weights[sl], cols, text_rows)
        ax.imshow(mosaic, interpolation="nearest")
        for i, value in enumerate(c[sl]):
            r, col = divmod(i, cols)
            ax.text(col * (k + 1) + k / 2 - 0.5, r * (k + 1 + text_rows) + k + text_rows / 2, f"{value:.2f}",
                    ha="center", va="center", fontsize=5.5, color="#333")
        which = "colour tower" if name == colour_tower else "other tower"
        ax.set_title(f"tower {name} ({which}): median c = {np.median(c[sl]):.2f}", fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    set_margins(fig, left=0.1, right=0.1, bottom=0.1, top=0.6, wspace=0.06)
    return to_data_uri(fig)


def colour_distribution(groups: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> str:
    """c of every kernel, the colour tower beside the other one, per group (trained, control, init)."""
    n = max(len(groups), 1)
    fig, axes = plt.subplots(1, n, figsize=(2.8 * n + 0.6, 3.2), sharey=True, squeeze=False)
    rng = np.random.default_rng(0)
    for ax, (title, colour_c, other_c) in zip(axes[0], groups):
        for x, (values, colour) in enumerate(((colour_c, "#d62728"), (other_c, "#1f77b4"))):
            ax.plot(x + rng.uniform(-0.18, 0.18, len(values)), values, "o", color=colour, ms=2.5, alpha=0.5)
            if len(values):
                ax.plot([x - 0.28, x + 0.28], [np.median(values)] * 2, color="black", lw=2)
        ax.axhline(2 / 3, color="grey", ls=":", lw=1)
        ax.set_xticks([0, 1], [f"colour tower\n{_share(colour_c)}", f"other tower\n{_share(other_c)}"], fontsize=7)
        ax.set_title(title, fontsize=8)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel("chromatic fraction c (dotted: random ≈ 2/3)", fontsize=8)
    set_margins(fig, bottom=0.6, top=0.35, wspace=0.08)
    return to_data_uri(fig)


def _share(values: np.ndarray) -> str:
    return f"{100 * float(np.mean(values > 0.5)):.0f}% with c > 0.5" if len(values) else "no kernels"


@dataclass
class ForestRow:
    label: str
    mean: float
    lo: float
    hi: float
    paper: float | None
    unit: str          # panel key: "pp", "×" (ratio, log axis) or the measure's own unit
    badge: str


def ratio_axis(axis: matplotlib.axis.Axis) -> None:
    """Ticks of a log-scale ratio axis at powers of 2, labelled 1×, 2×, 4×."""
    axis.set_major_locator(matplotlib.ticker.LogLocator(base=2))
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}×"))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def draw_effect(ax: plt.Axes, at: float, mean: float, lo: float, hi: float, paper: float | None, badge: str, *,
                vertical: bool = False, paper_offset: float = 0.0, paper_size: float = 5) -> None:
    """One effect at position ``at``: its interval and mean coloured by verdict (hollow: smoke only), the paper's
    value as a black diamond. Horizontal (forest plot) or vertical (effect against scale)."""
    def point(pos: float, value: float) -> tuple[float, float]:
        return (pos, value) if vertical else (value, pos)

    colour = BADGE_COLOURS.get(badge, "#1f77b4")
    if math.isfinite(lo) and math.isfinite(hi):
        (x0, y0), (x1, y1) = point(at, lo), point(at, hi)
        ax.plot([x0, x1], [y0, y1], color=colour, lw=2)
    if math.isfinite(mean):
        ax.plot(*point(at, mean), "o", color=colour, mfc="white" if badge == "smoke only" else colour)
    if paper is not None:
        ax.plot(*point(at + paper_offset, paper), "D", color="black", ms=paper_size)


def verdict_legend(fig: plt.Figure, badges: set[str], max_columns: int | None = None) -> None:
    """The legend under a figure of effects: the verdicts shown, then the paper's value."""
    handles = [plt.Line2D([], [], color=c, marker="o", lw=2, label=b) for b, c in BADGE_COLOURS.items() if b in badges]
    handles.append(plt.Line2D([], [], color="black", marker="D", lw=0, label="paper's value"))
    fig.legend(handles=handles, fontsize=7, loc="lower center", ncol=min(len(handles), max_columns or len(handles)),
               frameon=False)


def forest(rows: list[ForestRow]) -> str:
    """Every measured effect with its 95% interval beside the paper's value, one panel per unit."""
    units = sorted({r.unit for r in rows}, key=lambda u: (u != "pp", u != "×", u))
    n = max(len(rows), 1)
    labels = [textwrap.fill(r.label, 64) for r in rows]
    left = 0.25 + 0.05 * max((len(line) for label in labels for line in label.splitlines()), default=10)
    row_h = 0.42 if any("\n" in label for label in labels) else 0.3
    fig, axes = plt.subplots(1, len(units), figsize=(left + 0.3 + 2.8 * len(units), row_h * n + 1.1), sharey=True,
                             squeeze=False, gridspec_kw={"width_ratios": [3 if u == "pp" else 2 for u in units]})
    panels = dict(zip(units, axes[0]))
    for unit, ax in panels.items():
        ax.axvline(1.0 if unit == "×" else 0.0, color="grey", ls=":", lw=1)
        ax.set_xlabel({"pp": "effect (percentage points)", "×": "ratio (log scale)"}.get(unit, unit), fontsize=8)
        if unit == "×":
            ax.set_xscale("log")
            ratio_axis(ax.xaxis)
        ax.grid(alpha=0.3, axis="x")
    for y, row in enumerate(rows):
        draw_effect(panels[row.unit], y, row.mean, row.lo, row.hi, row.paper, row.badge)
    axes[0][0].set_yticks(range(len(rows)), labels, fontsize=7)
    axes[0][0].set_ylim(len(rows) - 0.5, -0.5)
    verdict_legend(fig, {r.badge for r in rows})
    set_margins(fig, left=left, bottom=0.75, top=0.15, wspace=0.08)
    return to_data_uri(fig)
