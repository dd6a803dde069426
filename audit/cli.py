"""The ``audit`` command line: thin click commands over the library.

User mistakes (a bad claim file, a missing data path) end with one line naming the file, line or
path and exit status 2, never a traceback.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from audit.spec import SpecError, find_claim_files, load_claims

console = Console(stderr=False, highlight=False)
DEFAULT_CLAIMS = "claims"


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn user mistakes into one line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from audit.data import DataError

        try:
            return fn(*args, **kwargs)
        except (SpecError, DataError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper


specs_argument = click.argument("specs", nargs=-1, required=True, type=click.Path())
profile_option = click.option("--profile", "-p", default=None,
                              help="Scale tier: smoke (default), cifar, imagenet or full.")
seeds_option = click.option("--seeds", "-k", type=click.IntRange(1), default=None,
                            help="Number of seeds (default: the profile's).")
data_option = click.option("--data", "data_path", type=click.Path(), default=None,
                           help="A data set folder (ImageFolder, ILSVRC-2012 or CIFAR python layout).")
uri_option = click.option("--tracking-uri", default=None, envvar="MLFLOW_TRACKING_URI",
                          help="MLflow tracking URI (default sqlite:///runs/mlflow.db).")
runs_option = click.option("--runs-dir", type=click.Path(), default="runs", show_default=True,
                           help="Local store for caches, checkpoints and artifacts.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="alexnet-audit")
def main() -> None:
    """Audit the AlexNet paper's claims: run claim specs, track runs in MLflow, report verdicts."""


@main.command()
@specs_argument
def validate(specs: tuple[str, ...]) -> None:
    """Check claim files (YAML syntax, schema, overrides) without running anything."""
    files = find_claim_files(list(specs))
    errors = 0
    for f in files:
        try:
            load_claims([f])
            click.echo(f"ok  {f}")
        except SpecError as exc:
            click.echo(f"error: {exc}", err=True)
            errors += 1
    if errors or not files:
        if not files:
            click.echo(f"error: {', '.join(specs)}: no claim files found", err=True)
        sys.exit(2)


@main.command(name="list")
@click.argument("specs", nargs=-1, type=click.Path())
@user_errors
def list_claims(specs: tuple[str, ...]) -> None:
    """List claims with their titles, paper sections and profiles."""
    table = Table("claim", "section", "title", "profiles")
    for c in load_claims(list(specs) or [DEFAULT_CLAIMS]):
        table.add_row(c.id, c.paper.section, c.title, ", ".join(c.profiles))
    console.print(table)


def _plan(specs: tuple[str, ...], profile: str | None, seeds: int | None, data_path: str | None):
    from audit.plan import build_plan

    if data_path is not None and not Path(data_path).exists():
        raise SpecError(f"{data_path}: data path does not exist")
    claims = load_claims(list(specs))
    files = {c.id: f for c, f in zip(claims, find_claim_files(list(specs)))}
    return claims, files, build_plan(claims, profile, seeds, data_path)


@main.command()
@specs_argument
@profile_option
@seeds_option
@data_option
@uri_option
@user_errors
def plan(specs: tuple[str, ...], profile: str | None, seeds: int | None, data_path: str | None,
         tracking_uri: str | None) -> None:
    """Print the run matrix (deduplicated) without training anything."""
    from audit.track import Tracker

    _, _, the_plan = _plan(specs, profile, seeds, data_path)
    tracker = Tracker(tracking_uri)
    table = Table("config", "claims", "variant", "seed", "lr", "shared", "status", title=f"profile {the_plan.profile}")
    for run in the_plan.ordered():
        found = tracker.find(run.config_hash)
        role = run.roles[0]
        lr = f"{role.lr:g}" if role.lr is not None else ""
        table.add_row(run.config_hash, ",".join(run.claims), role.variant, str(role.seed), lr,
                      "yes" if run.shared else "", found.status if found else "to train")
    console.print(table)
    console.print(f"{the_plan.entries} planned (claim, variant, seed) entries → {len(the_plan.runs)} distinct runs")


@main.command()
@specs_argument
@profile_option
@seeds_option
@data_option
@uri_option
@runs_option
@user_errors
def run(specs: tuple[str, ...], profile: str | None, seeds: int | None, data_path: str | None,
        tracking_uri: str | None, runs_dir: str) -> None:
    """Run claim specs: plan, reuse finished runs, train the rest, log everything to MLflow."""
    from audit.executors.local import execute
    from audit.track import Tracker

    _, files, the_plan = _plan(specs, profile, seeds, data_path)
    workdir = Path(runs_dir)
    tracker = Tracker(tracking_uri, artifact_root=workdir / "artifacts")
    console.print(f"[bold]{len(the_plan.runs)} runs[/] planned (profile {the_plan.profile}), "
                  f"tracking at {tracker.uri}")
    started = time.perf_counter()
    clock: dict[str, float] = {}

    def on_event(kind: str, run: Any, outcome: Any) -> None:
        role = run.roles[0]
        label = f"{','.join(run.claims)} {role.variant} seed {role.seed}" + (f" lr {role.lr:g}" if role.lr else "")
        if kind == "start":
            clock[run.config_hash] = time.perf_counter()
            return
        took = time.perf_counter() - clock[run.config_hash]
        if outcome.status == "reused":
            console.print(f"  reused   {run.config_hash}  {label}  (MLflow run {outcome.run_id}, {outcome.detail})")
        else:
            console.print(f"  {outcome.status:<8} {run.config_hash}  {label}  {took:.1f}s")
            if outcome.status == "failed":
                console.print(f"    {outcome.detail.strip().splitlines()[-1]}")

    outcomes = execute(the_plan, tracker, workdir, files, on_event)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("reused", "finished", "diverged", "failed")}
    console.print(f"done in {time.perf_counter() - started:.1f}s: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    if counts["failed"]:
        sys.exit(1)


@main.command()
@click.option("--out", type=click.Path(), default="reports/index.html", show_default=True)
@click.option("--claims", "claims_dir", type=click.Path(), default=DEFAULT_CLAIMS, show_default=True,
              help="Claim files or a folder of them.")
@click.option("--claim", "only_claims", multiple=True, help="Only these claim ids (repeatable).")
@profile_option
@uri_option
@click.option("--open", "open_browser", is_flag=True, help="Open the report in the default browser.")
@user_errors
def report(out: str, claims_dir: str, only_claims: tuple[str, ...], profile: str | None,
           tracking_uri: str | None, open_browser: bool) -> None:
    """Render the HTML report from the runs in the MLflow store."""
    from audit.report import build_report
    from audit.track import Tracker

    claims = load_claims([claims_dir])
    if only_claims:
        unknown = set(only_claims) - {c.id for c in claims}
        if unknown:
            raise SpecError(f"unknown claim id(s): {', '.join(sorted(unknown))}")
        claims = [c for c in claims if c.id in only_claims]
    started = time.perf_counter()
    path = build_report(claims, Tracker(tracking_uri), Path(out), profile)
    console.print(f"wrote {path} in {time.perf_counter() - started:.1f}s")
    if open_browser:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


if __name__ == "__main__":
    main()
