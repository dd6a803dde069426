"""The ``audit`` command line: thin click commands over the library.

User mistakes (a bad claim file, a missing data path) end with one line naming the file, line or
path and exit status 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from audit.progress import Progress
from audit.spec import SpecError, find_claim_files, load_claims

console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
DEFAULT_CLAIMS = "claims"


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn user mistakes (and an unusable run store) into one line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from audit.data.errors import DataError
        from audit.record import UnknownRun

        try:
            return fn(*args, **kwargs)
        except (SpecError, DataError, UnknownRun) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except Exception as exc:
            from audit.store_faults import store_fault
            from audit.track import default_uri

            fault = store_fault(exc, kwargs.get("tracking_uri") or default_uri())
            if fault is None:
                raise
            click.echo(f"error: {fault}", err=True)
            sys.exit(2)

    return wrapper


specs_argument = click.argument("specs", nargs=-1, required=True, type=click.Path())
profile_option = click.option("--profile", "-p", default=None,
                              help="Scale tier: smoke (default), cifar, tiny, imagenet or full.")
seeds_option = click.option("--seeds", "-k", type=click.IntRange(1), default=None,
                            help="Number of seeds (default: the profile's).")
data_option = click.option("--data", "data_path", type=click.Path(), default=None,
                           help="A data set: a folder, zip or tar (ImageFolder, ILSVRC-2012, Tiny ImageNet or CIFAR "
                                "python layout), read in place.")
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
@click.option("--networks", is_flag=True, help="Also build every variant's network (PyTorch, meta device) to catch "
              "variants that differ in settings but train the same network; `audit plan` and `audit run` always do.")
def validate(specs: tuple[str, ...], networks: bool) -> None:
    """Check claim files (YAML syntax, schema, overrides, names, ranges) without running anything.

    Files are read as untrusted input: bounded size, depth and aliases, nothing executed, and within
    seconds and ~120 MB whatever the file. ``--networks`` adds the design check, which loads PyTorch.
    """
    files = find_claim_files(list(specs))
    errors = 0
    for f in files:
        try:
            claims = load_claims([f])
            if networks:
                _check_networks(claims)
            click.echo(f"ok  {f}")
        except SpecError as exc:
            click.echo(f"error: {exc}", err=True)
            errors += 1
    if errors or not files:
        if not files:
            click.echo(f"error: {', '.join(specs)}: no claim files found", err=True)
        sys.exit(2)


def _check_networks(claims: list[Any]) -> None:
    """SpecError when two variants of a claim train the same network the same way (one experiment twice)."""
    from audit.designs import check_designs  # PyTorch: only once the files have parsed

    for claim in claims:
        check_designs(claim)


@main.command(name="list")
@click.argument("specs", nargs=-1, type=click.Path())
@user_errors
def list_claims(specs: tuple[str, ...]) -> None:
    """List claims with their titles, paper sections and profiles."""
    table = Table("claim", "section", "title", "profiles")
    for c in load_claims(list(specs) or [DEFAULT_CLAIMS]):
        table.add_row(c.id, c.paper.section, c.title, ", ".join(c.profiles))
    console.print(table)


only_claims_option = click.option("--claim", "only_claims", multiple=True, help="Only these claim ids (repeatable).")
audit_option = click.option("--audit", "audit_file", type=click.Path(), default=None,
                            help="A pre-registered audit file (claims/audits/*.yaml): its claims, profile, seeds "
                                 "and family.")


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


def _scope(specs: tuple[str, ...], profile: str | None, seeds: int | None, audit_file: str | None,
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
        _check_networks([c for c, _ in picked])
        return Scope([c for c, _ in picked], {c.id: f for c, f in picked}, reg.spec.profile, reg.seeds, reg)
    if not specs:
        raise SpecError("name claim files (or a folder of them), or --audit FILE")
    claims = load_claims(list(specs))
    _check_networks(claims)
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


@main.command()
@click.argument("specs", nargs=-1, type=click.Path())
@profile_option
@seeds_option
@audit_option
@data_option
@uri_option
@user_errors
def plan(specs: tuple[str, ...], profile: str | None, seeds: int | None, audit_file: str | None,
         data_path: str | None, tracking_uri: str | None) -> None:
    """Print the run matrix (deduplicated, tuning runs first) and its cost, without training anything."""
    from audit.record import USABLE
    from audit.track import Tracker

    scope = _scope(specs, profile, seeds, audit_file, data_path)
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
@click.argument("specs", nargs=-1, type=click.Path())
@profile_option
@seeds_option
@audit_option
@data_option
@uri_option
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
    scope = _scope(specs, profile, seeds, audit_file, data_path, only_claims)
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


claims_dir_option = click.option("--claims", "claims_dir", type=click.Path(), default=DEFAULT_CLAIMS,
                                 show_default=True, help="Claim files or a folder of them.")


def _report_scope(claims_dir: str, only_claims: tuple[str, ...], profile: str | None,
                  audit_file: str | None) -> tuple[list[Any], str | None, Any]:
    """(claims, profile, registration) of a report or an export: an audit file fixes the claims and profile."""
    registration = None
    if audit_file is not None:
        if profile:
            raise SpecError("--audit fixes the profile: give no --profile")
        registration = _scope((), None, None, audit_file).registration
        claims, profile = registration.claims, registration.spec.profile
    else:
        claims = load_claims([claims_dir])
    if only_claims:
        unknown = set(only_claims) - {c.id for c in claims}
        if unknown:
            raise SpecError(f"unknown claim id(s): {', '.join(sorted(unknown))}")
        claims = [c for c in claims if c.id in only_claims]
    return claims, profile, registration


@main.command()
@click.option("--out", type=click.Path(), default="reports/index.html", show_default=True)
@claims_dir_option
@only_claims_option
@click.option("--profile", "-p", default=None, help="Only runs of this profile (default: every profile in the store).")
@audit_option
@uri_option
@click.option("--evidence", type=click.Path(), default=None,
              help="Render from evidence bundles (a bundle, or a folder of them such as results/) instead of a store.")
@click.option("--open", "open_browser", is_flag=True, help="Open the report in the default browser.")
@user_errors
def report(out: str, claims_dir: str, only_claims: tuple[str, ...], profile: str | None, audit_file: str | None,
           tracking_uri: str | None, evidence: str | None, open_browser: bool) -> None:
    """Render one self-contained HTML report (figures embedded) from the runs in the MLflow store.

    With --audit, the report is that audit's: its claims at its profile, verdicts corrected over its
    pre-registered family, every other measure exploratory.
    """
    from audit.report import build_report

    claims, profile, registration = _report_scope(claims_dir, only_claims, profile, audit_file)
    started = time.perf_counter()
    with _store(tracking_uri, evidence) as store:
        path = build_report(claims, store, Path(out), profile, registration)
    console.print(f"wrote {path} in {time.perf_counter() - started:.1f}s")
    if open_browser:
        import webbrowser

        uri = path.resolve().as_uri()
        if not webbrowser.open(uri):
            console.print(f"no browser found here: open {uri}")


@main.command()
@click.argument("config_hash")
@uri_option
@user_errors
def show(config_hash: str, tracking_uri: str | None) -> None:
    """Print the fully resolved config (JSON) of the run a config hash names, as it was stored with the run."""
    from audit.record import config_by_hash, config_json
    from audit.track import Tracker

    click.echo(config_json(config_by_hash(Tracker(tracking_uri), config_hash)))


@main.command()
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the schema here instead of stdout.")
def schema(out: str | None) -> None:
    """Print the JSON Schema of claim files (for editors and YAML language servers)."""
    from audit.schema import claim_schema_json

    text = claim_schema_json()
    if out is None:
        click.echo(text, nl=False)
    else:
        Path(out).write_text(text)
        click.echo(f"wrote {out}", err=True)


@contextlib.contextmanager
def _store(tracking_uri: str | None, evidence: str | None) -> Iterator[Any]:
    """The runs a command reads: the MLflow store, or evidence bundles imported into a throwaway one."""
    if evidence is None:
        from audit.track import Tracker

        yield Tracker(tracking_uri)
        return
    from audit.evidence import evidence_store

    with evidence_store(Path(evidence)) as store:
        yield store


@main.command(name="export")
@claims_dir_option
@only_claims_option
@click.option("--profile", "-p", default=None, help="Only runs of this profile (default: every profile).")
@audit_option
@uri_option
@click.option("--out", type=click.Path(), required=True, help="The bundle's folder (replaced if it holds a bundle).")
@user_errors
def export_command(claims_dir: str, only_claims: tuple[str, ...], profile: str | None, audit_file: str | None,
                   tracking_uri: str | None, out: str) -> None:
    """Write the runs a report would read (any status) as a portable evidence bundle (JSON, CSV, small arrays)."""
    import os

    from audit.evidence import BUDGET_BYTES, export_bundle, folder_bytes, select_run_ids
    from audit.track import Tracker

    claims, profile, registration = _report_scope(claims_dir, only_claims, profile, audit_file)
    tracker = Tracker(tracking_uri)
    started = time.perf_counter()
    ids = select_run_ids(tracker, claims, profile)
    audit_path = None
    if audit_file is not None:
        relative = os.path.relpath(Path(audit_file).resolve())
        audit_path = Path(audit_file).name if relative.startswith("..") else relative
    selection = {"claims": sorted(c.id for c in claims), "profile": profile,
                 "audit": registration.tag if registration else None, "audit_file": audit_path,
                 "audit_commit": registration.commit() if registration else None}   # the registration's commit
    names = export_bundle(tracker, ids, Path(out), selection)
    sizes = [folder_bytes(Path(out) / n) for n in names]
    biggest = max(sizes, default=0)
    console.print(f"exported {len(names)} runs to {out} in {time.perf_counter() - started:.1f}s: "
                  f"{sum(sizes) / 1e6:.2f} MB, at most {biggest / 1024:.0f} KB per run "
                  f"(budget {BUDGET_BYTES // 1024} KB)")


@main.command(name="import")
@click.argument("bundle", type=click.Path())
@uri_option
@runs_option
@user_errors
def import_command(bundle: str, tracking_uri: str | None, runs_dir: str) -> None:
    """Load evidence bundles (a bundle, or a folder of them) into the MLflow store; runs already there are skipped."""
    from audit.evidence import BundleError, find_bundles, import_bundles
    from audit.track import Tracker

    bundles = find_bundles(Path(bundle))
    if not bundles:
        raise BundleError(f"{bundle}: holds no evidence bundle (no bundle.json)")
    tracker = Tracker(tracking_uri, artifact_root=Path(runs_dir) / "artifacts")
    done = import_bundles(tracker, bundles)
    console.print(f"imported {done.added} runs into {tracker.uri}; {done.known} already there"
                  + (f", {done.merged} completed runs of the same config there (their roles merged)"
                     if done.merged else ""))


@main.command()
@click.option("--evidence", type=click.Path(), default="results", show_default=True,
              help="Evidence bundles: a bundle, or a folder of them (results/<profile>/).")
@claims_dir_option
@click.option("--write", "write_to", type=click.Path(), default=None,
              help="Write the table between the findings markers of this markdown file (e.g. README.md).")
@click.option("--check", "check_against", type=click.Path(), default=None,
              help="Exit 1, with a diff, when this file's findings table is not the one the evidence gives.")
@user_errors
def findings(evidence: str, claims_dir: str, write_to: str | None, check_against: str | None) -> None:
    """The findings table (claim, profile, seeds, effect and 95% interval, verdict, the paper's number) as markdown.

    With --write, also the effect-against-scale figure (EVIDENCE/effect-by-scale.png), linked under the table.
    """
    from audit import findings as table_of

    target = write_to or check_against
    if write_to and check_against:
        raise SpecError("give --write or --check, not both")
    if target is not None and not Path(target).is_file():
        raise SpecError(f"{target}: no such file")
    found = table_of.collect(Path(evidence), Path(claims_dir))
    figure = Path(evidence) / table_of.FIGURE
    link = os.path.relpath(figure, Path(target).resolve().parent if target else Path.cwd()) if target else None
    table = found.section(link)
    if write_to:
        table_of.write(Path(write_to), table)
        if found.panels:
            found.save_figure(figure)
        console.print(f"wrote the findings table of {evidence} into {write_to}"
                      + (f" and the effect-against-scale figure to {figure}" if found.panels else ""))
    elif check_against:
        diff = table_of.check(Path(check_against), table)
        if diff is not None:
            click.echo(diff, err=True)
            click.echo(f"{check_against}: the findings table disagrees with {evidence}; "
                       f"run: audit findings --evidence {evidence} --write {check_against}", err=True)
            sys.exit(1)
        console.print(f"{check_against}: the findings table matches {evidence}")
    else:
        click.echo(table)


if __name__ == "__main__":
    main()
