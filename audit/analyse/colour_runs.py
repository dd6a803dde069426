"""The paper says colour specialisation "occurs during every run": so each run gets its own test.

Per run (and per weights file: trained or initial), the permutation test over the kernels' tower
labels gives a p-value for the towers' difference in median chromatic fraction; a run *specialises*
when that p-value is below α and the index reaches the smallest effect that matters. Per variant
the report shows the fraction of runs that specialise with its exact (Clopper–Pearson) 95% interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

from audit.analyse.colour import colour_specialisation
from audit.analyse.measure import MeasureResult
from audit.analyse.stats import ALPHA
from audit.analyse.values import RunStore
from audit.record import Artifact

PERMUTATIONS = 2000


@dataclass(frozen=True)
class RunTest:
    variant: str
    weights: str            # conv1_final or conv1_init
    seed: int
    run_id: str
    index: float
    colour_tower: str
    p_value: float
    specialised: bool


@dataclass(frozen=True)
class Fraction:
    variant: str
    weights: str
    specialised: int
    runs: int
    lo: float
    hi: float


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for k successes in n trials."""
    if n == 0:
        return math.nan, math.nan
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(_st.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(_st.beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def run_tests(results: list[MeasureResult], store: RunStore, alpha: float = ALPHA) -> list[RunTest]:
    """Every run behind a colour measure, tested on its own (each run and weights file once)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for r in results:
        m = r.measure
        if m.kind != "colour_index":
            continue
        for row in r.rows:
            for variant, run_id, weights in ((m.treatment, row.treatment_run, m.metric),
                                             (m.baseline, row.baseline_run, m.baseline_metric or m.metric)):
                if (run_id, weights) in seen:
                    continue
                seen.add((run_id, weights))
                try:
                    w = np.load(store.artifact(run_id, Artifact.weights(weights)))
                except Exception:  # noqa: BLE001 - any store: a run without its weights is left out of the table
                    continue
                s = colour_specialisation(w, permutations=PERMUTATIONS, seed=row.seed)
                out.append(RunTest(variant, weights, row.seed, run_id, s.index, s.colour_tower, s.p_value,
                                   s.p_value < alpha and s.index >= r.claim.smallest_effect(m, r.profile)))
    return out


def fractions(tests: list[RunTest]) -> list[Fraction]:
    """Per variant and weights file: how many runs specialise, with the exact 95% interval."""
    groups: dict[tuple[str, str], list[RunTest]] = {}
    for t in tests:
        groups.setdefault((t.variant, t.weights), []).append(t)
    out = []
    for (variant, weights), runs in groups.items():
        k = sum(t.specialised for t in runs)
        out.append(Fraction(variant, weights, k, len(runs), *clopper_pearson(k, len(runs))))
    return out
