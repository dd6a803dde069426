"""Commands that read claim files without running anything: validate, list, schema."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from audit.cli.base import DEFAULT_CLAIMS, console, main, specs_argument, user_errors
from audit.spec import SpecError, find_claim_files, load_claims


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
                check_networks(claims)
            click.echo(f"ok  {f}")
        except SpecError as exc:
            click.echo(f"error: {exc}", err=True)
            errors += 1
    if errors or not files:
        if not files:
            click.echo(f"error: {', '.join(specs)}: no claim files found", err=True)
        sys.exit(2)


def check_networks(claims: list[Any]) -> None:
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
