"""Every claim's variants are distinct experiments, and the networks they name build at every profile.

Two variants that build the same network, start from the same weights and train the same way would
count one experiment twice (issue 19: "without conv3" and "without conv4" were one network). The
networks are fingerprinted on PyTorch's meta device (audit.designs), so even the 224-px nets cost
milliseconds.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from audit.cli import main
from audit.config import TrainConfig
from audit.data.sources import list_ilsvrc2012
from audit.designs import same_designs, variant_configs
from audit.models import AlexNet, build_model
from audit.plan import build_plan
from audit.spec import SpecError, load_claim, load_claims

from .conftest import REPO
from .ilsvrc_tree import make_ilsvrc_tree

CLAIMS = REPO / "claims"
# What a user adds to a claim file before the profile can run: full_imagenet's larger set at `full`.
# Without it the plan refuses (test_full_imagenet_needs_its_own_larger_set).
COMPLETIONS = {("full_imagenet", "full"): {v: {"data": {"path": "/the/larger/set"}}
                                           for v in ("pretrain", "pretrain_conv6")}}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_no_two_variants_of_a_claim_are_one_experiment() -> None:
    checked = 0
    for claim in load_claims([CLAIMS]):
        for profile in claim.profiles:
            assert same_designs(claim, profile, COMPLETIONS.get((claim.id, profile))) == [], (claim.id, profile)
            checked += len(claim.variants)
    assert checked > 60  # every variant of every claim at every profile


TWINS = """
id: twins
title: LRN's alpha convention matters
paper: {section: "3.3", quote: "k = 2, n = 5, alpha = 1e-4 and beta = 0.75"}
variants:
  divided: {model: {lrn: false}}
  literal: {model: {lrn: false, lrn_alpha_over_n: false}}
  {extra}
measure:
  - {id: top1, treatment: literal, baseline: divided, expect: increase, smallest_effect: 0.5}
profiles:
  tiny:
    scientific: false
    seeds: 1
    model: {width: 0.125, fc_width: 32, input_size: 32, init: kaiming}
    train: {epochs: 1, lr: 0.01}
