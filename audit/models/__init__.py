"""Networks of the audit: the paper's two-tower AlexNet and two CIFAR-10 nets (docs/paper.md §2, §6).

Each network is one module of ``archs/``, registered under its ``model.arch`` (``registry``);
``build_model`` builds the one a ModelConfig names.
"""

from __future__ import annotations

from .archs.alexnet import AlexNet
from .archs.cifar_fig1 import CifarFig1
from .archs.cifar_lrn import CifarLRN
from .lrn import LocalResponseNorm, local_response_norm
from .registry import create_model, register_model, registered_models

build_model = create_model  # the name the rest of the package builds networks by

__all__ = ["AlexNet", "CifarFig1", "CifarLRN", "LocalResponseNorm", "build_model", "create_model",
           "local_response_norm", "register_model", "registered_models"]
