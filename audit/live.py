"""The live view of ``audit run`` on a terminal: runs done of the total with the time left, and each
active run's epoch, loss and errors as they happen.

It is fed the executor's run events (start, end) in this process and the training loop's epoch
events from any process (``audit.events``: directly with ``--jobs 1``, through a queue from worker
processes). Where stdout is not a terminal, or under CI, ``audit run`` prints plain lines instead.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from audit import events
from audit.events import EpochEvent
from audit.progress import Progress


def wanted(console: Console) -> bool:
    """A live view on an interactive terminal; plain lines for pipes, files and CI logs."""
    return console.is_terminal and not os.environ.get("CI")


class LiveView:
    """What the terminal shows while runs train; rich redraws it from ``__rich__`` a few times a second."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self._lock = threading.Lock()
        self._active: dict[str, tuple[str, float, EpochEvent | None]] = {}   # label → (config hash, since, epoch)

    def started(self, run: Any) -> None:
        with self._lock:
            self._active[run.label] = (run.config_hash, time.perf_counter(), None)

    def ended(self, run: Any) -> None:
        with self._lock:
            self._active.pop(run.label, None)

    def epoch(self, event: EpochEvent) -> None:
        """The events sink: a run's latest epoch (from this process or a worker's queue)."""
        with self._lock:
            config_hash, since, _ = self._active.get(event.label, ("", time.perf_counter(), None))
            self._active[event.label] = (config_hash, since, event)

    def __rich__(self) -> Group:
        with self._lock:
            active = dict(self._active)
        fractions = {h: e.epoch / e.epochs for h, _, e in active.values() if e is not None and e.epochs and h}
        table = Table("run", "epoch", "loss", "train err", "val err", "s/epoch", "running", box=None,
                      header_style="bold", pad_edge=False)
        now = time.perf_counter()
        for label, (_, since, e) in active.items():
            m = e.metrics if e is not None else {}
            table.add_row(label, f"{e.epoch}/{e.epochs}" if e else "starting", _num(m.get("train_loss"), "{:.3f}"),
                          _num(m.get("train_top1_error"), "{:.1f}%"), _num(m.get("val_top1_error"), "{:.1f}%"),
                          _num(m.get("epoch_seconds"), "{:.1f}"), f"{now - since:.0f}s")
        head = Text(f"[{self.progress.summary(fractions)}]", style="bold")
        return Group(head, table) if active else Group(head)

    @contextlib.contextmanager
    def showing(self, console: Console) -> Iterator[None]:
        """Draw the view until the block ends; epoch events of this process (and its workers) come here."""
        previous = events.set_sink(self.epoch)
        try:
            with Live(self, console=console, refresh_per_second=4, transient=True, redirect_stdout=True):
                yield
        finally:
            events.set_sink(previous)


def _num(value: float | None, form: str) -> str:
    return "—" if value is None else form.format(value)
