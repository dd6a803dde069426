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

from .test_resilience import audit_cmd, env, histories, runs_by_hash, write_claim


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(URI, artifact folder) of a real server on loopback; stopped by its process group at the end."""
    port, store = _free_port(), tmp_path / "server"
    store.mkdir()
    cmd = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--serve-artifacts",
           "--artifacts-destination", (store / "artifacts").as_uri(), "--workers", "1"]
    log = open(store / "server.log", "w")
    proc = subprocess.Popen(cmd, cwd=store, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None and time.time() < deadline, (store / "server.log").read_text()
            time.sleep(0.5)
        yield uri, store / "artifacts"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers: the group we started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.mark.slow
def test_run_kill_resume_plan_and_report_against_an_mlflow_server(workdir: Path,
                                                                  mlflow_server: tuple[str, Path]) -> None:
    uri, artifacts = mlflow_server
    claim = write_claim(workdir, epochs=4)
    args = ["run", str(claim), "--tracking-uri", uri, "--cpus-per-run", "1"]
    proc = subprocess.Popen(audit_cmd(*args), cwd=workdir, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline, infos = time.time() + 240, []
    while time.time() < deadline and proc.poll() is None and not infos:
        infos = list((workdir / "runs" / "checkpoints").glob("*/last.json"))
        time.sleep(0.02)
    assert infos, proc.communicate()[0] if proc.poll() is not None else "no checkpoint appeared"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

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
