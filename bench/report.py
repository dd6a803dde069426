"""Time to build the HTML report from a large store: 500 runs of every claim (issue 5: at most 15 s).

The store is real MLflow (a SQLite file and an artifact folder, written through ``audit.track.Tracker``),
filled from the real plan of every claim at the ``cifar`` and ``full`` profiles with many seeds: each
run gets its RunConfig's params, the executor's tags, 30 epochs of metrics logged in one batch, conv1
weights and validation predictions; a few runs diverge or fail. Nothing trains: the numbers are made
up to look like training, which is all the report's speed depends on.

Usage: python bench/report.py [--runs 500] [--store DIR] [--keep]   (a kept store is reused)
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audit.spec import load_claims  # noqa: E402
from audit.track import Tracker  # noqa: E402
from tests.storefill import fake_data, fill_store, plan_runs  # noqa: E402  (the fixture the report tests use)


def build_store(root: Path, n_runs: int = 500, full_seeds: int = 12) -> int:
    """Fill a fresh store with n_runs runs of every claim (cifar and full profiles); return the count."""
    claims = load_claims([REPO / "claims"])
    data = fake_data(root)
    # full_imagenet at full needs the user's larger pre-training set (a path in the claim file): left out here
    full = plan_runs([c for c in claims if c.id != "full_imagenet"], "full", full_seeds, data)
    per_seed = len(plan_runs(claims, "cifar", 1, data))
    planned = (full + plan_runs(claims, "cifar", math.ceil((n_runs - len(full)) / per_seed), data))[:n_runs]
    tracker = Tracker(f"sqlite:///{root / 'mlflow.db'}", artifact_root=root / "artifacts")
    fill_store(tracker, planned, {7: "RuntimeError: CUDA out of memory", 250: "OSError: data path vanished"},
               lambda run: run.roles[0].variant == "tanh" and run.roles[0].lr == 0.03 and run.roles[0].seed % 10 == 3,
               progress=True)
    return len(planned)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--store", type=Path, default=None, help="store folder (reused when it holds a store)")
    parser.add_argument("--write", action="store_true", help="write the result into BENCHMARKS.md")
    args = parser.parse_args()
    root = args.store or Path(tempfile.mkdtemp(prefix="bench-report-store-"))
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "mlflow.db").exists():
        started = time.perf_counter()
        count = build_store(root, args.runs)
        print(f"built a store of {count} runs in {time.perf_counter() - started:.0f}s at {root}")
    uri = f"sqlite:///{root / 'mlflow.db'}"

    from audit.report import build_report

    tracker = Tracker(uri, artifact_root=root / "artifacts")
    started = time.perf_counter()
    frame = tracker.runs_frame()
    query = time.perf_counter() - started
    tracker = Tracker(uri, artifact_root=root / "artifacts")   # fresh caches: time the report as a user runs it
    started = time.perf_counter()
    out = build_report(load_claims([REPO / "claims"]), tracker, root / "report.html")
    seconds = time.perf_counter() - started
    print(f"report: {len(frame)} runs, built in {seconds:.1f}s (the one runs query alone: {query:.1f}s), "
          f"{out.stat().st_size / 1e6:.1f} MB → {out}")
    started = time.perf_counter()
    cli = subprocess.run([sys.executable, "-m", "audit.cli", "report", "--claims", str(REPO / "claims"),
                          "--tracking-uri", uri, "--out", str(root / "report-cli.html")],
                         cwd=root, capture_output=True, text=True)
    end_to_end = time.perf_counter() - started
    print(f"`audit report` end to end (new process, imports included): {end_to_end:.1f}s "
          f"[{(cli.stdout or cli.stderr).strip().splitlines()[-1]}]")
    print(f"target: at most 15 s for {args.runs} runs — {'met' if seconds <= 15 else 'NOT met'}")
    if args.write:
        from bench.results import machine, write_section

        write_section("report", f"""## Report build time (bench/report.py)

| runs in the store | report built (s) | of which the one runs query (s) | `audit report`, new process (s) | HTML |
|---|---|---|---|---|
| {len(frame)} | {seconds:.1f} | {query:.1f} | {end_to_end:.1f} | {out.stat().st_size / 1e6:.1f} MB |

{machine()}; target ≤ 15 s. Store: real MLflow (SQLite), made-up metrics, 30 epochs per run.""")


if __name__ == "__main__":
    main()
