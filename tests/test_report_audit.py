"""A pre-registered audit's report, in headless Chromium: the family and its commit, verdicts with their
size judgement, censored and diverged runs marked, runs made outside the registration flagged, and
the tuning runs in an appendix. Runs are written with chosen numbers into a real MLflow store.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.registration import load_registration
from tests.archive_trees import cifar_batches
from tests.conftest import REPO, open_page
from tests.runlog import LRN_CIFAR_LR, errors, log_lrn_tuning, log_run, store

AUDIT = """\
id: test-cifar
title: A test audit of two claims
profile: cifar
claims_dir: {claims}
claims:
  relu:
    measures: [speedup]
    seeds: 3
    pilot: {{speedup: {{sd: 0.09, df: 2, source: "three probe seeds"}}}}
  lrn:
    measures: [top1]
    seeds: 3
"""


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A committed audit file, and a store with its runs: censored, diverged, tuning and outside runs."""
    root = tmp_path_factory.mktemp("audit-report")
    audit_file = root / "audit.yaml"
    audit_file.write_text(AUDIT.format(claims=REPO / "claims"))
    _git(root, "init", "-q")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "empty")
    _git(root, "add", "audit.yaml")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "register the audit")
    tag = load_registration(audit_file).tag
    tracker = store(root)
    for seed in range(3):
        log_run(tracker, "relu", "relu", seed, errors(40, 24, metric="train_top1_error"), epochs=40, lr=0.03,
                audits=tag)
        tanh = [60.0] * 9 if seed == 0 else [60.0] * 7 + [24.0]       # seed 0 never reaches 25% in its 9 epochs
        log_run(tracker, "relu", "tanh", seed, errors(*tanh, metric="train_top1_error"), epochs=9 if seed == 0 else 40,
                lr=0.1, audits=tag)
        log_run(tracker, "lrn", "with_lrn", seed, [{"val_top1_error": 29.0 + seed / 10, "val_top5_error": 9.0}],
                lr=LRN_CIFAR_LR, audits=tag)
        log_run(tracker, "lrn", "without_lrn", seed, [{"val_top1_error": 30.5, "val_top5_error": 10.0}],
                status="diverged" if seed == 2 else "finished", audits="" if seed == 1 else tag, lr=LRN_CIFAR_LR)
    log_lrn_tuning(tracker, audits=tag)
    for variant, best in (("relu", 0.03), ("tanh", 0.1)):
        for lr in (0.01, 0.03, 0.1):
            for seed in (1000, 1001):
                log_run(tracker, "relu", variant, seed, errors(30 if lr == best else 60, 20, metric="train_top1_error"),
                        lr=lr, tuning=True, audits=tag)
    log_run(tracker, "lrn", "without_lrn", 0, errors(90.0), lr=0.01, probe="does the net without LRN learn at lr 0.01?")
    out = root / "report.html"
    result = CliRunner().invoke(main, ["report", "--audit", str(audit_file), "--tracking-uri", tracker.uri,
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, _git(root, "log", "-1", "--format=%H"), tag


def test_the_audit_report_in_chromium(audited: tuple[Path, str, str], browser, artifacts: Path) -> None:
    report, commit, _ = audited
    page, console_errors, dialogs = open_page(browser, report)
    registration = page.inner_text("#registration")
    assert "test-cifar" in registration and commit in registration
    family = page.eval_on_selector_all("#family-table tbody tr", "rows => rows.map(r => r.innerText)")
    assert len(family) == 2 and "speedup" in family[0] and "lrn" in family[1]
    assert "2 of 37 runs" in page.inner_text("#outside-runs")   # lrn without_lrn seed 1, the probe; 12 tune lrn
    relu = page.inner_text("#claim-relu-cifar")
    assert "Supported: direction holds; the paper's 6× lies inside" in relu   # censored: 6× cannot be excluded
    assert "at least" in relu and "1 seed(s) censored" in relu
    assert page.locator("#claim-relu-cifar tr.censored").count() == 1
    lrn = page.inner_text("#claim-lrn-cifar")
    assert "test-cifar" in lrn and "1 diverged run(s)" in lrn
    assert page.locator("#claim-lrn-cifar tr.diverged").count() == 2    # seed 2, in the top-1 and top-5 tables
    assert "no: made outside this audit" in page.locator("#claim-lrn-cifar details.runs").text_content()
    assert "exploratory" in page.inner_text("#claim-lrn-cifar-top5")   # top5 is outside the family
    appendix = page.inner_text("#appendix")
    assert "relu · tanh" in appendix and "lr 0.1 (on the grid's edge" in appendix
    assert page.locator("#tuning-relu-cifar-relu").is_visible()
    assert "does the net without LRN learn at lr 0.01?" in page.inner_text("#appendix")   # the probe, kept
    page.screenshot(path=str(artifacts / "report-audit.png"), full_page=True)
    assert console_errors == [] and dialogs == []


def test_the_audit_verdicts_ignore_other_runs_in_the_store(audited: tuple[Path, str, str], tmp_path: Path) -> None:
    report, _, _ = audited
    before = report.read_text()
    tracker = store(report.parent)
    for seed in range(3):   # unrelated evidence appears: dropout at the same profile
        log_run(tracker, "dropout", "with_dropout", seed, [{"val_top1_error": 30, "train_top1_error": 20}])
        log_run(tracker, "dropout", "without_dropout", seed, [{"val_top1_error": 33, "train_top1_error": 5}])
    out = tmp_path / "again.html"
    result = CliRunner().invoke(main, ["report", "--audit", str(report.parent / "audit.yaml"),
                                       "--tracking-uri", tracker.uri, "--out", str(out)])
    assert result.exit_code == 0, result.output

    def verdicts(html: str) -> list[str]:
        return [line for line in html.splitlines() if 'class="verdict"' in line or 'class="family' in line]

    assert verdicts(out.read_text()) == verdicts(before) and verdicts(before)


def test_plan_prints_the_family_the_power_and_the_tuning_runs(tmp_path: Path) -> None:
    audit_file = tmp_path / "audit.yaml"
    audit_file.write_text(AUDIT.format(claims=REPO / "claims"))
    data = tmp_path / "cifar10"
    cifar_batches(data)   # the CIFAR-10 python layout: the plan lists it (nothing trains)
    result = CliRunner().invoke(main, ["plan", "--audit", str(audit_file), "--data", str(data),
                                       "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "pre-registered family (2 measures" in out and "registered at commit uncommitted" in out
    # relu's pilot: sd 0.09 on 2 df is planned at 0.09 × 2.117; at ln 1.25 with α/2 that is 10 seeds
    assert "10 (under-powered)" in out and "no pilot" in out
    assert out.count("tuning") >= 12      # 3 rates × 2 variants × 2 tuning seeds, listed first
    assert "pending: relu relu: 3 verdict seed(s)" in out and "estimated training time" in out
    bad = CliRunner().invoke(main, ["plan", "--audit", str(audit_file), "--profile", "smoke"])
    assert bad.exit_code == 2 and "--audit fixes the claims, profile and seeds" in bad.output


def test_run_takes_one_claim_of_an_audit_at_a_time(tmp_path: Path) -> None:
    """`audit run --audit F --claim relu` plans relu's runs only, tagged with the whole audit's registration."""
    from audit.cli import scope_of

    audit_file = tmp_path / "audit.yaml"
    audit_file.write_text(AUDIT.format(claims=REPO / "claims"))
    whole, part = scope_of((), None, None, str(audit_file)), scope_of((), None, None, str(audit_file), only=("relu",))
    assert [c.id for c in part.claims] == ["relu"] and part.registration.tag == whole.registration.tag
    data = tmp_path / "cifar10"
    cifar_batches(data)
    planned = part.build(str(data))
    assert {r.roles[0].claim for r in planned.runs.values()} == {"relu"}
    assert {r.tags("cifar")["audit.audits"] for r in planned.runs.values()} == {whole.registration.tag}
    bad = CliRunner().invoke(main, ["run", "--audit", str(audit_file), "--claim", "dropout"])
    assert bad.exit_code == 2 and "--claim dropout: not a claim of this audit (relu, lrn)" in bad.output
    loose = CliRunner().invoke(main, ["run", str(REPO / "claims" / "relu.yaml"), "--claim", "relu"])
    assert loose.exit_code == 2 and "--claim picks claims of an --audit" in loose.output


def test_probe_runs_are_tagged_as_probes_never_evidence() -> None:
    from audit.plan import build_plan
    from audit.spec import load_claim

    plan = build_plan([load_claim(REPO / "claims/lrn.yaml")], "smoke", 1, probe="does it learn at lr 0.01?")
    tags = [run.tags("smoke") for run in plan.runs.values()]
    assert all(t["audit.variants"] == "" and t["audit.probes"].startswith("lrn:") for t in tags)
    assert {t["audit.probe_note"] for t in tags} == {"does it learn at lr 0.01?"}


def test_a_probe_tries_every_rate_of_a_grid_on_its_own_seeds() -> None:
    from audit.plan import build_plan
    from audit.spec import load_claim

    claim = load_claim(REPO / "claims/relu.yaml")
    plan = build_plan([claim], "smoke", 1, probe="which rates learn?")
    grid = claim.profiles["smoke"].lr_grid
    assert not plan.pending and len(plan.runs) == len(grid["relu"]) + len(grid["tanh"])
    assert {r.roles[0].seed for r in plan.runs.values()} == {2000}   # not a verdict seed: never reused as one
    assert all(r.tags("smoke")["audit.purpose"] == "probe" for r in plan.runs.values())
    chosen = {("relu", variant): rates[0] for variant, rates in grid.items()}
    verdict = build_plan([claim], "smoke", 1, chosen=chosen)
    assert not set(plan.runs) & set(verdict.runs)
