"""The verdict statistics: known inputs give known intervals and verdicts, edge cases included."""

from __future__ import annotations

import math

import pytest

from audit.analyse.stats import (
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    Effects,
    decide,
    holm,
    p_value,
    seeds_for_power,
    t_interval,
)


def test_t_interval_matches_hand_computation() -> None:
    # mean 2, sd 1, k 3: half width = t(0.975, 2) * 1 / sqrt(3) = 4.302653 / 1.732051 = 2.484138
    ci = t_interval([1.0, 2.0, 3.0])
    assert ci.mean == pytest.approx(2.0)
    assert ci.lo == pytest.approx(2.0 - 2.484138, abs=1e-5)
    assert ci.hi == pytest.approx(2.0 + 2.484138, abs=1e-5)
    ci90 = t_interval([1.0, 2.0, 3.0], 0.90)  # t(0.95, 2) = 2.919986
    assert ci90.hi - ci90.mean == pytest.approx(2.919986 / math.sqrt(3), abs=1e-5)


def test_one_seed_gives_an_unbounded_interval_and_no_verdict() -> None:
    ci = t_interval([3.0])
    assert ci.mean == 3.0 and ci.lo == -math.inf and ci.hi == math.inf
    v = decide([3.0], "increase", 0.5)
    assert v.label == INCONCLUSIVE and "not enough evidence" in v.reason


def test_exact_ties_without_a_resolution_are_no_certainty() -> None:
    # seeds tied to the last digit on a measure with no stated resolution: no spread to work with
    ci = t_interval([2.0, 2.0, 2.0])
    assert ci.mean == 2.0 and (ci.lo, ci.hi) == (-math.inf, math.inf)
    assert p_value([2.0, 2.0, 2.0]) == 1.0 and p_value([0.0, 0.0, 0.0]) == 1.0
    assert decide([2.0, 2.0, 2.0], "increase", 0.5).label == INCONCLUSIVE
    assert decide([0.0, 0.0, 0.0], "increase", 0.5).label == INCONCLUSIVE


def test_verdicts_follow_the_rule() -> None:
    assert decide([-1.5, -1.2, -1.4, -1.3], "decrease", 0.5).label == SUPPORTED
    assert decide([1.5, 1.2, 1.4, 1.3], "decrease", 0.5).label == CONTRADICTED
    assert decide([0.05, -0.05, 0.02, -0.02], "decrease", 0.5).label == NOT_SUPPORTED
    wide = decide([2.0, -1.5, 0.5], "decrease", 0.5)
    assert wide.label == INCONCLUSIVE and wide.seeds_needed is not None


def test_smoke_never_gives_a_scientific_verdict() -> None:
    v = decide([-1.5, -1.2, -1.4, -1.3], "decrease", 0.5, scientific=False)
    assert v.label == INCONCLUSIVE and "smoke" in v.reason


def test_paper_position() -> None:
    assert decide([-1.5, -1.2, -1.4, -1.3], "decrease", 0.5, paper=-1.4).paper == "consistent"
    assert decide([-0.5, -0.4, -0.45], "decrease", 0.1, paper=-1.4).paper == "smaller"
    assert decide([-3.0, -3.1, -2.9], "decrease", 0.1, paper=-1.4).paper == "larger"
    # a ratio claim on the log scale: measured 1.6x against the paper's 6x is smaller
    logs = [math.log(1.5), math.log(1.7), math.log(1.6)]
    assert decide(logs, "increase", math.log(1.25), paper=math.log(6)).paper == "smaller"


def test_holm_adjustment() -> None:
    # p sorted 0.01, 0.02, 0.04 with m = 3: 0.03, max(0.03, 0.04) = 0.04, max(0.04, 0.04) = 0.04
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_holm_can_turn_support_into_inconclusive() -> None:
    values = [-1.0, -0.7, -0.85]
    assert decide(values, "decrease", 0.1).label == SUPPORTED
    assert decide(values, "decrease", 0.1, adjusted_p=0.2).label == INCONCLUSIVE


def test_seeds_needed_grows_with_noise() -> None:
    quiet, noisy = Effects.of([1.0, 0.8, 0.9]), Effects.of([1.0, -1.5, 0.9])
    assert seeds_for_power(quiet.sd, 2, 0.5) < seeds_for_power(noisy.sd, 2, 0.5)
    assert seeds_for_power(float("nan"), 2, 0.2) is None
