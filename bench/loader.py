"""Images/s of the cached pipeline versus torchvision ImageFolder + PIL + DataLoader, same data, one run;
and the cache built from an archive read in place (zip, tar, tar.gz) against the extracted folder.

Both pipelines do the same work per training image: shorter side to S, random C×C crop, random
horizontal flip, mean subtraction and PCA colour noise, batched as float32 [B, 3, C, C].

- cached: the uint8 memory-mapped cache (built once; its build time is printed, not timed) → random
  batch indices → ``Augmenter.train_batch`` (crop + flip + mean image + PCA noise on tensors);
- ImageFolder: ``datasets.ImageFolder`` with PIL ``Resize(S)``, ``RandomCrop(C)``,
  ``RandomHorizontalFlip``, ``ToTensor``, ``Normalize`` (channel mean) and the PCA noise as a tensor
  transform, through ``DataLoader(num_workers=2, shuffle=True)``.

Each pipeline is timed over the same number of training images (default 20,000; ``--quick`` 5,000),
DataLoader start-up included (it is paid every epoch).

Archive rows (``--archive PATH``, a Tiny ImageNet release zip such as tiny-imagenet-100.zip): a subset (default
20 classes × 100 train + 20 val images, ``--all`` for everything) is extracted to a temporary folder
(the bench's baseline: the loader itself never extracts) and packed again as a tar and a tar.gz; the
cache is then built from each (folder, the zip in place, tar, tar.gz) into a fresh cache folder, the
fingerprints compared, and the cached pipeline timed against ImageFolder on the extracted folder.
Usage:

    .venv/bin/python bench/loader.py --quick               # cifar10 folder row + tiny-imagenet-100 archive rows
    .venv/bin/python bench/loader.py --only archive --quick --write
    .venv/bin/python bench/loader.py --size 32 --crop 28 --images 50000 --only folder [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audit.config import DataConfig  # noqa: E402
from audit.data import Augmenter, detect_source, load_dataset  # noqa: E402
from audit.data.archive_index import build_index  # noqa: E402
from audit.data.load import resolve_listing  # noqa: E402
from audit.data.sources import Listing  # noqa: E402
from audit.data.subset import apply_subset  # noqa: E402
from audit.data.tree import open_tree  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
THROUGHPUT_HEADER = ("| data | S → C | batch | images | cached img/s | ImageFolder img/s | ratio | cache build |\n"
                     "|---|---|---:|---:|---:|---:|---:|---:|")


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


def throughput_row(name: str, folder: Path, cfg: DataConfig, cache: Path, args: argparse.Namespace) -> str:
    """One row: the cached pipeline and ImageFolder on ``folder``, same images, same work per image."""
    cached, build = time_cached(cfg, cache, args.images, args.batch, args.crop)
    stats = load_dataset(cfg, cache, input_size=args.crop)
    imagefolder = time_imagefolder(folder, cfg, args.images, args.batch, args.workers, stats)
    ratio = cached / imagefolder
    print(f"{name}: cache build {build:.1f} s for {len(stats.train) + len(stats.val)} images at {args.size}px; "
          f"cached {cached:,.0f} img/s; ImageFolder + {args.workers} workers {imagefolder:,.0f} img/s; {ratio:.1f}x")
    return (f"| {name} | {args.size} → {args.crop} | {args.batch} | {args.images} | {cached:,.0f} | "
            f"{imagefolder:,.0f} ({args.workers} workers) | **{ratio:.1f}×** | {build:.1f} s |")


def extract_subset(listing: Listing, dest: Path) -> Path:
    """The subset's images and the label files its layout needs, written to ``dest`` (the baseline)."""
    assert listing.tree is not None
    tree = listing.tree
    names = [it.name for split in ("train", "val") for it in listing.items[split]]
    for name, data in zip(names, tree.read_many(names), strict=True):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(data)
    val = {Path(it.name).name for it in listing.items["val"]}
    if listing.source == "tiny_imagenet":
        (dest / "wnids.txt").write_text("".join(c + "\n" for c in listing.classes))
        (dest / "words.txt").write_bytes(tree.read_bytes("words.txt"))
        lines = tree.read_text("val/val_annotations.txt").splitlines()
        (dest / "val/val_annotations.txt").write_text("".join(ln + "\n" for ln in lines if ln.split("\t")[0] in val))
    elif listing.source == "ilsvrc2012":
        stems = {Path(v).stem for v in val}
        lines = tree.read_text("LOC_val_solution.csv").splitlines()
        (dest / "LOC_val_solution.csv").write_text("".join(ln + "\n" for ln in lines[:1] + [
            ln for ln in lines[1:] if ln.split(",")[0] in stems]))
        if tree.is_file("LOC_synset_mapping.txt"):
            (dest / "LOC_synset_mapping.txt").write_bytes(tree.read_bytes("LOC_synset_mapping.txt"))
    return dest


