"""The referee's nine findings on the verdict layer, each a test with its numbers worked by hand.

1 ties, 2 size, 3 the family, 4 divergence, 5 censoring, 6 interpolation, 7 power, 8 tuning; the
ninth (plateau schedules read the verdict's split) is tested with the training loop.
Runs are written with chosen numbers into a real MLflow store (tests/runlog.py); nothing trains.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from audit.analyse.measure import Family, analyse_audit, analyse_claim
from audit.analyse.stats import (
    CONTRADICTED,
    EXPLORATORY,
    INCONCLUSIVE,
    NEGLIGIBLE,
    SUPPORTED,
    Effects,
    decide,
    p_value,
    power,
    sd_upper,
    seeds_for_power,
    t_interval,
)
from audit.analyse.tuning import choose
from audit.analyse.values import crossing
from audit.plan import build_plan
from audit.spec import SpecError, load_claim, load_claims
from tests.archive_trees import cifar_batches
from tests.runlog import LRN_CIFAR_LR, errors, log_lrn_tuning, log_run, store

REPO = Path(__file__).resolve().parents[1]
T975_2 = 4.302653  # t(0.975, 2 df)


# 1 ---------------------------------------------------------------- ties are not certainty

def test_tied_seeds_get_an_interval_from_the_measures_resolution() -> None:
    # Three seeds each 2 epochs apart, crossings known to one epoch: each run's rounding variance is
    # 1/12, so each effect's is 2/12 = 1/6 and the effective sd is sqrt(0 + 1/6) = 0.408248.
    # Half width: 4.302653 * 0.408248 / sqrt(3) = 1.014146 → [0.985854, 3.014146].
    e = Effects.of([2.0, 2.0, 2.0], [1 / 6] * 3)
    ci = t_interval(e)
    assert (ci.lo, ci.hi) == pytest.approx((2 - 1.014146, 2 + 1.014146), abs=1e-5)
    # t = 2 / 0.235702 = 8.485281; with 2 df, P(T > t) = 1/2 − t / (2 sqrt(t² + 2)) = 0.006803 → p = 0.013606
    assert p_value(e) == pytest.approx(0.013606, abs=1e-5)
    # the old rule read this as a point interval and p = 0; a small tied effect is now no certainty at all
    assert decide(Effects.of([0.5] * 3, [1 / 6] * 3), "increase", 0.25).label == INCONCLUSIVE


def test_tied_crossings_in_the_store_are_not_certainty(tmp_path: Path) -> None:
    claim = load_claim(REPO / "claims/relu.yaml")
    tracker = store(tmp_path)
    for seed in range(3):   # tanh crosses 25% at exactly 3 epochs, relu at exactly 2, in every seed
        log_run(tracker, "relu", "tanh", seed, errors(60, 40, 25, 20, metric="train_top1_error"), lr=0.03)
        log_run(tracker, "relu", "relu", seed, errors(50, 25, 20, metric="train_top1_error"), lr=0.03)
    for variant in ("relu", "tanh"):
        for lr in (0.01, 0.03, 0.1):
            for seed in (1000, 1001):
                log_run(tracker, "relu", variant, seed, errors(50 if lr == 0.03 else 60, 20, metric="train_top1_error"),
                        lr=lr, tuning=True)
    result = analyse_claim(claim, "cifar", tracker.runs_frame(), tracker)[0]
    assert [r.effect for r in result.rows] == pytest.approx([1.5] * 3)
    assert result.interval.lo < 1.5 < result.interval.hi      # a real interval, not a point
    assert result.p > 0


# 2 ---------------------------------------------------------------- size matters

def test_a_real_but_negligible_effect_is_labelled_so() -> None:
    # mean −0.20, sd 0.02: half width 4.302653 * 0.02 / sqrt(3) = 0.049683 → [−0.2497, −0.1503], inside ±0.5
    v = decide([-0.20, -0.22, -0.18], "decrease", 0.5)
    assert v.label == NEGLIGIBLE
    assert decide([-1.5, -1.2, -1.4, -1.3], "decrease", 0.5).label == SUPPORTED


def test_the_verdict_sentence_carries_the_size_judgement(tmp_path: Path) -> None:
    from audit.report.views import measure_view

    claim = load_claim(REPO / "claims/lrn.yaml")
    tracker = store(tmp_path)
    for seed, (a, b) in enumerate([(30.0, 31.0), (30.2, 31.1), (29.9, 31.0)]):
        log_run(tracker, "lrn", "with_lrn", seed, errors(a), lr=LRN_CIFAR_LR)
        log_run(tracker, "lrn", "without_lrn", seed, errors(b), lr=LRN_CIFAR_LR)
    log_lrn_tuning(tracker)
    results = analyse_audit([claim], tracker.runs_frame(), tracker, "cifar")
    view = measure_view(results[0])
    # effects −1.0, −0.9, −1.1 pp: half width 4.302653 * 0.1 / sqrt(3) = 0.248414 (the resolution of
    # 0.01 pp per image adds 1e-5 to the variance) → about [−1.25, −0.75]; the paper's CIFAR pair says −2.
    assert view["verdict"] == SUPPORTED
    assert view["sentence"].startswith("Supported: direction holds; the paper's −2 pp lies outside [−1.2")
    assert "the measured effect is smaller" in view["sentence"]


# 3 ---------------------------------------------------------------- a fixed family

def _lrn_and_relu_runs(tracker) -> None:  # noqa: ANN001
    for seed, (a, b) in enumerate([(30.0, 31.0), (30.4, 31.0), (29.9, 31.0)]):
        log_run(tracker, "lrn", "with_lrn", seed, [{"val_top1_error": a, "val_top5_error": a / 3}], lr=LRN_CIFAR_LR)
        log_run(tracker, "lrn", "without_lrn", seed, [{"val_top1_error": b, "val_top5_error": b / 3 + 0.2}],
                lr=LRN_CIFAR_LR)
    log_lrn_tuning(tracker)


def test_verdicts_use_the_registered_family_whatever_else_is_in_the_store(tmp_path: Path) -> None:
    claims = load_claims([REPO / "claims"])
    tracker = store(tmp_path)
    _lrn_and_relu_runs(tracker)
    family = Family("test-audit", "cifar", (("lrn", "top1"), ("relu", "speedup")))
    before = {(r.claim.id, r.measure.id): (r.verdict.label, r.adjusted_p)
              for r in analyse_audit(claims, tracker.runs_frame(), tracker, family=family)
              if (r.claim.id, r.measure.id) in family}
    # unrelated runs appear: another claim at the same profile, and lrn at another profile
    for seed in range(3):
        log_run(tracker, "dropout", "with_dropout", seed, [{"val_top1_error": 30, "train_top1_error": 20}])
        log_run(tracker, "dropout", "without_dropout", seed, [{"val_top1_error": 33, "train_top1_error": 5}])
        log_run(tracker, "lrn", "with_lrn", seed, errors(50), profile="smoke")
        log_run(tracker, "lrn", "without_lrn", seed, errors(52), profile="smoke")
    after = analyse_audit(claims, tracker.runs_frame(), tracker, family=family)
    assert {(r.claim.id, r.measure.id): (r.verdict.label, r.adjusted_p) for r in after
            if (r.claim.id, r.measure.id) in family} == before
    # the family has 2 members (relu has no runs yet: it counts with p = 1), so lrn's p is doubled
    lrn = next(r for r in after if r.claim.id == "lrn" and r.measure.id == "top1")
    assert lrn.adjusted_p == pytest.approx(min(1.0, 2 * lrn.p)) and lrn.family_size == 2
    assert {r.verdict.label for r in after if (r.claim.id, r.measure.id) not in family} == {EXPLORATORY}
    assert all(r.profile == "cifar" for r in after)


def test_without_an_audit_every_measure_of_a_claim_is_corrected(tmp_path: Path) -> None:
    claim = load_claim(REPO / "claims/lrn.yaml")
    tracker = store(tmp_path)
    _lrn_and_relu_runs(tracker)
    top1, top5 = analyse_audit([claim], tracker.runs_frame(), tracker, "cifar")
    assert top5.adjusted_p is not None and top5.family_size == top1.family_size == len(claim.measure)
    assert top5.adjusted_p >= top5.p


# 4 ---------------------------------------------------------------- divergence at the worst value

def test_a_diverged_run_counts_at_chance_not_at_its_last_good_epoch(tmp_path: Path) -> None:
    claims = {c.id: c for c in load_claims([REPO / "claims"])}
    tracker = store(tmp_path)
    for seed in range(3):
        status = "diverged" if seed == 0 else "finished"  # seed 0's last good epoch read 30%
        log_run(tracker, "lrn", "without_lrn", seed, [{"val_top1_error": 30.0, "val_top5_error": 10.0}], status=status,
                lr=LRN_CIFAR_LR)
        log_run(tracker, "lrn", "with_lrn", seed, [{"val_top1_error": 29.0, "val_top5_error": 9.0}], lr=LRN_CIFAR_LR)
        log_run(tracker, "dropout", "without_dropout", seed, [{"val_top1_error": 40.0, "train_top1_error": 10.0}],
                status=status)
        log_run(tracker, "dropout", "with_dropout", seed, [{"val_top1_error": 35.0, "train_top1_error": 25.0}])
    log_lrn_tuning(tracker)
    frame = tracker.runs_frame()
    top1 = analyse_claim(claims["lrn"], "cifar", frame, tracker)[0]
    assert top1.rows[0].baseline.value == pytest.approx(90.0)        # 10 classes: chance top-1 error 90%
    assert top1.rows[0].effect == pytest.approx(29.0 - 90.0)
    top5 = analyse_claim(claims["lrn"], "cifar", frame, tracker)[1]
    assert top5.rows[0].baseline.value == pytest.approx(50.0)        # chance top-5 error: 1 − 5/10
    dropout = analyse_claim(claims["dropout"], "cifar", frame, tracker)
    gap = next(r for r in dropout if r.measure.kind == "overfitting_gap")
    assert gap.rows[0].baseline.value == 0.0 and "diverged" in gap.rows[0].baseline.flag   # both at chance


# 5 ---------------------------------------------------------------- censoring

def test_a_run_that_never_crosses_is_censored_and_the_interval_says_at_least(tmp_path: Path) -> None:
    claim = load_claim(REPO / "claims/relu.yaml")
    tracker = store(tmp_path)
    for seed in range(3):
        log_run(tracker, "relu", "relu", seed, errors(40, 24, metric="train_top1_error"), epochs=40, lr=0.03)
        tanh = errors(*([60.0] * 40), metric="train_top1_error") if seed == 0 else \
            errors(*([60.0] * 9), 24, metric="train_top1_error")
        log_run(tracker, "relu", "tanh", seed, tanh, epochs=40, lr=0.03)
    for variant in ("relu", "tanh"):
        for lr in (0.01, 0.03, 0.1):
            for seed in (1000, 1001):
                log_run(tracker, "relu", variant, seed, errors(60 if lr != 0.03 else 30, 20, metric="train_top1_error"),
                        lr=lr, tuning=True)
    (result,) = analyse_claim(claim, "cifar", tracker.runs_frame(), tracker)
    censored = result.rows[0]
    assert censored.treatment.censored and censored.treatment.value == 40 and censored.censored == 1
    # relu crosses 25 at 1 + (40 − 25) / (40 − 24) = 1.9375 epochs; the censored tanh is at least 40
    assert censored.effect == pytest.approx(40 / 1.9375)
    assert result.interval.hi == math.inf and result.interval.lo > 1
    assert result.verdict.label == SUPPORTED


def test_a_budget_that_cannot_show_the_papers_number_fails_validation(tmp_path: Path) -> None:
    text = (REPO / "claims/relu.yaml").read_text().replace("epochs: 40,", "epochs: 20,")
    short = tmp_path / "relu.yaml"
    short.write_text(text)
    with pytest.raises(SpecError, match=r"budget of 20 epochs cannot show the paper's 6.*at least 36"):
        load_claim(short)   # ReLU needs about 6 epochs: 6 × 6 = 36 epochs are needed


def test_both_runs_censored_is_shown_but_not_counted() -> None:
    e = Effects.of([0.0, 1.0, 1.2], censored=[0, 1, -1])
    ci = t_interval(e)
    assert ci.lo == -math.inf and ci.hi == math.inf   # censored on both sides across seeds: no bounds


# 6 ---------------------------------------------------------------- interpolated crossings

def test_crossings_are_interpolated_between_evaluations() -> None:
    # 30% at epoch 2, 20% at epoch 3: 25% is crossed at 2 + (30 − 25) / (30 − 20) = 2.5
    assert crossing([1, 2, 3], [40, 30, 20], 25, start=90) == pytest.approx(2.5)
    # crossed before the first evaluation: from chance (90%) at epoch 0 to 20% at 1 → (90 − 25) / 70
    assert crossing([1, 2], [20, 10], 25, start=90) == pytest.approx(65 / 70)
    assert crossing([1, 2], [40, 30], 25, start=90) is None


# 7 ---------------------------------------------------------------- seeds planned by power

def test_power_and_the_seeds_it_asks_for() -> None:
    # The textbook case: a standardised effect of 1 needs 10 seeds for 80% power at α = 0.05 (0.803; 9 give 0.748).
    assert power(10, 1.0, 1.0) == pytest.approx(0.803, abs=1e-3)
    assert power(9, 1.0, 1.0) < 0.8
    assert seeds_for_power(1.0, None, 1.0) == 10
    # An sd from 3 seeds (2 df) is planned at its 80% upper bound: s·sqrt(2 / χ²(0.2; 2)), and
    # χ²(0.2; 2) = −2 ln 0.8 = 0.446287, so the factor is sqrt(2 / 0.446287) = 2.116936.
    assert sd_upper(1.0, 2) == pytest.approx(2.116936, abs=1e-5)
    # an effect of 1/2.116936 = 0.4724 sd: about ((1.960 + 0.842) / 0.4724)² + 2 ≈ 37 seeds, not 10
    assert seeds_for_power(1.0, 2, 1.0) in (37, 38, 39)
    # a family of two halves α: more seeds
    assert seeds_for_power(1.0, None, 1.0, family=2) > 10
    # the plug-in at the observed effect is gone: inconclusive results ask for power at the smallest effect
    v = decide([2.0, -1.5, 0.5], "decrease", 0.5)
    assert v.label == INCONCLUSIVE and v.seeds_needed == seeds_for_power(Effects.of([2.0, -1.5, 0.5]).sd, 2, 0.5)


# 8 ---------------------------------------------------------------- tuning that does not peek

def test_the_grid_runs_on_tuning_seeds_and_the_verdict_waits_for_its_choice(tmp_path: Path) -> None:
    claim = load_claim(REPO / "claims/relu.yaml")
    data = tmp_path / "cifar10"
    cifar_batches(data)
    first = build_plan([claim], "cifar", 3, data_path=str(data))
    assert {r.roles[0].seed for r in first.runs.values()} == {1000, 1001}
    assert all(r.tuning for r in first.runs.values()) and {p.variant for p in first.pending} == {"relu", "tanh"}
    chosen = {("relu", "relu"): 0.03, ("relu", "tanh"): 0.1}
    second = build_plan([claim], "cifar", 3, data_path=str(data), chosen=chosen)
    evidence = [r for r in second.runs.values() if not r.tuning]
    assert {(r.roles[0].variant, r.config.train.lr) for r in evidence} == {("relu", 0.03), ("tanh", 0.1)}
    assert {r.roles[0].seed for r in evidence} == {0, 1, 2} and not second.pending


def test_tuning_follows_the_measures_direction_and_flags_the_edge(tmp_path: Path) -> None:
    text = (REPO / "claims/relu.yaml").read_text()
    higher = tmp_path / "relu.yaml"
    higher.write_text(text.replace("    unit: \"x\"", "    unit: \"x\"\n    better: higher"))
    tracker = store(tmp_path)
    for variant in ("relu", "tanh"):
        for lr, final in ((0.01, 24.0), (0.03, 10.0), (0.1, 20.0)):   # reaches 25% at 2, 1.x and 1.y epochs
            for seed in (1000, 1001):
                log_run(tracker, "relu", variant, seed, errors(30, final, metric="train_top1_error"), lr=lr,
                        tuning=True)
    frame = tracker.runs_frame()
    lower = choose(load_claim(REPO / "claims/relu.yaml"), "cifar", frame, tracker)["relu"]
    assert lower.lr == 0.03 and not lower.on_edge                   # fewest epochs to 25%
    assert choose(load_claim(higher), "cifar", frame, tracker)["relu"].lr == 0.01   # the largest value
    assert choose(load_claim(higher), "cifar", frame, tracker)["relu"].on_edge


def test_a_tune_metric_chooses_on_the_held_out_slice_not_the_verdicts_split(tmp_path: Path) -> None:
    # Validation error favours 0.003, the held-out training slice 0.001: the slice decides.
    tracker = store(tmp_path)
    for variant in ("with_lrn", "without_lrn"):
        for lr, val, held in ((0.0003, 30.0, 35.0), (0.001, 28.0, 20.0), (0.003, 20.0, 30.0)):
            for seed in (1000, 1001):
                log_run(tracker, "lrn", variant, seed, [{"val_top1_error": val, "holdout_top1_error": held}],
                        lr=lr, tuning=True)
    picked = choose(load_claim(REPO / "claims/lrn.yaml"), "cifar", tracker.runs_frame(), tracker)
    assert {v: c.lr for v, c in picked.items()} == {"with_lrn": 0.001, "without_lrn": 0.001}
    assert not picked["with_lrn"].on_edge


def test_a_profile_can_tune_weight_decay_instead_of_the_rate(tmp_path: Path) -> None:
    """doubt_dropout_l2: the grid sets train.weight_decay (tune_param); the rate stays the preset's."""
    claim = load_claim(REPO / "claims/doubt_dropout_l2.yaml")
    first = build_plan([claim], "smoke", 2)
    tuning = [r for r in first.runs.values() if r.tuning]
    assert sorted(r.config.train.weight_decay for r in tuning) == [0.0005, 0.002, 0.008]
    assert {r.config.train.lr for r in tuning} == {0.001} and {r.config.model.dropout for r in tuning} == {0.0}
    assert {r.label for r in tuning} >= {"doubt_dropout_l2 l2_tuned seed 1000 weight_decay 0.002 (tuning)"}
    second = build_plan([claim], "smoke", 2, chosen={("doubt_dropout_l2", "l2_tuned"): 0.008})
    evidence = {r.roles[0].variant: r.config.train for r in second.runs.values() if not r.tuning}
    assert (evidence["l2_tuned"].weight_decay, evidence["l2_tuned"].lr) == (0.008, 0.001)
    assert evidence["with_dropout"].weight_decay == 0.0005           # the net with dropout is not tuned

    tracker = store(tmp_path)
    for wd, val in ((0.0005, 40.0), (0.002, 30.0), (0.008, 35.0)):  # 0.002 does best on the validation error
        run_id = log_run(tracker, "doubt_dropout_l2", "l2_tuned", 1000, errors(val), profile="smoke", tuning=True)
        tracker.client.log_param(run_id, "train.weight_decay", str(wd))
    for seed in (0, 1):
        for wd in (0.002, 0.008):   # verdict runs at two values: only those at the chosen one count
            run_id = log_run(tracker, "doubt_dropout_l2", "l2_tuned", seed, errors(33.0 if wd == 0.002 else 90.0),
                             profile="smoke")
            tracker.client.log_param(run_id, "train.weight_decay", str(wd))
        run_id = log_run(tracker, "doubt_dropout_l2", "with_dropout", seed, errors(31.0 + seed), profile="smoke")
        tracker.client.log_param(run_id, "train.weight_decay", "0.0005")
    frame = tracker.runs_frame()
    picked = choose(claim, "smoke", frame, tracker)["l2_tuned"]
    assert (picked.lr, picked.note) == (0.002, "weight_decay 0.002")
    top1 = next(r for r in analyse_claim(claim, "smoke", frame, tracker) if r.measure.id == "top1")
    assert sorted(row.effect for row in top1.rows) == [1.0, 2.0]     # 33 − 32 and 33 − 31, never 90 − …
    from audit.report.views import run_rows  # the report's run table shows the tuned weight decay, not the rate

    rows = run_rows(claim, frame, [top1], tuned_param="train.weight_decay")
    assert sorted(r["setting"] for r in rows if r["variant"] == "l2_tuned") == ["0.002", "0.002", "0.008", "0.008"]


