"""He (kaiming) initialisation: the option for narrow or small-input nets that stall with the paper's."""

from __future__ import annotations

from torch import nn


def kaiming_init(module: nn.Module) -> None:
    """He-normal weights (fan-in, ReLU gain) and zero biases on every conv and linear layer.

    The paper's N(0, 0.01) with bias 1 was tuned for the full-width net on 0–255 inputs; narrow
    variants at small sizes stayed at chance with it (docs/paper.md §8), so profiles may choose this.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
