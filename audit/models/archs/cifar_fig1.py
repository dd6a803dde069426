"""``cifar_fig1``: the four-weight-layer CIFAR-10 net we use for Figure 1 (ReLU vs tanh; docs/paper.md §6).

    conv 32 5x5 pad 2 -> act -> max-pool 3/2 [-> LRN] -> conv 32 5x5 pad 2 -> act [-> LRN]
    -> avg-pool 3/2 -> conv 64 5x5 pad 2 -> act -> avg-pool 3/2 -> fc10

The LRN layers (placed as in cuda-convnet's layers-18pct) exist only with ``lrn=True``; the
Figure-1 claim is about the net without them, so its claim file turns them off. What both CIFAR-10
nets share (LRN, pooling, width, init) is in ``audit/models/cifar.py``.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..cifar import CifarNet, init_weights, norm_layer, pool_out, scaled_channels
from ..registry import register_model
from .alexnet import activation_layer


@register_model("cifar_fig1")
class CifarFig1(CifarNet):
    """conv32-maxpool-conv32-avgpool-conv64-avgpool-fc10; see the module docstring."""

    def __init__(
        self,
        num_classes: int = 10,
        *,
        activation: str = "relu",
        lrn: bool = False,
        lrn_alpha_over_n: bool = True,
        width: float = 1.0,
        input_size: int = 32,
        init: str = "torch",
        init_std: float = 0.01,
    ) -> None:
        super().__init__()
        c1, c2, c3 = (scaled_channels(c, width) for c in (32, 32, 64))
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, c1, 5, padding=2)), ("act1", activation_layer(activation)),
            ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)), ("norm1", norm_layer(lrn, lrn_alpha_over_n)),
            ("conv2", nn.Conv2d(c1, c2, 5, padding=2)), ("act2", activation_layer(activation)),
            ("norm2", norm_layer(lrn, lrn_alpha_over_n)), ("pool2", nn.AvgPool2d(3, 2, ceil_mode=True)),
            ("conv3", nn.Conv2d(c2, c3, 5, padding=2)), ("act3", activation_layer(activation)),
            ("pool3", nn.AvgPool2d(3, 2, ceil_mode=True)),
        ]))
        side = pool_out(pool_out(pool_out(input_size)))
        self.feature_shape = (c3, side, side)
        self.classifier = nn.Sequential(OrderedDict([("fc10", nn.Linear(c3 * side * side, num_classes))]))
        init_weights(self, init, init_std)
