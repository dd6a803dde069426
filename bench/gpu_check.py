"""The GPU paths, checked on a real GPU in one short script (one H200 was lent for minutes).

Three checks, each reported as a JSON line and none stopping the others:

- ``placement``: the two-device tower placement (``audit.models.placement``) computes the grouped
  net's function on CUDA — logits and every gradient against the grouped model's, fp32 and bf16.
  With one GPU both towers sit on cuda:0, so the cross-device copies are same-device copies: the
  layer surgery and the layouts are checked, the transfers between two cards are not.
- ``nccl``: the data-parallel rank entry point (``audit.train.distributed._rank_main``) started by
  ``torch.multiprocessing`` with the NCCL backend trains an epoch. One GPU allows one rank (NCCL
  refuses two ranks on one device), so DistributedDataParallel's gradient all-reduce is not reached.
- ``train``: the audit's loop (``audit.train.loop.train``) trains the full profile's with-LRN run
  (224 px, the paper's init) on ``--data`` for a few epochs in fp32 and in bf16 on CUDA: epoch
  times, losses, finite weights.

    python bench/gpu_check.py --data imagenette-mini.zip --workdir /dev/shm/gpu --epochs 3
"""

from __future__ import annotations

import argparse
import copy
import json
import pickle
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.config import RunConfig  # noqa: E402
from audit.models import build_model  # noqa: E402
from audit.models.placement import TwoDeviceAlexNet  # noqa: E402
from audit.train.distributed import Runtime, _free_port, _rank_main  # noqa: E402
from audit.train.loop import train  # noqa: E402
from bench.lrn_in_training import planned_config, with_whole_data  # noqa: E402


class EpochLog:
    """A RunLogger keeping each epoch's figures (picklable, for the NCCL rank)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def dataset(self, info: dict[str, str], manifest: Path | None) -> None:
        pass

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.rows.append({"epoch": epoch, **{k: round(v, 4) for k, v in metrics.items()}})
        print(json.dumps(self.rows[-1]), flush=True)

    def artifact(self, path: Path, folder: str = "") -> None:
        pass


def config(data: str, epochs: int, precision: str) -> RunConfig:
    return with_whole_data(planned_config("lrn", "with_lrn", "full", data), epochs=epochs, precision=precision)


def check_placement(cfg: RunConfig) -> dict:
    """Grouped net vs the same weights placed as two towers (both on cuda:0): logits and gradients."""
    dev = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    torch.manual_seed(0)
    grouped = build_model(cfg.model, 10).to(dev).eval()
    placed = TwoDeviceAlexNet(copy.deepcopy(grouped).cpu(), (dev, dev)).eval()
    x = torch.randn(16, 3, cfg.model.input_size, cfg.model.input_size, device=dev) * 60
    y = torch.randint(0, 10, (16,), device=dev)
    out = {}
    for precision in ("fp32", "bf16"):
        grads = []
        logits = []
        for net in (grouped, placed):
            net.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                z = net(x)
            F.cross_entropy(z.float(), y).backward()
            logits.append(z.float())
            grads.append({n: p.grad for n, p in net.named_parameters()})
        canonical = placed.to_canonical(grads[1])
        scale = max(g.abs().max().item() for g in grads[0].values())
        out[precision] = {
            "logits_max_abs_diff": (logits[0] - logits[1]).abs().max().item(),
            "logits_max_abs": logits[0].abs().max().item(),
            "grad_max_abs_diff": max((grads[0][n] - canonical[n].to(dev)).abs().max().item() for n in canonical),
            "grad_max_abs": scale, "params_compared": len(canonical),
        }
    return out


def check_nccl(cfg: RunConfig, workdir: Path) -> dict:
    """One NCCL rank through the audit's own rank entry point, as ``audit run --gpus-per-run N`` starts them."""
    import torch.multiprocessing as mp

    out = workdir / "nccl-result.pkl"
    started = time.perf_counter()
    mp.spawn(_rank_main, nprocs=1, join=True,
             args=(1, _free_port(), cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 1})}),
                   EpochLog, workdir / "nccl", None, "nccl-check", False, Runtime(processes=1), out))
    result = pickle.loads(out.read_bytes())
    return {"status": result.status, "epochs": result.epochs, "seconds": round(time.perf_counter() - started, 1),
            "train_loss_running": result.last.get("train_loss_running")}


def check_train(cfg: RunConfig, workdir: Path) -> dict:
    log = EpochLog()
    started = time.perf_counter()
    result = train(cfg, log, workdir)
    state = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    finite = all(torch.isfinite(v).all().item() for v in state.values() if v.is_floating_point())
    return {"status": result.status, "epochs": result.epochs, "seconds": round(time.perf_counter() - started, 1),
            "epoch_seconds": [r.get("epoch_seconds") for r in log.rows],
            "train_loss_running": [r.get("train_loss_running") for r in log.rows],
            "val_top1_error": [r.get("val_top1_error") for r in log.rows], "weights_finite": finite}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/gpu-check"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--dry-run", action="store_true", help="run the same checks on the CPU (gloo, no CUDA)")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    if not cuda and not args.dry_run:
        raise SystemExit("no CUDA device: this script checks the GPU paths (--dry-run runs them on the CPU)")
    report: dict = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if cuda else "cpu",
                    "capability": list(torch.cuda.get_device_capability()) if cuda else None,
                    "gpus": torch.cuda.device_count()}
    print(json.dumps(report), flush=True)
    checks = {
        "placement": lambda: check_placement(config(args.data, 1, "fp32")),
        "nccl": lambda: check_nccl(config(args.data, 1, "bf16"), args.workdir),
        "train_fp32": lambda: check_train(config(args.data, args.epochs, "fp32"), args.workdir / "fp32"),
        "train_bf16": lambda: check_train(config(args.data, args.epochs, "bf16"), args.workdir / "bf16"),
    }
    for name, check in checks.items():
        try:
            report[name] = check()
        except Exception:  # report and go on: one broken path must not hide the others
            report[name] = {"error": traceback.format_exc(limit=6)}
        print(json.dumps({name: report[name]}), flush=True)
        if args.json:
            args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
