"""The model registry (as timm's ``register_model`` / ``create_model``): a network is a module, not a branch.

Each architecture is one module of ``audit.models.archs``, named as its ``model.arch``; its
``@register_model(name)`` files the builder here when the module is imported. ``create_model``
imports the module a config names on first use, so only the networks a run builds are loaded, and
``audit.config`` can list the names (``arch_names``) without importing any of them.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any, TypeVar

from torch import nn

from audit.config import ModelConfig, arch_names, check_arch

from . import archs
from .init import override_layer_stds

Builder = Callable[[ModelConfig, int], nn.Module]
Registrable = TypeVar("Registrable")  # a class with from_config, or a builder function: returned unchanged

_BUILDERS: dict[str, Builder] = {}


def _origin(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def register_model(name: str) -> Callable[[Registrable], Registrable]:
    """File a network under ``name``: a class with ``from_config(cfg, num_classes)``, or such a function.

    A name registered twice is an error: which network a run trains must never hang on import order.
    """
    def register(obj: Registrable) -> Registrable:
        if name in _BUILDERS:
            raise ValueError(f"model {name!r} is registered twice: by {_origin(_BUILDERS[name])} and by {_origin(obj)}")
        _BUILDERS[name] = getattr(obj, "from_config", obj)
        return obj

    return register


def _builder(name: str) -> Builder:
    """The builder registered as ``name``, importing ``audit.models.archs.<name>`` on first use."""
    if name not in _BUILDERS:
        import_module(f"{archs.__name__}.{check_arch(name)}")
    if name not in _BUILDERS:
        raise ValueError(f"{archs.__name__}.{name} registers no model {name!r}: its @register_model must be given "
                         "the module's name")
    return _BUILDERS[name]


def create_model(cfg: ModelConfig, num_classes: int) -> nn.Module:
    """The network ``cfg`` describes, with ``num_classes`` outputs.

    ``num_classes`` is the data set's class count. ``cfg.num_classes``, when set, is a statement
    about the same number: a mismatch is a configuration error (ValueError), never silently resolved.
    """
    if cfg.num_classes is not None and cfg.num_classes != num_classes:
        raise ValueError(f"model.num_classes is {cfg.num_classes} but the data has {num_classes} classes")
    model = _builder(cfg.arch)(cfg, num_classes)
    if cfg.init_std_by_layer:
        override_layer_stds(model, cfg.init_std_by_layer)
    return model


def registered_models() -> list[str]:
    """Every registered name, once every module of ``audit.models.archs`` is imported (so none is missed)."""
    for name in arch_names():
        import_module(f"{archs.__name__}.{name}")
    return sorted(_BUILDERS)
