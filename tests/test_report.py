"""The HTML report, built from a real MLflow store holding runs of every claim and opened in headless Chromium.

Training every claim takes far longer than a test may (minutes per smoke run on a 2-core machine), so
the store is filled the way the executor fills it — the real plan of every claim, each run's params
and tags, per-epoch metrics, conv1 weights and validation predictions, through ``audit.track.Tracker``
into a real SQLite store — with made-up numbers (tests/storefill.py; bench/report.py times the same at 500 runs).
Screenshots go to $AUDIT_TEST_ARTIFACTS when set, else to pytest's tmp_path; never into the repo.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.report import build_report
from audit.report.headline import ensemble_errors, headline_rows
from audit.spec import Claim, load_claims
from audit.track import Tracker
from tests.conftest import REPO, open_page
from tests.storefill import fake_data, fill_store, plan_runs

CLAIMS = REPO / "claims"
EVIL = "<script>alert(1)</script>"
EVIL_ERROR = 'ValueError: bad input <img src=x onerror="alert(2)">'


def _uri(root: Path) -> str:
    return f"sqlite:///{root / 'mlflow.db'}"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Smoke runs of every claim (2 seeds), cifar runs of relu, lrn and colour (3 seeds); one failed, one diverged."""
    root = tmp_path_factory.mktemp("report-store")
    claims = load_claims([CLAIMS])
    chosen = [c for c in claims if c.id in ("relu", "lrn", "colour_specialisation")]
    data = fake_data(root)
    planned = plan_runs(claims, "smoke", 2, data) + plan_runs(chosen, "cifar", 3, data)
    failing = [i for i, (_, run) in enumerate(planned) if run.roles[0].variant == "no_conv3"]   # every seed

    def diverge(run) -> bool:  # noqa: ANN001 - a PlannedRun
        role = run.roles[0]
        return run.config.model.arch == "cifar_fig1" and role.variant == "tanh" and role.lr == 0.03 and role.seed == 1

    fill_store(Tracker(_uri(root), artifact_root=root / "artifacts"), planned, dict.fromkeys(failing, EVIL_ERROR),
               diverge)
    return root


