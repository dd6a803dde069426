"""Learning-rate tuning that does not peek: rates are chosen on tuning seeds, never the verdict's.

A profile's ``lr_grid`` is run on its tuning seeds (1000, 1001, ...); its values are learning rates,
or of the field its ``tune_param`` names (``train.weight_decay``: a penalty tuned the same way, for
the doubt that dropout is roughly a tuned L2 penalty). Per variant, the rate whose runs
do best on the tuning measure (the variant's own value, in the measure's ``better`` direction; where
the profile names a ``tune_metric``, such as a held-out training slice's error, that metric's final
value instead, lowest best, whatever kind of measure the claim's is: a gap or a colour index) is
chosen once every rate has all its tuning runs completed. The verdict's seeds then run at that rate
only. A choice on the grid's edge is flagged: the best rate may lie outside the grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from audit import record
from audit.analyse.values import RunStore, run_value
from audit.record import Tag
from audit.spec import Claim


@dataclass
class Choice:
    """The tuning of one variant: every rate's score and the rate chosen (None: tuning unfinished)."""

    variant: str
    measure: str
    better: str
    rows: list[dict] = field(default_factory=list)   # per rate: lr, runs, mean, chosen
    lr: float | None = None                          # the value chosen (of ``param``)
    on_edge: bool = False
    runs: list[str] = field(default_factory=list)    # MLflow run ids of the tuning runs
    param: str = "train.lr"                          # the field the grid sets (the profile's tune_param)

    @property
    def name(self) -> str:
        return self.param.split(".")[-1]

    @property
    def note(self) -> str:
        if self.lr is None:
            return "tuning not finished"
        return (f"{self.name} {self.lr:g}"
                + (" (on the grid's edge: the best value may lie outside it)" if self.on_edge else ""))


def _tuning_runs(frame: pd.DataFrame, claim: str, variant: str, profile: str) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame[record.serving(frame, f"{claim}:{variant}", Tag.TUNING) & record.of_profile(frame, profile)]


def choose(claim: Claim, profile: str, frame: pd.DataFrame, store: RunStore,
           tuning_seeds: int | None = None) -> dict[str, Choice]:
    """Per tuned variant of a claim at a profile: the scores of its grid and the rate chosen."""
    prof = claim.profiles[profile]
    m = claim.tuning_measure(profile)
    if prof.tune_metric:   # that metric's final value, minimised: never the measure's gap, index or crossing
        m = m.model_copy(update={"kind": "final", "metric": prof.tune_metric, "baseline_metric": None,
                                 "better": "lower"})
    seeds = set(prof.tuning_seed_ids(tuning_seeds))
    out: dict[str, Choice] = {}
    for variant, grid in prof.lr_grid.items():
        choice = Choice(variant, prof.tune_metric or m.id, m.better, param=prof.tune_param)
        runs = _tuning_runs(frame, claim.id, variant, profile)
        done = runs[record.usable(runs)] if not runs.empty else runs
        metric = m.baseline_metric if variant == m.baseline and m.baseline_metric else m.metric
        lrs = record.params(done, prof.tune_param).astype(float) if not done.empty else pd.Series(dtype=float)
        scores: dict[float, float] = {}
        complete = True
        for lr in grid:
            subset = done[(lrs - lr).abs() < 1e-12 * lr] if not done.empty else done
            subset = subset[record.tags(subset, Tag.SEED).astype(int).isin(seeds)] if not subset.empty else subset
            values = [run_value(r, m, metric, store).value for _, r in subset.iterrows()]
            values = [v for v in values if not math.isnan(v)]
            complete &= len(subset) == len(seeds)
            scores[lr] = sum(values) / len(values) if values else math.nan
            choice.rows.append({"lr": lr, "runs": len(subset), "mean": scores[lr], "chosen": False})
            choice.runs += list(subset["run_id"]) if not subset.empty else []
        if complete and all(not math.isnan(s) for s in scores.values()):
            sign = 1 if m.better == "lower" else -1
            best = min(grid, key=lambda lr: (sign * scores[lr], lr))
            choice.lr, choice.on_edge = best, best in (min(grid), max(grid))
            for row in choice.rows:
                row["chosen"] = row["lr"] == best
        out[variant] = choice
    return out


def chosen_rates(claims: list[Claim], profile: str | None, frame: pd.DataFrame, store: RunStore,
                 tuning_seeds: int | None = None) -> dict[tuple[str, str], float]:
    """(claim, variant) → the chosen rate, for every tuned variant whose tuning has finished."""
    out: dict[tuple[str, str], float] = {}
    for claim in claims:
        pname = profile or claim.default_profile()
        if pname not in claim.profiles:
            continue
        for variant, choice in choose(claim, pname, frame, store, tuning_seeds).items():
            if choice.lr is not None:
                out[(claim.id, variant)] = choice.lr
    return out
