"""Epoch events: how "run X finished epoch k" travels from the training loop to the terminal.

The loop's logger (``audit.executors.local.MlflowRunLogger``) calls ``report_epoch`` after each new
epoch, in whichever process trains the run. By default that prints one plain line, as a CI log wants.
A process showing a live view (``audit.live``) installs itself as the *sink* instead. Worker
processes (``--jobs N``) cannot reach the parent's view directly: when the parent has a sink, the
pool gives every worker a queue (``Relay``), the worker's sink puts each event on it, and a thread in
the parent hands them to the view. Without a sink anywhere (not a terminal, CI, Ray tasks, DDP ranks)
every process prints its plain lines to the shared stdout, as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SHOWN = ("train_loss", "train_top1_error", "val_top1_error", "epoch_seconds")


@dataclass(frozen=True)
class EpochEvent:
    """One finished epoch of one run (small and picklable: it crosses process boundaries)."""

    label: str
    epoch: int
    epochs: int
    metrics: dict[str, float]


Sink = Callable[[EpochEvent], None]
_sink: Sink | None = None


def progress_line(label: str, epoch: int, epochs: int, metrics: dict[str, float]) -> str:
    """One epoch of one run, in one plain line."""
    parts = [f"    epoch {epoch}/{epochs}  {label}"]
    for key, name, unit in (("train_loss", "loss", ""), ("train_top1_error", "train", "%"),
                            ("val_top1_error", "val", "%"), ("epoch_seconds", "", "s")):
        value = metrics.get(key)
        if value is not None:
            parts.append(f"{name} {value:.3f}" if not unit else f"{name} {value:.1f}{unit}".strip())
    return "  ".join(parts)


def report_epoch(label: str, epoch: int, epochs: int, metrics: dict[str, float]) -> None:
    """Hand one epoch to this process's sink, or print its plain line when there is none."""
    if _sink is None:
        print(progress_line(label, epoch, epochs, metrics), flush=True)
        return
    _sink(EpochEvent(label, epoch, epochs, {k: float(metrics[k]) for k in SHOWN if k in metrics}))


def set_sink(sink: Sink | None) -> Sink | None:
    """Send this process's epoch events to ``sink`` (None: plain lines again); returns the previous one."""
    global _sink
    previous, _sink = _sink, sink
    return previous


def has_sink() -> bool:
    return _sink is not None


def send_to(queue: Any) -> None:
    """In a worker process: send epoch events to the parent through ``queue`` (a Relay's)."""
    set_sink(queue.put)


class Relay:
    """A queue that worker processes put epoch events on, drained into this process's sink by a thread."""

    def __init__(self, ctx: Any) -> None:
        self.queue = ctx.Queue()
        self._thread = threading.Thread(target=self._pump, name="epoch-events", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while (event := self.queue.get()) is not None:
            if _sink is not None:
                _sink(event)
            else:
                print(progress_line(event.label, event.epoch, event.epochs, event.metrics), flush=True)

    def close(self) -> None:
        """Deliver what the workers sent, then stop the thread."""
        self.queue.put(None)
        self._thread.join(timeout=10)
