"""LRN does real work wherever a profile has it, not a constant rescaling (docs/paper.md §8).

LRN is not scale-invariant: on unit-variance inputs its denominator is a near-constant 2^0.75, so
"with LRN" would only rescale activations. For every claim × profile, every planned run whose net has
LRN layers is built as the profile resolves it (initial weights) and fed one training batch as the
data pipeline produces it; each LRN layer's output/input ratio over the nonzero inputs must spread by
more than 5% of its median (p5 to p95). Profiles on real data use a 100-images-per-class subset of it
(CIFAR-10; Tiny ImageNet for the tiny profiles; imagenette-mini, real ILSVRC-2012 images in its
layout, for imagenet and full; skipped when absent) and the generated sets 50 per class (their own
mean image and statistics, as a run on them would have), so the test stays light.

imagenet and full are the paper's own setting (N(0, 0.01) init, lr 0.01, 0-255 units) and fail the
check: there norm1's ratio spreads about 2% and norm2's 0.1-0.2%, at initialisation and still after
300 SGD steps (batch 32, lr 0.01) on imagenette-mini at 128 px, when the net was still at chance (loss
2.30). They are marked as expected failures (strict: the day they pass, the mark must go), so the
finding stays executable. Over training, on a GPU (`bench/lrn_in_training.py`, docs/paper.md §8):
where the paper's net learns, norm1's spread passes 5% between epochs 20 and 50 of imagenette-mini,
while norm2's stays at most 1.1% through 150 epochs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from audit.config import DataConfig, RunConfig
from audit.data import Augmenter, Dataset, load_dataset
from audit.models import LocalResponseNorm, build_model
from audit.models.lrn import lrn_spreads
from audit.plan import build_plan
from audit.spec import load_claims
from audit.yaml_reader import SpecError

from .conftest import CIFAR10, IMAGENETTE, REPO, TINY_IMAGENET

CLAIMS = {c.id: c for c in load_claims([REPO / "claims"])}
PAPER_SETTING = ("imagenet", "full")     # the paper's init and rate: LRN near-constant (see the docstring)
CASES = [pytest.param(cid, profile, marks=pytest.mark.xfail(
             strict=True, raises=AssertionError,
             reason="the paper's own setting: LRN divides by a near-constant at the start of training"))
         if profile in PAPER_SETTING and claim.profiles[profile].data.get("source") == "ilsvrc2012"
         else (cid, profile) for cid, claim in CLAIMS.items() for profile in claim.profiles]
MIN_SPREAD = 0.05
BATCH = 64


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Loaded data sets by (data config, input size), built once per module in a tmp cache."""
    return {"cache": tmp_path_factory.mktemp("cache")}


def _dataset(cache: dict, data: DataConfig, input_size: int) -> Dataset:
    key = (data.model_dump_json(), input_size)
    if key not in cache:
        cache[key] = load_dataset(data, cache["cache"], input_size)
    return cache[key]


def _small(data: DataConfig) -> DataConfig:
    """The same pipeline on fewer images: 100 (real) or 50 (synthetic) training images per class."""
    if data.source == "synthetic":
        smaller = data.synthetic.model_copy(update={"train_per_class": min(data.synthetic.train_per_class, 50),
                                                    "val_per_class": 10})
        return data.model_copy(update={"synthetic": smaller})
    update = {"images_per_class": min(data.images_per_class or 100, 100), "val_images_per_class": 10}
    if data.source == "ilsvrc2012":   # imagenette-mini has 10 classes: take them all
        update["classes"] = None
    return data.model_copy(update=update)


def _has_lrn(model: nn.Module) -> bool:
    return any(isinstance(m, (LocalResponseNorm, nn.LocalResponseNorm)) for m in model.modules())


