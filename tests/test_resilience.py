"""Resilience: run locks, resume bit for bit, SIGKILL mid-run, an audit continued elsewhere, two runs at once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from audit.config import DataConfig, ModelConfig, RunConfig, SyntheticConfig, TrainConfig
from audit.lock import RunLock
from audit.track import Tracker
from audit.train import checkpoint, train

from .conftest import REPO

METRICS = ["train_loss", "train_top1_error", "val_loss", "val_top1_error", "val_top5_error", "lr"]


# ---------------------------------------------------------------------- helpers (also used by other test files)
def write_claim(folder: Path, name: str = "tiny", variants: dict[str, Any] | None = None, epochs: int = 3,
                seeds: int = 1, train: dict[str, Any] | None = None, model: dict[str, Any] | None = None) -> Path:
    """A tiny claim file (two variants by default) on 10-class 32-px synthetic data."""
    variants = variants or {"relu": {}, "tanh": {"model": {"activation": "tanh"}}}
    first, second = list(variants)[:2]
    doc = {
        "id": name, "title": "A tiny claim for the resilience tests",
        "paper": {"section": "3.1", "quote": "Only a test."},
        "variants": variants,
        "measure": [{"id": "err", "kind": "final", "metric": "val_top1_error", "treatment": second,
                     "baseline": first, "scale": "difference", "expect": "increase", "paper": 1.0,
                     "smallest_effect": 0.5}],
        "profiles": {"smoke": {
            "description": "tiny", "scientific": False, "seeds": seeds,
            "model": {"width": 0.125, "input_size": 32, "fc_width": 32, "dropout": 0.0, "init": "torch",
                      **(model or {})},
            "data": {"source": "synthetic", "normalise": "unit",
                     "synthetic": {"classes": 10, "train_per_class": 16, "val_per_class": 4, "size": 32}},
            "train": {"epochs": epochs, "batch_size": 16, "lr": 0.05, "schedule": "constant", **(train or {})}}},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def audit_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "audit.cli", *args]


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def runs_by_hash(tracker: Tracker) -> dict[str, list[Any]]:
    frame = tracker.runs_frame()
    out: dict[str, list[Any]] = {}
    for _, row in frame.iterrows():
        out.setdefault(row["tags.audit.config_hash"], []).append(row)
    return out


def histories(tracker: Tracker) -> dict[str, Any]:
    """config hash → its run's per-epoch metrics (epoch_seconds left out: wall time differs)."""
    return {h: tracker.history(rows[0]["run_id"], METRICS).to_dict("list") for h, rows in runs_by_hash(tracker).items()}


def kill_at_first_checkpoint(args: list[str], workdir: Path) -> str:
    """Start ``audit <args>`` in ``workdir``, SIGKILL it once a checkpoint exists; the interrupted config hash."""
    proc = subprocess.Popen(audit_cmd(*args), cwd=workdir, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline, infos = time.time() + 240, []
    while time.time() < deadline and proc.poll() is None and not infos:
        infos = list((workdir / "runs" / "checkpoints").glob("*/last.json"))
        time.sleep(0.02)
    assert infos, f"no checkpoint appeared:\n{proc.communicate()[0] if proc.poll() is not None else ''}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return infos[0].parent.name


@pytest.fixture
def keep_threads() -> Any:
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------------- locks
def test_lock_is_exclusive_and_a_dead_owner_frees_it(tmp_path: Path) -> None:
    lock, owner = RunLock.try_acquire(tmp_path, "abc")
    assert lock is not None and owner is None
    again, owner = RunLock.try_acquire(tmp_path, "abc")
    assert again is None and owner["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / "abc.lock").exists()

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "abc.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout),
                                                   "token": "old"}))
    taken, _ = RunLock.try_acquire(tmp_path, "abc")
    assert taken is not None, "a lock whose owner is dead must be taken over"
    assert json.loads((tmp_path / "abc.lock").read_text())["pid"] == os.getpid()
    taken.release()

    (tmp_path / "abc.lock").write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "t"}))
    assert RunLock.try_acquire(tmp_path, "abc")[0] is None, "a fresh lock of another host is live"
    old = time.time() - 3600
    os.utime(tmp_path / "abc.lock", (old, old))
    late, _ = RunLock.try_acquire(tmp_path, "abc")
    assert late is not None, "a lock whose heartbeat stopped long ago is stale"
    late.release()


