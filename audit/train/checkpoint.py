"""Per-epoch checkpoints under ``<runs>/checkpoints/<config hash>/``: resume where a run stopped.

A checkpoint holds everything the next epoch depends on — model and optimiser (momentum) state,
the schedule's state (the torch scheduler's ``state_dict``: for a plateau the best held-out error
and the epochs without improvement), the RNG states
(torch's global RNG, which drives dropout, and the data ``torch.Generator``, which drives the data
order and augmentation; the loop draws from nothing else), the epochs done with their metrics, and
the MLflow run id — so a resumed run on the CPU continues bit for bit as if never stopped.

``Checkpoint`` is that state, typed. It is written atomically (a temporary file, fsync,
``os.replace``): a kill at any moment leaves the previous checkpoint or the new one, never half of
one. ``last.json`` beside it says, cheaply, which run and epoch it belongs to. Weights and optimiser
buffers are stored in the canonical (grouped, single-device) layout, whatever the placement or data
parallelism that produced them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

LAST, INFO = "last.pt", "last.json"


def unwrap(model: nn.Module) -> nn.Module:
    """The model under a DistributedDataParallel wrapper."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def to_canonical(model: nn.Module, named: dict[str, Tensor]) -> dict[str, Tensor]:
    inner = unwrap(model)
    if hasattr(inner, "to_canonical"):
        return inner.to_canonical(named)
    return {k: v.detach().cpu() for k, v in named.items()}


def from_canonical(model: nn.Module, named: dict[str, Tensor]) -> dict[str, Tensor]:
    inner = unwrap(model)
    return inner.from_canonical(named) if hasattr(inner, "from_canonical") else named


def model_state(model: nn.Module) -> dict[str, Tensor]:
    """The weights in the grouped single-device layout, on the CPU (what final.pt holds)."""
    return to_canonical(model, unwrap(model).state_dict())


def load_model_state(model: nn.Module, state: dict[str, Tensor]) -> None:
    unwrap(model).load_state_dict(from_canonical(model, state))


def optimizer_state(model: nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any]:
    """Momentum buffers by (canonical) parameter name, and the groups' hyper-parameters."""
    names = [n for n, _ in unwrap(model).named_parameters()]
    sd = opt.state_dict()
    buffers = {names[i]: s["momentum_buffer"] for i, s in sd["state"].items()
               if s.get("momentum_buffer") is not None}
    groups = [{k: v for k, v in g.items() if k != "params"} for g in sd["param_groups"]]
    return {"momentum": to_canonical(model, buffers), "groups": groups}


def load_optimizer_state(model: nn.Module, opt: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    names = [n for n, _ in unwrap(model).named_parameters()]
    buffers = from_canonical(model, saved["momentum"])
    current = opt.state_dict()["param_groups"]
    opt.load_state_dict({
        "state": {i: {"momentum_buffer": buffers[n]} for i, n in enumerate(names) if n in buffers},
        "param_groups": [{**g, "params": c["params"]} for g, c in zip(saved["groups"], current)],
    })


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def load_rng_state(generator: torch.Generator, state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _atomic(path: Path, write: Any) -> None:
    """Write a temporary file and rename it over ``path``: a failed write (a full disk) leaves the old
    file as it was, and the partial one is removed so that it does not hold the space."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass
class Checkpoint:
    """The state at the end of an epoch: what ``train`` needs to continue as if it had never stopped."""

    run_id: str                                   # the MLflow run it belongs to
    config_hash: str
    epoch: int                                    # epochs done
    status: str                                   # finished / diverged so far
    stop: bool                                    # the run has ended early (diverged, or reached its threshold)
    history: list[tuple[int, dict[str, float]]]   # (epoch, metrics) of every epoch done
    schedule: dict[str, Any]                      # the learning-rate schedule's state_dict
    rng: list[dict[str, Any]]                     # per rank: ``rng_state``
    model: dict[str, Tensor]                      # canonical layout (``model_state``)
    optimizer: dict[str, Any]                     # canonical layout (``optimizer_state``)

    def save(self, folder: Path) -> Path:
        """Write ``last.pt`` (then ``last.json``) atomically; returns the ``last.pt`` path."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / LAST
        payload = {f.name: getattr(self, f.name) for f in fields(self)}  # plain types: loads with weights_only
        _atomic(path, lambda fh: torch.save(payload, fh))
        info = {"run_id": self.run_id, "epoch": self.epoch, "status": self.status}
        _atomic(folder / INFO, lambda fh: fh.write(json.dumps(info).encode()))
        return path

    @classmethod
    def load(cls, folder: Path) -> Checkpoint:
        payload = torch.load(folder / LAST, map_location="cpu", weights_only=True)
        payload["history"] = [(int(e), m) for e, m in payload["history"]]
        return cls(**payload)


def peek(folder: Path) -> dict[str, Any] | None:
    """{run_id, epoch, status} of the checkpoint in ``folder``, without loading it; None if none."""
    if not (folder / LAST).exists():
        return None
    try:
        return json.loads((folder / INFO).read_text())
    except (OSError, ValueError):
        return None


def discard(folder: Path) -> None:
    """Drop the resume state of a run that is over (final.pt and the artifacts stay)."""
    for name in (LAST, INFO):
        (folder / name).unlink(missing_ok=True)
