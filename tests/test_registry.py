"""The model registry: an architecture is a module plus a decorator, and each builds wherever a claim uses it.

- the names ``audit validate`` accepts (the modules of audit/models/archs, listed without PyTorch)
  are the names those modules register, and a misspelt arch is one error line naming them;
- every registered model builds, with one output per class, at every claim × profile whose plan uses
  it; a model that no profile uses fails here, unless ``UNUSED`` says why;
- a module added beside the others (here in a tmp folder) is built by ``create_model`` with no other edit.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from audit import config
from audit.config import ModelConfig, arch_names
from audit.designs import class_count
from audit.models import CifarFig1, archs, registry
from audit.models.registry import create_model, register_model, registered_models
from audit.plan import build_plan
from audit.spec import Claim, load_claim, load_claims

from .archive_trees import cifar_batches, ilsvrc_folder, imagefolder, tiny_folder
from .conftest import REPO

CLAIMS = REPO / "claims"
UNUSED: dict[str, str] = {}  # arch -> why no claim profile uses it yet
# What a user adds before a profile can be planned: full_imagenet's larger set at `full` (the plan refuses without).
LARGER_SET = ("full_imagenet", "full", "pretrain: &full_larger {data: {}}",
              "pretrain: &full_larger {{data: {{path: {path}}}}}")
Use = tuple[str, ModelConfig, int]  # (claim/profile, the model, its class count)


def data_sets(root: Path) -> dict[str, Path]:
    """Fixture data in each layout a profile reads; a profile that names no source reads CIFAR-10."""
    cifar_batches(root / "cifar")
    return {"cifar_python": root / "cifar", "tiny_imagenet": tiny_folder(root / "tiny"),
            "ilsvrc2012": ilsvrc_folder(root / "ilsvrc"), "imagefolder": imagefolder(root / "folder")}


def with_larger_set(folder: Path, larger: Path) -> Claim:
    """full_imagenet as a user completes it before `full` can run: the larger set's path filled in."""
    claim_id, _, placeholder, completed = LARGER_SET
    text = (CLAIMS / f"{claim_id}.yaml").read_text()
    assert placeholder in text, f"{claim_id}.yaml no longer has {placeholder!r}"
    path = folder / f"{claim_id}.yaml"  # outside claims/: `extends: alexnet` finds the shipped preset
    path.write_text(text.replace(placeholder, completed.format(path=larger)))
    return load_claim(path)


@pytest.fixture(scope="module")
def uses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Use]]:
    """Every distinct (model, class count) the plans of every claim × profile hold, by arch."""
    root = tmp_path_factory.mktemp("registry")
    data = data_sets(root)
    completed = with_larger_set(root, ilsvrc_folder(root / "larger", seed=1))
    found: dict[str, dict[str, Use]] = {}
    for claim in load_claims([CLAIMS]):
        for name, profile in claim.profiles.items():
            path = data[profile.data.get("source", "cifar_python")] if profile.needs_data_path else None
            planned = completed if (claim.id, name) == LARGER_SET[:2] else claim
            for run in build_plan([planned], name, 1, str(path) if path else None).runs.values():
                model, classes = run.config.model, run.config.model.num_classes or class_count(run.config.data)
                found.setdefault(model.arch, {})[f"{model.model_dump_json()}/{classes}"] = (f"{claim.id}/{name}",
                                                                                               model, classes)
    return {arch: list(models.values()) for arch, models in found.items()}


def test_each_arch_module_registers_its_own_name() -> None:
    assert registered_models() == arch_names() and "alexnet" in arch_names()


@pytest.mark.parametrize("arch", registered_models())
def test_each_model_builds_at_every_profile_that_uses_it(arch: str, uses: dict[str, list[Use]]) -> None:
    """At full size on the meta device (the structure, no memory), then narrowed on the CPU for a forward pass."""
    if arch in UNUSED:
        pytest.skip(UNUSED[arch])
    assert uses.get(arch), f"no claim profile plans a run of {arch!r}: add one that does, or say why in UNUSED"
    for where, model, classes in uses[arch]:
        with torch.device("meta"):  # init torch: PyTorch's normal_ on meta tensors costs seconds on first use
            create_model(model.model_copy(update={"init": "torch", "init_std_by_layer": None}), classes)
        narrow = create_model(model.model_copy(update={"width": min(model.width, 0.125), "fc_width": 16}), classes)
        with torch.no_grad():
            out = narrow.eval()(torch.randn(2, 3, model.input_size, model.input_size))
        assert out.shape == (2, classes) and torch.isfinite(out).all(), where


def test_a_name_is_registered_once() -> None:
    registered_models()
    with pytest.raises(ValueError, match="model 'alexnet' is registered twice"):
        register_model("alexnet")(CifarFig1)


# Peak memory and CPU time are tests/test_untrusted.py's; this says which modules a validation loads.
NO_TORCH = ("import atexit, sys\n"
            "atexit.register(lambda: print('torch' in sys.modules, file=sys.stderr))\n"
            "from audit.cli import main\n"
            "main()\n")


def test_validate_names_the_line_of_an_unknown_arch_without_pytorch(tmp_path: Path) -> None:
    text = (CLAIMS / "lrn.yaml").read_text()
    old, new = "model: {arch: cifar_lrn,", "model: {arch: alexnett,"
    assert old in text
    bad = tmp_path / "lrn.yaml"
    bad.write_text(text.replace(old, new, 1))
    line = next(n for n, row in enumerate(bad.read_text().splitlines(), start=1) if new in row)
    done = subprocess.run([sys.executable, "-c", NO_TORCH, "validate", str(bad)], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"error: {bad}:{line}: profiles.cifar.model.arch: unknown arch 'alexnett': the architectures are "
        f"{', '.join(arch_names())} (one module each in audit/models/archs)", "False"]


TINY_MLP = '''"""A two-layer perceptron: all that adding an architecture takes is this module."""

from torch import nn

from audit.config import ModelConfig
from audit.models.registry import register_model


@register_model("tiny_mlp")
def tiny_mlp(cfg: ModelConfig, num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * cfg.input_size ** 2, 8), nn.ReLU(), nn.Linear(8, num_classes))
'''


@pytest.fixture
def new_arch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder joined to audit/models/archs: listed by audit.config, importable as audit.models.archs.*."""
    monkeypatch.setattr(config, "ARCH_PATH", [*config.ARCH_PATH, str(tmp_path)])
    monkeypatch.setattr(archs, "__path__", [*archs.__path__, str(tmp_path)])
    monkeypatch.setattr(registry, "_BUILDERS", dict(registry._BUILDERS))  # what the test registers goes with it
    yield tmp_path
    sys.modules.pop(f"{archs.__name__}.tiny_mlp", None)


def test_a_new_module_is_a_new_model(new_arch: Path) -> None:
    before = registered_models()
    with pytest.raises(ValueError, match="unknown arch 'tiny_mlp'"):
        ModelConfig(arch="tiny_mlp")
    (new_arch / "tiny_mlp.py").write_text(TINY_MLP)
    model = create_model(ModelConfig(arch="tiny_mlp", input_size=16), 5)
    assert isinstance(model, nn.Sequential) and model(torch.zeros(2, 3, 16, 16)).shape == (2, 5)
    assert registered_models() == arch_names() == sorted([*before, "tiny_mlp"])
