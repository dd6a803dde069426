"""README.md's findings table: generated from evidence bundles, and checked against them.

The mechanism is tested on a bundle exported from a real store made here (three seeds of the LRN
pair at the cifar profile, numbers chosen); the committed README is checked against the committed
results/ (no audit of record yet, so a table with no rows).
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from audit.cli import main
from audit.findings import END, START, progress_table
from tests.conftest import REPO
from tests.runlog import LRN_CIFAR_LR, errors, log_lrn_tuning, log_run, store

CLAIMS = str(REPO / "claims")


def _findings(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["findings", "--claims", CLAIMS, *map(str, args)])
    return result.exit_code, result.output


def test_the_committed_readme_matches_the_committed_results() -> None:
    code, said = _findings("--evidence", REPO / "results", "--check", REPO / "README.md")
    assert code == 0, said


def test_progress_counts_a_registered_audits_runs_against_its_plan() -> None:
    """cifar2012 is complete: 10 registered seeds of relu's two variants, all 20 runs finished."""
    table = progress_table(REPO / "results")
    assert "| cifar2012/ | cifar2012@17fd4fe5e9a6 | relu 20/20 | 20 evidence, 12 tuning | none |" in table


def test_the_table_is_written_from_bundles_and_a_disagreeing_readme_fails(tmp_path: Path) -> None:
    tracker = store(tmp_path)
    for seed, (with_lrn, without) in enumerate([(11.0, 13.1), (11.5, 13.4), (10.8, 12.9)]):
        for variant, values in (("with_lrn", (14.0, with_lrn)), ("without_lrn", (15.0, without))):
            timed = [{**epoch, "epoch_seconds": 900.0} for epoch in errors(*values)]   # 2 epochs of 15 min
            log_run(tracker, "lrn", variant, seed, timed, lr=LRN_CIFAR_LR)
    log_lrn_tuning(tracker)
    results = tmp_path / "results"
    exported = CliRunner().invoke(main, ["export", "--claims", CLAIMS, "--claim", "lrn", "--profile", "cifar",
                                         "--tracking-uri", tracker.uri, "--out", str(results / "cifar")])
    assert exported.exit_code == 0, exported.output
    readme = tmp_path / "README.md"
    readme.write_text(f"# A project\n\n{START}\n(nothing yet)\n{END}\n\nMore text.\n")

    code, said = _findings("--evidence", results, "--check", readme)
    assert code == 1 and "disagrees with" in said and "+| lrn | cifar |" in said
    code, said = _findings("--evidence", results, "--write", readme)
    assert code == 0, said
    text = readme.read_text()
    assert text.startswith("# A project\n\n") and text.endswith(f"{END}\n\nMore text.\n")
    row = next(line for line in text.splitlines() if line.startswith("| lrn | cifar |"))
    assert row == ("| lrn | cifar | val top-1 error, with − without LRN | 3 | −2.03 pp [−2.32, −1.75] | supported "
                   "| −2 pp |")
    assert _findings("--evidence", results, "--check", readme)[0] == 0
    # under the table, each bundle's runs and what they cost
    progress = next(line for line in text.splitlines() if line.startswith("| cifar/ |"))
    assert progress == "| cifar/ | — (not pre-registered) | — | 6 evidence, 12 tuning | none | 3.0 h |"
    # the effect-against-scale figure: written beside the bundles, linked under the table, drawn again the same
    figure = results / "effect-by-scale.png"
    assert "![Each claim's effect at every tier with evidence, beside the paper's](results/effect-by-scale.png)" in text
    png = figure.read_bytes()
    assert png.startswith(b"\x89PNG") and b"Software" not in png and len(png) > 5_000
    assert _findings("--evidence", results, "--write", readme)[0] == 0 and figure.read_bytes() == png

    readme.write_text(text.replace("| supported |", "| contradicted |"))
    code, said = _findings("--evidence", results, "--check", readme)
    assert code == 1 and "-| lrn | cifar |" in said and "contradicted" in said


def test_findings_user_errors_name_the_path(tmp_path: Path) -> None:
    code, said = _findings("--evidence", tmp_path / "missing")
    assert code == 2 and "missing: no such folder" in said
    code, said = _findings("--evidence", tmp_path, "--check", tmp_path / "NOPE.md")
    assert code == 2 and "NOPE.md: no such file" in said
