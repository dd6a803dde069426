"""Training throughput: our two-tower AlexNet against torchvision's AlexNet, side by side (issue 7).

Images per second for forward + backward + SGD step, both nets in the same loop, same batch, same
precision, same process. The timed repeats alternate the order of the nets (ABBA) so that a busy,
shared machine slows both alike; the ratio is the median of the per-repeat ratios.

Ours is the paper's net (LRN, groups=2, paper init, dropout on fc6/fc7 outputs); torchvision's has
no LRN and no groups. The small cases are the profiles' nets (64 px at width 0.25 with 100 classes,
32 px at width 0.5 with 10 classes); torchvision's AlexNet runs unchanged at the same input size
(not at 32 px: its conv5 maps are 1x1 there, too small for pool5), so there the ratio only says
what the profile costs next to the full-width reference. ``--extra torch_lrn`` adds a column for ours with
``nn.LocalResponseNorm`` (over all channels) in place of the fast per-tower LRN, ``--extra lrn_ops``
one for ours with its LRN in torch ops instead of the C kernel (``audit/models/lrn_native.py``),
``--extra nchw`` one for ours without its internal channels_last.

    python bench/train.py                             # 224 px batch 32, fp32 and bf16
    python bench/train.py --cases 224 64 32 --channels-last both --extra torch_lrn lrn_ops nchw
    python bench/train.py --threads 1 --clock cpu      # CPU time per image, when the machine is busy
    python bench/train.py --profile                   # torch.profiler table of one step of ours
    python bench/train.py --allocator both --write    # both allocator settings; into BENCHMARKS.md

``--allocator tuned`` (the default) runs as ``audit run`` trains: glibc malloc keeps large freed
blocks (``audit.train.allocator``); ``default`` leaves malloc alone. The setting is per process,
so ``both`` runs each in its own child process. Prints a markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.config import ModelConfig, TrainConfig  # noqa: E402
from audit.models import build_model, lrn_native  # noqa: E402
from audit.models.lrn import LocalResponseNorm  # noqa: E402
from audit.train.allocator import keep_freed_memory  # noqa: E402
from audit.train.loop import sgd  # noqa: E402


@dataclass(frozen=True)
class Case:
    name: str
    input_size: int
    width: float
    num_classes: int
    batch: int


CASES = {
    "224": Case("224", 224, 1.0, 1000, 32),
    "64": Case("64", 64, 0.25, 100, 128),
    "32": Case("32", 32, 0.5, 10, 128),
}


def ours(case: Case, variant: str = "ours") -> nn.Module:
    """Our net; ``torch_lrn``: with nn.LocalResponseNorm (over all channels); ``lrn_ops``: our LRN
    without its C kernel; ``no_lrn``: the LRN layers removed (what they cost); ``nchw``: no
    channels_last."""
    cfg = ModelConfig(input_size=case.input_size, width=case.width)
    model = build_model(cfg, case.num_classes)
    if variant == "nchw":
        model.cpu_channels_last = False
    if variant == "lrn_ops":
        for child in model.modules():
            if isinstance(child, LocalResponseNorm):
                child.native = False
    if variant in ("torch_lrn", "no_lrn"):
        for name, child in model.features.named_children():
            if isinstance(child, LocalResponseNorm):
                replacement = (nn.Identity() if variant == "no_lrn"
                               else nn.LocalResponseNorm(child.size, child.alpha, child.beta, child.k))
                setattr(model.features, name, replacement)
    return model


def torchvision_alexnet(case: Case) -> nn.Module | None:
    if case.input_size < 63:  # conv1 11/4 and three 3/2 pools leave nothing below 63 px
        return None
    return torchvision.models.alexnet(weights=None, num_classes=case.num_classes)


def make_step(
    model: nn.Module, case: Case, batch: int, precision: str, channels_last: bool, device: torch.device
) -> Callable[[], None]:
    """One SGD training step on a fixed random batch (the paper's optimiser settings, audit's optimiser)."""
    model.to(device).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, case.input_size, case.input_size, generator=gen).to(device, memory_format=fmt)
    y = torch.randint(0, case.num_classes, (batch,), generator=gen).to(device)
    opt = sgd(model.parameters(), TrainConfig(lr=0.01, momentum=0.9, weight_decay=5e-4))  # as audit's loop

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def timed(step: Callable[[], None], steps: int, device: torch.device, clock: Callable[[], float]) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = clock()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return clock() - start


def measure(
    steps_by_name: dict[str, Callable[[], None]], batch: int, args: argparse.Namespace, device: torch.device
) -> tuple[dict[str, float], dict[str, float]]:
    """Median images/s per net, and the median per-repeat ratio of each net to torchvision's."""
    names = list(steps_by_name)
    for name in names:
        for _ in range(args.warmup):
            steps_by_name[name]()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    rates: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            rates[name].append(args.steps * batch / timed(steps_by_name[name], args.steps, device, clock))
    medians = {n: statistics.median(v) for n, v in rates.items()}
    ratios = {}
    if "torchvision" in rates:
        for n in names:
            if n != "torchvision":
                ratios[n] = statistics.median(a / b for a, b in zip(rates[n], rates["torchvision"]))
    return medians, ratios


