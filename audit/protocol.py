"""Checks on a claim's protocol (tuning grids, budgets), run by ``audit validate`` before anything trains.

- A learning-rate grid is log-spaced with at least three rates (so a best rate can lie inside it),
  and a variant whose weights start another (``init_from``) is not tuned (the child would need one
  parent per rate).
- ``tune_on`` and ``expected_crossing`` name measures of the claim; a ``holdout_*`` tune_metric needs
  images held out of training.
- A budget must be able to show the paper's number: at a scientific profile, a crossing measure
  with a paper number states the epochs its baseline needs (``expected_crossing``, from probes), and
  the treatment's budget must cover the paper's factor (ratio) or difference beyond it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NoReturn

from audit.spec import Claim, SpecError, _locate

MIN_GRID = 3
LOG_SPACING_TOLERANCE = 0.25   # consecutive log-steps may differ by this fraction of the mean step


def _fail(path: Path, index: dict, loc: tuple, message: str) -> NoReturn:
    raise SpecError(f"{path}:{_locate(index, loc)}: {'.'.join(map(str, loc))}: {message}")


def check_grid(rates: list[float]) -> str | None:
    """Why a learning-rate grid is unusable, or None."""
    if len(rates) < MIN_GRID:
        return f"a learning-rate grid needs at least {MIN_GRID} rates (got {len(rates)}), so the best can lie inside"
    if any(b <= a for a, b in zip(rates, rates[1:])):
        return "list the learning rates in increasing order, without repeats"
    steps = [math.log(b / a) for a, b in zip(rates, rates[1:])]
    mean = sum(steps) / len(steps)
    if any(abs(s - mean) > LOG_SPACING_TOLERANCE * mean for s in steps):
        return (f"the grid is not log-spaced (ratios {', '.join(f'{b / a:.2g}' for a, b in zip(rates, rates[1:]))}); "
                "use a constant factor between rates, e.g. [0.01, 0.03, 0.1]")
    return None


def _epochs(claim: Claim, profile: str, variant: str) -> int:
    return int(claim.run_overrides(profile, variant).get("train", {}).get("epochs", 90))


def check_protocol(claim: Claim, path: Path, index: dict) -> None:
    ids = [m.id for m in claim.measure]
    parents = {v.init_from for v in claim.variants.values() if v.init_from}
    for pname, prof in claim.profiles.items():
        where = ("profiles", pname)
        for variant, rates in prof.lr_grid.items():
            problem = check_grid(rates)
            if problem:
                _fail(path, index, where + ("lr_grid", variant), problem)
            if variant in parents or claim.variants[variant].init_from:
                _fail(path, index, where + ("lr_grid", variant),
                      "a variant that starts from, or starts, another variant's weights cannot be tuned")
        if prof.tune_on is not None and prof.tune_on not in ids:
            _fail(path, index, where + ("tune_on",), f"not a measure id (one of {ids})")
        if prof.tune_metric is not None:
            loc = where + ("tune_metric",)
            if not prof.lr_grid:
                _fail(path, index, loc, "nothing is tuned here: give an lr_grid or drop tune_metric")
            if not prof.tune_metric.endswith(("_error", "_loss")):
                _fail(path, index, loc, f"{prof.tune_metric}: tuning minimises this metric, so it must be an "
                      "error or a loss (a name ending in _error or _loss)")
            for variant in prof.lr_grid if prof.tune_metric.startswith("holdout_") else []:
                if not claim.run_overrides(pname, variant).get("train", {}).get("holdout_per_class", 0):
                    _fail(path, index, loc, f"{prof.tune_metric} needs train.holdout_per_class > 0 "
                          f"(variant {variant} holds out no training images)")
        for mid in prof.expected_crossing:
            if mid not in ids:
                _fail(path, index, where + ("expected_crossing", mid), f"not a measure id (one of {ids})")
        if not prof.scientific:
            continue
        for m in claim.measure:
            paper = claim.paper_number(m, pname)
            if m.kind != "epochs_to_threshold" or paper is None:
                continue
            if m.id not in prof.expected_crossing:
                _fail(path, index, where, f"measure {m.id} compares crossings with the paper's {paper:g}: state "
                      f"expected_crossing: {{{m.id}: EPOCHS}} (the epochs {m.baseline} needs, from probes) so the "
                      "budget can be checked")
            expected = prof.expected_crossing[m.id]
            needed = expected * paper if m.scale == "ratio" else expected + paper
            budget = _epochs(claim, pname, m.treatment)
            if budget < needed:
                _fail(path, index, where + ("train", "epochs"),
                      f"a budget of {budget} epochs cannot show the paper's {paper:g} for measure {m.id} "
                      f"({m.baseline} needs about {expected:g} epochs: at least {math.ceil(needed)} are needed)")
