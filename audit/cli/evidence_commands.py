"""Commands that read finished runs: report, show, and the evidence bundles (export, import, findings)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from audit.cli.base import (
    audit_option,
    claims_dir_option,
    console,
    main,
    only_claims_option,
    runs_option,
    uri_option,
    user_errors,
)
from audit.cli.running import scope_of
from audit.spec import SpecError, load_claims


def _report_scope(claims_dir: str, only_claims: tuple[str, ...], profile: str | None,
                  audit_file: str | None) -> tuple[list[Any], str | None, Any]:
    """(claims, profile, registration) of a report or an export: an audit file fixes the claims and profile."""
    registration = None
    if audit_file is not None:
        if profile:
            raise SpecError("--audit fixes the profile: give no --profile")
        registration = scope_of((), None, None, audit_file).registration
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
    families = _bundle_families(Path(evidence)) if evidence is not None and registration is None else None
    started = time.perf_counter()
    with _store(tracking_uri, evidence) as store:
        path = build_report(claims, store, Path(out), profile, registration, families)
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


def _bundle_families(root: Path) -> list[Any]:
    """The pre-registered families of the bundles under ``root``, so each is read as its audit's."""
    from audit.evidence import BundleError, bundles_by_audit, registration_of

    families = [registration_of(audit_file, bundles).family
                for audit_file, bundles in bundles_by_audit(root).items() if audit_file is not None]
    profiles = [f.profile for f in families]
    shared = sorted({p for p in profiles if profiles.count(p) > 1})
    if shared:
        raise BundleError(f"{root}: two pre-registered audits at profile {shared[0]}: report each with --audit")
    return families


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