def profile_ours(case: Case, batch: int, precision: str, channels_last: bool, device: torch.device) -> None:
    from torch.profiler import ProfilerActivity, profile

    step = make_step(ours(case), case, batch, precision, channels_last, device)
    step()
    step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
    sort = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=20))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=["224"])
    parser.add_argument("--batch", type=int, default=None, help="batch size of every case (default per case)")
    parser.add_argument("--precision", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"])
    parser.add_argument("--channels-last", choices=["no", "yes", "both"], default="no",
                        help="memory format of both nets' weights and the input given to them")
    parser.add_argument("--allocator", choices=["tuned", "default", "both"], default="tuned",
                        help="tuned: malloc keeps large freed blocks, as in training (audit.train.allocator)")
    parser.add_argument("--extra", nargs="*", choices=list(EXTRAS), default=[],
                        help="more columns: ours with nn.LocalResponseNorm, with our LRN in torch ops, without LRN, "
                             "without inner channels_last")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per net first")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per net (median)")
    parser.add_argument("--steps", type=int, default=2, help="steps per timed repeat")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: process CPU time, steadier on a busy machine (use with --threads 1)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--profile", action="store_true", help="print a profiler table of ours instead")
    parser.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    parser.add_argument("--rows-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.allocator == "tuned":
        keep_freed_memory()
    device = torch.device(args.device)
    layouts = {"no": [False], "yes": [True], "both": [False, True]}[args.channels_last]

    if args.profile:
        for name in args.cases:
            case = CASES[name]
            for precision in args.precision:
                for cl in layouts:
                    print(f"## ours, {name} px, {precision}, channels_last={cl}")
                    profile_ours(case, args.batch or case.batch, precision, cl, device)
        return

    if args.rows_only:
        for line in rows(args, layouts, device):
            print(line, flush=True)
        return

    load_before = _load()
    intro = (f"torch {torch.__version__}, torchvision {torchvision.__version__}, device {device}, "
             f"{torch.get_num_threads()} threads, {_cpu()}. {args.clock.capitalize()} clock; median of "
             f"{args.repeats} repeats x {args.steps} steps after {args.warmup} warm-up steps; ratio = median "
             "over repeats of ours / torchvision, both nets timed alternately in one process, with audit's "
             "optimiser (fused SGD, momentum 0.9, weight decay 5e-4). On the CPU ours runs its conv layers in "
             "channels_last whatever the input's format. Allocator `tuned`: glibc malloc keeps large freed "
             "blocks, as `audit run` trains (audit/train/allocator.py); `default`: malloc as it comes. "
             f"Our LRN: {lrn_path()}.")
    print(intro + "\n")
    columns = ["input", "ours", "batch", "precision", "channels_last", "allocator"]
    columns += ["ours img/s", "torchvision img/s", "ratio"]
    for extra in args.extra:
        columns += [f"{EXTRAS[extra]} img/s", "ratio"]
    table = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    print("\n".join(table), flush=True)
    if args.allocator == "both":  # malloc settings are per process: one child per setting
        forwarded = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--write"]
        for mode in ("default", "tuned"):
            out = subprocess.run([sys.executable, __file__, *forwarded, "--allocator", mode, "--rows-only"],
                                 check=True, capture_output=True, text=True).stdout
            for line in out.splitlines():
                if line.startswith("|"):
                    print(line, flush=True)
                    table.append(line)
    else:
        for line in rows(args, layouts, device):
            print(line, flush=True)
            table.append(line)
    load = f"Load average before {load_before}, after {_load()}."
    print(f"\n{load}")
    if args.write:
        from bench.results import write_section

        write_section("train", "## Training throughput (`bench/train.py`)\n\n"
                      f"{intro}\n\n" + "\n".join(table) + f"\n\n{load}\n")


def rows(args: argparse.Namespace, layouts: list[bool], device: torch.device) -> list[str]:
    return [row(CASES[name], args.batch or CASES[name].batch, precision, cl, args, device)
            for name in args.cases for precision in args.precision for cl in layouts]


EXTRAS = {"torch_lrn": "ours, nn.LocalResponseNorm", "lrn_ops": "ours, LRN in torch ops",
          "no_lrn": "ours, no LRN", "nchw": "ours, NCHW inside"}


def row(
    case: Case, batch: int, precision: str, cl: bool, args: argparse.Namespace, device: torch.device
) -> str:
    """One table row: all nets built, warmed up and timed side by side."""
    torch.manual_seed(0)
    nets: dict[str, nn.Module | None] = {"ours": ours(case), "torchvision": torchvision_alexnet(case)}
    for extra in args.extra:
        nets[extra] = ours(case, extra)
    steps = {n: make_step(m, case, batch, precision, cl, device) for n, m in nets.items() if m is not None}
    rates, ratios = measure(steps, batch, args, device)
    shown = {n: f"{rates[n]:.1f}" if n in rates else "n/a" for n in nets}
    ratio = {n: f"{ratios[n]:.2f}x" if n in ratios else "n/a" for n in nets}
    cells = [f"{case.input_size} px", f"width {case.width:g}, {case.num_classes} classes", str(batch)]
    cells += [precision, "yes" if cl else "no", args.allocator, shown["ours"], shown["torchvision"], ratio["ours"]]
    for extra in args.extra:
        cells += [shown[extra], ratio[extra]]
    return "| " + " | ".join(cells) + " |"


def lrn_path() -> str:
    if lrn_native.available():
        return "the C kernel (audit/models/lrn_native.py) for fp32 and bf16 on the CPU"
    return "torch ops (the C kernel is not built here)"


def _cpu() -> str:
    from bench.results import machine

    return machine().split(", torch")[0]


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


if __name__ == "__main__":
    main()
