"""Does the paper's LRN start to normalise once the paper's net learns? (issue 13, acceptance 3)

At the imagenet and full profiles, the paper's own setting (N(0, 0.01) init, 0-255 inputs, k = 2,
alpha = 1e-4) makes every LRN layer divide by a near-constant at initialisation: alpha·Σa² is tiny
beside k while the activations are small (tests/test_lrn_units.py keeps that as a strict xfail).
This trains a claim's planned run with the audit's own loop (``audit.train.loop.train``) and, at
the epochs asked for, loads the checkpoint the loop has just written and measures each LRN layer's
output/input spread (``audit.models.lrn.lrn_spreads``) on one fixed real training batch — the
test's measure, over training instead of at epoch 0.

It is a probe, not evidence: the run is not logged to MLflow. Its learning rate is held constant
(``--schedule constant``) unless told otherwise, because the plateau schedule would drop it while
the net still sits at chance on a small set, and it reads the whole of ``--data`` (every class and
image) whatever subset the profile names. Meant for a GPU (``--device cuda``); it runs anywhere.

    python bench/lrn_in_training.py --data imagenette-mini.zip --profile imagenet --epochs 300 \
        --measure-at 1 2 5 10 20 50 100 200 300 --workdir /dev/shm/lrn --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.config import RunConfig  # noqa: E402
from audit.data import Augmenter, load_dataset  # noqa: E402
from audit.models import build_model  # noqa: E402
from audit.models.lrn import lrn_spreads  # noqa: E402
from audit.plan import build_plan  # noqa: E402
from audit.spec import load_claims  # noqa: E402
from audit.train import checkpoint  # noqa: E402
from audit.train.distributed import Dist  # noqa: E402
from audit.train.loop import train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BATCH = 64


def planned_config(claim_id: str, variant: str, profile: str, data: str) -> RunConfig:
    """The config ``audit run`` would train for this claim's variant at this profile (seed 0)."""
    claim = next(c for c in load_claims([REPO / "claims"]) if c.id == claim_id)
    plan = build_plan([claim], profile, seeds=1, data_path=data)
    for run in plan.runs.values():
        if any(r.variant == variant for r in run.roles):
            return run.config
    raise SystemExit(f"{claim_id}/{profile}: no planned run of variant {variant!r}")


def with_whole_data(cfg: RunConfig, **train: object) -> RunConfig:
    """``cfg`` reading every class and image of its data path, with ``train`` fields replaced."""
    whole = {"classes": None, "images_per_class": None, "val_images_per_class": None}
    return cfg.model_copy(update={"train": cfg.train.model_copy(update=train),
                                  "data": cfg.data.model_copy(update=whole)})


class SpreadProbe:
    """A RunLogger that, at chosen epochs, measures LRN spreads on the checkpoint just written."""

    def __init__(self, cfg: RunConfig, workdir: Path, device: torch.device, measure_at: set[int]) -> None:
        self.cfg, self.device, self.measure_at = cfg, device, measure_at
        self.folder = workdir / "checkpoints" / cfg.config_hash
        data = load_dataset(cfg.data, workdir / "cache", cfg.model.input_size)
        self.classes = len(data.classes)
        gen = torch.Generator().manual_seed(0)
        idx = torch.randperm(len(data.train), generator=gen)[:BATCH]
        self.x = Augmenter(cfg.data, data, cfg.model.input_size).train_batch(data.train.x[idx], gen)
        self.rows: list[dict] = []
        self.started = time.perf_counter()

    def spreads(self, state: dict | None) -> list[float]:
        torch.manual_seed(self.cfg.seed)
        model = build_model(self.cfg.model, self.classes)
        if state is not None:
            model.load_state_dict(state)
        return lrn_spreads(model.to(self.device), self.x.to(self.device))

    def record(self, epoch: int, metrics: dict[str, float], state: dict | None) -> None:
        row = {"epoch": epoch, "seconds": round(time.perf_counter() - self.started, 1),
               "train_loss": metrics.get("train_loss_running"), "train_top1": metrics.get("train_top1_error"),
               "val_top1": metrics.get("val_top1_error"), "spreads": [round(s, 4) for s in self.spreads(state)]}
        self.rows.append(row)
        print(json.dumps(row), flush=True)

    # RunLogger
    def dataset(self, info: dict[str, str], manifest: Path | None) -> None:
        print(f"data: {info['name']}, {info['train_images']} training images, device {info['device']}", flush=True)

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        if epoch in self.measure_at:
            self.record(epoch, metrics, checkpoint.Checkpoint.load(self.folder).model)

    def artifact(self, path: Path, folder: str = "") -> None:
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="an ILSVRC-2012-layout set (e.g. imagenette-mini.zip)")
    parser.add_argument("--claim", default="lrn")
    parser.add_argument("--variant", default="with_lrn")
    parser.add_argument("--profile", default="imagenet")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--schedule", default="constant", choices=["constant", "profile"],
                        help="constant: the profile's rate throughout; profile: the profile's own schedule")
    parser.add_argument("--lr", type=float, default=None, help="replace the profile's learning rate")
    parser.add_argument("--measure-at", type=int, nargs="+", default=[1, 2, 5, 10, 20, 50, 100])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/lrn-in-training"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here as well")
    args = parser.parse_args(argv)

    cfg = planned_config(args.claim, args.variant, args.profile, args.data)
    update = {"epochs": args.epochs} | ({"schedule": "constant"} if args.schedule == "constant" else {})
    update |= {"lr": args.lr} if args.lr is not None else {}
    cfg = with_whole_data(cfg, **update)
    device = torch.device(args.device)
    print(f"{args.claim}/{args.profile} [{args.variant}]: {cfg.model.input_size} px, lr {cfg.train.lr} "
          f"({cfg.train.schedule}), {cfg.train.precision}, {args.epochs} epochs, on {device}", flush=True)
    probe = SpreadProbe(cfg, args.workdir, device, set(args.measure_at))
    probe.record(0, {}, None)
    result = train(cfg, probe, args.workdir, dist=Dist(device=device))
    print(f"{result.status} after {result.epochs} epochs in {time.perf_counter() - probe.started:.0f}s", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"config": json.loads(cfg.model_dump_json()), "status": result.status,
                                         "rows": probe.rows}, indent=1))


if __name__ == "__main__":
    main()
