"""Statistics for verdicts: pure functions, no I/O. The rule is written out in README.md ("Verdicts").

Per seed d = treatment − baseline (or log(treatment / baseline) for ratio claims), each with:
- a *resolution variance*: what the measure's coarseness adds (an error rate moves in steps of one
  image, a crossing is known to about one evaluation interval), so tied seeds never look certain;
- a *censoring side*: +1 when the true effect is at least the observed one (the treatment never
  reached its threshold), −1 when at most (the baseline never did).

With k seeds: the mean, a t-interval whose spread is sqrt(s² + mean resolution variance) and whose
censored side is open, a p-value from the same spread, Holm's correction over a pre-registered
family, a verdict with five labels, a size judgement against the paper's number, and the seeds an
80%-power calculation asks for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from scipy import stats as _st

SUPPORTED = "supported"
NEGLIGIBLE = "supported, but negligible"
CONTRADICTED = "contradicted"
NOT_SUPPORTED = "not supported"
INCONCLUSIVE = "inconclusive"
EXPLORATORY = "exploratory"
IN_PROGRESS = "in progress"   # a registered comparison whose registered seeds are not all in yet
LABELS = (SUPPORTED, NEGLIGIBLE, CONTRADICTED, NOT_SUPPORTED, INCONCLUSIVE, EXPLORATORY)

ALPHA = 0.05
POWER = 0.8
SD_CONFIDENCE = 0.8     # planning uses the upper 80% confidence bound of the sd
MIN_SEEDS = 3


@dataclass(frozen=True)
class Effects:
    """Per-seed effects on the additive scale, with what each one's coarseness and censoring add."""

    values: tuple[float, ...]
    resolution_var: tuple[float, ...] = ()
    censored: tuple[int, ...] = ()          # per seed: 0, +1 (at least), −1 (at most)

    @classmethod
    def of(cls, values: Sequence[float], resolution_var: Sequence[float] | None = None,
           censored: Sequence[int] | None = None) -> Effects:
        k = len(values)
        return cls(tuple(values), tuple(resolution_var or [0.0] * k), tuple(censored or [0] * k))

    @property
    def k(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / self.k if self.k else math.nan

    @property
    def sd(self) -> float:
        """The seeds' sample sd, with the mean resolution variance added (ties are never certainty)."""
        if self.k < 2:
            return math.nan
        m = self.mean
        sample = sum((v - m) ** 2 for v in self.values) / (self.k - 1)
        return math.sqrt(sample + sum(self.resolution_var) / self.k)

    @property
    def open_above(self) -> bool:
        return any(c > 0 for c in self.censored)

    @property
    def open_below(self) -> bool:
        return any(c < 0 for c in self.censored)


@dataclass(frozen=True)
class Interval:
    mean: float
    lo: float
    hi: float

    @property
    def finite(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)


def t_interval(effects: Effects | Sequence[float], level: float = 0.95) -> Interval:
    """Mean and two-sided t-interval on the effective sd; a censored side is open (±∞).

    One seed, or seeds tied exactly on a measure with no stated resolution, give no spread to work
    with: the interval is unbounded rather than a point.
    """
    e = effects if isinstance(effects, Effects) else Effects.of(list(effects))
    if e.k == 0:
        return Interval(math.nan, math.nan, math.nan)
    if e.k == 1 or e.sd == 0:
        lo, hi = -math.inf, math.inf
    else:
        half = float(_st.t.ppf(0.5 + level / 2, e.k - 1)) * e.sd / math.sqrt(e.k)
        lo, hi = e.mean - half, e.mean + half
    return Interval(e.mean, -math.inf if e.open_below else lo, math.inf if e.open_above else hi)


def p_value(effects: Effects | Sequence[float]) -> float:
    """Two-sided one-sample t-test of mean 0 on the effective sd (1 when it cannot be computed)."""
    e = effects if isinstance(effects, Effects) else Effects.of(list(effects))
    if e.k < 2 or not e.sd > 0:
        return 1.0
    t = e.mean / (e.sd / math.sqrt(e.k))
    return float(2 * _st.t.sf(abs(t), e.k - 1))


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


# ---------------------------------------------------------------- planning by power

def sd_upper(sd: float, df: int, confidence: float = SD_CONFIDENCE) -> float:
    """Upper confidence bound of an sd estimated with ``df`` degrees of freedom: s·sqrt(df / χ²(1−c; df))."""
    return sd * math.sqrt(df / float(_st.chi2.ppf(1 - confidence, df)))


def power(n: int, effect: float, sd: float, alpha: float = ALPHA) -> float:
    """Power of the two-sided one-sample t-test with n seeds to detect ``effect`` (noncentral t)."""
    if n < 2 or sd <= 0:
        return 0.0
    df, ncp = n - 1, abs(effect) / sd * math.sqrt(n)
    crit = float(_st.t.ppf(1 - alpha / 2, df))
    return float(_st.nct.sf(crit, df, ncp) + _st.nct.cdf(-crit, df, ncp))


def seeds_for_power(sd: float, df: int | None, smallest: float, family: int = 1, alpha: float = ALPHA,
                    target: float = POWER, cap: int = 100_000) -> int | None:
    """Seeds giving ``target`` power at the smallest effect that matters.

    The sd is taken at its upper confidence bound (``df`` None: known exactly), α is divided by the
    family's size (Holm's first step, the worst case), and never fewer than MIN_SEEDS seeds.
    None when even ``cap`` seeds would not do, or the sd is unknown.
    """
    if not (sd > 0 and math.isfinite(sd)):
        return None
    planned, a = (sd if df is None else sd_upper(sd, df)), alpha / max(1, family)
    lo, hi = MIN_SEEDS, MIN_SEEDS        # power grows with n: double until it reaches the target, then bisect
    while not power(hi, smallest, planned, a) >= target:
        lo, hi = hi + 1, hi * 2
        if hi > cap:
            return None
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if power(mid, smallest, planned, a) >= target else (mid + 1, hi)
    return lo


# ---------------------------------------------------------------- the verdict

@dataclass(frozen=True)
class Verdict:
    label: str            # one of LABELS
    reason: str
    paper: str            # consistent / smaller / larger / n/a
    seeds_needed: int | None = None
    notes: list[str] = field(default_factory=list)


def decide(effects: Effects | Sequence[float], expect: str, smallest: float, scientific: bool = True,
           paper: float | None = None, adjusted_p: float | None = None, family: int = 1,
           alpha: float = ALPHA) -> Verdict:
    """The verdict rule on per-seed effects (already on the additive scale: log for ratios).

    ``expect`` is "increase" or "decrease"; ``smallest`` and ``paper`` are on the same scale.
    ``adjusted_p`` is the Holm-adjusted p within the family (None: the unadjusted p is used).
    """
    e = effects if isinstance(effects, Effects) else Effects.of(list(effects))
    ci95, ci90 = t_interval(e, 0.95), t_interval(e, 0.90)
    where = paper_position(ci95, paper)
    if not scientific:
        return Verdict(INCONCLUSIVE, "smoke profile: proves the pipeline, gives no scientific verdict", where)
    needed = seeds_for_power(e.sd, e.k - 1, smallest, family, alpha) if e.k >= 2 else None
    if e.k < MIN_SEEDS:
        return Verdict(INCONCLUSIVE, f"not enough evidence: {e.k} seed(s), at least {MIN_SEEDS} needed", where,
                       needed or MIN_SEEDS)
    p = p_value(e) if adjusted_p is None else adjusted_p
    sign = 1 if expect == "increase" else -1
    claimed_lo, claimed_hi = sorted((sign * ci95.lo, sign * ci95.hi))
    if claimed_lo > 0 or claimed_hi < 0:
        if p >= alpha:
            return Verdict(INCONCLUSIVE, f"the 95% interval excludes 0, but not after Holm's correction over "
                           f"the family (adjusted p = {p:.3f})", where, needed)
        if claimed_hi < 0:
            return Verdict(CONTRADICTED, "the 95% interval lies entirely on the opposite side of zero", where)
        if -smallest < ci95.lo and ci95.hi < smallest:
            return Verdict(NEGLIGIBLE, "the 95% interval lies on the claimed side of zero, but inside ± the "
                           "smallest effect that matters", where)
        return Verdict(SUPPORTED, "the 95% interval lies entirely on the claimed side of zero", where)
    if -smallest < ci90.lo and ci90.hi < smallest:
        return Verdict(NOT_SUPPORTED, "the 90% interval lies inside ± the smallest effect that matters", where)
    return Verdict(INCONCLUSIVE, "the interval includes zero and effects that matter", where, needed)


def paper_position(ci: Interval, paper: float | None) -> str:
    """Where the paper's number lies against the 95% interval: consistent, smaller, larger or n/a."""
    if paper is None or math.isnan(ci.mean) or (math.isinf(ci.lo) and math.isinf(ci.hi)):
        return "n/a"
    if ci.lo <= paper <= ci.hi:
        return "consistent"
    # the paper's number lies outside: is the measured effect smaller or larger in the paper's direction?
    return "smaller" if math.copysign(1.0, paper) * ci.mean < abs(paper) else "larger"
