"""The architectures: one module per network, named as its ``model.arch`` (docs/paper.md §2, §6).

A new network is a new module here whose class (with ``from_config(cfg, num_classes)``) or builder
function ``(cfg, num_classes) -> nn.Module`` is decorated ``@register_model("<module name>")``
(``audit.models.registry``); nothing else is edited. ``audit.config.arch_names`` lists these modules
without importing them, so checking a claim file never loads PyTorch, and
tests/test_registry.py builds each one at every claim profile that uses it.
"""
