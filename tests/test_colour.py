"""The colour-specialisation metric on kernels whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from audit.analyse.colour import chromatic_fraction, colour_specialisation


def test_grey_kernels_have_no_colour_and_random_ones_two_thirds() -> None:
    rng = np.random.default_rng(0)
    grey = np.repeat(rng.normal(size=(8, 1, 5, 5)), 3, axis=1)
    assert np.allclose(chromatic_fraction(grey), 0.0)
    random = rng.normal(size=(2000, 3, 5, 5))
    assert chromatic_fraction(random).mean() == pytest.approx(2 / 3, abs=0.01)
    red_minus_green = np.zeros((1, 3, 3, 3))
    red_minus_green[0, 0], red_minus_green[0, 1] = 1.0, -1.0
    assert chromatic_fraction(red_minus_green)[0] == pytest.approx(1.0)


def test_specialised_towers_are_detected_whichever_gpu_holds_colour() -> None:
    rng = np.random.default_rng(1)
    grey = np.repeat(rng.normal(size=(48, 1, 5, 5)), 3, axis=1) + 0.05 * rng.normal(size=(48, 3, 5, 5))
    colour = rng.normal(size=(48, 3, 5, 5))
    for weights, tower in ((np.concatenate([grey, colour]), "B"), (np.concatenate([colour, grey]), "A")):
        stats = colour_specialisation(weights, permutations=500)
        assert stats.colour_tower == tower
        assert stats.index > 0.5 and stats.p_value < 0.01


def test_unspecialised_towers_give_a_small_index() -> None:
    weights = np.random.default_rng(2).normal(size=(96, 3, 11, 11))
    stats = colour_specialisation(weights, permutations=500)
    assert stats.index < 0.05 and stats.p_value > 0.05


def test_each_run_is_tested_and_the_fraction_that_specialises_is_reported(tmp_path) -> None:  # noqa: ANN001
    """Positive control through the store: planted grey/colour towers specialise in every run, random ones never."""
    from pathlib import Path

    from click.testing import CliRunner

    from audit.analyse.colour_runs import clopper_pearson, fractions, run_tests
    from audit.analyse.measure import analyse_claim
    from audit.cli import main
    from audit.spec import load_claim
    from tests.runlog import log_run, log_weights, store

    repo = Path(__file__).resolve().parents[1]
    tracker = store(tmp_path)
    rng = np.random.default_rng(3)
    for seed in range(3):
        grey = np.repeat(rng.normal(size=(24, 1, 5, 5)), 3, axis=1) + 0.05 * rng.normal(size=(24, 3, 5, 5))
        planted = np.concatenate([grey, rng.normal(size=(24, 3, 5, 5))] if seed % 2 else
                                 [rng.normal(size=(24, 3, 5, 5)), grey])      # the colour tower is A or B
        for variant, final in (("two_tower", planted), ("one_tower", rng.normal(size=(48, 3, 5, 5)))):
            run_id = log_run(tracker, "colour_specialisation", variant, seed, [{"val_top1_error": 50.0}])
            log_weights(tracker, run_id, "conv1_final", final, tmp_path)
            log_weights(tracker, run_id, "conv1_init", rng.normal(size=(48, 3, 5, 5)), tmp_path)
    claim = load_claim(repo / "claims/colour_specialisation.yaml")
    tests = run_tests(analyse_claim(claim, "cifar", tracker.runs_frame(), tracker), tracker)
    trained = [t for t in tests if t.variant == "two_tower" and t.weights == "conv1_final"]
    assert len(tests) == 9 and all(t.specialised and t.p_value < 0.01 for t in trained)
    assert {t.colour_tower for t in trained} == {"A", "B"}
    assert not any(t.specialised for t in tests if t not in trained)
    by = {(f.variant, f.weights): f for f in fractions(tests)}
    assert (by[("two_tower", "conv1_final")].specialised, by[("one_tower", "conv1_final")].specialised) == (3, 0)
    # 3 of 3: the exact interval's lower end solves p³ = 0.025, so p = 0.025^(1/3) = 0.2924
    assert clopper_pearson(3, 3) == pytest.approx((0.025 ** (1 / 3), 1.0), abs=1e-4)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", "--claims", str(repo / "claims"), "--tracking-uri", tracker.uri,
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "Does every run specialise?" in html and "two_tower, trained: 3 of 3 runs" in html
    assert "one_tower, trained: 0 of 3 runs" in html
