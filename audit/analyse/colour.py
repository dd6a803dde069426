"""Colour specialisation of conv1 kernels (the paper's §6.1 and Figure 3; README.md, "Verdicts").

Each kernel's RGB taps are projected onto an opponent basis — luminance (1,1,1)/√3 and the colour
axes (1,−1,0)/√2 and (1,1,−2)/√6 — and its chromatic fraction c = colour energy / total energy is
0 for a grey kernel and about 2/3 for a random one. The specialisation index is the difference of
the two towers' median c, the higher one named the colour tower (GPU numbering does not matter);
a permutation test over tower labels says how surprising that difference is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_LUMA = np.array([1.0, 1.0, 1.0]) / np.sqrt(3.0)
_COLOUR = np.array([[1.0, -1.0, 0.0], [1.0, 1.0, -2.0]]) / np.array([[np.sqrt(2.0)], [np.sqrt(6.0)]])


def chromatic_fraction(weights: np.ndarray) -> np.ndarray:
    """c per kernel for conv1 weights of shape [out, 3, k, k]."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"conv1 weights must be [out, 3, k, k], got {w.shape}")
    taps = w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1, 3)       # [out, k*k, rgb]
    luma = (taps @ _LUMA) ** 2
    colour = ((taps @ _COLOUR.T) ** 2).sum(-1)
    total = (luma + colour).sum(1)
    return np.where(total > 0, colour.sum(1) / np.maximum(total, 1e-30), 0.0)


@dataclass(frozen=True)
class ColourStats:
    index: float                  # median c of the colour tower minus that of the other
    colour_tower: str             # "A" (channels 0..n/2-1) or "B"
    median: tuple[float, float]   # towers A, B
    share_over_half: tuple[float, float]
    p_value: float                # permutation test over tower labels
    c: np.ndarray                 # per kernel


def colour_specialisation(weights: np.ndarray, permutations: int = 2000, seed: int = 0) -> ColourStats:
    """Towers are the first and second half of conv1's output channels; ``permutations=0`` skips the test."""
    c = chromatic_fraction(weights)
    half = len(c) // 2
    a, b = c[:half], c[half:]
    observed = abs(float(np.median(a) - np.median(b)))
    p = float("nan")   # permutations=0: the index alone, no test
    if permutations:
        rng = np.random.default_rng(seed)
        perms = np.array([rng.permutation(len(c)) for _ in range(permutations)])
        shuffled = c[perms]
        diffs = np.abs(np.median(shuffled[:, :half], axis=1) - np.median(shuffled[:, half:], axis=1))
        p = float((1 + (diffs >= observed - 1e-12).sum()) / (permutations + 1))
    return ColourStats(observed, "A" if np.median(a) >= np.median(b) else "B",
                       (float(np.median(a)), float(np.median(b))),
                       (float((a > 0.5).mean()), float((b > 0.5).mean())), p, c)
