"""Design fingerprints: two variants of one claim that train the same network the same way are one experiment.

The plan already refuses variants that resolve to the same RunConfig. This catches what a config
hash cannot see: different settings that build the same network with the same starting weights and
train it the same way (``remove_conv: 3`` and ``4`` once built the same net). A fingerprint is the
network's structure (every leaf module's type and settings, in order, without layer names), its
initialisation, and the rest of the RunConfig; the networks are built on PyTorch's meta device, so
even the full-size net costs milliseconds and no memory.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from torch import nn

from audit.config import DataConfig, RunConfig
from audit.data.load import embedded_classes
from audit.spec import Claim, SpecError

PLACEHOLDER_DATA = "/data"  # stands for --data when a profile needs it: it is the same for every variant


def class_count(data: DataConfig) -> int:
    """The number of classes the data config selects, when it says (else ILSVRC's 1000)."""
    if isinstance(data.classes, list):
        return len(data.classes)
    if isinstance(data.classes, int):
        return data.classes
    if data.source == "embedded":
        return embedded_classes()
    return data.synthetic.classes if data.source == "synthetic" else 1000


def structure(model: nn.Module) -> list[str]:
    """Every leaf module as ``Type(settings)``, in order; names left out, so a renamed layer is the same layer."""
    return [f"{type(m).__name__}({m.extra_repr()})" for m in model.modules() if not list(m.children())]


def init_key(model: nn.Module, config: RunConfig) -> list[Any]:
    """What decides the starting weights beyond the structure and the seed."""
    m = config.model
    if m.init != "paper":
        return [m.init]  # torch and kaiming: fixed by each layer's shape
    constants = getattr(model, "bias_constants", None)  # the two-tower AlexNet's per-layer biases
    return ["paper", m.init_std, sorted((m.init_std_by_layer or {}).items()),
            list(constants(m.bias_one).values()) if constants else "zero biases"]


def fingerprint(config: RunConfig, parent: str | None = None) -> str:
    """A hash of network structure, initialisation and training; ``parent`` is the init_from run's fingerprint."""
    from audit.models import build_model

    # init "torch" builds the same layers; it only spares normal_ on the meta device (seconds on first use)
    with torch.device("meta"):
        model = build_model(config.model.model_copy(update={"init": "torch", "init_std_by_layer": None}),
                            config.model.num_classes or class_count(config.data))
    rest = config.model_dump(mode="json", exclude={"model", "init_from"})
    key = {"structure": structure(model), "init": init_key(model, config),
           "input_size": config.model.input_size,  # also sets the data's stored size when data.crop is unset
           "run": rest, "init_from": parent}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def variant_configs(claim: Claim, profile: str, completions: dict[str, Any] | None = None) -> dict[str, RunConfig]:
    """Each variant's seed-0 config at ``profile`` (first learning rate of a grid), --data a placeholder.

    ``completions``: per-variant overrides a user adds to the claim file before running (a second
    data set's path).
    """
    from audit.plan import resolve_with, variant_order

    out: dict[str, RunConfig] = {}
    for variant in variant_order(claim):
        grid = claim.profiles[profile].lr_grid.get(variant) or [None]
        out[variant] = resolve_with(claim, profile, variant, 0, grid[0], {"data": {"path": PLACEHOLDER_DATA}},
                                    (completions or {}).get(variant))
    return out


def variant_fingerprints(claim: Claim, profile: str, completions: dict[str, Any] | None = None) -> dict[str, str]:
    """Each variant's fingerprint at ``profile``; a fine-tuned variant's includes its parent's."""
    configs = variant_configs(claim, profile, completions)
    prints: dict[str, str] = {}
    for variant, config in configs.items():
        parent = claim.variants[variant].init_from
        prints[variant] = fingerprint(config, prints[parent] if parent else None)
    return prints


def same_designs(claim: Claim, profile: str, completions: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """Pairs of variants with one fingerprint: the same experiment counted twice."""
    seen: dict[str, str] = {}
    pairs = []
    for variant, key in variant_fingerprints(claim, profile, completions).items():
        if key in seen:
            pairs.append((seen[key], variant))
        seen.setdefault(key, variant)
    return pairs


def check_designs(claim: Claim) -> None:
    """SpecError when two variants set different configs that still train the same network the same way.

    Variants whose configs are identical are the plan's to refuse (``audit plan``): a profile may
    still be waiting for a path the user adds to the claim file.
    """
    for profile in claim.profiles:
        configs = variant_configs(claim, profile)
        for a, b in same_designs(claim, profile):
            if configs[a] != configs[b]:
                raise SpecError(f"claim {claim.id}, profile {profile}: variants {a} and {b} differ in their settings "
                                "but build the same network with the same initialisation and training, so one "
                                f"experiment would count twice: change variants.{b} so that the network (or its "
                                "training) differs")
