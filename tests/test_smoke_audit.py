"""The whole smoke audit, for real: `audit run claims/ --profile smoke` trains every claim, then `audit report`.

This is the one test that trains every run of every claim (the default 2 seeds, the shared baseline
trained once) and renders the report from that store: it is the CI proof that a claim file, its plan,
the executor, MLflow, the analysis and the report fit together for every claim. A few minutes on
a 2-core CPU; `bench/audit.py` times the same command.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from audit.cli import main
from audit.spec import load_claims
from audit.track import Tracker
from tests.conftest import REPO, open_page

CLAIMS = REPO / "claims"
CLAIM_IDS = {c.id for c in load_claims([CLAIMS])}

pytestmark = pytest.mark.slow


@dataclass
class Audit:
    """One smoke audit's working folder and the output of its commands."""

    root: Path
    plan: Result
    run: Result
    report: Path


@pytest.fixture(scope="module")
def smoke_audit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audit]:
    root = tmp_path_factory.mktemp("smoke-audit")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        runner = CliRunner()
        plan = runner.invoke(main, ["plan", str(CLAIMS), "--profile", "smoke"])
        assert plan.exit_code == 0, plan.output
        run = runner.invoke(main, ["run", str(CLAIMS), "--profile", "smoke"])
        assert run.exit_code == 0, run.output
        report = runner.invoke(main, ["report", "--claims", str(CLAIMS)])
        assert report.exit_code == 0, report.output
        yield Audit(root, plan, run, root / "reports" / "index.html")


def test_every_planned_run_trains_once_and_the_baseline_is_shared(smoke_audit: Audit) -> None:
    found = re.search(r"(\d+) planned .*? → (\d+) distinct runs \+ (\d+) pending", smoke_audit.plan.output)
    planned, distinct, pending = map(int, found.groups())
    assert planned > distinct                                          # deduplication happened
    # the tuning runs first, then the verdict runs that waited for the learning rates they chose; such a
    # run may turn out to be one already planned (a tuned net at the preset's rate is depth's run), so
    # between the distinct runs and all of them train
    done = re.search(r"done in [\d.]+s: 0 reused, (\d+) finished, 0 diverged, 0 failed", smoke_audit.run.output)
    assert done, smoke_audit.run.output
    total = int(done.group(1))
    assert distinct < total <= distinct + pending
    frame = Tracker(f"sqlite:///{smoke_audit.root / 'runs' / 'mlflow.db'}").runs_frame()
    assert len(frame) == total and set(frame["tags.audit.status"]) == {"finished"}
    claims_per_run = frame["tags.audit.claims"].str.split(",")
    shared = max(claims_per_run, key=len)
    assert {"lrn", "overlapping_pooling", "dropout", "depth"} <= set(shared)   # the unmodified baseline
    assert set().union(*claims_per_run) == CLAIM_IDS


def test_the_ensemble_claim_trains_nothing_once_its_source_runs_exist(smoke_audit: Audit) -> None:
    """claims/ensemble.yaml reads the AlexNet baseline's saved predictions: every run it plans is a reused one."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(smoke_audit.root)
        plan = CliRunner().invoke(main, ["plan", str(CLAIMS / "ensemble.yaml"), "--profile", "smoke"])
    assert plan.exit_code == 0, plan.output
    rows = [line for line in plan.output.splitlines() if "│ ensemble │ single" in line]
    assert len(rows) == 5 and all("│ finished │" in row for row in rows), plan.output   # seeds 0-4
    assert "5 planned (claim, variant, seed) entries → 5 distinct runs; estimated training time at most 0s" \
        in plan.output and "to train" not in plan.output


def test_ten_crop_and_retrieval_read_saved_weights_and_train_nothing(smoke_audit: Audit) -> None:
    """Their one variant is the AlexNet baseline: `audit run` evaluated its finished runs' final.pt."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(smoke_audit.root)
        plan = CliRunner().invoke(main, ["plan", str(CLAIMS / "ten_crop.yaml"), str(CLAIMS / "retrieval.yaml"),
                                         "--profile", "smoke"])
    assert plan.exit_code == 0, plan.output
    rows = [line for line in plan.output.splitlines() if "│ alexnet │" in line]
    assert len(rows) == 2 and all("│ finished │" in row for row in rows), plan.output   # seeds 0-1
    assert "4 planned (claim, variant, seed) entries → 2 distinct runs; estimated training time at most 0s" \
        in plan.output and "to train" not in plan.output
    frame = Tracker(f"sqlite:///{smoke_audit.root / 'runs' / 'mlflow.db'}").runs_frame()
    evaluated = frame[frame["tags.audit.claims"].str.contains("ten_crop")]
    assert len(evaluated) == 2 and evaluated["tags.audit.claims"].str.contains("retrieval").all()
    for _, run in evaluated.iterrows():
        # the centre crop of the final weights is what the last epoch measured (the smoke profile
        # evaluates its epochs on the centre crop): the evaluation read the run's own final weights
        assert run["metrics.val_centre_top1_error"] == pytest.approx(run["metrics.val_top1_error"], abs=1e-6)
        assert 0 <= run["metrics.val_10crop_top1_error"] <= 100
        assert 0 <= run["metrics.val_nn_feature_agreement"] <= 100
    assert evaluated["metrics.val_nn_pixel_agreement"].nunique() == 1   # pixels do not depend on the run


def test_report_has_a_measured_row_per_claim(smoke_audit: Audit) -> None:
    html = smoke_audit.report.read_text()
    groups = dict(re.findall(r'<tbody class="claim-group" data-claim="([^"]+)" data-profile="([^"]+)">', html))
    assert set(groups) == CLAIM_IDS and set(groups.values()) == {"smoke"}
    for claim in CLAIM_IDS:
        block = html[html.index(f'data-claim="{claim}" data-profile="smoke"'):]
        block = block[:block.index("</tbody>")]
        assert "no result" not in block, claim                         # every claim measured something
        assert 'class="badge smoke-only"' in block, claim                # and says it is no verdict


def test_the_alexnet_claims_trained_on_real_imagenet_classes(smoke_audit: Audit) -> None:
    """The smoke default is the embedded Tiny ImageNet slice: the report names its classes (words.txt)."""
    html = smoke_audit.report.read_text()
    assert "tiny_imagenet:tiny-imagenet-smoke" in html
    assert re.search(r'<dd class="class-names">goldfish; black stork; walking stick; academic gown; bucket; '
                     r'dumbbell; miniskirt; refrigerator; teapot; ice lolly', html)


def test_report_opens_cleanly_in_chromium(smoke_audit: Audit, browser, artifacts: Path) -> None:  # noqa: ANN001
    page, errors, dialogs = open_page(browser, smoke_audit.report)
    images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
    assert images and all(complete and width > 0 for _, complete, width in images), images
    assert errors == [] and dialogs == []
    page.screenshot(path=str(artifacts / "smoke-audit-report.png"), full_page=True)
