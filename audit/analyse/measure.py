"""From tracked runs to per-claim measurements: a number per run, an effect per seed, a verdict.

Runs are found by their tags (``audit.variants`` holds every claim:variant a run serves as evidence;
tuning runs carry ``audit.tuning`` instead and never enter a verdict), so the analysis needs no
access to the data or the training code. Verdicts are corrected for multiplicity over a fixed
family: the pre-registered audit's (``Family``), or else each claim's own measures at a profile —
never whatever else happens to be in the store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from audit import record
from audit.analyse.ensemble import ensembles
from audit.analyse.stats import (
    ALPHA,
    EXPLORATORY,
    IN_PROGRESS,
    Effects,
    Interval,
    Verdict,
    decide,
    holm,
    p_value,
    t_interval,
)
from audit.analyse.tuning import Choice, choose
from audit.analyse.values import RunStore, Value, run_value
from audit.record import Tag
from audit.spec import Claim, Measure

__all__ = ["Family", "MeasureResult", "RunStore", "SeedRow", "analyse_audit", "analyse_claim", "analyse_registered",
           "runs_for"]


@dataclass(frozen=True)
class Family:
    """The multiplicity family of a pre-registered audit: its profile and (claim, measure) pairs."""

    name: str
    profile: str
    members: tuple[tuple[str, str], ...]
    alpha: float = ALPHA
    tuning_seeds: int | None = None   # the audit's tuning seeds, which decide its rates (None: each profile's)
    seeds: tuple[tuple[str, int], ...] = ()   # (claim, its registered verdict seeds: 0 .. n - 1)

    def registered_seeds(self, claim_id: str) -> int | None:
        return dict(self.seeds).get(claim_id)

    def __contains__(self, item: tuple[str, str]) -> bool:
        return item in self.members


@dataclass
class SeedRow:
    seed: int
    treatment_run: str
    baseline_run: str
    treatment: Value
    baseline: Value
    effect: float           # on the display scale (difference, or ratio)
    additive: float         # on the statistics' scale (log for ratios)
    resolution_var: float   # the variance the two values' resolutions add to the effect
    censored: int           # +1: the effect is at least this; −1: at most; 0: exact
    used: bool = True       # False: both runs censored, the effect is unknown (shown, not counted)
    members: tuple[str, ...] = ()   # an ensemble's runs (its row stands for the whole group)


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
    family: str = ""            # which multiplicity family the verdict was corrected in
    family_size: int = 1
    tuning: dict[str, Choice] = field(default_factory=dict)
    datasets: list[str] = field(default_factory=list)
    failed_runs: list[str] = field(default_factory=list)
    planned_seeds: int | None = None   # a registered audit's seeds for this claim (None: not registered)

    @property
    def effects(self) -> Effects:
        return effects_of(self.rows)

    @property
    def exploratory(self) -> bool:
        return self.verdict.label == EXPLORATORY


def effects_of(rows: list[SeedRow]) -> Effects:
    """The statistics' input: the counted seeds' effects, rounding variances and censoring sides."""
    used = [r for r in rows if r.used]
    return Effects.of([r.additive for r in used], [r.resolution_var for r in used], [r.censored for r in used])


def runs_for(frame: pd.DataFrame, claim: str, variant: str, profile: str) -> pd.DataFrame:
    """Runs serving claim:variant as evidence in a profile (tuning runs are not among them)."""
    if frame.empty:
        return frame
    return frame[record.serving(frame, f"{claim}:{variant}") & record.of_profile(frame, profile)]


def _by_seed(runs: pd.DataFrame) -> dict[int, pd.Series]:
    """Newest run per seed."""
    out: dict[int, pd.Series] = {}
    for _, run in runs.sort_values("start_time").iterrows():
        out[record.seed(run)] = run
    return out


def _pair(seed: int, m: Measure, t_run: pd.Series, b_run: pd.Series, store: RunStore) -> SeedRow:
    """One seed's effect, with its resolution variance and censoring side."""
    t = run_value(t_run, m, m.metric, store)
    b = run_value(b_run, m, m.baseline_metric or m.metric, store)
    if m.scale == "ratio":
        effect = t.value / b.value if b.value else math.nan
        additive = math.log(effect) if effect > 0 else math.nan
        res_var = ((t.resolution / t.value) ** 2 if t.value else 0) + ((b.resolution / b.value) ** 2 if b.value else 0)
    else:
        effect = additive = t.value - b.value
        res_var = t.resolution ** 2 + b.resolution ** 2
    censored = int(t.censored) - int(b.censored)
    return SeedRow(seed, t_run["run_id"], b_run["run_id"], t, b, effect, additive, res_var / 12, censored,
                   used=not (t.censored and b.censored) and not math.isnan(additive))