def read_seconds(path: Path, names: list[str], repeats: int) -> float:
    """Best time to read every image's bytes from ``path`` as the cache builder does, without decoding."""
    tree = open_tree(path)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        with tree.reader() as reader:
            for _, load in reader.batches(names, 256):
                assert all(b is not None for b in load())
        best = min(best, time.perf_counter() - t0)
    return best


def pack_tar(folder: Path, dest: Path, mode: str) -> Path:
    import tarfile

    with tarfile.open(dest, mode) as tf:
        tf.add(folder, arcname=folder.name)
    return dest


def archive_rows(archive: Path, tmp: Path, args: argparse.Namespace) -> tuple[str, str]:
    """(the build table: the cache built from the folder and from each archive; the throughput row)."""
    source = detect_source(str(archive))
    subset = {} if args.all else {"classes": args.classes, "images_per_class": args.per_class,
                                  "val_images_per_class": args.val_per_class}
    base = DataConfig(source=source, path=str(archive), resize=args.size, crop=args.crop, pca_noise=0.1, **subset)
    listing = apply_subset(resolve_listing(base), base)
    assert listing.tree is not None
    # the chosen classes by name: the extracted folder holds only them, and must draw the same subset
    cfg = base.model_copy(update={"classes": None if args.all else listing.classes})
    t0 = time.perf_counter()
    folder = extract_subset(listing, tmp / "extracted" / listing.tree.name)
    extract_s = time.perf_counter() - t0
    sources = {"folder (extracted)": folder, f"{archive.suffix[1:]}, in place": archive,
               "tar": pack_tar(folder, tmp / f"{folder.name}.tar", "w"),
               "tar.gz": pack_tar(folder, tmp / f"{folder.name}.tar.gz", "w:gz")}
    names = [it.name for s in ("train", "val") for it in listing.items[s]]
    n = len(names)
    rows, fingerprints = [], set()
    for i, (label, path) in enumerate(sources.items()):
        c = cfg.model_copy(update={"path": str(path)})
        best = None
        for rep in range(args.repeats):  # a fresh cache each time; the best of the repeats (warm page cache)
            t0 = time.perf_counter()
            ds = load_dataset(c, tmp / f"cache-{i}-{rep}", input_size=args.crop)
            wall = time.perf_counter() - t0
            build = json.loads((ds.cache_dir / "meta.json").read_text())["build_seconds"]
            best = min(best or (wall, build), (wall, build))
        wall, build = best
        fingerprints.add(ds.fingerprint)
        mb = path.stat().st_size / 1e6 if path.is_file() else sum(
            f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6
        index = "—"
        if path.is_file():  # parsing the archive's directory or headers, once per archive and cache folder
            t0 = time.perf_counter()
            members = len(build_index(path).names)
            index = f"{time.perf_counter() - t0:.2f} s ({members:,} members)"
        read = read_seconds(path, names, max(3, args.repeats)) / n * 1e6
        rows.append(f"| {label} | {mb:.1f} MB | {index} | {wall - build:.2f} s | {read:.0f} µs | {build:.2f} s | "
                    f"{n / build:,.0f} | `{ds.fingerprint}` |")
        print(f"{label}: index {index}, listing {wall - build:.2f} s, read {read:.0f} us/image, build {build:.2f} s "
              f"({n / build:,.0f} img/s), {ds.fingerprint}")
    if len(fingerprints) != 1:
        raise SystemExit(f"fingerprints differ between the folder and its archives: {sorted(fingerprints)}")
    what = "all images" if args.all else (f"{args.classes} classes × {args.per_class} train + {args.val_per_class} "
                                         "val images")
    table = (f"Cache built from `{archive.name}` ({source}, {what}: {n} images at {args.size} px) and from the same "
             f"images extracted ({extract_s:.1f} s, not counted) and packed again; best of {args.repeats} builds "
             "into a fresh cache each, warm page cache. Index: reading the archive's directory or headers (kept in "
             "the cache folder, so once per archive); listing: the layout's classes and items, the index in memory; "
             "read: one image's bytes as the builder reads them (one thread, no decoding, best of 3); build: "
             "reading, decoding, resizing, writing the cache (worker threads).\n\n"
             "| source | size | index | listing | read / image | cache build | build img/s | fingerprint |\n"
             "|---|---:|---:|---:|---:|---:|---:|---|\n"
             + "\n".join(rows))
    name = f"{archive.name} subset, extracted" if not args.all else f"{archive.name}, extracted"
    return table, throughput_row(name, folder, cfg.model_copy(update={"path": str(folder)}), tmp / "cache-0-0", args)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=SHARED / "cifar10", help="ImageFolder tree (train/ and val/ or test/)")
    ap.add_argument("--archive", type=Path, default=SHARED / "imagenet" / "tiny-imagenet-100.zip",
                    help="a data set archive (zip or tar) to read in place")
    ap.add_argument("--only", choices=["folder", "archive"], default=None, help="run one of the two parts")
    ap.add_argument("--size", type=int, default=64, help="stored size S (CIFAR's 32 px is upsampled)")
    ap.add_argument("--crop", type=int, default=56, help="training crop C")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--images", type=int, default=None, help="training images timed per pipeline (default "
                    "20,000; 5,000 with --quick)")
    ap.add_argument("--quick", action="store_true", help="fewer timed images, one build per archive")
    ap.add_argument("--classes", type=int, default=20, help="archive subset: classes")
    ap.add_argument("--per-class", type=int, default=100, help="archive subset: train images per class")
    ap.add_argument("--val-per-class", type=int, default=20, help="archive subset: val images per class")
    ap.add_argument("--all", action="store_true", help="the whole archive, no subset")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers of the ImageFolder side")
    ap.add_argument("--cache", type=Path, default=None, help="folder part: cache folder (default: a temporary one)")
    ap.add_argument("--write", action="store_true", help="write the tables into BENCHMARKS.md")
    args = ap.parse_args(argv)
    args.images = args.images or (5000 if args.quick else 20000)
    args.repeats = 1 if args.quick else 2
    parts = [args.only] if args.only else ["folder", "archive"]
    if "folder" in parts and not (args.data / "train").is_dir():
        print(f"{args.data}: no train/ folder (pass --data, or --only archive)", file=sys.stderr)
        return 2
    if "archive" in parts and not args.archive.is_file():
        print(f"{args.archive}: not found (pass --archive, or --only folder)", file=sys.stderr)
        return 2
    from bench.results import machine, write_section

    load = _load_average()
    with tempfile.TemporaryDirectory() as tmp:
        if "folder" in parts:
            cfg = DataConfig(source="imagefolder", path=str(args.data), resize=args.size, crop=args.crop,
                             flip=True, mean_subtract=True, pca_noise=0.1)
            row = throughput_row(args.data.name, args.data, cfg, args.cache or Path(tmp) / "folder-cache", args)
            print(THROUGHPUT_HEADER + "\n" + row)
            if args.write:
                write_section("loader", f"## Data loader (`bench/loader.py`)\n\n{machine()}\n\n"
                              f"{THROUGHPUT_HEADER}\n{row}\n")
        if "archive" in parts:
            table, row = archive_rows(args.archive, Path(tmp), args)
            text = (f"### Archives read in place\n\n{machine()}; load average before {load}, after "
                    f"{_load_average()} (a shared machine).\n\n{table}\n\n{THROUGHPUT_HEADER}\n{row}\n")
            print(text)
            if args.write:
                write_section("loader-archives", text)
    return 0


def _load_average() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


if __name__ == "__main__":
    sys.exit(main())
