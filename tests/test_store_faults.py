"""An unusable run store is one clear line and exit status 2, never a traceback (a real SQLite file)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from .conftest import REPO
from .runlog import errors, log_run, store


def audit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "audit.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def report(db: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return audit("report", "--claims", str(REPO / "claims"), "--tracking-uri", f"sqlite:///{db}",
                 "--out", str(tmp_path / "r.html"), cwd=tmp_path)


def filled(tmp_path: Path) -> Path:
    """A real store with a few runs in it."""
    tracker = store(tmp_path)
    for seed in range(3):
        log_run(tracker, "lrn", "with_lrn", seed, errors(50, 40))
    return tmp_path / "mlflow.db"


def one_line_error(done: subprocess.CompletedProcess[str], db: Path, reason: str) -> None:
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == f"error: {db}: {reason}"


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"these are not the runs you are looking for\n" * 500)
    done = audit("plan", str(REPO / "claims/relu.yaml"), "--tracking-uri", f"sqlite:///{db}", cwd=tmp_path)
    one_line_error(done, db, "not an SQLite database (damaged, or another kind of file): move it aside, and the "
                   "next run starts a new store")


def test_a_damaged_store(tmp_path: Path) -> None:
    db = filled(tmp_path)
    data = bytearray(db.read_bytes())
    page = 4096
    for start in range(2 * page, len(data), page):   # keep the header, scribble over every later page's header
        data[start:start + 16] = b"\xff" * 16
    db.write_bytes(bytes(data))
    done = report(db, tmp_path)
    one_line_error(done, db, "damaged (database disk image is malformed): restore it from a copy, or move it "
                   "aside to start a new store")


def test_a_store_locked_by_another_process(tmp_path: Path) -> None:
    db = filled(tmp_path)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")                  # another process writing, as far as SQLite can tell
    try:
        done = report(db, tmp_path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    one_line_error(done, db, "locked by another process (another `audit run`, or `mlflow ui` writing): wait for "
                   "it to finish, or stop it")
