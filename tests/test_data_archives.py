"""Archives read in place: zip, tar (plain, compressed, nested per-class tars), the ILSVRC two-tar folder.

Every data set is generated in tmp_path (tests/archive_trees.py). The same images must give the same
fingerprint, pixels and statistics from a folder and from any archive of it, and loading an archive
must write nothing but the cache.
"""

from __future__ import annotations

import csv
import io
import os
import pickle
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from audit.config import DataConfig
from audit.data import DataError, detect_source, index_store, load_dataset, pipeline

from .archive_trees import (
    devkit_tarball,
    ilsvrc_folder,
    ilsvrc_tars,
    imagefolder,
    jpeg,
    pack_tar,
    pack_zip,
    snapshot,
    tiny_folder,
)

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")


def _load(path: Path, cache: Path, **kw):
    source = detect_source(str(path))
    return load_dataset(DataConfig(source=source, path=str(path), **kw), cache, input_size=16)


def _same(a, b) -> None:
    """Same manifest, fingerprint, pixels, labels and statistics."""
    assert a.fingerprint == b.fingerprint
    assert a.manifest_path.read_text() == b.manifest_path.read_text()
    assert a.classes == b.classes and a.bad_files == b.bad_files
    for split in ("train", "val"):
        assert torch.equal(getattr(a, split).x, getattr(b, split).x)
        assert torch.equal(getattr(a, split).y, getattr(b, split).y)
    for stat in ("mean_image", "channel_std", "pca_eigvals", "pca_eigvecs"):
        assert torch.equal(getattr(a, stat), getattr(b, stat)), stat


def test_folder_zip_and_tars_give_one_fingerprint_and_write_nothing_else(tmp_path):
    src = imagefolder(tmp_path / "tree")
    archives = {
        "zip, top folder": pack_zip(src, tmp_path / "tree.zip", top="tree"),
        "zip, deflated": pack_zip(src, tmp_path / "tree-deflated.zip", top="tree", method=zipfile.ZIP_DEFLATED),
        "tar, ./ names": pack_tar(src, tmp_path / "tree.tar"),
        "tar.gz": pack_tar(src, tmp_path / "tree.tgz", "gz", top="tree"),
        "tar.xz": pack_tar(src, tmp_path / "tree.tar.xz", "xz"),
    }
    folder = _load(src, tmp_path / "cache-folder")
    assert folder.name == "imagefolder:tree" and len(folder.train) == 9 and len(folder.val) == 6
    before = snapshot(tmp_path, tmp_path / "cache")
    for i, (kind, archive) in enumerate(archives.items()):
        assert detect_source(str(archive)) == "imagefolder", kind
        got = _load(archive, tmp_path / "cache" / str(i))  # a cache of its own: built from the archive
        _same(got, folder)
        assert got.name == "imagefolder:tree", kind
    assert snapshot(tmp_path, tmp_path / "cache") == before  # nothing extracted, nothing but the cache written


@pytest.mark.parametrize(("labels", "compress"), [("csv-beside", ""), ("txt-inside", "gz")])
def test_ilsvrc_train_and_val_tars_in_a_folder(tmp_path, labels, compress):
    src = ilsvrc_folder(tmp_path / "extracted")
    tars = ilsvrc_tars(src, tmp_path / "imagenet", labels=labels, compress=compress)
    assert detect_source(str(src)) == detect_source(str(tars)) == "ilsvrc2012"
    folder = _load(src, tmp_path / "cache-folder")
    before = snapshot(tmp_path, tmp_path / "cache")
    got = _load(tars, tmp_path / "cache")
    assert snapshot(tmp_path, tmp_path / "cache") == before
    _same(got, folder)  # the folder of tars is named imagenet, the extracted one extracted: same images
    assert got.classes == ["n01440764", "n01443537", "n01484850"]
    assert got.class_names == {"n01440764": "tench, Tinca tinca", "n01443537": "goldfish, Carassius auratus",
                               "n01484850": "great white shark"}
    rows = list(csv.DictReader(open(got.manifest_path)))
    assert rows[0]["file"] == "train/n01440764/n01440764_0.JPEG" and rows[-1]["file"].startswith("val/ILSVRC2012_val_")
    labels_of = {r["ImageId"]: r["PredictionString"].split()[0]
                 for r in csv.DictReader(open(src / "LOC_val_solution.csv"))}
    for r in rows:
        if r["split"] == "val":
            assert r["class"] == labels_of[Path(r["file"]).stem]


