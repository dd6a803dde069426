"""Claim files: YAML parsed into typed, checked models.

A claim file is data, never code. It is read with PyYAML's safe loader, validated by pydantic with
unknown keys rejected, and every problem is reported as ``FILE:LINE: key: message`` so a user can
jump straight to it. Overrides (base, variants, profiles) are checked here too, by merging them
onto the defaults and validating the resulting RunConfig, so a typo fails before anything trains.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audit.config import RunConfig, deep_merge
from audit.yaml_reader import SpecError, locate, read_yaml

ENSEMBLE_METRICS = ("val_top1_error", "val_top5_error")
TUNING_SEED_BASE = 1000  # tuning seeds are 1000, 1001, ...: disjoint from the verdict's 0, 1, ...
PROBE_SEED_BASE = 2000   # probe seeds 2000, 2001, ...: a probe never trains (so never becomes) a verdict run
TunedParam = Literal["train.lr", "train.weight_decay"]   # what a profile's lr_grid may set (tune_param)

MeasureKind = Literal["final", "best", "at_epoch", "epochs_to_threshold", "epochs_to_converge", "overfitting_gap",
                      "colour_index", "ensemble"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Overrides(_Strict):
    """Partial RunConfig: nested mappings that are merged onto the defaults."""

    model: dict[str, Any] = {}
    data: dict[str, Any] = {}
    train: dict[str, Any] = {}
    init_from: str | None = Field(None, description="variant whose finished run initialises this one")

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("model", self.model), ("data", self.data), ("train", self.train)) if v}


class Paper(_Strict):
    section: str
    quote: str
    numbers: dict[str, float | str] = {}
    measured_on: str = ""
    context: str = Field("", description="what later work found (context, not a target)")


class Measure(_Strict):
    """One measurement: a number per run, compared between two variants paired by seed."""

    id: str
    kind: MeasureKind = "final"
    metric: str = "val_top1_error"
    baseline_metric: str | None = Field(None, description="compare against another metric of the baseline run")
    threshold: float | None = Field(None, description="epochs_to_threshold: the metric value to reach")
    tolerance: float | None = Field(None, ge=0, description="epochs_to_converge: within this of the run's best")
    epoch: int | None = Field(None, ge=1, description="at_epoch: the metric as it stood after this epoch (an early "
                              "stage of learning)")
    members: int | None = Field(None, ge=2, description="ensemble: nets per ensemble, taken from disjoint groups of "
                                "seeds of one variant (its saved validation predictions; nothing trains)")
    treatment: str
    baseline: str
    scale: Literal["difference", "ratio"] = "difference"
    expect: Literal["increase", "decrease"]
    paper: float | None = None
    smallest_effect: float = Field(gt=0, description="difference: same units; ratio: a factor > 1")
    unit: str = "pp"
    label: str = ""
    better: Literal["lower", "higher"] = Field(
        "lower", description="which way a run's own value is better (errors, losses, epochs: lower); "
        "tuning picks the learning rate in this direction"
    )

    def additive(self, x: float | None) -> float | None:
        """A number on the scale the statistics use: log for ratios, as is for differences."""
        if x is None:
            return None
        return math.log(x) if self.scale == "ratio" else x

    @model_validator(mode="after")
    def _check(self) -> Measure:
        if self.kind == "epochs_to_threshold" and self.threshold is None:
            raise ValueError("kind epochs_to_threshold needs a threshold")
        if self.kind == "ensemble" and (self.members is None or self.treatment != self.baseline):
            raise ValueError("kind ensemble needs members and one variant as both treatment and baseline (the "
                             "averaged predictions of its seeds against the single nets)")
        if self.kind == "ensemble" and self.metric not in ENSEMBLE_METRICS:
            raise ValueError("kind ensemble reads the saved predictions: metric is one of "
                             + ", ".join(ENSEMBLE_METRICS))
        if self.kind == "at_epoch" and self.epoch is None:
            raise ValueError("kind at_epoch needs an epoch")
        if self.kind == "epochs_to_converge" and self.tolerance is None:
            raise ValueError("kind epochs_to_converge needs a tolerance")
        if self.scale == "ratio" and self.smallest_effect <= 1:
            raise ValueError("a ratio's smallest_effect is a factor > 1")
        return self


class Profile(Overrides):
    """A scale tier: overrides for every variant, seeds, and an optional learning-rate grid."""

    extends: str | None = Field(None, description="a shared preset: profiles/NAME.yaml beside the claim, "
                                "else the one shipped in audit/presets/")
    description: str = ""
    seeds: int = Field(3, ge=1)
    scientific: bool = Field(True, description="False: the pipeline is proven, no scientific verdict")
    comparable_with_paper: bool = False
    paper: dict[str, float | None] = Field(
        {}, description="per measure id: the paper's number for this profile's setting, replacing the measure's "
        "(e.g. LRN's CIFAR-10 pair); null: the paper gives none here"
    )
    smallest_effect: dict[str, float] = Field(
        {}, description="per measure id: the smallest effect that matters at this profile, replacing the "
        "measure's (e.g. half the paper's number where the paper's number differs by setting)"
    )
    needs_data_path: bool = False
    variants: dict[str, Overrides] = {}
    lr_grid: dict[str, list[float]] = Field(
        {}, description="per variant: a log-spaced grid of at least 3 learning rates (or values of tune_param), "
        "tried on the tuning seeds (never on the verdict's); the one whose runs do best on the tuning measure is "
        "chosen"
    )
    tuning_seeds: int = Field(2, ge=1, description="seeds of the learning-rate grid, numbered from 1000 "
                              "(disjoint from the verdict's seeds 0, 1, ...)")
    tune_param: TunedParam = Field("train.lr", description="the config field whose values lr_grid lists: the learning "
                            "rate, or another positive number tuned the same way (train.weight_decay)")

    def tuning_seed_ids(self, count: int | None = None) -> list[int]:
        """The tuning seeds: TUNING_SEED_BASE, +1, ... (``count`` overrides the profile's number)."""
        return [TUNING_SEED_BASE + i for i in range(count or self.tuning_seeds)]
    tune_on: str | None = Field(None, description="the measure id that tuning optimises (default: the first)")
    tune_metric: str | None = Field(
        None, description="the metric tuning reads in place of the tuning measure's own, e.g. holdout_top1_error "
        "(training images never trained on: no rate is chosen on the split the verdicts read)"
    )
    expected_crossing: dict[str, float] = Field(
        {}, description="per crossing measure: the epochs its baseline needs (from probes), so that the budget "
        "can be checked to show the paper's number"
    )


class Claim(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    paper: Paper
    base: Overrides = Overrides()
    variants: dict[str, Overrides]
    measure: list[Measure] = Field(min_length=1)
    profiles: dict[str, Profile] = Field(min_length=1)
    notes: str = ""

    @property
    def paper_order(self) -> tuple[tuple[int, ...], bool, str]:
        """Where the claim sits in the paper: by section number, a doubt after the claim it doubts."""
        section = tuple(int(p) if p.isdigit() else 99 for p in self.paper.section.split("."))
        return section, self.id.startswith("doubt_"), self.id

    @field_validator("variants")
    @classmethod
    def _some_variant(cls, v: dict[str, Overrides]) -> dict[str, Overrides]:
        if not v:
            raise ValueError("a claim has at least one variant")
        return v

    @model_validator(mode="after")
    def _two_variants(self) -> Claim:
        """Two variants to compare, unless every measure reads one variant: its seeds together (ensembles)
        or two metrics of each of its runs (ten crops against the centre crop)."""
        one_variant = [m.kind == "ensemble" or (m.baseline_metric not in (None, m.metric)) for m in self.measure]
        if len(self.variants) < 2 and not all(one_variant):
            raise ValueError("variants: a claim compares at least two variants (one only when every measure "
                             "is an ensemble of its seeds or compares two metrics of each run)")
        return self

    def tuning_measure(self, profile: str) -> Measure:
        """The measure a profile's learning-rate grid optimises."""
        wanted = self.profiles[profile].tune_on
        return next((m for m in self.measure if m.id == wanted), self.measure[0])

    def paper_number(self, measure: Measure, profile: str) -> float | None:
        """The paper's number to set beside this measure at this profile (the profile's, else the measure's)."""
        numbers = self.profiles[profile].paper
        return numbers[measure.id] if measure.id in numbers else measure.paper

    def smallest_effect(self, measure: Measure, profile: str) -> float:
        """The smallest effect that matters for this measure at this profile (the profile's, else the measure's)."""
        return self.profiles[profile].smallest_effect.get(measure.id, measure.smallest_effect)

    def default_profile(self) -> str:
        return "smoke" if "smoke" in self.profiles else next(iter(self.profiles))

    def run_overrides(self, profile: str, variant: str) -> dict[str, Any]:
        """base ← profile ← variant ← profile's variant overrides, as one nested dict."""
        prof = self.profiles[profile]
        merged: dict[str, Any] = {}
        for layer in (self.base, prof, self.variants[variant], prof.variants.get(variant, Overrides())):
            merged = deep_merge(merged, layer.as_dict())
        return merged


# ---------------------------------------------------------------- loading with line numbers

_locate = locate   # the names the rest of the package imports from here


def _first_error(exc: ValidationError) -> dict[str, Any]:
    """The most useful error first: a misspelt key explains the 'missing' one it causes."""
    errors = exc.errors()
    return next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])


