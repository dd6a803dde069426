"""Per-config-hash run locks: at most one process trains a given RunConfig at a time.

Why a lock file and not MLflow: MLflow has no compare-and-set, so two ``audit run`` processes that
both find "no finished run" would both train. A lock is a file ``<runs>/locks/<config hash>.lock``
created with ``O_CREAT | O_EXCL`` (atomic on local and NFSv3+ file systems) holding the owner's
host, pid and a random token; the owner touches it every ``HEARTBEAT`` seconds.

A lock is stale — and may be taken over — when its owner is on this host and its pid is dead
(a SIGKILLed run frees its config at once), or when its heartbeat is older than ``stale_after``
(an owner on another host that died). Taking over and releasing happen under an ``flock`` on
``locks/.guard`` so two processes can never both break the same stale lock. Concurrent ``audit run``
processes must share one ``--runs-dir`` (on a shared file system across machines), which is also
where checkpoints live.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HEARTBEAT = 30.0
STALE_AFTER = 600.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def _guard(folder: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # no POSIX locks: O_EXCL alone still prevents double ownership
        yield
        return
    with open(folder / ".guard", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return None


def describe(owner: dict | None) -> str:
    if not owner:
        return "another process"
    return f"pid {owner.get('pid')} on {owner.get('host')}"


@dataclass
class RunLock:
    """A held lock; :meth:`release` it (or use it as a context manager) when the run is over."""

    path: Path
    token: str
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _beat: threading.Thread | None = field(default=None, repr=False)

    @classmethod
    def try_acquire(cls, folder: Path, config_hash: str,
                    stale_after: float = STALE_AFTER) -> tuple[RunLock | None, dict | None]:
        """(the lock, None) when taken; (None, its owner) when another live process holds it."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{config_hash}.lock"
        token = uuid.uuid4().hex
        body = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "token": token,
                           "since": time.time()})
        with _guard(folder):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = _read(path)
                if not _stale(path, owner, stale_after):
                    return None, owner
                tmp = folder / f".{config_hash}.{token}"
                tmp.write_text(body)
                os.replace(tmp, path)  # take over the stale lock
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(body)
        lock = cls(path, token)
        lock._beat = threading.Thread(target=lock._heartbeat, name=f"lock-{config_hash}", daemon=True)
        lock._beat.start()
        return lock, None

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        """Remove the lock file if it is still ours (a takeover after a long stall leaves theirs alone)."""
        self._stop.set()
        with _guard(self.path.parent):
            owner = _read(self.path)
            if owner and owner.get("token") == self.token:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _stale(path: Path, owner: dict | None, stale_after: float) -> bool:
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    if owner is None or "pid" not in owner:
        return age > 5.0  # being written right now, or garbage left by a crash
    if owner.get("host") == socket.gethostname() and not _pid_alive(int(owner["pid"])):
        return True
    return age > stale_after
