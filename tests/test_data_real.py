"""Real ImageNet pixels read in place from the shared zips, when they are present (skipped otherwise).

Small subsets (DataConfig classes / images_per_class) keep these to a few seconds; they check what
generated JPEGs cannot: the real release layouts, real greyscale and odd-sized JPEGs, real class names.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from audit.config import DataConfig
from audit.data import detect_source, load_dataset

from .archive_trees import snapshot

IMAGENET = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imagenet"
TINY = IMAGENET / "tiny-imagenet-100.zip"
IMAGENETTE = IMAGENET / "imagenette-mini.zip"
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")


def _needs(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path} is absent (development data, not needed by the project)")


def test_tiny_imagenet_100_zip_in_place(tmp_path):
    _needs(TINY)
    assert detect_source(str(TINY)) == "tiny_imagenet"
    cfg = DataConfig(source="tiny_imagenet", path=str(TINY), classes=4, images_per_class=20,
                     val_images_per_class=10)
    ds = load_dataset(cfg, tmp_path / "cache", input_size=56)
    assert ds.name == "tiny_imagenet:tiny-imagenet-100" and len(ds.classes) == 4
    assert len(ds.train) == 80 and len(ds.val) == 40 and ds.bad_files == []
    assert ds.size == 56 and ds.train.x.shape[1:] == (3, 56, 56)
    assert all(ds.class_names[c] != c for c in ds.classes)  # words.txt names every class
    assert ds.train.x.float().std() > 20  # real pixels, not blank
    rows = list(csv.DictReader(open(ds.manifest_path)))
    assert all(r["file"].startswith(f"train/{r['class']}/images/") for r in rows if r["split"] == "train")
    assert not [p for p in tmp_path.rglob("*.JPEG")]  # nothing extracted
    again = load_dataset(cfg, tmp_path / "cache", input_size=56)
    assert again.fingerprint == ds.fingerprint and again.cache_dir == ds.cache_dir


def test_imagenette_mini_zip_in_place(tmp_path):
    _needs(IMAGENETTE)
    assert detect_source(str(IMAGENETTE)) == "ilsvrc2012"
    before = snapshot(tmp_path, tmp_path / "cache")
    cfg = DataConfig(source="ilsvrc2012", path=str(IMAGENETTE), classes=["n01440764", "n03000684"],
                     images_per_class=10, val_images_per_class=5)
    ds = load_dataset(cfg, tmp_path / "cache", input_size=64)
    assert snapshot(tmp_path, tmp_path / "cache") == before
    assert ds.name == "ilsvrc2012:imagenette-mini" and ds.classes == ["n01440764", "n03000684"]
    assert ds.class_names == {"n01440764": "tench", "n03000684": "chain saw"}
    assert len(ds.train) == 20 and len(ds.val) == 10 and ds.bad_files == []
    assert sorted(ds.val.y.tolist()) == [0] * 5 + [1] * 5  # flat val/, labelled by LOC_val_solution.csv
