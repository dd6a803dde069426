"""The colour claim's per-run view: each run's own permutation test and the fraction that specialise."""

from __future__ import annotations

from typing import Any

from audit.analyse.colour_runs import fractions, run_tests
from audit.analyse.measure import MeasureResult
from audit.analyse.values import RunStore
from audit.report.views import fmt

WEIGHTS = {"conv1_final": "trained", "conv1_init": "at initialisation"}


def colour_view(results: list[MeasureResult], store: RunStore) -> dict[str, Any] | None:
    """None when the claim has no colour measure (or no run with weights)."""
    tests = run_tests(results, store)
    if not tests:
        return None
    return {
        "runs": [{"variant": t.variant, "weights": WEIGHTS.get(t.weights, t.weights), "seed": t.seed,
                  "index": fmt(t.index, 3), "tower": t.colour_tower, "p": fmt(t.p_value, 4),
                  "specialised": "yes" if t.specialised else "no", "run_id": t.run_id} for t in tests],
        "fractions": [{"variant": f.variant, "weights": WEIGHTS.get(f.weights, f.weights),
                       "text": f"{f.specialised} of {f.runs} runs", "ci": f"[{fmt(f.lo)}, {fmt(f.hi)}]"}
                      for f in fractions(tests)],
    }
