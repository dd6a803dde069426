"""README.md's findings table: generated from evidence bundles, and checked against them.

The mechanism is tested on a bundle exported from a real store made here (three seeds of the LRN
pair at the cifar profile, numbers chosen); the committed README is checked against the committed
results/, and the HTML report rendered from results/ must show the same verdicts. A registered
audit's analysis (its tuning seeds, its registered seeds, "in progress") is tested on runs written
with chosen numbers under the tiny audit's registration.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.analyse.measure import analyse_audit
from audit.analyse.stats import IN_PROGRESS, SUPPORTED
from audit.cli import main
from audit.findings import END, START, collect, progress_table
from audit.registration import load_registration
from audit.report.store import ReportStore
from audit.report.views import measure_view, select_runs
from tests.conftest import REPO
from tests.runlog import LRN_CIFAR_LR, errors, log_lrn_tuning, log_run, store

CLAIMS = str(REPO / "claims")


def _findings(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["findings", "--claims", CLAIMS, *map(str, args)])
    return result.exit_code, result.output


def test_the_committed_readme_matches_the_committed_results() -> None:
    code, said = _findings("--evidence", REPO / "results", "--check", REPO / "README.md")
    assert code == 0, said


def test_the_report_from_results_shows_the_readme_verdicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reviewer's check: `audit report --evidence results/` (nothing trained) gives, row by row and in
    the same (the paper's) order, the seeds and verdicts of the README's findings table, each bundle
    read under its own audit."""
    monkeypatch.chdir(REPO)   # bundles name their audit files relative to the repository
    out = tmp_path / "index.html"
    result = CliRunner().invoke(main, ["report", "--claims", CLAIMS, "--evidence", str(REPO / "results"),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    shown = [(c, p, html.unescape(m), s, v) for c, p, m, v, s in re.findall(
        r'class="claim-row[^"]*" data-claim="([^"]+)" data-profile="([^"]+)" data-measure="([^"]+)" '
        r'data-verdict="([^"]+)" data-seeds="([^"]+)"', page)]
    section = (REPO / "README.md").read_text().split(START)[1].split(END)[0]
    published = [(c, p, m, s, v) for c, p, m, s, _, v, _ in
                 (line.strip("|").split(" | ") for line in section.splitlines()
                  if line.startswith("| ") and line.count(" | ") == 6 and not line.startswith("| claim |"))]
    assert published and shown == [(c.strip(), p, m, s, v.strip()) for c, p, m, s, v in published]   # in one order


def test_the_scale_figure_draws_the_claims_in_the_papers_order() -> None:
    """Panels follow the tables: section 3.1 (ReLU) before 3.3 (LRN), not the files' alphabetical order."""
    panels = collect(REPO / "results", REPO / "claims").panels
    assert [p.claim for p in panels][:2] == ["relu", "lrn"]


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


def test_a_registered_comparison_waits_for_its_registered_seeds_and_reads_only_them(tmp_path: Path) -> None:
    """The tiny audit registers one tuning seed (the profile's default is two) and 10 verdict seeds.
    The analysis reads the rates from that one seed, as `audit run` did; with 3 of the 10 seeds in,
    the comparison is "in progress" (no verdict); a seed beyond the registered ten never enters; with
    all ten it gets its verdict."""
    registration = load_registration(REPO / "claims" / "audits" / "tiny.yaml")
    lrn = next(c for c in registration.claims if c.id == "lrn")
    assert registration.spec.tuning_seeds == 1 < lrn.profiles["tiny"].tuning_seeds
    assert registration.seeds["lrn"] == 10
    tracker = store(tmp_path)
    for variant in ("with_lrn", "without_lrn"):
        for lr in (0.003, 0.01, 0.03):
            log_run(tracker, "lrn", variant, 1000, [{"holdout_top1_error": 66.0 if lr == 0.01 else 70.0}],
                    profile="tiny", lr=lr, tuning=True, classes=100)

    def log_seeds(seeds: range | list[int]) -> None:
        for seed in seeds:
            with_lrn, without = 66.0 + 0.1 * (seed % 4), 69.0 - 0.1 * (seed % 3)
            log_run(tracker, "lrn", "with_lrn", seed, errors(70.0, with_lrn), profile="tiny", lr=0.01, classes=100)
            log_run(tracker, "lrn", "without_lrn", seed, errors(71.0, without), profile="tiny", lr=0.01, classes=100)

    def top1():
        frame = select_runs(tracker.runs_frame(), registration.claims, "tiny")
        results = analyse_audit(registration.claims, frame, ReportStore(tracker, frame), None, registration.family)
        return next(r for r in results if r.claim.id == "lrn" and r.measure.id == "top1")

    log_seeds([0, 1, 2, 12])   # seed 12: beyond the registration
    partial = top1()
    assert {v: c.lr for v, c in partial.tuning.items()} == {"with_lrn": 0.01, "without_lrn": 0.01}
    assert [row.seed for row in partial.rows] == [0, 1, 2]
    assert partial.verdict.label == IN_PROGRESS and "3 of the 10 registered seeds" in partial.verdict.reason
    assert measure_view(partial)["seeds"] == "3 of 10" and measure_view(partial)["badge"] == "in progress"
    log_seeds(range(3, 10))
    complete = top1()
    assert [row.seed for row in complete.rows] == list(range(10))
    assert complete.verdict.label == SUPPORTED and measure_view(complete)["seeds"] == 10
    assert complete.family_size == 9 and complete.adjusted_p == min(1.0, 9 * complete.p)   # the others count p = 1
