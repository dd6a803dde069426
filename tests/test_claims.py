"""The shipped claim files: they validate, share the baseline, and a new claim needs no new code."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.analyse.measure import analyse_audit
from audit.analyse.stats import decide
from audit.cli import main
from audit.plan import build_plan
from audit.report.views import measure_view
from audit.spec import load_claim, load_claims
from audit.track import Tracker

from .archive_trees import imagefolder
from .conftest import REPO

CLAIMS = REPO / "claims"
SEVEN = {"relu", "lrn", "overlapping_pooling", "dropout", "depth", "colour_specialisation", "full_imagenet"}
BEYOND = {"pca_colour", "weight_decay", "two_gpu", "augmentation", "bias_one", "ensemble", "ten_crop",
          "retrieval"}   # the paper's others
DOUBTS = {"doubt_bias_one", "doubt_relu_speedup", "doubt_depth_tuned", "doubt_dropout_l2"}   # the modern counter-claims
CIFAR_ONLY = {"relu", "doubt_relu_speedup"}   # Figure 1 is a CIFAR-10 experiment in the paper itself


def test_every_claim_validates_with_every_profile() -> None:
    claims = load_claims([CLAIMS])
    assert {c.id for c in claims} == SEVEN | BEYOND | DOUBTS
    for c in claims:
        assert {"smoke", "cifar"} <= set(c.profiles), c.id
        if c.id not in CIFAR_ONLY:
            assert {"imagenet", "full"} <= set(c.profiles), c.id
        assert not c.profiles["smoke"].scientific, f"{c.id}: smoke must never give a scientific verdict"
    result = CliRunner().invoke(main, ["validate", "--networks", str(CLAIMS)])
    assert result.exit_code == 0, result.output


def test_the_baseline_is_one_run_shared_by_the_alexnet_claims() -> None:
    plan = build_plan(load_claims([CLAIMS]), "smoke")
    shared = [run for run in plan.runs.values() if run.shared]
    baseline_claims = max((set(run.claims) for run in shared), key=len)
    assert {"lrn", "overlapping_pooling", "dropout", "depth", "pca_colour", "weight_decay", "two_gpu", "augmentation",
            "bias_one", "doubt_bias_one"} <= baseline_claims
    assert plan.entries > len(plan.runs)  # deduplicated before anything trains


def test_fine_tuning_depends_on_pretraining_and_the_dependency_is_hashed() -> None:
    plan = build_plan([load_claim(CLAIMS / "full_imagenet.yaml")], "smoke", seeds=1)
    ordered = plan.ordered()
    finetune = next(r for r in ordered if r.roles[0].variant == "finetune")
    pretrain = next(r for r in ordered if r.roles[0].variant == "pretrain")
    assert finetune.config.init_from == pretrain.config_hash
    assert ordered.index(pretrain) < ordered.index(finetune)
    # the larger set: every class of the embedded slice with all its images; the target: 5 classes x 64
    assert (pretrain.config.data.classes, pretrain.config.data.images_per_class) == (None, None)
    assert (len(finetune.config.data.classes), finetune.config.data.images_per_class) == (5, 64)


NEW_CLAIM = """
id: weight_decay
title: Weight decay <script>alert(1)</script> lowers the validation error
paper:
  section: "5"
  quote: "this small amount of weight decay was important for the model to learn"
variants:
  with_wd: {}
  without_wd: {train: {weight_decay: 0.0}}
measure:
  - id: top1
    metric: val_top1_error
    treatment: with_wd
    baseline: without_wd
    expect: decrease
    paper: -0.7
    smallest_effect: 0.5
  - id: gap
    kind: overfitting_gap
    treatment: with_wd
    baseline: without_wd
    expect: decrease
    smallest_effect: 0.5
profiles:
  tiny:
    scientific: false
    seeds: 2
    paper: {top1: -3.0}
    model: {width: 0.125, fc_width: 32, input_size: 32, init: kaiming}
    data: {synthetic: {classes: 10, train_per_class: 16, val_per_class: 4, size: 32}, normalise: unit}
    train: {epochs: 2, batch_size: 32, weight_decay: 0.0005, schedule: constant, eval_train: true}
"""


@pytest.mark.slow
def test_a_new_claim_runs_from_the_schema_alone(workdir: Path) -> None:
    claim_file = workdir / "weight_decay.yaml"
    claim_file.write_text(textwrap.dedent(NEW_CLAIM))
    result = CliRunner().invoke(main, ["run", str(claim_file), "--profile", "tiny"])
    assert result.exit_code == 0, result.output
    assert "4 finished" in result.output
    results = analyse_audit([load_claim(claim_file)], Tracker().runs_frame(), Tracker(), "tiny")
    assert [r.measure.id for r in results] == ["top1", "gap"]
    assert all(len(r.rows) == 2 and math.isfinite(r.interval.mean) for r in results)
    assert all(r.verdict.label == "inconclusive" and "smoke" in r.verdict.reason for r in results)
    assert [r.paper for r in results] == [-3.0, None]  # the profile's own number replaces the measure's
    assert measure_view(results[0])["paper"] == "−3 pp"


def test_a_profile_sets_the_papers_number_for_its_setting(tmp_path: Path) -> None:
    """LRN's CIFAR-10 pair (13% -> 11%) is the paper's number for the cifar profile, not ImageNet's -1.4."""
    lrn = load_claim(CLAIMS / "lrn.yaml")
    top1, top5 = lrn.measure
    assert (lrn.paper_number(top1, "smoke"), lrn.paper_number(top5, "smoke")) == (-1.4, -1.2)
    assert (lrn.paper_number(top1, "cifar"), lrn.paper_number(top5, "cifar")) == (-2.0, None)
    # the numbers are not part of any run's configuration: the cifar runs' hashes do not change
    without = lrn.model_copy(update={"profiles": {**lrn.profiles, "cifar": lrn.profiles["cifar"].model_copy(
        update={"paper": {}})}})
    data = str(imagefolder(tmp_path / "data"))
    hashes = [sorted(build_plan([c], "cifar", data_path=data).runs) for c in (lrn, without)]
    assert hashes[0] == hashes[1]


def test_a_profile_sets_its_smallest_effect() -> None:
    """LRN at cifar: 1 pp (half the paper's 2 pp); at tiny 0.7 (half its 1.4 pp); elsewhere the measure's 0.5 pp.
    Verdicts and power read it."""
    lrn = load_claim(CLAIMS / "lrn.yaml")
    top1, top5 = lrn.measure
    assert (lrn.smallest_effect(top1, "cifar"), lrn.smallest_effect(top5, "cifar")) == (1.0, 0.5)
    assert (lrn.smallest_effect(top1, "tiny"), lrn.smallest_effect(top1, "smoke")) == (0.7, 0.5)
    effects = [-0.8, -0.7, -0.9, -0.75, -0.85, -0.8]          # a sure reduction of about 0.8 pp
    assert decide(effects, "decrease", lrn.smallest_effect(top1, "cifar")).label == "supported, but negligible"
    assert decide(effects, "decrease", lrn.smallest_effect(top1, "smoke")).label == "supported"
