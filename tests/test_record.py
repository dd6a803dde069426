"""The run record: MLflow's names in one module, each run's whole config stored, `audit show` and `audit schema`.

Every store is a real MLflow SQLite store in tmp_path.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from audit import estimate, record
from audit.cli import main
from audit.config import DataConfig, ModelConfig, RunConfig
from audit.record import Tag
from audit.track import Tracker

from .conftest import REPO

WNIDS = [f"n{i:08d}" for i in range(1000)]


def _tracker(tmp_path: Path) -> Tracker:
    return Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=tmp_path / "artifacts")


def test_mlflow_names_are_written_in_one_module() -> None:
    """No hand-typed "tags.…", "params.…" or "metrics.…" column outside audit/record.py."""
    pattern = re.compile(r"""f?["'](tags|params|metrics)\.""")
    found = [f"{path.relative_to(REPO)}:{n}" for path in sorted((REPO / "audit").rglob("*.py"))
             if path.name != "record.py"
             for n, line in enumerate(path.read_text().splitlines(), start=1) if pattern.search(line)]
    assert found == []


def test_a_thousand_class_config_is_kept_whole(tmp_path: Path) -> None:
    """Params are cut at 6,000 characters (and say so); config.json keeps the run's whole config."""
    cfg = RunConfig(model=ModelConfig(width=0.25, input_size=64),
                    data=DataConfig(source="ilsvrc2012", path="/data/ilsvrc", fingerprint="0123456789abcdef",
                                    classes=WNIDS, images_per_class=10))
    tracker = _tracker(tmp_path)
    run_id = tracker.start_config(cfg, {Tag.PROFILE: "imagenet"}, "big")
    tracker.set_tags(run_id, {Tag.dataset("train_images"): "10000"})
    tracker.log_metrics(run_id, {"epoch_seconds": 50.0}, step=1)
    tracker.finish(run_id, record.FINISHED)

    params = tracker.params(run_id)
    assert len(params["data.classes"]) == record.MAX_PARAM and params["data.classes"].endswith(record.TRUNCATED)
    frame = tracker.runs_frame()
    (row,) = [r for _, r in frame.iterrows()]
    assert record.tag(row, Tag.TRUNCATED_PARAMS) == "data.classes"
    stored = record.config(row, record.RunFiles(tracker, frame))
    assert stored == cfg and stored.config_hash == cfg.config_hash
    assert record.config_by_hash(tracker, cfg.config_hash) == cfg
    # estimate no longer skips the run: its rate is measured from the whole config
    rates, sizes = estimate.rates_from_store(frame, record.RunFiles(tracker, frame))
    assert rates == {estimate.cost_key(cfg): pytest.approx(50.0 / 10000)}
    assert sizes == {"0123456789abcdef": 10000}


def test_a_run_without_config_json_falls_back_to_whole_params(tmp_path: Path) -> None:
    """Runs logged before config.json existed are read from their params, unless a param was cut."""
    tracker = _tracker(tmp_path)
    small = RunConfig(seed=3)
    tracker.start(small.config_hash, small.flat_params(), {}, "old")
    big = RunConfig(data=DataConfig(source="ilsvrc2012", path="/data/ilsvrc", classes=WNIDS))
    tracker.start(big.config_hash, big.flat_params(), {}, "old-and-cut")
    assert record.config_by_hash(tracker, small.config_hash) == small
    with pytest.raises(record.UnknownRun, match="truncated"):
        record.config_by_hash(tracker, big.config_hash)


def test_audit_show_prints_the_stored_config(workdir: Path) -> None:
    cfg = RunConfig(data=DataConfig(source="ilsvrc2012", path="/data/ilsvrc", classes=WNIDS))
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    Tracker(uri, artifact_root=workdir / "artifacts").start_config(cfg, {}, "show-me")
    runner = CliRunner()
    shown = runner.invoke(main, ["show", cfg.config_hash, "--tracking-uri", uri])
    assert shown.exit_code == 0, shown.output
    assert RunConfig.model_validate_json(shown.output) == cfg
    unknown = runner.invoke(main, ["show", "ffffffffffffffff", "--tracking-uri", uri])
    assert unknown.exit_code == 2
    assert unknown.output.strip().splitlines() == [f"error: ffffffffffffffff: no run with this config hash in {uri}"]


def test_audit_schema_accepts_the_claim_files_and_refuses_unknown_keys(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    runner = CliRunner()
    printed = runner.invoke(main, ["schema"])
    assert printed.exit_code == 0, printed.output
    schema = json.loads(printed.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted((REPO / "claims").glob("*.yaml")):
        assert [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))] == [], path.name
    claim = yaml.safe_load((REPO / "claims" / "relu.yaml").read_text())
    claim["variants"]["tanh"]["model"]["activaton"] = "tanh"   # a typo in an override
    claim["measure"][0]["kind"] = "fastest"
    messages = [e.message for e in validator.iter_errors(claim)]
    assert any("activaton" in m for m in messages) and any("fastest" in m for m in messages), messages

    out = tmp_path / "claim.schema.json"
    written = runner.invoke(main, ["schema", "--out", str(out)])
    assert written.exit_code == 0 and json.loads(out.read_text()) == schema
