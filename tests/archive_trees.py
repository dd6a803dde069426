"""Small data sets in the layouts users download, built in tmp from generated JPEGs, and archives of them.

- ``ilsvrc_folder``: ``train/<wnid>/<wnid>_<i>.JPEG``, a flat ``val/`` and LOC_val_solution.csv +
  LOC_synset_mapping.txt beside them (the extracted ILSVRC-2012 layout);
- ``ilsvrc_tars``: the same images as distributed: ``ILSVRC2012_img_train.tar`` (one tar per class
  inside) and ``ILSVRC2012_img_val.tar`` (flat), labels beside the tars or inside the val tar;
- ``tiny_folder``: Tiny ImageNet's release layout (wnids.txt, words.txt, train/<wnid>/images, val/images
  with val_annotations.txt);
- ``cifar_batches``: CIFAR-10's python batches (``data_batch_1`` … ``test_batch``, ``batches.meta``);
- ``pack_zip`` / ``pack_tar``: any folder as a zip or a tar (any compression), optionally under a top folder.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

WORDS = {"n01440764": "tench, Tinca tinca", "n01443537": "goldfish, Carassius auratus",
         "n01484850": "great white shark", "n01491361": "tiger shark, Galeocerdo cuvieri"}


def jpeg(rng: np.random.Generator, h: int = 20, w: int = 24, grey: bool = False) -> bytes:
    """A small JPEG of smooth colour gradients plus mild noise (not constant, JPEG-friendly)."""
    yy, xx = np.mgrid[0:h, 0:w]
    base, slope = rng.uniform(40, 200, 3), rng.uniform(-3, 3, (3, 2))
    img = base + xx[..., None] * slope[:, 0] + yy[..., None] * slope[:, 1] + rng.normal(0, 4, (h, w, 3))
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    (pil.convert("L") if grey else pil).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def imagefolder(root: Path, classes=("a", "b", "c"), train: int = 3, val: int = 2, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for split, n in (("train", train), ("val", val)):
        for c in classes:
            for i in range(n):
                _write(root / split / c / f"{c}_{i:03d}.jpg", jpeg(rng, 18 + i, 24 - i))
    _write(root / "train" / classes[0] / "notes.txt", "not an image")
    return root


def ilsvrc_folder(root: Path, wnids=("n01440764", "n01443537", "n01484850"), train: int = 3, val: int = 2,
                  seed: int = 0) -> Path:
    """The extracted layout; val files are numbered with the classes shuffled together."""
    rng = np.random.default_rng(seed)
    rows = ["ImageId,PredictionString"]
    for w in wnids:
        for i in range(train):
            _write(root / "train" / w / f"{w}_{i}.JPEG", jpeg(rng, 20, 26, grey=i == 1))
    order = [w for w in wnids for _ in range(val)]
    rng.shuffle(order)
    for k, w in enumerate(order, start=1):
        stem = f"ILSVRC2012_val_{k:08d}"
        _write(root / "val" / f"{stem}.JPEG", jpeg(rng, 26, 20))
        rows.append(f"{stem},{w} 0 0 19 25")
    _write(root / "LOC_val_solution.csv", "\n".join(rows) + "\n")
    _write(root / "LOC_synset_mapping.txt", "".join(f"{w} {WORDS[w]}\n" for w in sorted(wnids)))
    return root


def cifar_batches(folder: Path, per_batch: int = 4) -> np.ndarray:
    """Five training batches and a test batch of ``per_batch`` random 32-px images each; returns the pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (6 * per_batch, 3072), dtype=np.uint8)
    names = [f"img_{i}.png".encode() for i in range(len(data))]
    for j, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        sl = slice(j * per_batch, (j + 1) * per_batch)
        labels = [(j + i) % 10 for i in range(per_batch)]
        batch = {b"data": data[sl], b"labels": labels, b"filenames": names[sl]}
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [f"class{i}".encode() for i in range(10)]}, fh)
    return data


def val_labels_txt(folder: Path) -> str:
    """The folder's CSV labels as ``filename wnid`` lines (val_labels.txt)."""
    lines = (folder / "LOC_val_solution.csv").read_text().splitlines()[1:]
    return "".join(f"{ln.split(',')[0]}.JPEG {ln.split(',')[1].split()[0]}\n" for ln in lines)


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 1_700_000_000
    tf.addfile(info, io.BytesIO(data))


