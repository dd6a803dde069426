"""How a run executes — one process, two-device towers, or N data-parallel ranks — kept out of the loop.

None of this is part of the RunConfig (and so of the config hash): every placement computes the same
function, so a run trained on two GPUs answers the same question as one trained on one.

Data parallelism (``Runtime.processes > 1``): N ranks started with ``torch.multiprocessing.spawn``
under ``torch.distributed`` (NCCL on GPUs, one GPU per rank; gloo on the CPU), the model wrapped in
``DistributedDataParallel``. Every rank builds the same initial weights and runs the *same* data
``torch.Generator``: each draws the whole global batch's order and augmentation and keeps its own
contiguous slice, so the union of the ranks' samples at every step is exactly the one-process batch
and DDP's gradient average is the one-process gradient (``batch_size`` must divide by N). Dropout
masks come from each rank's own RNG, so they differ from a one-process run. All ranks evaluate
(identical weights, identical numbers: the plateau schedule and the stop rule agree without
communication); rank 0 alone logs to MLflow and writes checkpoints.
"""

from __future__ import annotations

import os
import pickle
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as tdist
from torch import nn

if TYPE_CHECKING:
    from audit.config import RunConfig
    from audit.train.loop import RunLogger, TrainResult


@dataclass(frozen=True)
class Runtime:
    """Where a run's computation goes (the executor's ``--placement`` / ``--gpus-per-run``)."""

    placement: str = "single"      # single | two-device
    processes: int = 1             # data-parallel ranks
    threads: int | None = None     # CPU threads for the whole run (split over ranks)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Dist:
    """This process's place among the ranks; with ``world == 1`` every method is a no-op."""

    def __init__(self, rank: int = 0, world: int = 1, device: torch.device | None = None) -> None:
        self.rank, self.world = rank, world
        self.device = device or default_device()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        if self.world == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def shard(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's contiguous slice of the global batch."""
        if self.world == 1:
            return x, y
        per = x.shape[0] // self.world
        part = slice(self.rank * per, (self.rank + 1) * per)
        return x[part], y[part]

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            tdist.all_reduce(t)
        return t

    def gather(self, obj: Any) -> list[Any]:
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        tdist.all_gather_object(out, obj)
        return out


class NullLogger:
    """What ranks other than 0 report to: nothing."""

    def dataset(self, info: dict[str, str], manifest: Path | None) -> None:
        pass

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def artifact(self, path: Path, folder: str = "") -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_training(cfg: RunConfig, make_logger: Callable[[], RunLogger], workdir: Path, init_weights: Path | None,
                 run_id: str, resume: bool, runtime: Runtime) -> TrainResult:
    """Train in this process, or in ``runtime.processes`` DDP ranks (``make_logger`` must pickle)."""
    from audit.train.loop import train

    world = runtime.processes
    if world <= 1:
        return train(cfg, make_logger(), workdir, init_weights, run_id=run_id, resume=resume, runtime=runtime)
    if runtime.placement != "single":
        raise ValueError("data-parallel runs use single-device placement (two-device towers take 2 GPUs)")
    if cfg.train.batch_size % world:
        raise ValueError(f"batch_size {cfg.train.batch_size} does not split over {world} data-parallel ranks")
    if torch.cuda.is_available() and torch.cuda.device_count() < world:
        raise ValueError(f"{world} data-parallel ranks need {world} GPUs; {torch.cuda.device_count()} visible")
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="audit-ddp-") as tmp:
        out = Path(tmp) / "result.pkl"
        mp.spawn(_rank_main, nprocs=world, join=True,
                 args=(world, _free_port(), cfg, make_logger, workdir, init_weights, run_id, resume, runtime, out))
        return pickle.loads(out.read_bytes())


def _rank_main(rank: int, world: int, port: int, cfg: RunConfig, make_logger: Callable[[], RunLogger],
               workdir: Path, init_weights: Path | None, run_id: str, resume: bool, runtime: Runtime,
               out: Path) -> None:
    from audit.train.loop import train

    if torch.cuda.is_available():
        torch.cuda.set_device(rank)
        device, backend = torch.device("cuda", rank), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
        torch.set_num_threads(max(1, (runtime.threads or os.cpu_count() or 1) // world))
    tdist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                             device_id=device if device.type == "cuda" else None)
    try:
        logger = make_logger() if rank == 0 else NullLogger()
        result = train(cfg, logger, workdir, init_weights, run_id=run_id, resume=resume, runtime=runtime,
                       dist=Dist(rank, world, device))
        if rank == 0:
            out.write_bytes(pickle.dumps(result))
    finally:
        tdist.destroy_process_group()