def test_imagenet_as_downloaded_train_val_and_devkit_tarballs(tmp_path):
    """The three files image-net.org hands out, side by side in one folder; labels from the devkit."""
    pytest.importorskip("scipy.io")
    src = ilsvrc_folder(tmp_path / "extracted")
    tars = ilsvrc_tars(src, tmp_path / "imagenet", labels="none")
    devkit_tarball(src, tars)
    assert sorted(p.name for p in tars.iterdir()) == ["ILSVRC2012_devkit_t12.tar.gz", "ILSVRC2012_img_train.tar",
                                                      "ILSVRC2012_img_val.tar"]
    before = snapshot(tmp_path, tmp_path / "cache")
    got = _load(tars, tmp_path / "cache")
    assert snapshot(tmp_path, tmp_path / "cache") == before
    _same(got, _load(src, tmp_path / "cache-folder"))  # the same labels as the extracted folder's CSV
    assert got.class_names["n01484850"] == "great white shark"  # from meta.mat


def test_stream_order_is_not_item_order(tmp_path, monkeypatch):
    """A compressed tar is read in its own member order: rows land where they belong, runs of CHUNK items
    are packed once complete, so pixels, labels, bad files and statistics equal the folder's."""
    monkeypatch.setattr(pipeline, "CHUNK", 4)  # many packing runs from a small set
    src = imagefolder(tmp_path / "tree", train=6, val=3)
    bad = src / "train" / "b" / "b_001.jpg"
    bad.write_bytes(bad.read_bytes()[:30] + bytes(100))
    archive = pack_tar(src, tmp_path / "tree.tar.gz", "gz", shuffle=1)
    with tarfile.open(archive) as tf:
        order = [m.name for m in tf.getmembers()]
    assert order != sorted(order)
    folder = _load(src, tmp_path / "c1", max_bad_fraction=0.1)
    assert folder.bad_files == ["train/b/b_001.jpg"] and len(folder.train) == 17
    _same(_load(archive, tmp_path / "c2", max_bad_fraction=0.1), folder)


def _same_index(a, b) -> None:
    assert (a.path, a.kind, a.names, a.nested, a.originals, a.small) == (b.path, b.kind, b.names, b.nested,
                                                                           b.originals, b.small)
    for col in ("sizes", "offsets", "aux", "method", "crc"):
        assert np.array_equal(getattr(a, col), getattr(b, col)), col


def test_archive_indexes_are_kept_in_the_cache(tmp_path, monkeypatch):
    tars = ilsvrc_tars(ilsvrc_folder(tmp_path / "x"), tmp_path / "imagenet", compress="gz")
    cache = tmp_path / "cache"
    cfg = DataConfig(source="ilsvrc2012", path=str(tars))
    first = load_dataset(cfg, cache, input_size=16)
    saved = sorted(p.name.rsplit("-", 1)[0] for p in (cache / "archives").glob("*.npz"))
    assert saved == ["ILSVRC2012_img_train.tar.gz", "ILSVRC2012_img_val.tar"]
    built = {p: index_store.load_index(p) for p in (tars / "ILSVRC2012_img_train.tar.gz",
                                                    tars / "ILSVRC2012_img_val.tar")}
    tiny = pack_tar(tiny_folder(tmp_path / "tiny"), tmp_path / "tiny.tgz", "gz", top="tiny")  # small files kept
    built[tiny] = index_store.load_index(tiny, cache / "archives")
    assert "tiny/wnids.txt" in built[tiny].small
    index_store.forget()
    monkeypatch.setattr(index_store, "build_index", lambda path: pytest.fail(f"{path} indexed again"))
    for path, index in built.items():
        _same_index(index_store.load_index(path, cache / "archives"), index)
    index_store.forget()
    assert load_dataset(cfg, cache, input_size=16).fingerprint == first.fingerprint  # from the saved indexes
    monkeypatch.undo()
    os.utime(tars / "ILSVRC2012_img_val.tar", ns=(10**18, 10**18))  # a changed archive is indexed again
    index_store.forget()
    load_dataset(cfg, cache, input_size=16)
    assert len(list((cache / "archives").glob("ILSVRC2012_img_val.tar-*.npz"))) == 2


def test_a_train_tar_alone_says_how_to_pass_it(tmp_path):
    tars = ilsvrc_tars(ilsvrc_folder(tmp_path / "x"), tmp_path / "imagenet")
    with pytest.raises(DataError, match="ILSVRC2012_img_val.tar") as err:
        detect_source(str(tars / "ILSVRC2012_img_train.tar"))
    assert str(tars / "ILSVRC2012_img_train.tar") in str(err.value)


