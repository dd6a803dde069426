"""What the saved-weights evaluations (ten crops, retrieval) cost per run, at a claim's profile.

The ten_crop and retrieval claims train nothing: `audit run` evaluates each finished AlexNet run's
final.pt (``audit.train.saved``). Their claim files state this cost per run; this measures it on
the profile's own network and data, with weights as the profile initialises them (the cost does not
depend on what the weights learned). CPU seconds on one thread are what to read while an audit runs
beside it; the data cache is built first and not counted.

    python bench/saved_eval.py --profile cifar --data path/to/cifar10
    python bench/saved_eval.py --profile tiny --data path/to/tiny-imagenet-100.zip
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.data import load_dataset  # noqa: E402
from audit.models import build_model  # noqa: E402
from audit.plan import resolve  # noqa: E402
from audit.spec import load_claim  # noqa: E402
from audit.train.saved import evaluate_saved  # noqa: E402

CLAIMS = Path(__file__).resolve().parents[1] / "claims"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--data", default=None, help="the profile's data (not for smoke)")
    parser.add_argument("--workdir", type=Path, default=Path("runs"), help="where the data cache lives")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = resolve(load_claim(CLAIMS / "ten_crop.yaml"), args.profile, "alexnet", 0, None, args.data)
    data = load_dataset(cfg.data, args.workdir / "cache", cfg.model.input_size)   # cached before timing
    torch.manual_seed(0)
    model = build_model(cfg.model, len(data.classes))
    print(f"profile {args.profile}: {len(data.val)} validation images at {cfg.model.input_size} px, "
          f"{args.threads} thread(s)\n\n| evaluation | CPU s | wall s |\n|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "final.pt"
        torch.save(model.state_dict(), weights)
        for name in ("ten_crop", "retrieval"):
            cpu, wall = time.process_time(), time.perf_counter()
            evaluate_saved(cfg, weights, args.workdir, [name])
            print(f"| {name} | {time.process_time() - cpu:.1f} | {time.perf_counter() - wall:.1f} |")


if __name__ == "__main__":
    main()
