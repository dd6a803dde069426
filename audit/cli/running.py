"""Commands that plan and train: ``audit plan`` prints the run matrix, ``audit run`` trains it."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from audit.cli.base import (
    audit_option,
    console,
    data_option,
    main,
    profile_option,
    runs_option,
    seeds_option,
    uri_option,
    user_errors,
)
from audit.cli.claim_commands import check_networks
from audit.progress import Progress
from audit.spec import SpecError, find_claim_files, load_claims


@dataclass
class Scope:
    """What a command is about: claims, their files, the profile and seeds, and the registration if any."""

    claims: list[Any]
    files: dict[str, Path]
    profile: str | None
    seeds: int | dict[str, int] | None
    registration: Any = None
    probe: str | None = None

    def build(self, data_path: str | None, chosen: dict | None = None):
        from audit.plan import build_plan
        from audit.record import Tag

        reg = self.registration
        return build_plan(self.claims, self.profile, self.seeds, data_path, chosen,
                          tuning_seeds=reg.spec.tuning_seeds if reg else None,
                          tags={Tag.AUDITS: reg.tag} if reg else None, probe=self.probe)

    def chosen(self, tracker: Any) -> dict:
        from audit.analyse.tuning import chosen_rates

        tuning = self.registration.spec.tuning_seeds if self.registration else None
        return chosen_rates(self.claims, self.profile, tracker.runs_frame(), tracker, tuning)


def scope_of(specs: tuple[str, ...], profile: str | None, seeds: int | None, audit_file: str | None,
           data_path: str | None = None, only: tuple[str, ...] = ()) -> Scope:
    if data_path is not None and not Path(data_path).exists():
        raise SpecError(f"{data_path}: data path does not exist")
    if audit_file is not None:
        from audit.registration import load_registration

        if specs or profile or seeds:
            raise SpecError("--audit fixes the claims, profile and seeds: give no claim files, --profile or --seeds")
        reg = load_registration(audit_file)
        unknown = sorted(set(only) - {c.id for c in reg.claims})
        if unknown:
            raise SpecError(f"{audit_file}: --claim {unknown[0]}: not a claim of this audit "
                            f"({', '.join(c.id for c in reg.claims)})")
        picked = [(c, f) for c, f in zip(reg.claims, reg.files) if not only or c.id in only]
        check_networks([c for c, _ in picked])
        return Scope([c for c, _ in picked], {c.id: f for c, f in picked}, reg.spec.profile, reg.seeds, reg)
    if not specs:
        raise SpecError("name claim files (or a folder of them), or --audit FILE")
    claims = load_claims(list(specs))
    check_networks(claims)
    return Scope(claims, {c.id: f for c, f in zip(claims, find_claim_files(list(specs)))}, profile, seeds)


def _print_registration(reg: Any) -> None:
    console.print(f"[bold]audit {reg.spec.id}[/]: {reg.spec.title} — profile {reg.spec.profile}, "
                  f"α = {reg.spec.alpha:g}, registered at commit {reg.commit()[:12]}, digest {reg.digest}")
    table = Table("claim", "measure", "primary", "seeds", "power needs", "pilot sd (df)", "pilot source",
                  title=f"pre-registered family ({len(reg.family.members)} measures, Holm-corrected; "
                        f"{reg.spec.power:.0%} power at the smallest effect that matters)")
    for row in reg.power_rows():
        needs = "no pilot" if row.pilot is None else (str(row.needed) if row.needed else "> 100000")
        flag = " [red](under-powered)[/]" if row.pilot is not None and row.underpowered else ""
        table.add_row(row.claim, row.measure, "yes" if row.primary else "", str(row.seeds), needs + flag,
                      f"{row.pilot.sd:g} ({row.pilot.df})" if row.pilot else "—",
                      row.pilot.source if row.pilot else "—")
    console.print(table)


def scope_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """What `plan` and `run` are about: claim files or an audit, profile, seeds, data, store."""
    for option in reversed([click.argument("specs", nargs=-1, type=click.Path()), profile_option, seeds_option,
                            audit_option, data_option, uri_option]):
        command = option(command)
    return command


@main.command()
@scope_options
@user_errors
def plan(specs: tuple[str, ...], profile: str | None, seeds: int | None, audit_file: str | None,
         data_path: str | None, tracking_uri: str | None) -> None:
    """Print the run matrix (deduplicated, tuning runs first) and its cost, without training anything."""
    from audit.record import USABLE
    from audit.track import Tracker

    scope = scope_of(specs, profile, seeds, audit_file, data_path)
    if scope.registration:
        _print_registration(scope.registration)
    tracker = Tracker(tracking_uri)
    the_plan = scope.build(data_path, scope.chosen(tracker))
    from audit import estimate

    rates, sizes = estimate.known_rates(tracker)
    table = Table("config", "claims", "variant", "seed", "lr", "purpose", "shared", "status", "estimate",
                  title=f"profile {the_plan.profile}")
    total, unknown = 0.0, 0
    for run in the_plan.ordered():
        found = tracker.find(run.config_hash)
        done = found is not None and found.status in USABLE
        seconds = None if done else estimate.estimate_seconds(run.config, rates, sizes)
        total += seconds or 0.0
        unknown += int(not done and seconds is None)
        role = run.roles[0]
        lr = role.setting.removeprefix("lr ")   # a rate as a number; another tuned field with its name
        table.add_row(run.config_hash, ",".join(run.claims), role.variant, str(role.seed), lr,
                      "tuning" if run.tuning else "evidence", "yes" if run.shared else "",
                      found.status if found else "to train", "" if done else estimate.human(seconds))
    console.print(table)
    evaluated = [r for r in the_plan.runs.values() if r.evaluations]
    if evaluated:
        names = sorted(set().union(*(r.evaluations for r in evaluated)))
        console.print(f"evaluated from their saved final weights once finished (nothing trains for it): "
                      f"{len(evaluated)} runs ({', '.join(names)})")
    for wait in the_plan.pending:
        console.print(f"pending: {wait.claim} {wait.variant}: {wait.seeds} verdict seed(s) run once its tuning runs "
                      "have chosen its setting (a learning rate, or the profile's tune_param)")
    console.print(f"{the_plan.entries} planned (claim, variant, seed) entries → {len(the_plan.runs)} distinct runs"
                  + (f" + {sum(w.seeds for w in the_plan.pending)} pending" if the_plan.pending else "")
                  + f"; estimated training time at most {estimate.human(total)}"
                  + (f" (+ {unknown} runs with no measured rate)" if unknown else "")
                  + (" (+ the pending runs)" if the_plan.pending else "")
                  + " from rates measured by bench/audit.py and by finished runs in this store")


@main.command()
@scope_options
@runs_option
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this machine (--jobs runs at once); ray: one Ray task per run.")
@click.option("--jobs", "-j", type=click.IntRange(1), default=1, show_default=True,
              help="Local executor: runs trained at once, each in its own worker process.")
@click.option("--address", default=None, help="Ray executor: the cluster to join (default: start a local one).")
@click.option("--gpus-per-run", type=click.IntRange(0), default=None,
              help="GPUs per run (Ray requests them per task). N > 1 without --placement two-device runs N "
                   "data-parallel ranks (DDP; gloo processes on a CPU-only machine).")
@click.option("--cpus-per-run", type=click.IntRange(1), default=None,
              help="CPU threads per run (Ray: CPUs requested per task; default 1 there, cores/jobs locally).")
@click.option("--placement", type=click.Choice(["single", "two-device"]), default="single", show_default=True,
              help="two-device: tower A on one GPU, tower B on another (the paper's model parallelism).")
@click.option("--probe", default=None, metavar="NOTE",
              help="Probe runs that choose a setting, NOTE saying which: kept and listed in the report's appendix, "
                   "never evidence for a verdict.")
@click.option("--plain", is_flag=True,
              help="One plain line per epoch even on a terminal (default there: a live view; CI: plain lines).")
@click.option("--claim", "only_claims", multiple=True,
              help="With --audit: run only these of its claims now (repeatable); the registration is unchanged.")
@user_errors
def run(specs: tuple[str, ...], profile: str | None, seeds: int | None, audit_file: str | None,
        data_path: str | None, tracking_uri: str | None, runs_dir: str, executor: str, jobs: int,
        address: str | None, gpus_per_run: int | None, cpus_per_run: int | None, placement: str,
        probe: str | None, plain: bool, only_claims: tuple[str, ...]) -> None:
    """Run claim specs: tune first, reuse finished runs, resume interrupted ones, train the rest, log to MLflow."""
    from audit.data.load import check_listings
    from audit.track import Tracker, default_uri, portable_uri
    from audit.train.distributed import Runtime

    if only_claims and audit_file is None:
        raise SpecError("--claim picks claims of an --audit; without one, name the claim files")
    scope = scope_of(specs, profile, seeds, audit_file, data_path, only_claims)
    if probe is not None:
        if scope.registration:
            raise SpecError("--probe runs choose settings before an audit is registered: give no --audit")
        scope.probe = probe
    if placement == "two-device" and gpus_per_run not in (None, 2):
        raise SpecError(f"--placement two-device puts the two towers on 2 devices, not --gpus-per-run {gpus_per_run}")
    gpus = gpus_per_run if gpus_per_run is not None else (2 if placement == "two-device" else 1)
    runtime = Runtime(placement, gpus if placement == "single" and gpus > 1 else 1, cpus_per_run)
    workdir = Path(runs_dir)
    tracker = Tracker(portable_uri(tracking_uri or default_uri()), artifact_root=workdir / "artifacts")
    the_plan = scope.build(data_path, scope.chosen(tracker))
    check_listings((run.config.data for run in the_plan.runs.values()), workdir / "cache")
    console.print(f"[bold]{len(the_plan.runs)} runs[/] planned (profile {the_plan.profile})"
                  + (f", {sum(w.seeds for w in the_plan.pending)} more once tuning has chosen their rates"
                     if the_plan.pending else "") + f", tracking at {tracker.uri}")
    started = time.perf_counter()
    clock: dict[str, float] = {}
    progress = Progress(tracker, jobs if executor == "local" else 1)
    progress.plan(the_plan)
    from audit.live import LiveView, wanted

    view = LiveView(progress) if not plain and executor == "local" and wanted(console) else None  # Ray: plain lines

    def on_event(kind: str, run: Any, outcome: Any) -> None:
        label = run.label
        if kind == "start":
            clock[run.config_hash] = time.perf_counter()
            if view:
                view.started(run)
            return
        if kind == "wait":
            console.print(f"  waiting  {run.config_hash}  {label}  ({outcome.detail}; trying the others first)")
            return
        if view:
            view.ended(run)
        took = time.perf_counter() - clock[run.config_hash]
        line = progress.done(run, outcome.status == "reused", took)
        if line is None:
            return
        if outcome.status == "reused":
            console.print(f"  reused   {run.config_hash}  {label}  (MLflow run {outcome.run_id}, {outcome.detail})")
        else:
            note = f"  ({outcome.detail})" if outcome.detail and outcome.status != "failed" else ""
            console.print(f"  {outcome.status:<8} {run.config_hash}  {label}  {took:.1f}s{note}")
            if outcome.status == "failed":
                console.print(f"    {outcome.detail.strip().splitlines()[-1]}")
        console.print(f"  [{line}]")

    outcomes: dict[str, Any] = {}
    with view.showing(console) if view else contextlib.nullcontext():
        while True:
            if executor == "ray":
                from audit.executors.ray import execute as execute_ray

                done = execute_ray(the_plan, tracker, workdir, scope.files, on_event, address=address,
                                   gpus_per_run=gpus_per_run if gpus_per_run is not None else gpus,
                                   cpus_per_run=cpus_per_run or 1, runtime=runtime)
            else:
                from audit.executors.local import execute

                done = execute(the_plan, tracker, workdir, scope.files, on_event, jobs=jobs, runtime=runtime)
            for outcome in done:  # a run reused in the second stage keeps its first-stage outcome
                outcomes.setdefault(outcome.config_hash, outcome)
            if not the_plan.pending:
                break
            waiting = len(the_plan.pending)
            the_plan = scope.build(data_path, scope.chosen(tracker))
            if len(the_plan.pending) == waiting:
                for wait in the_plan.pending:
                    console.print(f"  [red]not run[/] {wait.claim} {wait.variant}: its tuning runs did not all "
                                  "complete, so no learning rate was chosen")
                break
            console.print(f"tuning chose the learning rates; [bold]{len(the_plan.runs)} runs[/] planned now")
            progress.plan(the_plan)
    counts = {s: sum(o.status == s for o in outcomes.values()) for s in ("reused", "finished", "diverged", "failed")}
    console.print(f"done in {time.perf_counter() - started:.1f}s: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    from audit.store_faults import store_fault

    faults = {store_fault(RuntimeError(o.detail), tracker.uri) for o in outcomes.values() if o.status == "failed"}
    if faults - {None}:   # the store went away: say so once; the runs resume from their checkpoints
        click.echo(f"error: {sorted(faults - {None})[0]}; the failed runs resume from their checkpoints when you "
                   "run this again", err=True)
        sys.exit(2)
    if counts["failed"] or the_plan.pending:
        sys.exit(1)
