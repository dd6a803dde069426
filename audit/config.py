"""RunConfig: one frozen, fully resolved description of a training run.

Everything that changes what a run computes lives here, and nothing else does: the canonical JSON
of a RunConfig is hashed into the run's identity (``config_hash``), so two claims that need the
same run share it, and a finished run is found again instead of being retrained. The data enter
that identity by their content (``data.fingerprint``), not by where they lie (``data.path``), so a
moved or renamed data folder, or another machine's copy of it, finds the same runs.
Training code reads these models; it never sees claims.
"""

from __future__ import annotations

import hashlib
import json
import pkgutil
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

# Where the architectures live (audit.models.archs), read as a folder: importing the package loads PyTorch.
ARCH_PATH = [str(Path(__file__).resolve().parent / "models" / "archs")]


def arch_names() -> list[str]:
    """The networks ``model.arch`` may name: the modules of audit/models/archs, listed without importing them.

    Listed, never imported, so that ``audit validate`` stays free of PyTorch; that each module
    registers its own name is tests/test_registry.py's to check.
    """
    return sorted(m.name for m in pkgutil.iter_modules(ARCH_PATH) if not m.name.startswith("_"))


def check_arch(arch: str) -> str:
    """``arch`` if some module of audit/models/archs is named so; else a ValueError that lists them."""
    names = arch_names()
    if arch not in names:
        raise ValueError(f"unknown arch {arch!r}: the architectures are {', '.join(names)} "
                         "(one module each in audit/models/archs)")
    return arch


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Frozen):
    """The network and its knobs (docs/paper.md §2, §6)."""

    arch: Annotated[str, AfterValidator(check_arch)] = Field(
        "alexnet",
        description="the network: a module of audit/models/archs, whose docstring describes it (alexnet: the "
        "paper's two-tower net)",
        json_schema_extra=lambda schema: schema.update(enum=arch_names()),  # editors still offer the names
    )
    activation: Literal["relu", "tanh"] = "relu"
    lrn: bool = True
    lrn_alpha_over_n: bool = Field(
        True, description="divide alpha by the window size n, as cuda-convnet, Caffe and PyTorch do"
    )
    pooling: Literal["overlapping", "non_overlapping"] = "overlapping"
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    remove_conv: Literal[2, 3, 4, 5] | None = Field(
        None, description="drop this conv layer; its successor reads its predecessor's maps and every other "
        "layer keeps its grouping (without conv3 the towers first meet at fc6)"
    )
    conv6: bool = Field(
        False, description="the paper's CNN*: an extra grouped 3x3 conv layer over the last pooling layer"
    )
    towers: Literal[1, 2] = 2
    width: float = Field(1.0, gt=0.0, le=4.0, description="multiplier on every layer's channels")
    fc_width: int | None = Field(None, gt=0, description="fc6/fc7 units; default 4096 × width")
    input_size: int = Field(224, ge=16)
    num_classes: int | None = Field(None, ge=2, description="None: the data set's class count")
    init: Literal["paper", "torch", "kaiming"] = Field(
        "paper", description="paper: N(0, init_std) weights and bias 1 where the paper puts it; "
        "torch: PyTorch's default; kaiming: He-normal weights (fan-in), zero biases"
    )
    init_std: float = Field(0.01, gt=0.0)
    init_std_by_layer: dict[str, float] | None = Field(
        None, description="paper init only: a different weight std for the named layers (for instance "
        "{conv1: 0.0001}, as cuda-convnet's layer files set initW per layer)"
    )
    bias_one: float = Field(1.0, description="bias value the paper uses in conv2, conv4, conv5, fc6, fc7")

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if self.init_std_by_layer and self.init != "paper":
            raise ValueError(f"init_std_by_layer draws N(0, std) weights: it needs init: paper, not {self.init!r}")
        if any(std <= 0 for std in (self.init_std_by_layer or {}).values()):
            raise ValueError("init_std_by_layer: every std must be > 0")
        return self


class SyntheticConfig(_Frozen):
    """The embedded default data set: generated, deterministic, no download."""

    classes: int = Field(10, ge=2, le=40)
    train_per_class: int = Field(200, ge=1)
    val_per_class: int = Field(50, ge=1)
    size: int = Field(64, ge=32)
    seed: int = 0