def _message(err: dict[str, Any]) -> str:
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    return msg.removeprefix("Value error, ")


_read_yaml = read_yaml


def _validate(model: type[BaseModel], raw: Any, path: Path, index: dict, where: tuple[Any, ...] = ()) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = _first_error(exc)
        loc = where + tuple(err["loc"])
        key = ".".join(str(p) for p in loc) or "(top)"
        raise SpecError(f"{path}:{_locate(index, loc)}: {key}: {_message(err)}") from None


PRESETS = Path(__file__).resolve().parent / "presets"  # shipped presets (package data)


def find_preset(claim_path: Path, name: str) -> Path | None:
    """``profiles/NAME.yaml`` beside the claim file (a user's own, first), else the shipped preset."""
    if not name or Path(name).name != name or name.startswith("."):
        return None  # a bare name, never a path
    for path in (claim_path.parent / "profiles" / f"{name}.yaml", PRESETS / f"{name}.yaml"):
        if path.is_file():
            return path
    return None


def load_preset(claim_path: Path, name: str, profile: str, line: int) -> dict[str, Any]:
    """The profile ``profile`` of the preset ``NAME`` (``extends: NAME``), found by :func:`find_preset`."""
    path = find_preset(claim_path, name)
    if path is None:
        shipped = ", ".join(sorted(p.stem for p in PRESETS.glob("*.yaml"))) or "none"
        raise SpecError(f"{claim_path}:{line}: profiles.{profile}.extends: no preset {name!r} "
                        f"(not in {claim_path.parent / 'profiles'}; shipped presets: {shipped})")
    raw, index = _read_yaml(path)
    if not isinstance(raw, dict) or profile not in raw:
        known = ", ".join(map(str, raw)) if isinstance(raw, dict) else "none"
        raise SpecError(f"{claim_path}:{line}: profiles.{profile}.extends: preset {name!r} ({path}) has no "
                        f"profile {profile!r} (it has {known})")
    checked = _validate(Profile, raw[profile], path, index, (profile,))
    _check_overrides_of([((profile,), checked)], path, index)
    return raw[profile]


