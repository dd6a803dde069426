"""Wall time of the whole smoke audit, planned vs trained runs, and how the time grows with seeds.

Each seed count runs `audit run claims/ --profile smoke --seeds K` in a fresh, empty store, as a
new user would, then `audit report`. The rates measured by these runs (seconds per training image
per epoch, by network shape) are written to audit/measured_rates.json: `audit plan` estimates from
them. Usage: python bench/audit.py [--seeds 1 2 4] [--jobs N] [--write]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.results import machine, write_section  # noqa: E402


def audit(args: list[str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "audit.cli", *args], cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"audit {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return time.perf_counter() - started, out.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--jobs", type=int, default=1, help="`audit run --jobs N`: runs at once (cores/N threads each)")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md and audit/measured_rates.json")
    args = parser.parse_args()
    claims = str(REPO / "claims")
    rows, rates = [], {}
    for k in args.seeds:
        with tempfile.TemporaryDirectory(prefix=f"audit-bench-{k}-") as tmp:
            cwd = Path(tmp)
            _, plan_out = audit(["plan", claims, "--profile", "smoke", "--seeds", str(k)], cwd)
            entries, distinct = map(int, re.search(r"(\d+) planned .*? → (\d+) distinct", plan_out).groups())
            run_args = ["run", claims, "--profile", "smoke", "--seeds", str(k), "--jobs", str(args.jobs)]
            wall, run_out = audit(run_args, cwd)
            trained = int(re.search(r"(\d+) finished", run_out).group(1))
            report_s, _ = audit(["report", "--claims", claims], cwd)
            again, again_out = audit(run_args, cwd)
            reused = int(re.search(r"(\d+) reused", again_out).group(1))
            rates.update(_rates(cwd))
        rows.append((k, entries, distinct, trained, wall, report_s, again, reused))
        print(f"seeds {k}: {entries} planned entries → {distinct} runs, {trained} trained in {wall:.0f}s; "
              f"report {report_s:.1f}s; second run {again:.1f}s ({reused} reused)", flush=True)

    base = next((r for r in rows if r[0] == 2), rows[0])
    lines = [f"Measured on: {machine()}. `audit run claims/ --profile smoke --seeds K --jobs {args.jobs}` in a "
             "fresh store each time (wall time includes start-up and the data set's first generation).", "",
             "| seeds | planned (claim, variant, seed) | distinct runs | trained | wall time | × vs "
             f"{base[0]} seeds | report | re-run (all reused) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for k, entries, distinct, trained, wall, report_s, again, _ in rows:
        lines.append(f"| {k} | {entries} | {distinct} | {trained} | {wall / 60:.1f} min | {wall / base[4]:.2f} "
                     f"| {report_s:.1f} s | {again:.1f} s |")
    table = "\n".join(lines)
    print(table)
    if args.write:
        write_section("audit", "## Whole smoke audit (`bench/audit.py`)\n\n" + table)
        out = REPO / "audit" / "measured_rates.json"
        out.write_text(json.dumps({"machine": machine(), "unit": "seconds per training image per epoch",
                                   "rates": dict(sorted(rates.items()))}, indent=1) + "\n")
        print(f"wrote {len(rates)} rates to {out}")


def _rates(cwd: Path) -> dict[str, float]:
    """Rates measured by the runs of one store (read through the package, as `audit plan` does)."""
    code = ("import json; from audit import estimate; from audit.record import RunFiles; "
            "from audit.track import Tracker; t = Tracker(); f = t.runs_frame(); "
            "print(json.dumps(estimate.rates_from_store(f, RunFiles(t, f))[0]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