def _ensemble_rows(m: Measure, runs: pd.DataFrame, store: RunStore) -> list[SeedRow]:
    """One row per disjoint group of ``m.members`` seeds: ensemble error − the members' mean error."""
    rows = []
    for g in ensembles(_by_seed(runs), m.members or 2, m.metric, store):
        named = f"the ensemble of seeds {', '.join(map(str, g.seeds))}"
        effect = g.ensemble - g.single
        rows.append(SeedRow(g.seeds[0], g.run_ids[0], g.run_ids[0], Value(g.ensemble, g.flag or named, g.resolution),
                            Value(g.single, "the members' mean", g.resolution), effect, effect,
                            2 * g.resolution ** 2 / 12, 0, used=not math.isnan(effect), members=g.run_ids))
    return rows


def _completed(runs: pd.DataFrame, choice: Choice | None) -> pd.DataFrame:
    """Completed evidence runs of a variant; for a tuned variant, only those at the chosen value."""
    if runs.empty:
        return runs
    done = runs[record.usable(runs)]
    if choice is None:
        return done
    if choice.lr is None:
        return done.iloc[0:0]
    values = record.params(done, choice.param).astype(float)
    return done[(values - choice.lr).abs() < 1e-12 * choice.lr]


def analyse_claim(claim: Claim, profile: str, frame: pd.DataFrame, store: RunStore,
                  tuning_seeds: int | None = None, seeds: int | None = None) -> list[MeasureResult]:
    """Every measure of one claim at one profile, uncorrected (``analyse_audit`` corrects).

    ``tuning_seeds``: how many tuning seeds chose the rates (a registered audit's; None: the profile's).
    ``seeds``: a registered audit's verdict seeds; runs of any later seed are left out, so seeds
    added after the registration can never enter its verdict.
    """
    scientific = claim.profiles[profile].scientific
    tuning = choose(claim, profile, frame, store, tuning_seeds)
    picked, failed = {}, {}
    for variant in claim.variants:
        runs = runs_for(frame, claim.id, variant, profile)
        failed[variant] = list(runs.loc[record.with_status(runs, record.FAILED), "run_id"]) if not runs.empty else []
        picked[variant] = _completed(runs, tuning.get(variant))
        if seeds is not None and not picked[variant].empty:
            picked[variant] = picked[variant][record.tags(picked[variant], Tag.SEED).astype(int) < seeds]
    results = []
    for m in claim.measure:
        if m.kind == "ensemble":
            rows = _ensemble_rows(m, picked[m.treatment], store)
        else:
            treat, base = _by_seed(picked[m.treatment]), _by_seed(picked[m.baseline])
            rows = [_pair(seed, m, treat[seed], base[seed], store) for seed in sorted(set(treat) & set(base))]
        effects = effects_of(rows)
        ci = t_interval(effects)
        display = Interval(*(math.exp(v) if m.scale == "ratio" else v for v in (ci.mean, ci.lo, ci.hi)))
        used = [picked[m.treatment], picked[m.baseline]]
        datasets = sorted({d for r in used for d in record.tags(r, Tag.dataset("name")) if d})
        paper = claim.paper_number(m, profile)
        smallest = m.additive(claim.smallest_effect(m, profile))
        verdict = decide(effects, m.expect, smallest, scientific, m.additive(paper))
        results.append(MeasureResult(claim, m, profile, rows, display, verdict, p_value(effects), paper=paper,
                                     tuning=tuning, datasets=datasets,
                                     failed_runs=failed[m.treatment] + failed[m.baseline], planned_seeds=seeds))
    return results