def test_kaggle_zip_layout_with_labels_three_levels_up(tmp_path):
    src = ilsvrc_folder(tmp_path / "extracted")
    kaggle = tmp_path / "kaggle"
    shutil.copytree(src / "train", kaggle / "ILSVRC/Data/CLS-LOC/train")
    shutil.copytree(src / "val", kaggle / "ILSVRC/Data/CLS-LOC/val")
    for split in ("train/n01440764", "val"):  # annotations: a train/ and val/ of XML, no images
        (kaggle / "ILSVRC/Annotations/CLS-LOC" / split).mkdir(parents=True)
        (kaggle / "ILSVRC/Annotations/CLS-LOC" / split / "x.xml").write_text("<annotation/>")
    for f in ("LOC_val_solution.csv", "LOC_synset_mapping.txt"):
        shutil.copy(src / f, kaggle / f)
    archive = pack_zip(kaggle, tmp_path / "imagenet-object-localization-challenge.zip")
    assert detect_source(str(archive)) == "ilsvrc2012"
    got = _load(archive, tmp_path / "cache")
    _same(got, _load(src, tmp_path / "cache-folder"))
    assert got.name == "ilsvrc2012:CLS-LOC" and got.class_names["n01443537"].startswith("goldfish")


def _cifar_batches(folder: Path) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for j, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": data, b"labels": [(j + i) % 10 for i in range(3)]}, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [f"class{i}".encode() for i in range(10)]}, fh)


def test_cifar_release_tarball_in_place(tmp_path):
    _cifar_batches(tmp_path / "dl" / "cifar-10-batches-py")
    archive = pack_tar(tmp_path / "dl" / "cifar-10-batches-py", tmp_path / "cifar-10-python.tar.gz", "gz",
                       top="cifar-10-batches-py")
    assert detect_source(str(archive)) == "cifar_python"
    cfg = DataConfig(source="cifar_python", path=str(archive))
    got = load_dataset(cfg, tmp_path / "cache", input_size=32)
    want = load_dataset(cfg.model_copy(update={"path": str(tmp_path / "dl")}), tmp_path / "cache2", input_size=32)
    _same(got, want)
    assert len(got.train) == 15 and got.name == "cifar_python:cifar-10-batches-py"


# --- bad archives ----------------------------------------------------------------------------------

def test_truncated_zip_is_one_error_naming_it(tmp_path):
    archive = pack_zip(imagefolder(tmp_path / "tree"), tmp_path / "tree.zip", top="tree")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size * 2 // 3])
    with pytest.raises(DataError, match="not a readable zip archive") as err:
        _load(archive, tmp_path / "cache")
    assert str(err.value).startswith(f"{archive}: ")


def _corrupt_member(archive: Path, member: str) -> None:
    """Overwrite the middle of a stored member's bytes (the archive's own structure stays intact)."""
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(member)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.compress_size // 3
    data[start:start + 64] = bytes(64)
    archive.write_bytes(bytes(data))


def test_corrupt_zip_member_is_counted_and_skipped(tmp_path):
    archive = pack_zip(imagefolder(tmp_path / "tree", train=5), tmp_path / "tree.zip", top="tree")
    _corrupt_member(archive, "tree/train/b/b_002.jpg")
    ds = _load(archive, tmp_path / "cache", max_bad_fraction=0.2)
    assert ds.bad_files == ["train/b/b_002.jpg"] and len(ds.train) == 14
    assert ds.train.y.tolist() == [0] * 5 + [1] * 4 + [2] * 5
    with pytest.raises(DataError, match="max_bad_fraction") as err:
        _load(archive, tmp_path / "cache2", max_bad_fraction=0.0)
    assert f"first: {archive}:tree/train/b/b_002.jpg" in str(err.value)


