"""Networks of the audit: the paper's two-tower AlexNet and two CIFAR-10 nets (docs/paper.md §2, §6)."""

from __future__ import annotations

from torch import nn

from audit.config import ModelConfig

from .alexnet import AlexNet
from .cifar import CifarFig1, CifarLRN
from .init import override_layer_stds
from .lrn import LocalResponseNorm, local_response_norm

__all__ = ["AlexNet", "CifarFig1", "CifarLRN", "LocalResponseNorm", "build_model", "local_response_norm"]


def build_model(cfg: ModelConfig, num_classes: int) -> nn.Module:
    """The network ``cfg`` describes, with ``num_classes`` outputs.

    ``num_classes`` is the data set's class count. ``cfg.num_classes``, when set, is a statement
    about the same number: a mismatch is a configuration error (ValueError), never silently resolved.
    """
    if cfg.num_classes is not None and cfg.num_classes != num_classes:
        raise ValueError(f"model.num_classes is {cfg.num_classes} but the data has {num_classes} classes")
    builders = {"alexnet": AlexNet, "cifar_fig1": CifarFig1, "cifar_lrn": CifarLRN}
    if cfg.arch not in builders:
        raise ValueError(f"unknown arch {cfg.arch!r}")
    model = builders[cfg.arch].from_config(cfg, num_classes)
    if cfg.init_std_by_layer:
        override_layer_stds(model, cfg.init_std_by_layer)
    return model
