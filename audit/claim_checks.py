"""Checks over a whole claim that its schema cannot make, each error at the line of the offending key.

A claim file that passes these cannot end hours later in a silent "no result":

- every measure compares two variants of the claim, or one variant's two metrics, never a variant
  with itself on the same metric;
- its metric is one that runs log (a ``weights`` file for ``colour_index``), and a threshold lies in
  the metric's range (an error rate is a percentage, 0-100);
- no measure sets a field that its kind ignores (a threshold outside ``epochs_to_threshold``, ...);
- ``init_from`` names a variant of the claim, with no cycle;
- a profile's ``variants``, ``lr_grid``, ``paper`` and ``smallest_effect`` name variants and measures of
  the claim (a ratio's smallest effect a factor > 1), and its ``tune_metric`` is logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

from audit.record import LOGGED_METRICS, WEIGHTS
from audit.spec import Claim, Measure, SpecError, _locate

_ONLY_FOR = {"threshold": "epochs_to_threshold", "tolerance": "epochs_to_converge", "epoch": "at_epoch",
             "members": "ensemble"}


def _fail(path: Path, index: dict, loc: tuple[Any, ...], message: str) -> NoReturn:
    raise SpecError(f"{path}:{_locate(index, loc)}: {'.'.join(map(str, loc))}: {message}")


def _check_metric(name: str, m: Measure, path: Path, index: dict, loc: tuple[Any, ...]) -> None:
    if m.kind == "colour_index":
        if name not in WEIGHTS:
            _fail(path, index, loc, f"colour_index reads a weights file: one of {', '.join(WEIGHTS)}, not {name!r}")
    elif name not in LOGGED_METRICS:
        _fail(path, index, loc, f"no run logs {name!r} (logged: {', '.join(sorted(LOGGED_METRICS))})")


def _check_measure(claim: Claim, i: int, m: Measure, path: Path, index: dict) -> None:
    where = ("measure", i)
    for role in ("treatment", "baseline"):
        if getattr(m, role) not in claim.variants:
            _fail(path, index, where + (role,), f"{getattr(m, role)!r} is not a variant ({', '.join(claim.variants)})")
    for field, kind in _ONLY_FOR.items():
        if getattr(m, field) is not None and m.kind != kind:
            _fail(path, index, where + (field,), f"only {kind} reads a {field}; kind {m.kind} ignores it")
    if m.kind == "overfitting_gap":
        for field in ("metric", "baseline_metric"):
            if field in m.model_fields_set:
                _fail(path, index, where + (field,), "overfitting_gap reads val_top1_error − train_top1_error of "
                      f"each run; kind overfitting_gap ignores {field}")
    else:
        _check_metric(m.metric, m, path, index, where + ("metric",))
        if m.baseline_metric is not None:
            _check_metric(m.baseline_metric, m, path, index, where + ("baseline_metric",))
    if m.treatment == m.baseline and (m.baseline_metric or m.metric) == m.metric and m.kind != "ensemble":
        _fail(path, index, where + ("baseline",), f"compares {m.treatment} with itself on the same metric "
              "(name another variant, or a baseline_metric)")
    if m.threshold is not None and m.metric in LOGGED_METRICS:
        low, high = LOGGED_METRICS[m.metric]
        if not low <= m.threshold <= high:
            unit = " (a percentage)" if high == 100.0 else ""
            _fail(path, index, where + ("threshold",), f"{m.threshold:g} is outside {m.metric}'s range "
                  f"{low:g} to {high:g}{unit}")


def _check_init_from(claim: Claim, path: Path, index: dict) -> None:
    for name, variant in claim.variants.items():
        trail = [name]
        parent = variant.init_from
        while parent:
            loc = ("variants", trail[-1], "init_from")
            if parent not in claim.variants:
                _fail(path, index, loc, f"{parent!r} is not a variant ({', '.join(claim.variants)})")
            if parent in trail:
                _fail(path, index, loc, f"init_from forms a cycle: {' → '.join(trail + [parent])}")
            trail.append(parent)
            parent = claim.variants[parent].init_from


def _check_profiles(claim: Claim, path: Path, index: dict) -> None:
    ids = [m.id for m in claim.measure]
    for pname, prof in claim.profiles.items():
        where = ("profiles", pname)
        for section in ("variants", "lr_grid"):
            for name in getattr(prof, section):
                if name not in claim.variants:
                    _fail(path, index, where + (section, name), f"not a variant ({', '.join(claim.variants)})")
        for section in ("paper", "smallest_effect"):
            for measure_id in getattr(prof, section):
                if measure_id not in ids:
                    _fail(path, index, where + (section, measure_id), f"not a measure id (one of {ids})")
        for m in claim.measure:
            value = prof.smallest_effect.get(m.id)
            if value is not None and (value <= 1 if m.scale == "ratio" else value <= 0):
                _fail(path, index, where + ("smallest_effect", m.id),
                      "a ratio's smallest effect is a factor > 1" if m.scale == "ratio" else "must be > 0")
        if prof.tune_metric is not None and prof.tune_metric not in LOGGED_METRICS:
            _fail(path, index, where + ("tune_metric",), f"no run logs {prof.tune_metric!r}")


def check_claim(claim: Claim, path: Path, index: dict) -> None:
    """Raise SpecError at the offending key's line for the first problem found."""
    for i, m in enumerate(claim.measure):
        _check_measure(claim, i, m, path, index)
    _check_init_from(claim, path, index)
    _check_profiles(claim, path, index)
