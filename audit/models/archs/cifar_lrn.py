"""``cifar_lrn``: the CIFAR-10 net of the paper's LRN pair, cuda-convnet's layers-conv-local (docs/paper.md §6).

    conv 64 5x5 pad 2 -> act -> max-pool 3/2 -> LRN -> conv 64 5x5 pad 2 -> act -> LRN -> max-pool 3/2
    -> local 64 3x3 pad 1 -> act -> local 32 3x3 pad 1 -> act -> fc10

``lrn=False`` is the "without" net of the pair: both LRN layers become identities. What both
CIFAR-10 nets share (LRN, pooling, the locally connected layer, width, init) is in
``audit/models/cifar.py``.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..cifar import CifarNet, LocallyConnected2d, init_weights, norm_layer, pool_out, scaled_channels
from ..registry import register_model
from .alexnet import activation_layer


@register_model("cifar_lrn")
class CifarLRN(CifarNet):
    """conv64-pool-LRN-conv64-LRN-pool-local64-local32-fc10; see the module docstring."""

    def __init__(
        self,
        num_classes: int = 10,
        *,
        activation: str = "relu",
        lrn: bool = True,
        lrn_alpha_over_n: bool = True,
        width: float = 1.0,
        input_size: int = 24,
        init: str = "torch",
        init_std: float = 0.01,
    ) -> None:
        super().__init__()
        c1, c2, c3, c4 = (scaled_channels(c, width) for c in (64, 64, 64, 32))
        side = pool_out(pool_out(input_size))
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, c1, 5, padding=2)), ("act1", activation_layer(activation)),
            ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)), ("norm1", norm_layer(lrn, lrn_alpha_over_n)),
            ("conv2", nn.Conv2d(c1, c2, 5, padding=2)), ("act2", activation_layer(activation)),
            ("norm2", norm_layer(lrn, lrn_alpha_over_n)), ("pool2", nn.MaxPool2d(3, 2, ceil_mode=True)),
            ("local3", LocallyConnected2d(c2, c3, side, 3, padding=1)),
            ("act3", activation_layer(activation)),
            ("local4", LocallyConnected2d(c3, c4, side, 3, padding=1)),
            ("act4", activation_layer(activation)),
        ]))
        self.feature_shape = (c4, side, side)
        self.classifier = nn.Sequential(OrderedDict([("fc10", nn.Linear(c4 * side * side, num_classes))]))
        init_weights(self, init, init_std)