@pytest.mark.parametrize("claim_id", ["dropout", "colour_specialisation"])
def test_a_tune_metric_is_minimised_whatever_the_tuning_measure_is(claim_id: str, tmp_path: Path) -> None:
    """dropout's first measure is a gap and colour's an index: at tiny both tune on the held-out error.

    Here lr 0.003 has the smallest gap (it underfits: both errors high) and 0.01 the lowest held-out
    error: 0.01 must win, and colour's runs (which log no weights here) must not be read as weights.
    """
    claim = load_claim(REPO / f"claims/{claim_id}.yaml")
    variant = next(iter(claim.profiles["tiny"].lr_grid))
    tracker = store(tmp_path)
    for lr, (train, val, held_out) in {0.003: (80.0, 81.0, 81.5), 0.01: (60.0, 70.0, 69.0),
                                       0.03: (65.0, 74.0, 73.0)}.items():
        log_run(tracker, claim_id, variant, 1000, [{"train_top1_error": train, "val_top1_error": val,
                                                     "holdout_top1_error": held_out}],
                profile="tiny", lr=lr, tuning=True, classes=100)
    picked = choose(claim, "tiny", tracker.runs_frame(), tracker, tuning_seeds=1)[variant]
    assert picked.lr == 0.01 and [row["mean"] for row in picked.rows] == [81.5, 69.0, 73.0]
    assert (picked.measure, picked.better) == ("holdout_top1_error", "lower")   # what the appendix shows