def load_claim(path: str | Path) -> Claim:
    """Parse and check one claim file; raise SpecError naming file, line and key."""
    path = Path(path)
    raw, index = _read_yaml(path)
    if not isinstance(raw, dict):
        raise SpecError(f"{path}:1: a claim file is a mapping of keys (id, title, paper, ...)")
    profiles = raw.get("profiles")
    if isinstance(profiles, dict):
        for name, own in profiles.items():
            if isinstance(own, dict) and isinstance(own.get("extends"), str):
                preset = load_preset(path, own["extends"], name, index.get(("profiles", name, "extends"), 1))
                profiles[name] = deep_merge(preset, own)
    claim = _validate(Claim, raw, path, index)
    _check_overrides(claim, path, index)
    from audit.claim_checks import check_claim  # checks over the whole claim (those modules import this one)
    from audit.protocol import check_protocol

    check_claim(claim, path, index)
    check_protocol(claim, path, index)
    return claim


def _check_overrides(claim: Claim, path: Path, index: dict) -> None:
    """Every override must merge into a valid RunConfig: unknown keys and bad values fail here."""
    sections: list[tuple[tuple[Any, ...], Overrides]] = [(("base",), claim.base)]
    sections += [(("variants", n), v) for n, v in claim.variants.items()]
    for pname, prof in claim.profiles.items():
        sections.append((("profiles", pname), prof))
        sections += [(("profiles", pname, "variants", n), v) for n, v in prof.variants.items()]
    _check_overrides_of(sections, path, index)


def _check_overrides_of(sections: list[tuple[tuple[Any, ...], Overrides]], path: Path, index: dict) -> None:
    for where, overrides in sections:
        probe = deep_merge({"data": {"path": "."}}, overrides.as_dict())
        _validate(RunConfig, probe, path, index, where)


def find_claim_files(paths: list[str | Path]) -> list[Path]:
    """Expand directories to their *.yaml files; keep explicit files as given."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml"))
        else:
            files.append(p)
    return files


def load_claims(paths: list[str | Path]) -> list[Claim]:
    claims = [load_claim(f) for f in find_claim_files(paths)]
    seen: dict[str, int] = {}
    for c in claims:
        seen[c.id] = seen.get(c.id, 0) + 1
    dupes = [k for k, n in seen.items() if n > 1]
    if dupes:
        raise SpecError(f"claim id {dupes[0]!r} is defined twice")
    return claims
