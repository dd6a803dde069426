"""Statistics for verdicts (DESIGN.md §6): pure functions, no I/O.

Per seed d = treatment − baseline (or log(treatment / baseline) for ratio claims). With k seeds:
the mean, a t-interval, a verdict, whether the paper's number lies inside the interval, and how
many seeds a conclusive answer would need. Holm's correction runs across the claims of an audit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scipy import stats as _st

SUPPORTED, CONTRADICTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "contradicted", "not supported", "inconclusive"


@dataclass(frozen=True)
class Interval:
    mean: float
    lo: float
    hi: float


def t_interval(values: list[float], level: float = 0.95) -> Interval:
    """Mean and two-sided t-interval; one value gives an unbounded interval, zero spread a point."""
    k = len(values)
    if k == 0:
        return Interval(math.nan, math.nan, math.nan)
    mean = sum(values) / k
    if k == 1:
        return Interval(mean, -math.inf, math.inf)
    sd = _sd(values, mean)
    half = float(_st.t.ppf(0.5 + level / 2, k - 1)) * sd / math.sqrt(k)
    return Interval(mean, mean - half, mean + half)


def _sd(values: list[float], mean: float) -> float:
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def p_value(values: list[float]) -> float:
    """Two-sided one-sample t-test of mean 0 (zero spread: 0 if the mean is non-zero, else 1)."""
    k = len(values)
    if k < 2:
        return 1.0
    mean = sum(values) / k
    sd = _sd(values, mean)
    if sd == 0:
        return 0.0 if mean != 0 else 1.0
    t = mean / (sd / math.sqrt(k))
    return float(2 * _st.t.sf(abs(t), k - 1))


def holm(pvalues: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def seeds_needed(values: list[float], smallest: float, cap: int = 1000) -> int | None:
    """Seeds at which the observed mean and spread would give a conclusive interval.

    Conclusive means the 95% interval excludes 0, or the 90% interval fits inside ±smallest.
    None when even ``cap`` seeds would not do (or the spread is unknown).
    """
    k = len(values)
    if k < 2:
        return None
    mean = sum(values) / k
    sd = _sd(values, mean)
    if sd == 0:
        return max(k, 3)
    for n in range(max(k, 3), cap + 1):
        se = sd / math.sqrt(n)
        if abs(mean) > _st.t.ppf(0.975, n - 1) * se or abs(mean) + _st.t.ppf(0.95, n - 1) * se < smallest:
            return n
    return None


@dataclass(frozen=True)
class Verdict:
    label: str            # supported / contradicted / not supported / inconclusive
    reason: str
    paper: str            # consistent / smaller / larger / n/a
    seeds_needed: int | None = None
    notes: list[str] = field(default_factory=list)


def decide(values: list[float], expect: str, smallest: float, scientific: bool = True,
           paper: float | None = None, adjusted_p: float | None = None) -> Verdict:
    """The DESIGN.md §6 rule on per-seed effects (already on the additive scale: log for ratios).

    ``expect`` is "increase" or "decrease"; ``smallest`` and ``paper`` are on the same scale.
    """
    ci95, ci90 = t_interval(values, 0.95), t_interval(values, 0.90)
    where = _paper_position(ci95, paper)
    k = len(values)
    if not scientific:
        return Verdict(INCONCLUSIVE, "smoke profile: proves the pipeline, gives no scientific verdict", where)
    if k < 3:
        return Verdict(INCONCLUSIVE, f"not enough evidence: {k} seed(s), at least 3 needed", where,
                       seeds_needed(values, smallest) if k >= 2 else 3)
    sign = 1 if expect == "increase" else -1
    if ci95.lo > 0 or ci95.hi < 0:
        label = SUPPORTED if sign * ci95.mean > 0 else CONTRADICTED
        if adjusted_p is not None and adjusted_p >= 0.05:
            return Verdict(INCONCLUSIVE, f"95% interval excludes 0, but not after Holm correction "
                           f"(adjusted p = {adjusted_p:.3f})", where, seeds_needed(values, smallest))
        side = "the claimed" if label == SUPPORTED else "the opposite"
        return Verdict(label, f"the 95% interval lies entirely on {side} side of zero", where)
    if -smallest < ci90.lo and ci90.hi < smallest:
        return Verdict(NOT_SUPPORTED, "the 90% interval lies inside ± the smallest effect that matters", where)
    return Verdict(INCONCLUSIVE, "the interval includes zero and effects that matter", where,
                   seeds_needed(values, smallest))


def _paper_position(ci: Interval, paper: float | None) -> str:
    if paper is None or math.isnan(ci.mean) or not math.isfinite(ci.lo):
        return "n/a"
    if ci.lo <= paper <= ci.hi:
        return "consistent"
    return "smaller" if math.copysign(1.0, paper) * ci.mean < abs(paper) else "larger"
