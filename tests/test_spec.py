"""Claim files: every mistake is one line FILE:LINE: key: message, exit status 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.plan import build_plan
from audit.spec import load_claim

from .conftest import REPO

GOOD = (REPO / "claims" / "relu.yaml").read_text()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "claim.yaml"
    path.write_text(text)
    return path


def _validate(path: Path | str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", str(path)])
    return result.exit_code, result.output.strip()


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_shipped_claim_validates() -> None:
    code, out = _validate(REPO / "claims" / "relu.yaml")
    assert code == 0, out


@pytest.mark.parametrize("case", ["syntax", "unknown_key", "wrong_type", "missing_field",
                                  "unknown_override", "bad_override_value", "unknown_paper_measure", "missing_file"])
def test_malformed_spec_gives_one_located_line(tmp_path: Path, case: str) -> None:
    text, needle, expect = GOOD, None, ""
    if case == "syntax":
        text = GOOD.replace("variants:\n  relu: {}", "variants:\n  relu: {]")
        needle, expect = "relu: {]", "YAML syntax"
    elif case == "unknown_key":
        text = GOOD.replace("title:", "titel:", 1)
        needle, expect = "titel:", "titel: unknown key"
    elif case == "wrong_type":
        text = GOOD.replace("threshold: 25.0", "threshold: lots")
        needle, expect = "threshold: lots", "measure.0.threshold"
    elif case == "missing_field":
        text = GOOD.replace("    expect: increase ", "    # expect removed ")
        needle, expect = "  - id: speedup", "measure.0.expect: required key is missing"
    elif case == "unknown_override":
        text = GOOD.replace("tanh: {model: {activation: tanh}}", "tanh: {model: {activaton: tanh}}")
        needle, expect = "activaton", "variants.tanh.model.activaton: unknown key"
    elif case == "bad_override_value":
        text = GOOD.replace("tanh: {model: {activation: tanh}}", "tanh: {model: {activation: sigmoid}}")
        needle, expect = "sigmoid", "variants.tanh.model.activation"
    elif case == "unknown_paper_measure":
        text = GOOD.replace("    needs_data_path: true", "    needs_data_path: true\n    paper: {spedup: 3}")
        needle, expect = "spedup", "profiles.cifar.paper.spedup: not a measure id"
    path = _write(tmp_path, text) if case != "missing_file" else tmp_path / "nope.yaml"
    code, out = _validate(path)
    assert code == 2
    assert len(out.splitlines()) == 1, out
    assert "Traceback" not in out
    line = _line_of(text, needle) if needle else 1
    assert out.startswith(f"error: {path}:{line}: "), out
    assert expect in out


def test_run_and_plan_exit_2_on_a_bad_spec(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("title:", "titel:", 1))
    for command in (["run", str(path)], ["plan", str(path)]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2 and "unknown key" in result.output


def test_missing_data_path_is_a_user_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["plan", str(REPO / "claims" / "relu.yaml"), "--data", str(tmp_path / "x")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_plan_expands_grid_and_seeds_and_hashes_are_stable() -> None:
    claim = load_claim(REPO / "claims" / "relu.yaml")
    chosen = {("relu", "relu"): 0.01, ("relu", "tanh"): 0.01}
    plan = build_plan([claim], "smoke", seeds=3, chosen=chosen)
    prof = claim.profiles["smoke"]
    tuning = prof.tuning_seeds * (len(prof.lr_grid["relu"]) + len(prof.lr_grid["tanh"]))
    assert len(plan.runs) == tuning + 3 * 2   # the grid on the tuning seeds, the chosen rate on the verdict's
    again = build_plan([claim], "smoke", seeds=3, chosen=chosen)
    assert list(plan.runs) == list(again.runs)
    # the same seed gives the same data stream to both variants: only the activation (and lr) differ
    by_role = {(r.variant, r.seed, r.lr): run.config for run in plan.runs.values() for r in run.roles}
    a, b = by_role[("relu", 1, 0.01)], by_role[("tanh", 1, 0.01)]
    assert a.model.model_copy(update={"activation": "tanh"}) == b.model and a.data == b.data


def test_cifar_profile_needs_data(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["plan", str(REPO / "claims" / "relu.yaml"), "--profile", "cifar"])
    assert result.exit_code == 2 and "needs --data" in result.output
