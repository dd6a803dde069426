"""Images/s of the cached pipeline versus torchvision ImageFolder + PIL + DataLoader, same data, one run.

Both pipelines do the same work per training image: shorter side to S, random C×C crop, random
horizontal flip, mean subtraction and PCA colour noise, batched as float32 [B, 3, C, C].

- cached: the uint8 memory-mapped cache (built once; its build time is printed, not timed) → random
  batch indices → ``Augmenter.train_batch`` (crop + flip + mean image + PCA noise on tensors);
- ImageFolder: ``datasets.ImageFolder`` with PIL ``Resize(S)``, ``RandomCrop(C)``,
  ``RandomHorizontalFlip``, ``ToTensor``, ``Normalize`` (channel mean) and the PCA noise as a tensor
  transform, through ``DataLoader(num_workers=2, shuffle=True)``.

Each pipeline is timed over the same number of training images (default 20,000), DataLoader start-up
included (it is paid every epoch). Usage:

    .venv/bin/python bench/loader.py                       # the default --data (CIFAR-10), S=64, C=56
    .venv/bin/python bench/loader.py --size 32 --crop 28 --images 50000 [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audit.config import DataConfig  # noqa: E402
from audit.data import Augmenter, load_dataset  # noqa: E402


class Lighting:
    """PCA colour noise as a per-image tensor transform (the ImageFolder side of the comparison)."""

    def __init__(self, std: float, eigvals: torch.Tensor, eigvecs: torch.Tensor) -> None:
        self.std, self.scaled = std, eigvecs * eigvals.clamp_min(0).sqrt()  # 0–255 units, as Normalize leaves

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        alpha = torch.randn(3) * self.std
        return img + (self.scaled @ alpha).view(3, 1, 1)


def time_cached(cfg: DataConfig, cache_dir: Path, n: int, batch: int, crop: int) -> tuple[float, float]:
    """(images/s, seconds the cache build took when it was built — now or by an earlier run)."""
    data = load_dataset(cfg, cache_dir, input_size=crop)
    assert data.cache_dir is not None
    build = json.loads((data.cache_dir / "meta.json").read_text())["build_seconds"]
    aug = Augmenter(cfg, data, crop)
    gen = torch.Generator().manual_seed(0)
    total = len(data.train)
    done = 0
    t0 = time.perf_counter()
    while done < n:
        perm = torch.randperm(total, generator=gen)
        for start in range(0, total, batch):
            x = aug.train_batch(data.train.batch(perm[start:start + batch])[0], gen)
            done += x.shape[0]
            if done >= n:
                break
    return n / (time.perf_counter() - t0), build


def time_imagefolder(root: Path, cfg: DataConfig, n: int, batch: int, workers: int, stats) -> float:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    mean = stats.mean_image.mean((1, 2)) / 255.0
    tf = transforms.Compose([
        transforms.Resize(cfg.resize), transforms.RandomCrop(cfg.crop), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize(mean.tolist(), [1 / 255.0] * 3),
        Lighting(cfg.pca_noise, stats.pca_eigvals, stats.pca_eigvecs),
    ])
    ds = datasets.ImageFolder(str(root / "train"), transform=tf)
    done = 0
    t0 = time.perf_counter()
    while done < n:
        loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                            persistent_workers=False, generator=torch.Generator().manual_seed(done))
        for x, _ in loader:
            done += x.shape[0]
            if done >= n:
                break
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared/data/cifar10",
                    help="ImageFolder tree (train/ and val/ or test/)")
    ap.add_argument("--size", type=int, default=64, help="stored size S (CIFAR's 32 px is upsampled)")
    ap.add_argument("--crop", type=int, default=56, help="training crop C")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--images", type=int, default=20000, help="training images timed per pipeline")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers of the ImageFolder side")
    ap.add_argument("--cache", type=Path, default=None, help="cache folder (default: a temporary one)")
    ap.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    args = ap.parse_args(argv)
    if not (args.data / "train").is_dir():
        print(f"{args.data}: no train/ folder (pass --data)", file=sys.stderr)
        return 2
    cfg = DataConfig(source="imagefolder", path=str(args.data), resize=args.size, crop=args.crop,
                     flip=True, mean_subtract=True, pca_noise=0.1)
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp)
        cached, build = time_cached(cfg, cache, args.images, args.batch, args.crop)
        stats = load_dataset(cfg, cache, input_size=args.crop)
        folder = time_imagefolder(args.data, cfg, args.images, args.batch, args.workers, stats)
    ratio = cached / folder
    print(f"cache build (one-time, not timed below): {build:.1f} s for {len(stats.train) + len(stats.val)} "
          f"images at {args.size}px ({stats.cache_dir})")
    print(f"cached pipeline: {cached:,.0f} img/s; ImageFolder + {args.workers} workers: {folder:,.0f} img/s; "
          f"ratio {ratio:.1f}x")
    header = ("| data | S → C | batch | images | cached img/s | ImageFolder img/s | ratio | cache build |\n"
              "|---|---|---:|---:|---:|---:|---:|---:|")
    row = (f"| {args.data.name} | {args.size} → {args.crop} | {args.batch} | {args.images} | {cached:,.0f} | "
           f"{folder:,.0f} ({args.workers} workers) | **{ratio:.1f}×** | {build:.1f} s |")
    print(header + "\n" + row)
    if args.write:
        from bench.results import machine, write_section

        write_section("loader", f"## Data loader (`bench/loader.py`)\n\n{machine()}\n\n{header}\n{row}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
