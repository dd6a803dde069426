"""Real ImageNet pixels read in place from the shared zips, when they are present (skipped otherwise).

Small subsets (DataConfig classes / images_per_class) keep these to a few seconds; they check what
generated JPEGs cannot: the real release layouts, real greyscale and odd-sized JPEGs, real class names.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from audit.config import DataConfig
from audit.data import detect_source, load_dataset

from .archive_trees import snapshot
from .conftest import IMAGENETTE
from .conftest import TINY_IMAGENET as TINY

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


def test_the_embedded_slice_is_cut_again_byte_for_byte(tmp_path):
    """bench/make_smoke_slice.py is the embedded slice's recipe: from the source zip it writes the same bytes."""
    _needs(TINY)
    import subprocess
    import sys

    from audit.data.load import EMBEDDED

    recipe = Path(__file__).resolve().parents[1] / "bench" / "make_smoke_slice.py"   # run as the tool it is
    done = subprocess.run([sys.executable, str(recipe), str(TINY), str(tmp_path / "slice.zip")], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "slice.zip").read_bytes() == EMBEDDED.read_bytes()


def lrn_pair(profile: str, overrides: str) -> str:
    """A claim file with the LRN pair at ``profile`` (extending the shipped alexnet preset), shrunk by
    ``overrides`` (YAML lines of the profile) so that its two runs take seconds."""
    return f"""\
id: lrn_pair
title: The LRN pair, end to end on real ImageNet pixels
paper: {{section: "3.3", quote: "a CI smoke run on real pixels", numbers: {{}}, measured_on: a subset}}
variants:
  with_lrn: {{}}
  without_lrn: {{model: {{lrn: false}}}}
measure:
  - {{id: top1, label: top-1, metric: val_top1_error, treatment: with_lrn, baseline: without_lrn, expect: decrease,
     smallest_effect: 0.5}}
profiles:
  {profile}:
    extends: alexnet
    seeds: 1
{overrides}"""


def run_in_place(workdir: Path, claim_text: str, profile: str, data: Path) -> pd.DataFrame:
    """`audit run` on ``data`` read in place: both runs finish, nothing is extracted or written outside
    runs/; the runs as MLflow lists them."""
    from audit.cli import main
    from audit.track import Tracker

    claim = workdir / "lrn_pair.yaml"
    claim.write_text(claim_text)
    before = snapshot(workdir, workdir / "runs")
    result = CliRunner().invoke(main, ["run", str(claim), "--profile", profile, "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert "2 finished" in result.output and "0 failed" in result.output
    assert snapshot(workdir, workdir / "runs") == before  # nothing written outside the runs folder
    assert not [p for p in workdir.rglob("*") if p.suffix.lower() in (".jpeg", ".jpg")]  # nothing extracted
    frame = Tracker().runs_frame()
    assert len(frame) == 2 and set(frame["tags.audit.status"]) == {"finished"}
    return frame


@pytest.mark.slow
def test_the_tiny_profile_trains_from_the_zip_and_the_report_names_its_classes(workdir):
    """The tiny preset (56 px crops of 64 px images, half-width AlexNet with the 11x11/4 conv1) on 5 classes
    x 10 images of tiny-imagenet-100.zip, 1 epoch; the report lists the classes by their words.txt names."""
    _needs(TINY)
    from audit.cli import main

    shrink = ("    data: {classes: 5, images_per_class: 10, val_images_per_class: 4}\n"
              "    train: {epochs: 1, holdout_per_class: 0}\n")
    frame = run_in_place(workdir, lrn_pair("tiny", shrink), "tiny", TINY)
    run = frame.iloc[0]
    assert (run["params.model.input_size"], run["params.data.crop"], run["params.model.width"]) == ("56", "56", "0.5")
    assert run["tags.audit.dataset_name"] == "tiny_imagenet:tiny-imagenet-100"
    names = run["tags.audit.dataset_class_names"].split("; ")
    assert len(names) == 5 and not any(n.startswith("n0") for n in names)  # words.txt names, not wnids
    report = CliRunner().invoke(main, ["report", "--claims", str(workdir / "lrn_pair.yaml")])
    assert report.exit_code == 0, report.output
    assert f'<dd class="class-names">{"; ".join(names)}</dd>' in (workdir / "reports" / "index.html").read_text()


PAPER_224 = lrn_pair("full", """\
    model: {width: 0.25, fc_width: 256}
    data: {images_per_class: 4, val_images_per_class: 2}
    train: {epochs: 1, batch_size: 20, schedule: constant, holdout_per_class: 0, precision: fp32,
            channels_last: false}
""")


@pytest.mark.slow
def test_the_papers_224_px_pipeline_end_to_end_on_imagenette(workdir):
    """`audit run` at the full preset's preprocessing (256 px stored, 224 crops, flips, PCA colour noise, mean
    image subtracted, 10-crop evaluation) on imagenette-mini.zip read in place: a quarter-width net, 1 epoch of
    4 images per class (2 runs; measured 82 s at a load average of 7-9 on 2 cores)."""
    _needs(IMAGENETTE)
    frame = run_in_place(workdir, PAPER_224, "full", IMAGENETTE)
    run = frame.iloc[0]
    assert (run["params.model.input_size"], run["params.data.resize"], run["params.data.crop"],
            run["params.data.eval_crops"], run["params.data.pca_noise"], run["params.data.normalise"]) == \
        ("224", "256", "224", "10", "0.1", "paper")
    assert run["params.data.source"] == "ilsvrc2012"
    stored = [p for p in (workdir / "runs" / "cache").rglob("meta.json")]
    assert stored and all('"size": 256' in p.read_text() for p in stored if "archives" not in p.parts)
