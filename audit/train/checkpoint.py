"""Per-epoch checkpoints under ``<runs>/checkpoints/<config hash>/``: resume where a run stopped.

A checkpoint holds everything the next epoch depends on — model and optimiser (momentum) state,
the schedule's state (the torch scheduler's ``state_dict``: for a plateau the best held-out error
and the epochs without improvement), the RNG states
(torch's global RNG, which drives dropout, and the data ``torch.Generator``, which drives the data
order and augmentation; the loop draws from nothing else), the epochs done with their metrics, and
the MLflow run id — so a resumed run on the CPU continues bit for bit as if never stopped.

Written atomically (a temporary file, fsync, ``os.replace``): a kill at any moment leaves the
previous checkpoint or the new one, never half of one. ``last.json`` beside it says, cheaply, which
run and epoch it belongs to. Weights and optimiser buffers are stored in the canonical (grouped,
single-device) layout, whatever the placement or data parallelism that produced them.
"""

from __future__ import annotations

import json
import os
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
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save(folder: Path, payload: dict[str, Any]) -> Path:
    """Write ``last.pt`` (then ``last.json``) atomically; ``payload`` has run_id and epoch."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LAST
    _atomic(path, lambda fh: torch.save(payload, fh))
    info = {"run_id": payload["run_id"], "epoch": payload["epoch"], "status": payload.get("status")}
    _atomic(folder / INFO, lambda fh: fh.write(json.dumps(info).encode()))
    return path


def peek(folder: Path) -> dict[str, Any] | None:
    """{run_id, epoch, status} of the checkpoint in ``folder``, without loading it; None if none."""
    if not (folder / LAST).exists():
        return None
    try:
        return json.loads((folder / INFO).read_text())
    except (OSError, ValueError):
        return None


def load(folder: Path) -> dict[str, Any]:
    return torch.load(folder / LAST, map_location="cpu", weights_only=True)


def discard(folder: Path) -> None:
    """Drop the resume state of a run that is over (final.pt and the artifacts stay)."""
    for name in (LAST, INFO):
        (folder / name).unlink(missing_ok=True)
