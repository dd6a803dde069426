"""Training cost of each network against the one it is compared with, side by side (issue 17's claim files).

A claim that brings a new network (the one-GPU net of §3.2, the Figure-1 net with batch norm) states
its cost per run; this measures it as the claim's profile trains it: the same batch, one SGD step
(forward, backward, update) per timed call, the pair alternated ABBA so that a busy machine slows
both alike. The ratio is the median of the per-repeat ratios; CPU time with one thread
(``--clock cpu --threads 1``) is what to read while an audit runs beside it.

    python bench/archs.py                          # every pair, wall clock
    python bench/archs.py --clock cpu --threads 1  # CPU time per image, on a busy machine
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.config import ModelConfig  # noqa: E402
from audit.models.registry import create_model  # noqa: E402
from bench.train import Case, make_step, measure  # noqa: E402

TINY = {"width": 0.5, "fc_width": 512, "input_size": 56, "init": "paper", "init_std": 0.05}
FIG1 = {"input_size": 32, "lrn": False, "init": "kaiming"}
# (pair, case, reference net, compared net): the networks as the claims' profiles build them.
PAIRS = {
    "two_gpu/tiny": (Case("tiny", 56, 0.5, 100, 128), ModelConfig(**TINY),
                     ModelConfig(**TINY, arch="alexnet_one_gpu", towers=1)),
    "relu_modern/cifar": (Case("cifar", 32, 1.0, 10, 128), ModelConfig(**FIG1, arch="cifar_fig1"),
                          ModelConfig(**FIG1, arch="cifar_fig1_bn")),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", choices=sorted(PAIRS), default=sorted(PAIRS))
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    print("| pair | reference | images/s | compared | images/s | compared / reference |\n|---|---|---|---|---|---|")
    for pair in args.pairs:
        case, reference, compared = PAIRS[pair]
        steps = {name: make_step(create_model(cfg, case.num_classes), case, case.batch, "fp32", True, device)
                 for name, cfg in (("torchvision", reference), (compared.arch, compared))}  # measure's reference key
        rates, ratios = measure(steps, case.batch, args, device)
        print(f"| {pair} | {reference.arch} | {rates['torchvision']:.0f} | {compared.arch} | "
              f"{rates[compared.arch]:.0f} | {ratios[compared.arch]:.2f} |")


if __name__ == "__main__":
    main()