def test_a_tune_metric_must_be_an_error_or_a_loss(tmp_path: Path) -> None:
    bad = tmp_path / "lrn.yaml"
    bad.write_text((REPO / "claims/lrn.yaml").read_text().replace("tune_metric: holdout_top1_error",
                                                                   "tune_metric: val_nn_feature_agreement", 1))
    with pytest.raises(SpecError, match=r"tune_metric: val_nn_feature_agreement: tuning minimises this metric"):
        load_claim(bad)


def test_a_held_out_tune_metric_needs_held_out_images(tmp_path: Path) -> None:
    bad = tmp_path / "lrn.yaml"
    bad.write_text((REPO / "claims/lrn.yaml").read_text().replace("holdout_per_class: 100, ", ""))
    with pytest.raises(SpecError, match=r"lrn.yaml:\d+: profiles.cifar.tune_metric: holdout_top1_error needs"):
        load_claim(bad)


def test_a_grid_must_be_log_spaced_and_wide(tmp_path: Path) -> None:
    text = (REPO / "claims/relu.yaml").read_text()
    for grid, message in (("[0.03, 0.05]", "at least 3 rates"), ("[0.01, 0.02, 0.1]", "not log-spaced")):
        bad = tmp_path / "relu.yaml"
        bad.write_text(text.replace("relu: [0.01, 0.03, 0.1]", f"relu: {grid}"))
        with pytest.raises(SpecError, match=message):
            load_claim(bad)