@pytest.fixture(scope="module")
def report(store: Path) -> Path:
    out = store / "reports" / "index.html"
    result = CliRunner().invoke(main, ["report", "--claims", str(CLAIMS), "--tracking-uri", _uri(store),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_report_in_chromium_loads_cleanly_with_a_row_per_claim(report: Path, browser, artifacts: Path) -> None:
    page, errors, dialogs = open_page(browser, report)
    images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
    assert len(images) >= 10
    assert all(complete and width > 0 for _, complete, width in images), images
    in_summary = page.eval_on_selector_all("#summary-table tbody.claim-group", "els => els.map(e => e.dataset.claim)")
    assert set(in_summary) == {c.id for c in load_claims([CLAIMS])}
    assert page.is_visible("#smoke-warning") and "not scientific verdicts" in page.inner_text("#smoke-warning")
    # effect against scale: one figure for the whole audit, and each claim's own in its first section
    scale = page.evaluate("Array.from(document.querySelectorAll('figure.scale img')).map(i => "
                          "[i.closest('section.claim') ? i.closest('section.claim').dataset.claim : 'summary',"
                          " i.complete, i.naturalWidth, i.naturalHeight])")
    assert [s[0] for s in scale].count("summary") == 1 and all(ok and w > 300 and h > 150 for _, ok, w, h in scale)
    # every claim whose primary measure has results: no_conv3's runs all fail on purpose in this store
    # (depth's and doubt_depth_tuned's primary measure), 2 smoke seeds make no ensemble of five, and
    # doubt_dropout_l2's tuned net has only its tuning runs here (its verdict runs wait for the choice)
    no_result = {"depth", "doubt_depth_tuned", "ensemble", "doubt_dropout_l2"}
    assert {s[0] for s in scale} - {"summary"} == set(in_summary) - no_result, scale
    page.screenshot(path=str(artifacts / "report-top.png"))
    page.screenshot(path=str(artifacts / "report-full.png"), full_page=True)
    assert errors == [] and dialogs == []
    assert (artifacts / "report-top.png").stat().st_size > 10_000


def test_summary_verdicts_and_comparability(report: Path) -> None:
    html = report.read_text()
    assert html.count('class="badge smoke-only"') >= 7           # every smoke row says so
    assert "no — smoke profile (a few hundred images, small nets)" in html
    assert "not compared with the paper" in html                  # no "consistent with the paper" for toy runs
    assert "no — cifar scale, the direction only" in html
    assert 'id="scale-warning"' in html                           # nothing here is on the paper's scale
    for text in ("37.5", "40.7", "38.1", "15.3", "5 CNNs"):        # the paper's tables
        assert text in html


def test_claim_sections_show_their_evidence(report: Path) -> None:
    html = report.read_text()
    assert "is our best reading, not documented by the paper" in html
    assert "Figure 1 style" in html and "Figure 3 style" in html
    assert "Chromatic fraction c of every conv1 kernel, per tower" in html
    assert "Pre-training, then fine-tuning, vs training from scratch" in html
    assert "Training vs validation error" in html
    assert 'class="lr-grid"' in html and "tuning-relu-cifar-tanh" in html   # relu's grid, in the appendix
    assert "Later work (context, not a target)" in html


def test_failed_and_diverged_runs_are_shown(report: Path, store: Path) -> None:
    frame = Tracker(_uri(store)).runs_frame()
    html = report.read_text()
    for status in ("failed", "diverged"):
        ids = list(frame.loc[frame["tags.audit.status"] == status, "run_id"])
        assert ids and all(i in html for i in ids), status
    assert '<span class="badge status-failed">failed</span>' in html
    assert '<span class="badge status-diverged">diverged</span>' in html
    depth = html[html.index('<tbody class="claim-group" data-claim="depth"'):]
    depth = depth[:depth.index("</tbody>")]
    assert "without conv3" in depth and "no result" in depth      # its measure stays, saying why it is empty
    assert "without conv4" in depth and "smoke only" in depth


def test_headline_has_the_baseline_and_its_ensemble(report: Path) -> None:
    html = report.read_text()
    assert "ensemble of 2 seeds (averaged softmax)" in html        # smoke baseline, from logged predictions
    assert "centre crop only (the paper averages 10 crops)" in html


def test_provenance_names_runs_commits_and_fingerprints(report: Path, store: Path) -> None:
    frame = Tracker(_uri(store)).runs_frame()
    html = report.read_text()
    assert all(run_id in html for run_id in frame["run_id"])
    assert all(h in html for h in frame["tags.audit.config_hash"])
    assert all(fp in html for fp in frame["tags.audit.dataset_fingerprint"].dropna())
    assert all(v in html for v in frame["tags.audit.versions"].dropna())    # the software behind the runs
    assert "report built" in html and "mlflow" in html


def test_claim_and_profile_filters(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "relu.html"
    result = CliRunner().invoke(main, ["report", "--claims", str(CLAIMS), "--claim", "relu", "--profile", "cifar",
                                       "--tracking-uri", _uri(store), "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert 'id="claim-relu-cifar"' in html and 'id="claim-relu-smoke"' not in html
    assert 'data-claim="lrn"' not in html and 'id="smoke-warning"' not in html
    bad = CliRunner().invoke(main, ["report", "--claims", str(CLAIMS), "--claim", "nope",
                                    "--tracking-uri", _uri(store)])
    assert bad.exit_code == 2 and "unknown claim" in bad.output


def test_open_flag_opens_the_file(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    out = tmp_path / "r.html"
    result = CliRunner().invoke(main, ["report", "--claims", str(CLAIMS), "--claim", "lrn", "--tracking-uri",
                                       _uri(store), "--out", str(out), "--open"])
    assert result.exit_code == 0, result.output
    assert opened == [out.resolve().as_uri()]


def _evil(claim: Claim) -> Claim:
    paper = claim.paper.model_copy(update={"quote": f"quote {EVIL}", "context": f"context {EVIL}"})
    return claim.model_copy(update={"title": f"Title {EVIL}", "paper": paper, "notes": EVIL})


def test_script_in_a_claim_or_a_run_renders_as_text(store: Path, tmp_path: Path, browser) -> None:
    claims = [_evil(c) if c.id == "lrn" else c for c in load_claims([CLAIMS])]
    out = build_report(claims, Tracker(_uri(store)), tmp_path / "evil.html")
    html = out.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()                           # the report has no script of its own either
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in html   # an exception message from MLflow
    page, errors, dialogs = open_page(browser, out)
    assert dialogs == [] and errors == []
    assert EVIL in page.inner_text("#summary-table")                # shown as text, as written


class _Arrays:
    """A RunStore whose artifacts are in-memory arrays saved to files."""

    def __init__(self, tmp: Path, arrays: dict[tuple[str, str], np.ndarray]) -> None:
        self.paths = {}
        for (run, name), array in arrays.items():
            path = tmp / f"{run}-{name.replace('/', '_')}"
            np.save(path, array)
            self.paths[(run, name)] = path.with_suffix(".npy")

    def history(self, run_id: str, keys: list[str]) -> pd.DataFrame:
        raise AssertionError("not needed")

    def artifact(self, run_id: str, path: str) -> Path:
        if (run_id, path) not in self.paths:
            raise FileNotFoundError(path)
        return self.paths[(run_id, path)]


def test_ensemble_averages_softmax_across_seeds(tmp_path: Path) -> None:
    labels = np.array([0, 1, 2, 3])
    a = np.array([[.6, .4, 0, 0, 0, 0], [.6, .4, 0, 0, 0, 0], [0, 0, .9, .1, 0, 0], [.1, .1, .1, .1, .1, .5]])
    b = np.array([[.6, .4, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0], [0, 0, .9, .1, 0, 0], [.1, .1, .1, .1, .1, .5]])
    store = _Arrays(tmp_path, {("a", "predictions/val_probs.npy"): a.astype(np.float16),
                               ("a", "predictions/val_labels.npy"): labels,
                               ("b", "predictions/val_probs.npy"): b.astype(np.float16),
                               ("b", "predictions/val_labels.npy"): labels})
    top1, top5, used = ensemble_errors(store, ["a", "b", "c"])      # c logged no predictions: left out
    assert used == 2 and top1 == pytest.approx(25.0) and top5 == pytest.approx(0.0)
    assert "≥ 2 seeds" in ensemble_errors(store, ["a", "c"])


def test_only_the_papers_scale_is_comparable(tmp_path: Path) -> None:
    claims = load_claims([CLAIMS])
    base = {"params.model.arch": "alexnet", "params.model.activation": "relu", "params.model.lrn": "true",
            "params.model.pooling": "overlapping", "params.model.dropout": "0.5", "params.model.remove_conv": "null",
            "params.model.towers": "2", "params.init_from": "null", "params.model.width": "1.0",
            "params.train.epochs": "90", "tags.audit.status": "finished", "tags.audit.dataset_name": "ilsvrc2012:x",
            "metrics.val_top1_error": 41.0, "metrics.val_top5_error": 18.5}
    rows = [{**base, "run_id": "full", "tags.audit.profile": "full", "tags.audit.variants": "lrn:with_lrn",
             "params.data.source": "ilsvrc2012", "params.model.input_size": "224", "params.data.eval_crops": "10"},
            {**base, "run_id": "sub", "tags.audit.profile": "imagenet", "tags.audit.variants": "lrn:with_lrn",
             "params.data.source": "ilsvrc2012", "params.model.input_size": "128", "params.data.eval_crops": "1"},
            {**base, "run_id": "ablation", "tags.audit.profile": "full", "tags.audit.variants": "lrn:without_lrn",
             "params.data.source": "ilsvrc2012", "params.model.input_size": "224", "params.data.eval_crops": "10",
             "params.model.lrn": "false"}]
    out = headline_rows(pd.DataFrame(rows), claims, _Arrays(tmp_path, {}))
    singles = {r["profile"]: r for r in out if r["model"].startswith("1 net")}
    assert set(singles) == {"full", "imagenet"}                      # the ablation is not the baseline
    assert singles["full"]["comparable"] and singles["full"]["top1"] == "41.0"
    assert not singles["imagenet"]["comparable"]
    assert "128 px input, not 224" in singles["imagenet"]["why_not"]