def _all_seeds_in(r: MeasureResult) -> bool:
    """Whether every registered seed has its completed pair (an ensemble: every group of members)."""
    if r.planned_seeds is None:
        return True
    if r.measure.kind == "ensemble":
        return len(r.rows) >= r.planned_seeds // (r.measure.members or 2)
    return set(range(r.planned_seeds)) <= {row.seed for row in r.rows}


def _correct(group: list[MeasureResult], name: str, alpha: float, size: int) -> None:
    """Holm's correction within one family of ``size`` members, and the verdicts that follow from it.

    Members without all their registered seeds get no verdict ("in progress") and, like members
    without results, count with p = 1: a verdict comes only from the seeds planned, never from a
    look at part of them, and never gets easier because another member has not finished.
    """
    waiting = [r for r in group if not _all_seeds_in(r)]
    for r in waiting:
        r.family, r.family_size = name, size
        r.verdict = Verdict(IN_PROGRESS, f"{len({row.seed for row in r.rows})} of the {r.planned_seeds} "
                            "registered seeds are in: no verdict until all are", r.verdict.paper)
    group = [r for r in group if _all_seeds_in(r)]
    pvalues = [r.p for r in group] + [1.0] * (size - len(group))
    for r, adjusted in zip(group, holm(pvalues)):
        m = r.measure
        r.adjusted_p, r.family, r.family_size = adjusted, name, size
        r.verdict = decide(r.effects, m.expect, m.additive(r.claim.smallest_effect(m, r.profile)),
                           r.claim.profiles[r.profile].scientific,
                           m.additive(r.paper), adjusted, family=size, alpha=alpha)


def analyse_audit(claims: list[Claim], frame: pd.DataFrame, store: RunStore, profile: str | None = None,
                  family: Family | None = None) -> list[MeasureResult]:
    """Every claim with runs in the store, per profile, corrected over a fixed family.

    With a pre-registered ``family``, only its profile is analysed, its members share one Holm
    correction, every other measure is exploratory (shown, never with a verdict), and its tuning
    seeds (not each profile's default) decide the rates, as they did when the audit ran. Without
    one, each claim's measures at a profile are their own family.
    """
    if family is not None:
        profile = family.profile
    tuning_seeds = family.tuning_seeds if family is not None else None
    results: list[MeasureResult] = []
    profiles = [profile] if profile else record.profiles(frame)
    for claim in claims:
        seeds = family.registered_seeds(claim.id) if family is not None else None
        for prof in profiles:
            if prof in claim.profiles:
                results += [r for r in analyse_claim(claim, prof, frame, store, tuning_seeds, seeds) if r.rows]
    if family is not None:
        members = [r for r in results if (r.claim.id, r.measure.id) in family]
        _correct(members, family.name, family.alpha, len(family.members))
        for r in results:
            if (r.claim.id, r.measure.id) not in family:
                r.verdict = Verdict(EXPLORATORY, f"not in the pre-registered family of {family.name}: shown, "
                                    "without a verdict", r.verdict.paper)
        return results
    for claim in claims:
        for prof in profiles:
            group = [r for r in results if r.claim is claim and r.profile == prof]
            if group:
                _correct(group, f"{claim.id} at {prof} (not pre-registered)", ALPHA, len(claim.measure))
    return results


def analyse_registered(claims: list[Claim], frame: pd.DataFrame, store: RunStore,
                       families: list[Family]) -> list[MeasureResult]:
    """Each registered profile under its audit's family, every other profile as without one.

    What a store of several audits' evidence bundles (``results/``) needs: each audit's runs read
    under its own registration, as ``audit findings`` reads them, so the report and the README agree.
    The families must be at distinct profiles.
    """
    results: list[MeasureResult] = []
    for family in families:
        results += analyse_audit(claims, frame, store, family.profile, family)
    if frame.empty:
        return results
    rest = frame[~record.tags(frame, Tag.PROFILE).isin([f.profile for f in families])]
    return results + (analyse_audit(claims, rest, store) if not rest.empty else [])
