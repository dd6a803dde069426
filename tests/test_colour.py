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
