"""Executors: --jobs worker processes (failures, divergence, init_from dependencies) and a real Ray cluster."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.track import Tracker

from .test_resilience import audit_cmd, env, histories, runs_by_hash, write_claim


@pytest.fixture
def keep_threads() -> Iterator[None]:
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.mark.slow
def test_jobs_run_in_workers_and_failures_stay_with_their_run(workdir: Path) -> None:
    """--jobs 2: a diverging run is tagged diverged, a broken one failed (with its error), the rest
    finish, and a variant started from another's weights waits for it."""
    claim = write_claim(workdir, epochs=2, variants={
        "relu": {}, "tanh": {"model": {"activation": "tanh"}},
        "diverge": {"train": {"lr": 1.0e6}},
        "broken": {"model": {"num_classes": 3}},        # the data have 10 classes: raises inside training
        "finetune": {"init_from": "relu", "train": {"lr": 0.01}},
    })
    result = CliRunner().invoke(main, ["run", str(claim), "--jobs", "2", "--cpus-per-run", "1"])
    assert result.exit_code == 1, result.output  # a failed run is reported, and the audit still ends
    assert "1 finished" not in result.output and "3 finished, 1 diverged, 1 failed" in result.output, result.output
    rows = {r["tags.audit.variant"]: r for rs in runs_by_hash(Tracker()).values() for r in rs}
    assert {v: r["tags.audit.status"] for v, r in rows.items()} == {
        "relu": "finished", "tanh": "finished", "diverge": "diverged", "broken": "failed", "finetune": "finished"}
    assert "num_classes" in rows["broken"]["tags.audit.error"]
    assert rows["finetune"]["start_time"] >= rows["relu"]["end_time"], "init_from waits for its parent"


def test_ray_missing_is_a_user_error(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the [ray] extra were not installed
    result = CliRunner().invoke(main, ["run", str(write_claim(workdir)), "--executor", "ray"])
    assert result.exit_code == 2, result.output
    assert 'pip install "alexnet-audit[ray]"' in result.output


@pytest.fixture
def ray_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A local Ray cluster on loopback, with its own HOME (Ray >= 2.59 writes ~/.ray/auth_token) and temp dir."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # advertise and bind 127.0.0.1 only
    ray = pytest.importorskip("ray")
    from ray._private import ray_constants

    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False, raising=False)  # read at import time
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Unix socket paths are limited to 107 bytes
    ctx = ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(temp), logging_level="warning",
                   log_to_driver=False)
    try:
        yield ctx.address_info["gcs_address"]
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_ray_executor_runs_a_plan_with_the_same_tags_as_local(workdir: Path, ray_cluster: str,
                                                              keep_threads: None) -> None:
    assert ray_cluster.startswith("127.0.0.1:")
    claim = write_claim(workdir, epochs=2)
    proc = subprocess.run(audit_cmd("run", str(claim), "--executor", "ray", "--address", ray_cluster,
                                    "--cpus-per-run", "1"),
                          cwd=workdir, env=env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 finished" in proc.stdout, proc.stdout + proc.stderr
    on_ray = runs_by_hash(Tracker())
    ray_hist = histories(Tracker())

    (workdir / "local").mkdir()
    local = CliRunner().invoke(main, ["run", str(claim), "--runs-dir", "local/runs", "--tracking-uri",
                                      f"sqlite:///{workdir / 'local' / 'mlflow.db'}", "--cpus-per-run", "1"])
    assert local.exit_code == 0, local.output
    tracker = Tracker(f"sqlite:///{workdir / 'local' / 'mlflow.db'}")
    here = runs_by_hash(tracker)
    assert set(on_ray) == set(here) and len(on_ray) == 2
    for config_hash, rows in on_ray.items():
        assert len(rows) == 1
        tags = {k: v for k, v in rows[0].items() if k.startswith("tags.audit.") and isinstance(v, str)}
        local_tags = {k: v for k, v in here[config_hash][0].items()
                      if k.startswith("tags.audit.") and isinstance(v, str)}
        assert tags == local_tags, {k: (tags.get(k), local_tags.get(k)) for k in set(tags) ^ set(local_tags)
                                    | {k for k in tags if tags[k] != local_tags.get(k)}}
        assert tags["tags.audit.status"] == "finished"
    local_hist = histories(tracker)
    assert ray_hist == local_hist, f"one thread per run: Ray computes what local runs do\n{ray_hist}\n{local_hist}"