class DataConfig(_Frozen):
    """Where images come from, which subset, and the paper's preprocessing (docs/paper.md §3)."""

    source: Literal["synthetic", "embedded", "imagefolder", "ilsvrc2012", "tiny_imagenet", "cifar_python"] = Field(
        "synthetic", description="synthetic: generated shapes; embedded: the Tiny ImageNet slice shipped "
        "with the package (no path); the rest read data.path"
    )
    path: str | None = Field(None, description="where the data lie: not part of the run's identity when "
                             "the fingerprint is set")
    fingerprint: str | None = Field(
        None, description="the data's content (every image's name, label and size, before any subset), set "
        "by the plan from data.path (audit.data.load.source_fingerprint): what the run's identity hashes "
        "instead of the path"
    )
    synthetic: SyntheticConfig = SyntheticConfig()
    classes: int | list[str] | None = Field(None, description="a number of classes, or their names/wnids")
    images_per_class: int | None = Field(None, ge=1)
    val_images_per_class: int | None = Field(None, ge=1)
    subset_seed: int = 0
    resize: int | None = Field(None, ge=8, description="stored size S (shorter side, then centre crop)")
    crop: int | None = Field(None, ge=8, description="random training crop C; None: no crop")
    flip: bool = True
    mean_subtract: bool = True
    pca_noise: float = Field(0.0, ge=0.0, description="std of the PCA colour noise alpha; 0 = off")
    eval_crops: Literal[1, 10] = 1
    normalise: Literal["paper", "unit"] = Field(
        "paper",
        description="paper: x - per-pixel mean image (0-255 units); unit: also divide by the training "
        "set's per-channel std (for nets with PyTorch's default init)",
    )
    max_bad_fraction: float = Field(0.01, ge=0.0, le=1.0)


class TrainConfig(_Frozen):
    """Optimisation and schedule: SGD with momentum and weight decay, as in the paper.

    The training error (``train_*``) is always an eval-mode pass: on the whole training set with
    ``eval_train``, else on a fixed slice of it; the running minibatch figures are ``*_running``.
    The default schedule is the fixed step schedule: a plateau needs a held-out slice to watch.
    """

    epochs: int = Field(90, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(0.01, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(5e-4, ge=0.0)
    schedule: Literal["constant", "step", "plateau"] = Field(
        "step", description="plateau: lr / 10 when the held-out slice's top-1 error stops improving "
        "(needs holdout_per_class); step: lr / 10 every step_epochs; constant"
    )
    step_epochs: int = Field(30, ge=1, description="step schedule: divide by 10 every this many epochs")
    plateau_patience: int = Field(3, ge=0)
    holdout_per_class: int = Field(
        0, ge=0, description="training images per class set aside (never trained on) and evaluated each "
        "epoch as holdout_*: the plateau schedule reads them, never the validation split the verdicts read"
    )
    warmup_epochs: int = Field(0, ge=0)
    precision: Literal["fp32", "bf16"] = "fp32"
    channels_last: bool = False
    eval_train: bool = Field(
        False, description="measure error on the whole training set each epoch (Figure 1's metric)"
    )
    train_eval_images: int | None = Field(
        None, ge=1, description="without eval_train: the training error is measured in eval mode on this "
        "many training images (a fixed class-stratified slice); None: as many as the validation split"
    )
    stop_at_train_error: float | None = Field(
        None, gt=0.0, le=100.0, description="end the run once the training error (%) reaches this"
    )

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.schedule == "plateau" and self.holdout_per_class == 0:
            raise ValueError("schedule plateau needs train.holdout_per_class > 0: the rate must not be "
                             "dropped on the validation split that the verdicts read")
        return self


class RunConfig(_Frozen):
    """A single training run: what the executor hands to ``train``."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    seed: int = 0
    init_from: str | None = Field(
        None, description="config hash of a finished run whose weights start this one (fine-tuning)"
    )

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        if self.data.source not in ("synthetic", "embedded") and not self.data.path:
            raise ValueError(f"data.source {self.data.source!r} needs data.path")
        return self

    def identity(self) -> dict[str, Any]:
        """What the config hash covers: every field, except the data's path once its fingerprint stands for it.

        A config with a path and no fingerprint (built by hand, not by the plan) keeps its path:
        two data sets must never share a run.
        """
        tree = self.model_dump(mode="json")
        if self.data.fingerprint:
            del tree["data"]["path"]
        return tree

    def canonical_json(self) -> str:
        return json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    def flat_params(self) -> dict[str, str]:
        """The config as MLflow params: dotted keys, string values."""
        flat = flatten(self.model_dump(mode="json"))
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in flat.items()}


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Override nested mappings key by key; anything else is replaced whole."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
