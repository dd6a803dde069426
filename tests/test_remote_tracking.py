"""A shared `mlflow server` (SQLite backend, artifacts served over HTTP): run, kill, resume, plan, report."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.track import Tracker

from .test_resilience import audit_cmd, env, histories, kill_at_first_checkpoint, runs_by_hash, write_claim


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(store: Path, port: int) -> subprocess.Popen:
    """A real `mlflow server` on loopback over ``store`` (SQLite and artifacts), once it answers /health."""
    store.mkdir(exist_ok=True)
    cmd = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--serve-artifacts",
           "--artifacts-destination", (store / "artifacts").as_uri(), "--workers", "1"]
    with open(store / "server.log", "a") as log:
        proc = subprocess.Popen(cmd, cwd=store, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        assert proc.poll() is None and time.time() < deadline, (store / "server.log").read_text()
        time.sleep(0.5)


def stop_server(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """The server and its workers: the process group we started."""
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(URI, artifact folder) of a real server on loopback; stopped by its process group at the end."""
    port, store = _free_port(), tmp_path / "server"
    proc = start_server(store, port)
    try:
        yield f"http://127.0.0.1:{port}", store / "artifacts"
    finally:
        stop_server(proc)


@pytest.mark.slow
def test_run_kill_resume_plan_and_report_against_an_mlflow_server(workdir: Path,
                                                                  mlflow_server: tuple[str, Path]) -> None:
    uri, artifacts = mlflow_server
    claim = write_claim(workdir, epochs=4)
    args = ["run", str(claim), "--tracking-uri", uri, "--cpus-per-run", "1"]
    kill_at_first_checkpoint(args, workdir)

    rerun = CliRunner().invoke(main, args)
    assert rerun.exit_code == 0, rerun.output
    assert "resumed at epoch" in rerun.output and "2 finished" in rerun.output
    tracker = Tracker(uri)
    by_hash = runs_by_hash(tracker)
    assert len(by_hash) == 2 and all(len(rows) == 1 for rows in by_hash.values())
    assert all(h["step"] == [1, 2, 3, 4] for h in histories(tracker).values())
    assert list(artifacts.rglob("conv1_final.npy")), "artifacts go to the server (over HTTP)"

    plan = CliRunner().invoke(main, ["plan", str(claim), "--tracking-uri", uri])
    assert plan.exit_code == 0, plan.output
    rows = [line for line in plan.output.splitlines() if any(h in line for h in by_hash)]
    assert len(rows) == 2 and all("finished" in row for row in rows), plan.output

    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and "2 reused" in again.output, again.output

    report = CliRunner().invoke(main, ["report", "--claims", str(claim), "--tracking-uri", uri,
                                       "--out", str(workdir / "report.html")])
    assert report.exit_code == 0, report.output
    html = (workdir / "report.html").read_text()
    assert "tiny" in html and uri in html


@pytest.mark.slow
def test_a_server_that_goes_away_fails_the_run_cleanly_and_it_resumes(workdir: Path, tmp_path: Path) -> None:
    """The server dies after the first epoch's checkpoint: `audit run` ends with one line naming the
    server (exit 2, no traceback); once the server is back, the same command resumes from the checkpoint."""
    port, store = _free_port(), tmp_path / "server"
    uri = f"http://127.0.0.1:{port}"
    server = start_server(store, port)
    claim = write_claim(workdir, epochs=4)
    args = ["run", str(claim), "--tracking-uri", uri, "--cpus-per-run", "1"]
    quick = {**env(), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    proc = subprocess.Popen(audit_cmd(*args), cwd=workdir, env=quick, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline, infos = time.time() + 240, []
        while time.time() < deadline and proc.poll() is None and not infos:
            infos = list((workdir / "runs" / "checkpoints").glob("*/last.json"))
            time.sleep(0.02)
        assert infos, "no checkpoint appeared"
        stop_server(server, signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, out[-3000:] + err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert err.strip().splitlines()[-1].startswith(f"error: {uri}: the tracking server does not answer"), err[-3000:]

    server = start_server(store, port)
    try:
        rerun = subprocess.run(audit_cmd(*args), cwd=workdir, env=quick, capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
        tracker = Tracker(uri, artifact_root=workdir / "runs" / "artifacts")
        statuses = [row["tags.audit.status"] for rows in runs_by_hash(tracker).values() for row in rows]
        assert "finished" in statuses
        resumes = [str(row.get("tags.audit.resumes")) for rows in runs_by_hash(tracker).values() for row in rows]
        assert any(r.isdigit() and int(r) >= 1 for r in resumes), "the run started again instead of resuming"
    finally:
        stop_server(server)
