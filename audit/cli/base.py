"""What every ``audit`` command shares: the click group, the console, the common options, and the
rule that a user's mistake ends with one line and exit status 2, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from audit.spec import SpecError

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


only_claims_option = click.option("--claim", "only_claims", multiple=True, help="Only these claim ids (repeatable).")
audit_option = click.option("--audit", "audit_file", type=click.Path(), default=None,
                            help="A pre-registered audit file (claims/audits/*.yaml): its claims, profile, seeds "
                                 "and family.")

claims_dir_option = click.option("--claims", "claims_dir", type=click.Path(), default=DEFAULT_CLAIMS,
                                 show_default=True, help="Claim files or a folder of them.")
