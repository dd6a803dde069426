"""The Tiny ImageNet layout, as a folder and as its zip: classes, class names, val labels, bad files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from audit.cli import main
from audit.config import DataConfig
from audit.data import DataError, detect_source, load_dataset

from .archive_trees import WORDS, pack_tar, pack_zip, snapshot, tiny_folder
from .conftest import REPO

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")


def _load(path: Path, cache: Path, **kw):
    return load_dataset(DataConfig(source="tiny_imagenet", path=str(path), **kw), cache, input_size=16)


def test_tiny_imagenet_folder_and_zip(tmp_path):
    src = tiny_folder(tmp_path / "tiny-imagenet-3")
    archive = pack_zip(src, tmp_path / "tiny-imagenet-3.zip", top="tiny-imagenet-3")
    assert detect_source(str(src)) == detect_source(str(archive)) == "tiny_imagenet"
    folder = _load(src, tmp_path / "cache-folder")
    before = snapshot(tmp_path, tmp_path / "cache")
    zipped = _load(archive, tmp_path / "cache")
    assert snapshot(tmp_path, tmp_path / "cache") == before
    assert zipped.fingerprint == folder.fingerprint and zipped.name == folder.name == "tiny_imagenet:tiny-imagenet-3"
    assert torch.equal(zipped.train.x, folder.train.x) and torch.equal(zipped.val.y, folder.val.y)
    assert zipped.classes == ["n01440764", "n01443537", "n01484850"]  # wnids.txt order is not kept: sorted
    assert zipped.class_names == {w: WORDS[w] for w in zipped.classes}  # words.txt's extra wnid is left out
    assert len(zipped.train) == 9 and len(zipped.val) == 6 and zipped.bad_files == []
    rows = list(csv.DictReader(open(zipped.manifest_path)))
    assert rows[0]["file"] == "train/n01440764/images/n01440764_0.JPEG"
    # tiny_folder writes val_<k> for wnids in wnids.txt order, two each: val_0,1 → n01443537, …
    wnid_of = {f"val/images/val_{k}.JPEG": w for k, w in enumerate(
        w for w in ("n01443537", "n01440764", "n01484850") for _ in range(2))}
    assert {r["file"]: r["class"] for r in rows if r["split"] == "val"} == wnid_of
    assert zipped.train.x.shape == (9, 3, 16, 16)  # greyscale JPEGs come out as RGB


def test_tiny_imagenet_as_tar_gives_the_same_fingerprint(tmp_path):
    src = tiny_folder(tmp_path / "tiny")
    archive = pack_tar(src, tmp_path / "tiny.tar", top="tiny")
    assert _load(archive, tmp_path / "c1").fingerprint == _load(src, tmp_path / "c2").fingerprint


def test_tiny_imagenet_bad_labels(tmp_path):
    src = tiny_folder(tmp_path / "tiny")
    ann = src / "val" / "val_annotations.txt"
    good = ann.read_text()
    ann.write_text(good + "val_99.JPEG\tn01440764\t0\t0\t1\t1\n")  # an image that is not there
    archive = pack_zip(src, tmp_path / "tiny.zip", top="tiny")
    with pytest.raises(DataError, match="not there") as err:
        _load(archive, tmp_path / "cache")
    assert str(err.value).startswith(f"{archive}:tiny/val/val_annotations.txt: ") and "val_99.JPEG" in str(err.value)
    ann.write_text("".join(ln + "\n" for ln in good.splitlines()[1:]))  # val_0 unlabelled
    with pytest.raises(DataError, match="no label for val image val_0.JPEG"):
        _load(src, tmp_path / "cache")
    ann.write_text(good.replace("n01484850", "n09999999"))
    with pytest.raises(DataError, match="n09999999, which is not in wnids.txt"):
        _load(src, tmp_path / "cache")


def test_a_listing_error_exits_2_at_plan_time_before_anything_trains(workdir: Path) -> None:
    """`audit run --data broken.zip`: one line naming the archive and the member, exit 2, no run started."""
    src = tiny_folder(workdir / "tiny")
    ann = src / "val" / "val_annotations.txt"
    ann.write_text(ann.read_text() + "val_99.JPEG\tn01440764\t0\t0\t1\t1\n")  # an image that is not there
    archive = pack_zip(src, workdir / "tiny.zip", top="tiny")
    result = CliRunner().invoke(main, ["run", str(REPO / "claims" / "lrn.yaml"), "--profile", "tiny",
                                       "--data", str(archive), "--seeds", "1"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {archive}:tiny/val/val_annotations.txt: labels 1 val image(s) "
                                    "that are not there (first: val_99.JPEG)")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert "planned" not in result.output and not (workdir / "runs" / "checkpoints").exists()


def test_tiny_imagenet_class_without_images(tmp_path):
    src = tiny_folder(tmp_path / "tiny")
    (src / "wnids.txt").write_text((src / "wnids.txt").read_text() + "n01491361\n")
    archive = pack_zip(src, tmp_path / "tiny.zip", top="tiny")
    with pytest.raises(DataError, match="no training images for n01491361") as err:
        _load(archive, tmp_path / "cache")
    assert f"{archive}:tiny/train/n01491361" in str(err.value)


def test_the_embedded_slice_needs_no_path_and_names_its_classes(tmp_path):
    """The smoke default: real Tiny ImageNet images shipped in the package (under 2 MB), read in place."""
    from audit.data.load import EMBEDDED

    assert EMBEDDED.stat().st_size < 2_000_000
    ds = load_dataset(DataConfig(source="embedded", crop=56), tmp_path / "cache", input_size=56)
    assert ds.name == "tiny_imagenet:tiny-imagenet-smoke" and ds.size == 64
    assert (len(ds.classes), len(ds.train), len(ds.val)) == (10, 700, 100) and ds.bad_files == []
    assert ds.readable_classes().startswith("goldfish; black stork; walking stick")
    provenance = (EMBEDDED.parent / "PROVENANCE.md").read_text()
    assert all(wnid in provenance for wnid in ds.classes)
    assert not list(tmp_path.rglob("*.JPEG"))  # read in place