def ilsvrc_tars(folder: Path, out: Path, labels: str = "csv-beside", compress: str = "") -> Path:
    """``out/ILSVRC2012_img_train.tar[.gz]`` of per-class tars and ``out/ILSVRC2012_img_val.tar`` from an
    ``ilsvrc_folder``; ``labels``: csv-beside (LOC_val_solution.csv and LOC_synset_mapping.txt beside
    the tars), txt-inside (val_labels.txt inside the val tar) or none."""
    out.mkdir(parents=True, exist_ok=True)
    suffix = f".{compress}" if compress else ""
    with tarfile.open(out / f"ILSVRC2012_img_train.tar{suffix}", f"w:{compress}") as outer:
        for cls in sorted(p for p in (folder / "train").iterdir() if p.is_dir()):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as inner:
                for img in sorted(cls.iterdir()):
                    _add(inner, img.name, img.read_bytes())
            _add(outer, f"{cls.name}.tar", buf.getvalue())
    with tarfile.open(out / "ILSVRC2012_img_val.tar", "w") as val:
        for img in sorted((folder / "val").iterdir()):
            _add(val, img.name, img.read_bytes())
        if labels == "txt-inside":
            _add(val, "val_labels.txt", val_labels_txt(folder).encode())
    if labels == "csv-beside":
        _write(out / "LOC_val_solution.csv", (folder / "LOC_val_solution.csv").read_bytes())
    if labels != "none":
        _write(out / "LOC_synset_mapping.txt", (folder / "LOC_synset_mapping.txt").read_bytes())
    return out


def devkit_tarball(folder: Path, out: Path) -> Path:
    """``out/ILSVRC2012_devkit_t12.tar.gz`` for an ``ilsvrc_folder``'s val set, as the devkit has it:
    data/ILSVRC2012_validation_ground_truth.txt (one ILSVRC2012_ID per val file, in file order) and
    data/meta.mat, whose IDs are deliberately not in wnid order and which lists a non-leaf synset too."""
    from scipy.io import savemat

    labels = dict(ln.split(",")[0:2] for ln in (folder / "LOC_val_solution.csv").read_text().splitlines()[1:])
    wnids = sorted({v.split()[0] for v in labels.values()}, reverse=True)
    ids = {w: i + 1 for i, w in enumerate(wnids)}
    gt = "".join(f"{ids[labels[stem].split()[0]]}\n" for stem in sorted(labels))
    rows = [(ids[w], w, WORDS[w], 0) for w in wnids] + [(len(wnids) + 1, "n00001740", "entity", 3)]
    synsets = np.array(rows, dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")])
    mat = io.BytesIO()
    savemat(mat, {"synsets": synsets})
    with tarfile.open(out / "ILSVRC2012_devkit_t12.tar.gz", "w:gz") as tf:
        _add(tf, "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt", gt.encode())
        _add(tf, "ILSVRC2012_devkit_t12/data/meta.mat", mat.getvalue())
        _add(tf, "ILSVRC2012_devkit_t12/readme.txt", b"the devkit")
    return out / "ILSVRC2012_devkit_t12.tar.gz"


def tiny_folder(root: Path, wnids=("n01443537", "n01440764", "n01484850"), train: int = 3, val: int = 2,
                seed: int = 0) -> Path:
    """Tiny ImageNet's layout; words.txt also names a wnid that is not a class (as WordNet's list does)."""
    rng = np.random.default_rng(seed)
    _write(root / "wnids.txt", "".join(f"{w}\n" for w in wnids))  # not sorted, as released
    _write(root / "words.txt", "".join(f"{w}\t{WORDS[w]}\n" for w in sorted(WORDS)))
    ann, k = [], 0
    for w in wnids:
        boxes = []
        for i in range(train):
            _write(root / "train" / w / "images" / f"{w}_{i}.JPEG", jpeg(rng, 16, 16, grey=i == 2))
            boxes.append(f"{w}_{i}.JPEG\t0\t0\t15\t15")
        _write(root / "train" / w / f"{w}_boxes.txt", "\n".join(boxes) + "\n")
        for _ in range(val):
            _write(root / "val" / "images" / f"val_{k}.JPEG", jpeg(rng, 16, 16))
            ann.append(f"val_{k}.JPEG\t{w}\t1\t2\t14\t15")
            k += 1
    _write(root / "val" / "val_annotations.txt", "\n".join(ann) + "\n")
    return root


def _files(src: Path) -> list[Path]:
    return sorted(p for p in src.rglob("*") if p.is_file())


def pack_zip(src: Path, dest: Path, top: str | None = None, method: int = zipfile.ZIP_STORED) -> Path:
    """``src``'s files in a zip, under ``top/`` when given (as most zips of a folder are)."""
    with zipfile.ZipFile(dest, "w", compression=method) as zf:
        for p in _files(src):
            rel = p.relative_to(src).as_posix()
            zf.writestr(f"{top}/{rel}" if top else rel, p.read_bytes())
    return dest


def pack_tar(src: Path, dest: Path, compress: str = "", top: str | None = None, shuffle: int | None = None) -> Path:
    """``src``'s files in a tar (``compress``: "", gz, bz2 or xz); names start with ``./`` without ``top``;
    ``shuffle``: members in an order drawn with this seed, not sorted."""
    files = _files(src)
    if shuffle is not None:
        np.random.default_rng(shuffle).shuffle(files)
    with tarfile.open(dest, f"w:{compress}") as tf:
        for p in files:
            rel = p.relative_to(src).as_posix()
            _add(tf, f"{top}/{rel}" if top else f"./{rel}", p.read_bytes())
    return dest


def snapshot(root: Path, leave_out: Path) -> dict[str, int]:
    """Every file under ``root`` but those under ``leave_out`` → its size (what a load may not change)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if leave_out not in p.parents:
                out[str(p.relative_to(root))] = p.stat().st_size
    return out
