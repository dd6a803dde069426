"""Cut the smoke profile's embedded data (``audit/data/embedded/``) from ``tiny-imagenet-100.zip``.

Why: ``audit run claims/`` must train on real ImageNet pixels on a fresh machine, with no download,
so a slice of Tiny ImageNet small enough to ship (under 2 MB) lives in the package. This script is
the slice's recipe: run on the same source archive it writes the same bytes (fixed member order and
timestamps, stored, not compressed: the JPEGs would not shrink).

Selection rule: of the source's classes (wnids.txt, sorted), every ``--every``-th starting with the
first (10 of 100: they span animals, objects and scenes); per class the training images
``<wnid>_0 .. <wnid>_{N-1}`` and the first ``--val`` validation images in ``val_<i>`` order. The slice
keeps Tiny ImageNet's own layout (wnids.txt, words.txt, train/<wnid>/images/, the boxes files and
val/val_annotations.txt restricted to the chosen images), so the ``tiny_imagenet`` reader lists it.

    python bench/make_smoke_slice.py path/to/tiny-imagenet-100.zip \
        audit/data/embedded/tiny-imagenet-smoke.zip
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import zipfile
from pathlib import Path

ROOT = "tiny-imagenet-smoke"
STAMP = (2012, 1, 1, 0, 0, 0)  # fixed member dates, so the archive's bytes depend only on its content


def number(name: str) -> int:
    """The image number in ``<wnid>_<i>.JPEG`` or ``val_<i>.JPEG``."""
    return int(re.search(r"_(\d+)\.JPEG$", name).group(1))


def cut(source: Path, out: Path, every: int, train: int, val: int) -> dict[str, object]:
    """Write the slice; return what PROVENANCE.md records."""
    src = zipfile.ZipFile(source)
    top = src.namelist()[0].split("/")[0]

    def read(rel: str) -> bytes:
        return src.read(f"{top}/{rel}")

    wnids = sorted(w for w in read("wnids.txt").decode().split() if w)[::every]
    chosen = set(wnids)
    members: list[tuple[str, bytes]] = [("wnids.txt", "".join(f"{w}\n" for w in wnids).encode())]
    words = [ln for ln in read("words.txt").decode().splitlines() if ln.split("\t")[0] in chosen]
    members.append(("words.txt", "".join(f"{ln}\n" for ln in words).encode()))
    for wnid in wnids:
        names = [f"{wnid}_{i}.JPEG" for i in range(train)]
        boxes = [ln for ln in read(f"train/{wnid}/{wnid}_boxes.txt").decode().splitlines()
                 if ln.split("\t")[0] in set(names)]
        members.append((f"train/{wnid}/{wnid}_boxes.txt", "".join(f"{ln}\n" for ln in boxes).encode()))
        members += [(f"train/{wnid}/images/{n}", read(f"train/{wnid}/images/{n}")) for n in names]
    rows = [ln.split("\t") for ln in read("val/val_annotations.txt").decode().splitlines() if ln.strip()]
    rows.sort(key=lambda r: number(r[0]))
    kept = [r for w in wnids for r in [r for r in rows if r[1] == w][:val]]
    kept.sort(key=lambda r: number(r[0]))
    members.append(("val/val_annotations.txt", "".join("\t".join(r) + "\n" for r in kept).encode()))
    members += [(f"val/images/{r[0]}", read(f"val/images/{r[0]}")) for r in kept]

    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for rel, data in members:
            z.writestr(zipfile.ZipInfo(f"{ROOT}/{rel}", STAMP), data)
    return {"wnids": wnids, "names": dict(ln.split("\t", 1) for ln in words), "train": train, "val": val,
            "every": every, "source": source.name, "source_sha256": sha256(source), "sha256": sha256(out),
            "bytes": out.stat().st_size, "images": len(wnids) * train + len(kept)}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="tiny-imagenet-100.zip (Tiny ImageNet's release layout)")
    parser.add_argument("out", type=Path, help="the slice to write (a .zip)")
    parser.add_argument("--every", type=int, default=10, help="keep every N-th class of the sorted wnids")
    parser.add_argument("--train", type=int, default=70, help="training images per class")
    parser.add_argument("--val", type=int, default=10, help="validation images per class")
    args = parser.parse_args(argv)
    info = cut(args.source, args.out, args.every, args.train, args.val)
    print(f"{args.out}: {info['images']} images, {info['bytes']:,} bytes, sha256 {info['sha256']}")
    for wnid in info["wnids"]:
        print(f"  {wnid}  {info['names'][wnid]}")
    print(f"source {info['source']} sha256 {info['source_sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