def _runs(claim_id: str, profile: str) -> list[tuple[str, RunConfig]]:
    claim = CLAIMS[claim_id]
    prof = claim.profiles[profile]
    sources = {prof.data.get("source"), *(v.data.get("source") for v in prof.variants.values())}
    data_path = None
    if prof.needs_data_path:
        real = {"tiny_imagenet": TINY_IMAGENET, "ilsvrc2012": IMAGENETTE}.get(prof.data.get("source"), CIFAR10)
        if "ilsvrc2012" in sources - {prof.data.get("source")}:
            pytest.skip(f"profile {profile}: a variant reads ILSVRC-2012 beside another source")
        if not real.exists():
            pytest.skip(f"{real} not found (development data, not needed by the project)")
        data_path = str(real)
    try:
        plan = build_plan([claim], profile, seeds=1, data_path=data_path)
    except SpecError as err:   # full_imagenet at full: pretrain needs a second data set (its net is lrn's)
        pytest.skip(f"{claim_id}/{profile}: {str(err).split(':', 1)[-1].strip()[:120]}")
    return [(",".join(sorted({r.variant for r in run.roles})), run.config) for run in plan.runs.values()]


@pytest.mark.parametrize(("claim_id", "profile"), CASES)
def test_lrn_does_more_than_rescale(claim_id: str, profile: str, datasets: dict) -> None:
    checked = []
    for variants, cfg in _runs(claim_id, profile):
        if not _has_lrn(build_model(cfg.model, cfg.model.num_classes or 10)):
            continue
        data = _small(cfg.data)
        ds = _dataset(datasets, data, cfg.model.input_size)
        torch.manual_seed(cfg.seed)
        model = build_model(cfg.model, len(ds.classes))
        generator = torch.Generator().manual_seed(0)
        idx = torch.randperm(len(ds.train), generator=generator)[:BATCH]
        x = Augmenter(data, ds, cfg.model.input_size).train_batch(ds.train.x[idx], generator)
        spreads = lrn_spreads(model, x)
        assert spreads and min(spreads) > MIN_SPREAD, (
            f"{claim_id}/{profile} [{variants}]: LRN output/input (p95-p5)/median per layer "
            f"{[round(s, 4) for s in spreads]}: a near-constant rescaling")
        checked.append(variants)
    if not checked:
        pytest.skip(f"{claim_id}/{profile}: no planned run has LRN layers")


def test_the_check_catches_a_rescaling(datasets: dict) -> None:
    """Unit-variance inputs and He init: the LRN divides by ~2^0.75 everywhere, and the check says so."""
    cfg = RunConfig.model_validate({"model": {"width": 0.25, "fc_width": 256, "input_size": 64, "init": "kaiming"},
                                    "data": {"synthetic": {"size": 72}, "resize": 72, "crop": 64,
                                             "normalise": "unit"}})
    data = _small(cfg.data)
    ds = _dataset(datasets, data, 64)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    x = Augmenter(data, ds, 64).train_batch(ds.train.x[:BATCH], generator)
    spreads = lrn_spreads(build_model(cfg.model, len(ds.classes)), x)
    assert len(spreads) == 2 and max(spreads) < 0.01


def test_cases_cover_every_claim_file() -> None:
    ids = {(case.values if hasattr(case, "values") else case)[0] for case in CASES}
    assert ids == {p.stem for p in Path(REPO / "claims").glob("*.yaml")}


@pytest.mark.skipif(not IMAGENETTE.exists(),
                    reason=f"{IMAGENETTE} not found (development data, not needed by the project)")
def test_the_training_probe_measures_the_paper_setting_over_epochs(tmp_path: Path) -> None:
    """bench/lrn_in_training.py (meant for a GPU): one epoch on the CPU, the spreads at epoch 0 and 1 as rows."""
    import json

    from bench.lrn_in_training import main

    out = tmp_path / "rows.json"
    main(["--data", str(IMAGENETTE), "--profile", "imagenet", "--epochs", "1", "--measure-at", "1",
          "--lr", "0.003", "--workdir", str(tmp_path / "work"), "--device", "cpu", "--json", str(out)])
    report = json.loads(out.read_text())
    assert report["status"] == "finished" and report["config"]["train"]["schedule"] == "constant"
    assert report["config"]["train"]["lr"] == 0.003                        # the profile's 0.01, replaced
    assert [row["epoch"] for row in report["rows"]] == [0, 1]
    assert all(len(row["spreads"]) == 2 for row in report["rows"])          # norm1, norm2
    assert report["rows"][0]["spreads"][0] < MIN_SPREAD                     # the xfail's finding, at epoch 0
    assert report["rows"][1]["train_loss"] is not None
