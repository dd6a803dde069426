"""Presets (``extends: NAME``): the shipped ones work for claim files anywhere; a file beside the claim wins."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from audit.cli import main
from audit.spec import PRESETS, load_claim

CLAIM = """\
id: mine
title: A claim file outside the repository
paper: {section: "3.3", quote: "Response normalization reduces our top-1 and top-5 error rates"}
variants:
  with_lrn: {}
  without_lrn: {model: {lrn: false}}
measure:
  - {id: top1, metric: val_top1_error, treatment: with_lrn, baseline: without_lrn, expect: decrease,
     smallest_effect: 0.5}
profiles:
  smoke:
    extends: EXTENDS
"""


def _write(folder: Path, extends: str) -> Path:
    path = folder / "claim.yaml"
    path.write_text(CLAIM.replace("EXTENDS", extends))
    return path


def _validate(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", str(path)])
    return result.exit_code, result.output.strip()


def test_a_claim_file_anywhere_extends_the_shipped_preset(tmp_path: Path) -> None:
    path = _write(tmp_path, "alexnet")
    code, out = _validate(path)
    assert code == 0, out
    shipped = yaml.safe_load((PRESETS / "alexnet.yaml").read_text())["smoke"]
    assert load_claim(path).profiles["smoke"].model == shipped["model"]


def test_a_preset_beside_the_claim_file_overrides_the_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    own = {"smoke": {"description": "mine", "model": {"width": 0.125}}}
    (tmp_path / "profiles" / "alexnet.yaml").write_text(yaml.safe_dump(own))
    claim = load_claim(_write(tmp_path, "alexnet"))
    assert claim.profiles["smoke"].model == {"width": 0.125}


def test_an_unknown_preset_is_one_located_line(tmp_path: Path) -> None:
    for name in ("nosuch", "../alexnet"):
        path = _write(tmp_path, name)
        code, out = _validate(path)
        line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "extends:" in text)
        assert code == 2 and len(out.splitlines()) == 1 and "Traceback" not in out, out
        assert out.startswith(f"error: {path}:{line}: profiles.smoke.extends: no preset"), out
        assert "shipped presets: alexnet" in out