# ---------------------------------------------------------------------- resume in process
class Recorder:
    """A RunLogger that keeps metrics and, like the MLflow logger, skips epochs it already has."""

    def __init__(self, logged_until: int = 0, crash_at: int | None = None) -> None:
        self.epochs: list[tuple[int, dict[str, float]]] = []
        self.logged_until, self.crash_at = logged_until, crash_at

    def dataset(self, info: dict[str, str], manifest: Path | None) -> None:
        pass

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        if epoch == self.crash_at:
            raise KeyboardInterrupt("killed")
        if epoch > self.logged_until:
            self.epochs.append((epoch, {k: v for k, v in metrics.items() if k != "epoch_seconds"}))
            self.logged_until = epoch

    def artifact(self, path: Path, folder: str = "weights") -> None:
        pass


def test_resume_continues_bit_for_bit(workdir: Path) -> None:
    """Dropout, augmentation, data order and a plateau schedule all continue exactly after a crash."""
    cfg = RunConfig(
        model=ModelConfig(width=0.125, input_size=28, fc_width=32, dropout=0.5, init="torch"),
        data=DataConfig(synthetic=SyntheticConfig(classes=10, train_per_class=12, val_per_class=4, size=32),
                        normalise="unit", pca_noise=0.1, crop=28, resize=32),
        train=TrainConfig(epochs=4, batch_size=16, lr=0.05, schedule="plateau", plateau_patience=0,
                          holdout_per_class=2))
    ref = Recorder()
    assert train(cfg, ref, workdir / "a").status == "finished"

    crashed = Recorder(crash_at=2)  # dies while reporting epoch 2: its checkpoint is on disk, MLflow lacks it
    with pytest.raises(KeyboardInterrupt):
        train(cfg, crashed, workdir / "b", run_id="r1")
    folder = workdir / "b" / "checkpoints" / cfg.config_hash
    assert checkpoint.peek(folder) == {"run_id": "r1", "epoch": 2, "status": "finished"}

    resumed = Recorder(logged_until=1)
    result = train(cfg, resumed, workdir / "b", run_id="r1", resume=True)
    assert result.status == "finished" and result.epochs == 4
    assert [e for e, _ in crashed.epochs + resumed.epochs] == [1, 2, 3, 4]
    assert crashed.epochs + resumed.epochs == ref.epochs
    a, b = (torch.load(w / "checkpoints" / cfg.config_hash / "final.pt") for w in (workdir / "a", workdir / "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_after_the_plateau_dropped_the_rate(workdir: Path) -> None:
    """A crash after a plateau drop: the resumed run keeps the dropped rate and the scheduler's count of
    epochs without improvement (torch's state_dict in the checkpoint), and ends as if never stopped."""
    cfg = RunConfig(
        model=ModelConfig(width=0.125, input_size=28, fc_width=32, dropout=0.5, init="torch"),
        data=DataConfig(synthetic=SyntheticConfig(classes=10, train_per_class=12, val_per_class=4, size=32),
                        normalise="unit", crop=28, resize=32),
        train=TrainConfig(epochs=5, batch_size=16, lr=0.05, schedule="plateau", plateau_patience=1,
                          holdout_per_class=2))
    ref = Recorder()
    train(cfg, ref, workdir / "a")
    rates = [m["lr"] for _, m in ref.epochs]
    assert rates[3] < rates[0], f"no drop before epoch 4, nothing to test: {rates}"

    crashed = Recorder(crash_at=3)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, crashed, workdir / "b", run_id="r1")
    folder = workdir / "b" / "checkpoints" / cfg.config_hash
    assert checkpoint.Checkpoint.load(folder).optimizer["groups"][0]["lr"] == rates[3], "the checkpoint holds the drop"
    resumed = Recorder(logged_until=2)
    assert train(cfg, resumed, workdir / "b", run_id="r1", resume=True).epochs == 5
    assert crashed.epochs + resumed.epochs == ref.epochs
    a, b = (checkpoint.Checkpoint.load(w / "checkpoints" / cfg.config_hash) for w in (workdir / "a", workdir / "b"))
    assert a.schedule == b.schedule, "the scheduler continues where it stopped"
    assert all(torch.equal(a.model[k], b.model[k]) for k in a.model)


# ---------------------------------------------------------------------- SIGKILL and rerun
@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_resumes_the_same_mlflow_run(workdir: Path, keep_threads: None) -> None:
    from click.testing import CliRunner

    from audit.cli import main

    claim = write_claim(workdir, epochs=5)
    args = ["run", str(claim), "--cpus-per-run", "1"]  # one thread everywhere: the same float sums
    killed_hash = kill_at_first_checkpoint(args, workdir)
    tracker = Tracker()
    assert tracker.find(killed_hash).status == "running", "the kill must interrupt the run"

    rerun = CliRunner().invoke(main, args)
    assert rerun.exit_code == 0, rerun.output
    assert "resumed at epoch" in rerun.output
    by_hash = runs_by_hash(Tracker())
    assert all(len(rows) == 1 for rows in by_hash.values()), "one MLflow run per config"
    assert {rows[0]["tags.audit.status"] for rows in by_hash.values()} == {"finished"}
    assert by_hash[killed_hash][0]["tags.audit.resumes"] == "1"
    got = histories(Tracker())
    for hist in got.values():
        assert hist["step"] == [1, 2, 3, 4, 5], "contiguous steps, none twice"
    assert not list((workdir / "runs" / "locks").glob("*.lock"))

    (workdir / "ref").mkdir()
    os.chdir(workdir / "ref")
    ref = CliRunner().invoke(main, args)
    assert ref.exit_code == 0, ref.output
    assert histories(Tracker()) == got, "a killed and resumed run ends exactly like an uninterrupted one"


def test_an_audit_continues_on_a_fresh_machine_from_its_bundle(workdir: Path) -> None:
    """Killed mid-run, exported, imported where no checkpoint is: the interrupted run is marked abandoned
    and trained again, finished runs are reused, and the next export holds both, honestly labelled."""
    from click.testing import CliRunner

    from audit.cli import main

    (workdir / "claims").mkdir()
    claim = write_claim(workdir / "claims", epochs=6)
    args = ["run", str(claim), "--cpus-per-run", "1"]
    killed = kill_at_first_checkpoint(args, workdir)
    assert Tracker().find(killed).status == "running", "the kill must interrupt the run"
    runner = CliRunner()
    exported = runner.invoke(main, ["export", "--claims", str(workdir / "claims"), "--out", str(workdir / "bundle")])
    assert exported.exit_code == 0, exported.output

    fresh = workdir / "fresh"   # another machine: the bundle, and nothing of runs/
    fresh.mkdir()
    os.chdir(fresh)
    imported = runner.invoke(main, ["import", str(workdir / "bundle")])
    assert imported.exit_code == 0, imported.output
    rerun = runner.invoke(main, args)
    assert rerun.exit_code == 0, rerun.output
    by_hash = runs_by_hash(Tracker())
    statuses = sorted(r["tags.audit.status"] for r in by_hash[killed])
    assert statuses == ["failed", "finished"], statuses
    abandoned = next(r for r in by_hash[killed] if r["tags.audit.status"] == "failed")
    assert abandoned["tags.audit.error"].startswith("abandoned: interrupted with no checkpoint")
    assert all([r["tags.audit.status"] for r in rows] == ["finished"] for h, rows in by_hash.items() if h != killed)
    again = runner.invoke(main, ["export", "--claims", str(workdir / "claims"), "--out", str(workdir / "bundle2")])
    assert again.exit_code == 0, again.output
    metas = [json.loads(p.read_text()) for p in (workdir / "bundle2").glob("*/run.json")]
    assert sorted(m["status"] for m in metas if m["config_hash"] == killed) == ["failed", "finished"]


# ---------------------------------------------------------------------- two processes on one plan
@pytest.mark.slow
def test_two_audit_runs_at_once_train_every_config_exactly_once(workdir: Path) -> None:
    claim = write_claim(workdir, seeds=2, epochs=2)  # 4 configs; the store does not exist yet
    procs = [subprocess.Popen(audit_cmd("run", str(claim), "--cpus-per-run", "1"), cwd=workdir, env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    by_hash = runs_by_hash(Tracker())
    assert len(by_hash) == 4
    assert all(len(rows) == 1 and rows[0]["tags.audit.status"] == "finished" for rows in by_hash.values()), outputs
    trained = [line.split()[1] for out in outputs for line in out.splitlines() if line.strip().startswith("finished")]
    reused = [line.split()[1] for out in outputs for line in out.splitlines() if line.strip().startswith("reused")]
    assert sorted(trained) == sorted(by_hash), outputs   # each config trained by exactly one process
    assert sorted(reused) == sorted(by_hash), outputs    # and reused by the other