"""


def write_twins(folder: Path, extra: str = "") -> Path:
    path = folder / "twins.yaml"
    path.write_text(textwrap.dedent(TWINS).replace("{extra}", extra))
    return path


def test_settings_that_change_no_network_are_caught(tmp_path: Path) -> None:
    """Without LRN its alpha convention does nothing: different configs, one network, one experiment."""
    claim = load_claim(write_twins(tmp_path))
    assert same_designs(claim, "tiny") == [("divided", "literal")]
    configs = variant_configs(claim, "tiny")
    torch.manual_seed(0)
    a = build_model(configs["divided"].model, 10)
    torch.manual_seed(0)
    b = build_model(configs["literal"].model, 10)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert CliRunner().invoke(main, ["validate", str(tmp_path / "twins.yaml")]).exit_code == 0   # static checks pass
    for command in (["validate", "--networks"], ["plan"]):   # building the networks finds the twins
        result = CliRunner().invoke(main, [*command, str(tmp_path / "twins.yaml")])
        assert result.exit_code == 2, result.output
        assert "variants divided and literal differ in their settings but build the same network" in result.output


def test_the_plan_refuses_two_variants_that_are_one_run(tmp_path: Path) -> None:
    """Identical configs: the plan would silently merge them; it names the claim, the pair and the fix."""
    same_lr = "again: {model: {lrn: false}, train: {lr: 0.01}}"
    claim = load_claim(write_twins(tmp_path, same_lr))
    with pytest.raises(SpecError) as err:
        build_plan([claim], "tiny")
    assert str(err.value).startswith("claim twins, profile tiny: variants divided and again are the same run")
    assert "give variants.again or profiles.tiny.variants.again a setting that changes the run" in str(err.value)


def test_full_imagenet_needs_its_own_larger_set(workdir: Path) -> None:
    """At `full` pretrain has no data set of its own until the user names one; then it is its own run."""
    target = make_ilsvrc_tree(workdir / "ilsvrc2012", ["n01440764", "n01443537"])
    larger = make_ilsvrc_tree(workdir / "larger", ["n01440764", "n01443537", "n01484850"], seed=1)
    assert len(list_ilsvrc2012(str(larger)).classes) == 3  # a layout the data package reads
    runner = CliRunner()
    refused = runner.invoke(main, ["plan", str(CLAIMS / "full_imagenet.yaml"), "--profile", "full",
                                   "--data", str(target)])
    assert refused.exit_code == 2
    assert "variants scratch and pretrain are the same run" in refused.output
    assert "set profiles.full.variants.pretrain.data.path" in refused.output

    claims = workdir / "claims"   # outside the repository's claims/: `extends: alexnet` finds the shipped preset
    claims.mkdir()
    text = (CLAIMS / "full_imagenet.yaml").read_text()
    placeholder = "pretrain: &full_larger {data: {}}"
    assert placeholder in text  # one anchor serves pretrain and pretrain_conv6
    completed = claims / "full_imagenet.yaml"
    completed.write_text(text.replace(placeholder, f"pretrain: &full_larger {{data: {{path: {larger}}}}}"))
    result = runner.invoke(main, ["plan", str(completed), "--profile", "full", "--data", str(target), "--seeds", "1"])
    assert result.exit_code == 0, result.output
    assert "6 planned (claim, variant, seed) entries → 6 distinct runs" in result.output
    runs = {r.roles[0].variant: r.config for r in build_plan([load_claim(completed)], "full", 1, str(target)).ordered()}
    assert list(runs) == ["scratch", "pretrain", "finetune", "scratch_conv6", "pretrain_conv6", "finetune_conv6"]
    assert runs["pretrain"].data.path == runs["pretrain_conv6"].data.path == str(larger)
    assert runs["scratch"].data.path == runs["finetune"].data.path == str(target.resolve())
    assert runs["finetune"].init_from == runs["pretrain"].config_hash
    assert runs["finetune_conv6"].init_from == runs["pretrain_conv6"].config_hash
    assert [c.model.conv6 for c in runs.values()] == [False] * 3 + [True] * 3


def _steps_per_epoch(train: TrainConfig, classes: int, per_class: int) -> int:
    return classes * (per_class - train.holdout_per_class) // train.batch_size


def test_full_imagenet_scratch_gets_the_steps_of_both_stages() -> None:
    """The compute rule, where the file knows both sets' sizes (tiny: on the 100-class zip): scratch's steps are
    pretrain's and finetune's together, within one of scratch's epochs. A step is a batch of the images trained
    on (the held-out ones are not)."""
    claim = load_claim(CLAIMS / "full_imagenet.yaml")
    sizes = {"smoke": ((5, 64), (10, 70)), "cifar": ((5, 1000), (10, 5000)), "tiny": ((50, 256), (100, 500)),
             "imagenet": ((100, 500), (500, 500))}   # (classes, images per class) of the target and the larger set
    for profile, (target, larger) in sizes.items():
        c = variant_configs(claim, profile)
        steps = {v: c[v].train.epochs * _steps_per_epoch(c[v].train, *n)
                 for v, n in (("scratch", target), ("pretrain", larger), ("finetune", target))}
        one_epoch = _steps_per_epoch(c["scratch"].train, *target)
        assert abs(steps["scratch"] - steps["pretrain"] - steps["finetune"]) <= one_epoch, profile
        assert c["scratch_conv6"].train == c["scratch"].train and c["pretrain_conv6"].data == c["pretrain"].data


@pytest.mark.parametrize("claim_id", ["depth", "full_imagenet"])
def test_every_variant_runs_forward_at_every_profile(claim_id: str) -> None:
    """Narrowed (the shapes that matter here do not depend on width), at each profile's own input size."""
    claim = load_claim(CLAIMS / f"{claim_id}.yaml")
    for profile in claim.profiles:
        for variant, config in variant_configs(claim, profile, COMPLETIONS.get((claim_id, profile))).items():
            cfg = config.model.model_copy(update={"width": 0.125, "fc_width": 16})
            model = build_model(cfg, 10).eval()
            with torch.no_grad():
                out = model(torch.randn(1, 3, cfg.input_size, cfg.input_size))
            assert out.shape == (1, 10) and torch.isfinite(out).all(), (profile, variant)


def pool_maps(model: AlexNet, size: int) -> list[int]:
    """The side of the maps after each pooling layer, from a real forward pass."""
    sides: list[int] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: sides.append(out.shape[-1]))
             for m in model.features if isinstance(m, nn.MaxPool2d)]
    with torch.no_grad():
        model.eval()(torch.randn(1, 3, size, size))
    for h in hooks:
        h.remove()
    return sides


POOL_MAPS = {"smoke": [6, 3, 1], "cifar": [7, 3, 1], "tiny": [6, 3, 1], "imagenet": [15, 7, 3], "full": [27, 13, 6]}


@pytest.mark.parametrize("profile", POOL_MAPS)
def test_pooling_variants_have_equal_maps_and_parameters(profile: str) -> None:
    """§3.4 compares with 2/2 pooling "which produces output of equivalent dimensions": at every profile.

    ``smoke`` and ``tiny`` are 56-px inputs with the paper's 11x11/4 stem (13 px after conv1).
    """
    claim = load_claim(CLAIMS / "overlapping_pooling.yaml")
    models = {v: c.model.model_copy(update={"init": "torch"}) for v, c in variant_configs(claim, profile).items()}
    counts, maps = {}, {}
    for cfg in models.values():
        with torch.device("meta"):
            counts[cfg.pooling] = n_params(AlexNet(10, pooling=cfg.pooling, width=cfg.width, fc_width=cfg.fc_width,
                                            input_size=cfg.input_size, init="torch"))
        narrow = AlexNet(10, pooling=cfg.pooling, width=0.125, fc_width=8, input_size=cfg.input_size)
        maps[cfg.pooling] = pool_maps(narrow, cfg.input_size)
    assert set(counts) == {"overlapping", "non_overlapping"}
    assert counts["overlapping"] == counts["non_overlapping"], counts
    assert maps["overlapping"] == maps["non_overlapping"] == POOL_MAPS[profile]