def test_contradiction_needs_the_interval_on_the_other_side() -> None:
    assert decide([1.5, 1.2, 1.4, 1.3], "decrease", 0.5).label == CONTRADICTED


# 9 ---------------------------------------------------------------- no run silently dropped

def test_every_run_the_analysis_does_not_count_says_why(tmp_path: Path) -> None:
    from audit.analyse.measure import analyse_claim
    from audit.report.views import run_rows

    claim = load_claim(REPO / "claims/lrn.yaml")
    tracker = store(tmp_path)
    kept = {}
    for seed in range(3):
        kept[("with", seed)] = log_run(tracker, "lrn", "with_lrn", seed, errors(30.0 + seed), profile="imagenet")
        history = [{"val_loss": 2.0}] if seed == 1 else errors(31.0)   # seed 1 never logged its error
        kept[("without", seed)] = log_run(tracker, "lrn", "without_lrn", seed, history, profile="imagenet")
    superseded = kept[("with", 0)]
    kept[("with", 0)] = log_run(tracker, "lrn", "with_lrn", 0, errors(29.0), profile="imagenet")  # a newer run
    lonely = log_run(tracker, "lrn", "with_lrn", 7, errors(29.0), profile="imagenet")
    frame = tracker.runs_frame()
    results = analyse_claim(claim, "imagenet", frame, tracker)
    roles = {row["run_id"]: row["role"] for row in run_rows(claim, frame, results)}
    assert len(roles) == len(frame) == 8                                   # every run is listed
    assert roles[kept[("with", 0)]] == roles[kept[("without", 2)]] == "in the statistics"
    assert roles[kept[("without", 1)]] == "not counted: top1: val_top1_error has no value"
    assert roles[superseded] == "superseded by a newer run of this variant and seed"
    assert roles[lonely] == "not paired (no run of the other variant with this seed)"
