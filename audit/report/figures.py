"""Matplotlib figures for the report, returned as embeddable PNG data URIs (self-contained HTML)."""

from __future__ import annotations

import base64
import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def to_data_uri(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def learning_curves(curves: dict[str, list[tuple[int, pd.DataFrame]]], metric: str, ylabel: str,
                    threshold: float | None = None, title: str = "") -> str:
    """Figure-1 style: one colour per variant, one line per seed, the threshold dashed."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for (variant, runs), colour in zip(curves.items(), COLOURS):
        for i, (seed, hist) in enumerate(runs):
            if metric in hist:
                ax.plot(hist["step"], hist[metric], color=colour, alpha=0.85, lw=1.4,
                        ls="-" if i == 0 else "--", label=f"{variant} (seed {seed})")
    if threshold is not None:
        ax.axhline(threshold, color="black", lw=0.8, ls=":", label=f"{threshold:g}% threshold")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return to_data_uri(fig)


def forest(rows: list[dict]) -> str:
    """Every measured effect with its 95% interval, the paper's value as a diamond, null dotted.

    Each row: label, mean, lo, hi, paper (all on the display scale), scale ('difference'|'ratio').
    """
    n = max(len(rows), 1)
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 0.45 * n + 1.2), sharey=True,
                             gridspec_kw={"width_ratios": [3, 2]})
    for ax, scale in zip(axes, ("difference", "ratio")):
        ax.axvline(1.0 if scale == "ratio" else 0.0, color="grey", ls=":", lw=1)
        ax.set_xlabel("effect (percentage points)" if scale == "difference" else "ratio (log scale)")
        if scale == "ratio":
            ax.set_xscale("log")
        ax.grid(alpha=0.3, axis="x")
    for y, row in enumerate(rows):
        ax = axes[1] if row["scale"] == "ratio" else axes[0]
        lo = row["lo"] if math.isfinite(row["lo"]) else row["mean"]
        hi = row["hi"] if math.isfinite(row["hi"]) else row["mean"]
        ax.plot([lo, hi], [y, y], color="#1f77b4", lw=2)
        ax.plot(row["mean"], y, "o", color="#1f77b4")
        if row.get("paper") is not None:
            ax.plot(row["paper"], y, "D", color="#d62728", ms=6)
    axes[0].set_yticks(range(len(rows)), [r["label"] for r in rows], fontsize=8)
    axes[0].invert_yaxis()
    axes[0].plot([], [], "o-", color="#1f77b4", label="measured, 95% interval")
    axes[0].plot([], [], "D", color="#d62728", label="paper")
    axes[0].legend(fontsize=7, loc="lower left")
    return to_data_uri(fig)
