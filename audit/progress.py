"""How far ``audit run`` has got: runs done of the total, and the time left from measured rates.

The estimate per run comes from ``audit.estimate`` (rates measured on this store's finished runs,
else on the reference machine); as runs finish, the remaining estimate is scaled by how long the
trained runs actually took against their estimates, so a slower or busier machine corrects it.
"""

from __future__ import annotations

from typing import Any

from audit import estimate


class Progress:
    def __init__(self, tracker: Any, jobs: int) -> None:
        self.tracker, self.jobs = tracker, max(1, jobs)
        self.total, self.finished = 0, set()
        self.estimates: dict[str, float | None] = {}
        self.actual = self.predicted = 0.0

    def plan(self, plan: Any) -> None:
        """(Re)read the plan: its runs, the verdict runs still pending, and a fresh estimate for each.

        Rates measured on this store's finished runs already reflect this machine, so re-planning
        starts the correction over.
        """
        rates, sizes = estimate.known_rates(self.tracker)
        for run in plan.runs.values():
            if run.config_hash not in self.finished:
                self.estimates[run.config_hash] = estimate.estimate_seconds(run.config, rates, sizes)
        self.actual = self.predicted = 0.0
        self.total = len(self.finished | set(plan.runs)) + sum(w.seeds for w in plan.pending)

    def done(self, run: Any, reused: bool, seconds: float) -> str | None:
        """Record one run's end; a line saying how many are done and about how long the rest will take.

        None for a run already counted (reused again when the verdict runs follow the tuning runs).
        """
        if run.config_hash in self.finished:
            return None
        self.finished.add(run.config_hash)
        guess = self.estimates.get(run.config_hash)
        if not reused and guess:
            self.actual, self.predicted = self.actual + seconds, self.predicted + guess
        return self.summary()

    def summary(self, under_way: dict[str, float] | None = None) -> str:
        """Runs done of the total and the time left; ``under_way`` maps a run's config hash to the
        fraction of its epochs already done (the live view knows it), which that run no longer needs."""
        under_way = under_way or {}
        left = [(h, self.estimates.get(h)) for h in self.estimates if h not in self.finished]
        known = [s * (1 - under_way.get(h, 0.0)) for h, s in left if s]
        scale = self.actual / self.predicted if self.predicted else 1.0
        eta = sum(known) * scale / self.jobs
        unknown = len(left) - len(known) + (self.total - len(self.estimates))
        tail = f"about {estimate.human(eta)} left" + (f" (+ {unknown} runs with no measured rate)" if unknown else "")
        return f"{len(self.finished)}/{self.total} runs done; {tail}"