def test_truncated_tar_names_the_member(tmp_path):
    tars = ilsvrc_tars(ilsvrc_folder(tmp_path / "x"), tmp_path / "imagenet")
    val = tars / "ILSVRC2012_img_val.tar"
    data = val.read_bytes()
    val.write_bytes(data[:512 * 3 + 100])  # inside the second member's data
    with pytest.raises(DataError, match="truncated") as err:
        _load(tars, tmp_path / "cache")
    assert str(err.value).startswith(f"{val}: ") and "ILSVRC2012_val_00000001.JPEG" in str(err.value)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        last = tf.getmembers()[-1]
    val.write_bytes(data[:last.offset_data + -(-last.size // 512) * 512])  # members whole, no end marker
    with pytest.raises(DataError, match="end-of-archive marker"):
        _load(tars, tmp_path / "cache")


def test_damaged_nested_tar_header_names_both_tars(tmp_path):
    tars = ilsvrc_tars(ilsvrc_folder(tmp_path / "x"), tmp_path / "imagenet")
    train = tars / "ILSVRC2012_img_train.tar"
    data = bytearray(train.read_bytes())
    inner = data.find(b"n01443537_1.JPEG")  # the second header inside the second class's tar
    data[inner + 148:inner + 156] = b"9999999\0"  # a wrong header checksum
    train.write_bytes(bytes(data))
    with pytest.raises(DataError, match="end-of-archive marker") as err:
        _load(tars, tmp_path / "cache")
    assert f"{train}:n01443537.tar" in str(err.value) and "n01443537_0.JPEG" in str(err.value)


def test_corrupt_tar_member_is_counted_and_skipped(tmp_path):
    src = ilsvrc_folder(tmp_path / "x", train=5)
    bad = src / "train" / "n01443537" / "n01443537_3.JPEG"
    bad.write_bytes(bad.read_bytes()[:40] + bytes(200))  # a JPEG header and then nothing usable
    tars = ilsvrc_tars(src, tmp_path / "imagenet", compress="bz2")
    ds = _load(tars, tmp_path / "cache", max_bad_fraction=0.1)
    assert ds.bad_files == ["train/n01443537/n01443537_3.JPEG"] and len(ds.train) == 14


def test_truncated_compressed_tar_is_one_error(tmp_path):
    archive = pack_tar(imagefolder(tmp_path / "tree"), tmp_path / "tree.tar.gz", "gz")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        detect_source(str(archive))
    assert str(err.value).startswith(f"{archive}: ")


def test_labels_naming_images_that_are_not_there(tmp_path):
    src = ilsvrc_folder(tmp_path / "x")
    tars = ilsvrc_tars(src, tmp_path / "imagenet", labels="txt-inside")
    # rebuild the val tar with one image left out but its label kept
    val = tars / "ILSVRC2012_img_val.tar"
    with tarfile.open(val) as tf:
        kept = [(m, tf.extractfile(m).read()) for m in tf.getmembers() if m.name != "ILSVRC2012_val_00000004.JPEG"]
    with tarfile.open(val, "w") as tf:
        for m, data in kept:
            tf.addfile(m, io.BytesIO(data))
    with pytest.raises(DataError, match="not there") as err:
        _load(tars, tmp_path / "cache")
    assert str(err.value).startswith(f"{val}:val_labels.txt: ") and "ILSVRC2012_val_00000004" in str(err.value)


def test_two_data_sets_in_one_archive(tmp_path):
    imagefolder(tmp_path / "both" / "first")
    ilsvrc_folder(tmp_path / "both" / "second")
    archive = pack_zip(tmp_path / "both", tmp_path / "both.zip")
    with pytest.raises(DataError, match="more than one data set") as err:
        detect_source(str(archive))
    assert str(err.value).startswith(f"{archive}: ") and "first/" in str(err.value) and "second/" in str(err.value)


def test_two_split_archives_in_one_folder(tmp_path):
    tars = ilsvrc_tars(ilsvrc_folder(tmp_path / "x"), tmp_path / "imagenet")
    (tars / "imagenet_train.zip").write_bytes(b"")
    with pytest.raises(DataError, match="two archives could be the train folder") as err:
        detect_source(str(tars))
    assert "ILSVRC2012_img_train.tar, imagenet_train.zip" in str(err.value)


def test_not_an_archive(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    with pytest.raises(DataError, match="neither a folder nor a zip or tar archive"):
        detect_source(str(f))
    g = tmp_path / "image.jpg"
    g.write_bytes(jpeg(np.random.default_rng(0)))
    with pytest.raises(DataError, match=str(g)):
        detect_source(str(g))


def test_cli_turns_a_bad_archive_into_one_line(tmp_path, workdir):
    from click.testing import CliRunner

    from audit.cli import main

    imagefolder(tmp_path / "both" / "first")
    imagefolder(tmp_path / "both" / "second")
    archive = pack_zip(tmp_path / "both", tmp_path / "both.zip")
    claims = Path(__file__).resolve().parents[1] / "claims" / "relu.yaml"
    result = CliRunner().invoke(main, ["plan", str(claims), "--data", str(archive)])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines == [f"error: {archive}: holds more than one data set: first/ (a train/ folder of images); "
                     "second/ (a train/ folder of images); pass an archive with one"]
