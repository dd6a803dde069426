"""The data package: layouts, subsets, cache fidelity, statistics, augmentation, bad data, synthetic set.

Every tree is tiny and generated in tmp_path; tests that need the real CIFAR-10 (``CIFAR10``) skip without it.
"""

from __future__ import annotations

import csv
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from audit.config import DataConfig, SyntheticConfig
from audit.data import Augmenter, DataError, detect_source, load_dataset, stored_size
from audit.data.synthetic import class_factors, families, generate

from . import ilsvrc_tree
from .archive_trees import cifar_batches

ROOT = Path(__file__).resolve().parents[1]
CIFAR10 = ROOT.parent / "shared/data/cifar10"
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")


def _image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth colour gradients plus mild noise: JPEG-friendly, not constant."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.uniform(40, 200, 3)
    slope = rng.uniform(-2, 2, (3, 2))
    img = base + xx[..., None] * slope[:, 0] + yy[..., None] * slope[:, 1] + rng.normal(0, 4, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_folder_tree(root: Path, classes=("a", "b", "c"), train=4, val=2, sizes=((24, 30),), fmt="JPEG",
                     val_name="val", seed=0) -> Path:
    rng = np.random.default_rng(seed)
    ext = ".jpg" if fmt == "JPEG" else ".png"
    for split, n in (("train", train), (val_name, val)):
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                h, w = sizes[i % len(sizes)]
                Image.fromarray(_image(rng, h, w)).save(d / f"{c}_{i:03d}{ext}", fmt, **(
                    {"quality": 95} if fmt == "JPEG" else {}))
    (root / "train" / classes[0] / "notes.txt").write_text("not an image")
    (root / "train" / classes[0] / ".DS_Store").write_bytes(b"\0\1")
    return root


def _manifest(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# --- sizes ---------------------------------------------------------------------------------------

def test_stored_size_rules():
    assert stored_size(DataConfig(), 64) == 64
    assert stored_size(DataConfig(crop=224), 224) == 256
    assert stored_size(DataConfig(crop=56), 56) == 64
    assert stored_size(DataConfig(resize=40), 32) == 40
    assert stored_size(DataConfig(), None) == 64  # synthetic's native size
    assert stored_size(DataConfig(source="imagefolder", path="x"), None) == 256


# --- ImageFolder + cache -------------------------------------------------------------------------

def test_imagefolder_classes_labels_counts_manifest(tmp_path, monkeypatch):
    root = make_folder_tree(tmp_path / "tree", val_name="test")
    monkeypatch.chdir(tmp_path)  # data.path may be relative to the working directory
    ds = load_dataset(DataConfig(source="imagefolder", path="tree"), tmp_path / "cache", input_size=16)
    assert ds.classes == ["a", "b", "c"]
    assert ds.train.x.shape == (12, 3, 16, 16) and ds.train.x.dtype == torch.uint8
    assert ds.val.x.shape == (6, 3, 16, 16)
    assert ds.train.y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    rows = _manifest(ds.manifest_path)
    assert len(rows) == 18 and not any(r["file"].endswith((".txt", ".DS_Store")) for r in rows)
    first = rows[0]
    assert first["split"] == "train" and first["file"] == "train/a/a_000.jpg" and first["class"] == "a"
    assert int(first["bytes"]) == (root / first["file"]).stat().st_size
    assert ds.name == "imagefolder:tree" and len(ds.fingerprint) == 16 and ds.bad_files == []
    again = load_dataset(DataConfig(source="imagefolder", path=str(root)), tmp_path / "cache", input_size=16)
    assert again.fingerprint == ds.fingerprint and again.cache_dir == ds.cache_dir
    assert torch.equal(again.train.x, ds.train.x)
    other = load_dataset(DataConfig(source="imagefolder", path=str(root)), tmp_path / "cache", input_size=20)
    assert other.fingerprint != ds.fingerprint  # S is part of the fingerprint


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_cache_equals_pil_resize_and_centre_crop(tmp_path, fmt):
    from torchvision import transforms

    sizes = ((40, 56), (57, 31), (20, 20), (33, 33), (120, 90))  # landscape, portrait, up, odd, down ×4
    root = make_folder_tree(tmp_path / "tree", classes=("a",), train=5, val=1, sizes=sizes, fmt=fmt)
    s = 24
    ds = load_dataset(DataConfig(source="imagefolder", path=str(root), resize=s, crop=20),
                      tmp_path / "cache", input_size=20)
    ref = transforms.Compose([transforms.Resize(s), transforms.CenterCrop(s), transforms.PILToTensor()])
    files = [r["file"] for r in _manifest(ds.manifest_path) if r["split"] == "train"]
    for got, name in zip(ds.train.x, files, strict=True):
        want = ref(Image.open(root / name).convert("RGB"))
        diff = (got.int() - want.int()).abs()
        assert diff.float().mean() < 0.1 and diff.max() <= (1 if fmt == "PNG" else 2), name  # rounding only


# --- ILSVRC-2012 -------------------------------------------------------------------------------

@pytest.fixture
def ilsvrc(tmp_path):
    src = make_folder_tree(tmp_path / "src", classes=("cat", "dog", "fox"), train=3, val=3)
    return ilsvrc_tree, src


def _check_val_labels(ds, out: Path, maker) -> None:
    rows = [r for r in _manifest(ds.manifest_path) if r["split"] == "val"]
    assert len(rows) == 9
    for r in rows:
        original = Path(os.readlink(out / r["file"]))
        assert r["class"] == maker.fake_wnid(original.parent.name), r


@pytest.mark.parametrize("labels", ["csv", "devkit"])
def test_ilsvrc_layout_both_kinds_of_val_labels(ilsvrc, tmp_path, labels):
    maker, src = ilsvrc
    out = tmp_path / f"ilsvrc-{labels}"
    maker.make_tree(src, out, labels=labels)
    assert detect_source(str(out)) == "ilsvrc2012" and detect_source(str(src)) == "imagefolder"
    ds = load_dataset(DataConfig(source="ilsvrc2012", path=str(out)), tmp_path / "cache", input_size=16)
    assert ds.classes == sorted(maker.fake_wnid(c) for c in ("cat", "dog", "fox"))
    assert len(ds.train) == 9 and len(ds.val) == 9
    assert sorted(ds.val.y.tolist()) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    _check_val_labels(ds, out, maker)


def test_ilsvrc_devkit_meta_mat_and_sorted_val(ilsvrc, tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    maker, src = ilsvrc
    out = tmp_path / "ilsvrc"
    maker.make_tree(src, out, labels="devkit")
    dev = out / "ILSVRC2012_devkit_t12" / "data"
    order = (dev / "synsets.txt").read_text().split()
    (dev / "synsets.txt").unlink()
    rows = [(i + 1, w, f"class {w}", 0) for i, w in enumerate(order)]
    rows.append((len(order) + 1, "n00000001", "a non-leaf synset", 2))
    synsets = np.array(rows, dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"),
                                    ("num_children", "O")])
    scipy_io.savemat(dev / "meta.mat", {"synsets": synsets})
    ds = load_dataset(DataConfig(source="ilsvrc2012", path=str(out)), tmp_path / "cache", input_size=16)
    _check_val_labels(ds, out, maker)
    # val/ already sorted into wnid folders (as after the common valprep script): no label file needed
    sorted_tree = tmp_path / "sorted"
    shutil.copytree(out / "train", sorted_tree / "train", symlinks=True)
    for r in _manifest(ds.manifest_path):
        if r["split"] == "val":
            (sorted_tree / "val" / r["class"]).mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(out / r["file"]), sorted_tree / "val" / r["class"] / Path(r["file"]).name)
    again = load_dataset(DataConfig(source="ilsvrc2012", path=str(sorted_tree)), tmp_path / "cache",
                         input_size=16)
    assert sorted(again.val.y.tolist()) == sorted(ds.val.y.tolist())


def test_ilsvrc_devkit_refuses_wnid_sorted_mapping(ilsvrc, tmp_path):
    maker, src = ilsvrc
    out = tmp_path / "ilsvrc"
    maker.make_tree(src, out, labels="devkit")
    dev = out / "ILSVRC2012_devkit_t12" / "data"
    (dev / "synsets.txt").rename(dev / "LOC_synset_mapping.txt")
    with pytest.raises(DataError, match="sorted by wnid") as err:
        load_dataset(DataConfig(source="ilsvrc2012", path=str(out)), tmp_path / "cache", input_size=16)
    assert "ILSVRC2012_validation_ground_truth.txt" in str(err.value)


def test_ilsvrc_mismatched_ground_truth(ilsvrc, tmp_path):
    maker, src = ilsvrc
    out = tmp_path / "dev"
    maker.make_tree(src, out, labels="devkit")
    gt = out / "ILSVRC2012_devkit_t12" / "data" / "ILSVRC2012_validation_ground_truth.txt"
    gt.write_text("\n".join(gt.read_text().split()[:-2]) + "\n")  # two labels short
    with pytest.raises(DataError, match="does not match") as err:
        load_dataset(DataConfig(source="ilsvrc2012", path=str(out)), tmp_path / "cache", input_size=16)
    assert str(gt) in str(err.value)
    out2 = tmp_path / "csv"
    maker.make_tree(src, out2, labels="csv")
    sol = out2 / "LOC_val_solution.csv"
    sol.write_text("".join(sol.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(DataError, match="no label for val image") as err:
        load_dataset(DataConfig(source="ilsvrc2012", path=str(out2)), tmp_path / "cache", input_size=16)
    assert str(sol) in str(err.value)


# --- CIFAR python batches ------------------------------------------------------------------------

def test_cifar_python_batches(tmp_path):
    data = cifar_batches(tmp_path / "cifar-10-batches-py")
    assert detect_source(str(tmp_path)) == "cifar_python"
    cfg = DataConfig(source="cifar_python", path=str(tmp_path))
    ds = load_dataset(cfg, tmp_path / "cache", input_size=32)
    assert ds.classes == [f"class{i}" for i in range(10)]
    assert len(ds.train) == 20 and len(ds.val) == 4
    assert torch.equal(ds.train.x, torch.from_numpy(data[:20].reshape(-1, 3, 32, 32)))
    assert ds.train.y[:4].tolist() == [0, 1, 2, 3] and ds.val.y.tolist() == [5, 6, 7, 8]
    rows = _manifest(ds.manifest_path)
    assert rows[0]["file"] == "data_batch_1/img_0.png" and rows[-1]["split"] == "val"


def test_cifar_python_refuses_code_in_pickles(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    cifar_batches(folder)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": os.system}, fh)  # a pickle that would import a callable
    with pytest.raises(DataError, match="batches.meta"):
        load_dataset(DataConfig(source="cifar_python", path=str(folder)), tmp_path / "cache")


# --- subsets -------------------------------------------------------------------------------------

def test_subsets_are_deterministic_in_the_seed(tmp_path):
    root = make_folder_tree(tmp_path / "tree", classes=("a", "b", "c", "d", "e"), train=6, val=3)

    def files(seed: int, classes=3) -> list[str]:
        cfg = DataConfig(source="imagefolder", path=str(root), classes=classes, images_per_class=3,
                         val_images_per_class=2, subset_seed=seed)
        ds = load_dataset(cfg, tmp_path / "cache", input_size=8)
        assert len(ds.classes) == (classes if isinstance(classes, int) else len(classes))
        assert len(ds.train) == 3 * len(ds.classes) and len(ds.val) == 2 * len(ds.classes)
        return [r["file"] for r in _manifest(ds.manifest_path)]

    assert files(0) == files(0)
    assert files(0) != files(1)
    chosen = files(7, classes=["d", "b"])
    assert {f.split("/")[1] for f in chosen} == {"b", "d"}
    with pytest.raises(DataError, match="unknown class"):
        files(0, classes=["zebra"])


# --- statistics and augmentation -----------------------------------------------------------------

@pytest.fixture(scope="module")
def small_synthetic(tmp_path_factory):
    cfg = DataConfig(synthetic=SyntheticConfig(classes=4, train_per_class=12, val_per_class=3, size=32))
    return cfg, load_dataset(cfg, tmp_path_factory.mktemp("cache"), input_size=32)


def test_statistics_match_numpy(small_synthetic):
    _, ds = small_synthetic
    x = ds.train.x.numpy().astype(np.float64)
    pixels = x.transpose(1, 0, 2, 3).reshape(3, -1)
    vals, vecs = np.linalg.eigh(np.cov(pixels, bias=True))
    np.testing.assert_allclose(ds.pca_eigvals.numpy(), vals[::-1], rtol=1e-4)
    np.testing.assert_allclose(np.abs(ds.pca_eigvecs.numpy().T @ vecs[:, ::-1]), np.eye(3), atol=1e-3)
    np.testing.assert_allclose(ds.mean_image.numpy(), x.mean(0), atol=1e-3)
    np.testing.assert_allclose(ds.channel_std.numpy(), (x - x.mean(0)).std(axis=(0, 2, 3)), rtol=1e-4)


def test_train_batch_crops_flips_mean_and_determinism(small_synthetic):
    cfg, ds = small_synthetic
    x = ds.train.x[:8]
    plain = Augmenter(cfg.model_copy(update={"flip": False}), ds, 32)
    assert torch.allclose(plain.train_batch(x, torch.Generator().manual_seed(0)), x.float() - ds.mean_image)
    crop = cfg.model_copy(update={"crop": 24, "pca_noise": 0.1})
    aug = Augmenter(crop, ds, 24)
    a = aug.train_batch(x, torch.Generator().manual_seed(1))
    assert a.shape == (8, 3, 24, 24) and a.dtype == torch.float32
    assert torch.equal(a, aug.train_batch(x, torch.Generator().manual_seed(1)))
    assert not torch.equal(a, aug.train_batch(x, torch.Generator().manual_seed(2)))
    # every output is some crop (possibly flipped) of x − mean, shifted by one colour per image
    no_noise = Augmenter(crop.model_copy(update={"pca_noise": 0.0}), ds, 24).train_batch(
        x, torch.Generator().manual_seed(1))
    shift = (a - no_noise).flatten(2)
    assert torch.allclose(shift, shift[:, :, :1].expand_as(shift), atol=1e-3)
    centred = x.float() - ds.mean_image
    for img, out in zip(centred, no_noise, strict=True):
        views = [img[:, t:t + 24, left:left + 24] for t in range(9) for left in range(9)]
        assert any(torch.allclose(out, v) or torch.allclose(out, v.flip(-1)) for v in views)
    # switching flips off keeps the crop stream (paired variants see the same crops)
    unflipped = Augmenter(crop.model_copy(update={"flip": False, "pca_noise": 0.0}), ds, 24).train_batch(
        x, torch.Generator().manual_seed(1))
    for u, f in zip(unflipped, no_noise, strict=True):
        assert torch.allclose(u, f) or torch.allclose(u, f.flip(-1))
    unit = Augmenter(cfg.model_copy(update={"normalise": "unit", "flip": False}), ds, 32)
    z = unit.train_batch(ds.train.x, torch.Generator().manual_seed(0))
    assert torch.allclose(z.std(dim=(0, 2, 3)), torch.ones(3), atol=0.02)


def test_ten_crop_evaluation(small_synthetic):
    cfg, ds = small_synthetic
    aug = Augmenter(cfg.model_copy(update={"crop": 24, "eval_crops": 10}), ds, 24)
    x = ds.val.x[:5]
    views = aug.eval_batch(x)
    assert views.shape == (10, 5, 3, 24, 24)
    centred = x.float() - ds.mean_image
    assert torch.allclose(views[0], centred[..., :24, :24])
    assert torch.allclose(views[3], centred[..., 8:, 8:])
    assert torch.allclose(views[4], centred[..., 4:28, 4:28])
    assert torch.allclose(views[5:], views[:5].flip(-1))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 24 * 24, 4))
    probs = model(views.flatten(0, 1)).softmax(-1).view(10, 5, 4).mean(0)
    assert probs.shape == (5, 4) and torch.allclose(probs.sum(-1), torch.ones(5))
    one = Augmenter(cfg.model_copy(update={"crop": 24}), ds, 24).eval_batch(x)
    assert torch.allclose(one, views[4])


def test_augmenter_size_checks(small_synthetic):
    cfg, ds = small_synthetic
    with pytest.raises(DataError, match="input_size"):
        Augmenter(cfg.model_copy(update={"crop": 24}), ds, 28)
    with pytest.raises(DataError, match="smaller"):
        Augmenter(cfg, ds, 40)


# --- bad data ------------------------------------------------------------------------------------

def test_corrupt_jpeg_is_skipped_and_reported(tmp_path):
    root = make_folder_tree(tmp_path / "tree", classes=("a", "b"), train=5, val=2)
    bad = root / "train" / "b" / "b_002.jpg"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    cfg = DataConfig(source="imagefolder", path=str(root), max_bad_fraction=0.2)
    ds = load_dataset(cfg, tmp_path / "cache", input_size=8)
    assert ds.bad_files == ["train/b/b_002.jpg"]
    assert len(ds.train) == 9 and ds.train.y.tolist() == [0] * 5 + [1] * 4
    assert "train/b/b_002.jpg" in (ds.cache_dir / "bad_files.log").read_text()
    with pytest.raises(DataError, match="max_bad_fraction") as err:
        load_dataset(cfg.model_copy(update={"max_bad_fraction": 0.05}), tmp_path / "cache2", input_size=8)
    log = next((tmp_path / "cache2").glob("*.bad_files.log"))
    assert str(log) in str(err.value) and "b_002.jpg" in log.read_text()
    assert not [p for p in (tmp_path / "cache2").iterdir() if p.is_dir()]  # no half-built entry


def test_user_mistakes_name_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=str(missing)):
        load_dataset(DataConfig(source="imagefolder", path=str(missing)), tmp_path / "cache")
    root = make_folder_tree(tmp_path / "tree", classes=("a", "b"), train=2, val=1)
    (root / "train" / "empty").mkdir()
    with pytest.raises(DataError, match="empty class folder") as err:
        load_dataset(DataConfig(source="imagefolder", path=str(root)), tmp_path / "cache")
    assert str(root / "train" / "empty") in str(err.value)
    root2 = make_folder_tree(tmp_path / "tree2", classes=("a",), train=2, val=1)
    for f in (root2 / "val" / "a").iterdir():
        f.unlink()
    (root2 / "val" / "a").rmdir()
    with pytest.raises(DataError, match="val split has no images") as err:
        load_dataset(DataConfig(source="imagefolder", path=str(root2)), tmp_path / "cache")
    assert str(root2) in str(err.value)
    with pytest.raises(DataError, match="train/"):
        load_dataset(DataConfig(source="imagefolder", path=str(root2 / "train")), tmp_path / "cache")


def test_interrupted_build_leaves_nothing_and_is_cleaned(tmp_path):
    cfg = DataConfig(synthetic=SyntheticConfig(classes=2, train_per_class=2, val_per_class=1, size=32))
    cache = tmp_path / "cache"
    ds = load_dataset(cfg, cache, input_size=32)
    stale = cache / f".{ds.cache_dir.name}.tmp-99999"
    shutil.rmtree(ds.cache_dir)
    stale.mkdir()
    (stale / "train_x.u8").write_bytes(b"half")
    again = load_dataset(cfg, cache, input_size=32)
    assert not stale.exists() and torch.equal(again.train.x, ds.train.x)


# --- the synthetic default -----------------------------------------------------------------------

def test_synthetic_is_deterministic_and_as_promised():
    cfg = SyntheticConfig(classes=10, train_per_class=3, val_per_class=2, size=64, seed=3)
    x, y = generate(cfg, "train")
    assert x.shape == (30, 3, 64, 64) and x.dtype == torch.uint8 and y.tolist() == sorted(y.tolist())
    assert torch.equal(x, generate(cfg, "train")[0])
    assert not torch.equal(x, generate(cfg.model_copy(update={"seed": 4}), "train")[0])
    assert not torch.equal(x[:6], generate(cfg, "val")[0][:6])
    assert x.float().std() > 30  # not blank
    assert (x[:, 0].float().mean() - x[:, 2].float().mean()).abs() < 60  # colours are balanced overall


@pytest.mark.parametrize("n", [4, 6, 10, 16, 40])
def test_synthetic_class_needs_both_shape_and_colour(n):
    factors = class_factors(n)
    assert len(set(factors)) == n
    shapes = [s for s, _ in factors]
    colours = [c for _, c in factors]
    m = families(n)
    assert set(shapes) == set(range(m)) and set(colours) == set(range(m))
    assert all(shapes.count(s) >= 2 for s in shapes), "a shape alone would name its class"
    assert all(colours.count(c) >= 2 for c in colours), "a colour alone would name its class"


def test_synthetic_colour_family_is_visible_in_the_pixels():
    """Classes sharing a colour family share the object's hue; classes sharing a shape do not."""
    cfg = SyntheticConfig(classes=10, train_per_class=20, val_per_class=1, size=32)
    x, y = generate(cfg, "train")
    centre = x[:, :, 12:20, 12:20].float().mean((2, 3))  # the object covers the centre in most images
    mean_rgb = torch.stack([centre[y == k].mean(0) for k in range(10)])
    factors = class_factors(10)
    same_colour = [(i, j) for i in range(10) for j in range(i) if factors[i][1] == factors[j][1]]
    same_shape = [(i, j) for i in range(10) for j in range(i) if factors[i][0] == factors[j][0]]

    def dist(pairs):
        return torch.stack([(mean_rgb[i] - mean_rgb[j]).norm() for i, j in pairs]).mean()

    assert dist(same_colour) < dist(same_shape)


# --- the real CIFAR-10 tree (optional) -----------------------------------------------------------

def test_shared_cifar10_subset(tmp_path):
    if not CIFAR10.is_dir():
        pytest.skip(f"{CIFAR10} is absent (development data, not needed by the project)")
    cfg = DataConfig(source="imagefolder", path=str(CIFAR10), classes=2, images_per_class=10,
                     val_images_per_class=5)
    ds = load_dataset(cfg, tmp_path / "cache", input_size=32)
    assert len(ds.classes) == 2 and len(ds.train) == 20 and len(ds.val) == 10
    assert ds.train.x.shape[1:] == (3, 32, 32)
