"""``cifar_fig1_bn``: the Figure-1 net (``cifar_fig1``) with batch normalisation after each convolution.

    conv 32 5x5 pad 2 -> BN -> act -> max-pool 3/2 -> conv 32 5x5 pad 2 -> BN -> act -> avg-pool 3/2
    -> conv 64 5x5 pad 2 -> BN -> act -> avg-pool 3/2 -> fc10

For the modern counter-claim that ReLU's speed-up over tanh shrinks once training is set up as today
(Ioffe & Szegedy 2015 normalise each unit's input before its non-linearity, so tanh no longer sits in
its saturated tails). BN comes before the activation, as Ioffe & Szegedy place it, and the
convolutions have no bias (BN's shift replaces it). No LRN: BN takes its place. Everything else,
including ``width`` and ``init`` on the conv and fc weights, is ``cifar_fig1``'s.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from audit.config import ModelConfig

from ..cifar import CifarNet, init_weights, pool_out, scaled_channels
from ..registry import register_model
from .alexnet import activation_layer


@register_model("cifar_fig1_bn")
class CifarFig1BN(CifarNet):
    """conv32-BN-maxpool-conv32-BN-avgpool-conv64-BN-avgpool-fc10; see the module docstring."""

    def __init__(self, num_classes: int = 10, *, activation: str = "relu", width: float = 1.0,
                 input_size: int = 32, init: str = "torch", init_std: float = 0.01) -> None:
        super().__init__()
        c1, c2, c3 = (scaled_channels(c, width) for c in (32, 32, 64))

        def block(n: int, cin: int, cout: int) -> list[tuple[str, nn.Module]]:
            return [(f"conv{n}", nn.Conv2d(cin, cout, 5, padding=2, bias=False)), (f"bn{n}", nn.BatchNorm2d(cout)),
                    (f"act{n}", activation_layer(activation))]

        self.features = nn.Sequential(OrderedDict([
            *block(1, 3, c1), ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)),
            *block(2, c1, c2), ("pool2", nn.AvgPool2d(3, 2, ceil_mode=True)),
            *block(3, c2, c3), ("pool3", nn.AvgPool2d(3, 2, ceil_mode=True)),
        ]))
        side = pool_out(pool_out(pool_out(input_size)))
        self.feature_shape = (c3, side, side)
        self.classifier = nn.Sequential(OrderedDict([("fc10", nn.Linear(c3 * side * side, num_classes))]))
        init_weights(self, init, init_std)

    @classmethod
    def from_config(cls, cfg: ModelConfig, num_classes: int) -> CifarFig1BN:
        if cfg.lrn:
            raise ValueError("cifar_fig1_bn has batch norm in LRN's place: set model.lrn: false")
        return cls(num_classes, activation=cfg.activation, width=cfg.width, input_size=cfg.input_size,
                   init=cfg.init, init_std=cfg.init_std)
