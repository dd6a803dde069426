"""``alexnet``: the paper's two-tower AlexNet (Krizhevsky, Sutskever & Hinton 2012; docs/paper.md §2), with knobs.

At the defaults (224 px, 1000 classes) this is the network of the paper's Figure 2 on one device:

    conv1 96 11x11/4 (pad 2, as torchvision: 55x55 maps) -> act -> LRN -> max-pool 3/2
    conv2 256 5x5 pad 2, groups=2                         -> act -> LRN -> max-pool 3/2
    conv3 384 3x3 pad 1, cross-connected (both towers)    -> act
    conv4 384 3x3 pad 1, groups=2                         -> act
    conv5 256 3x3 pad 1, groups=2                         -> act -> max-pool 3/2
    fc6 4096 -> act -> dropout -> fc7 4096 -> act -> dropout -> fc8 classes

60,965,224 parameters (62,378,344 with ``towers=1``). Dropout acts on the *outputs* of fc6 and fc7,
as the paper says (torchvision drops the inputs of fc6 and fc7 instead).

Towers: ``conv1`` output channels ``0 .. C/2-1`` are tower A, ``C/2 .. C-1`` tower B (a grouped
convolution with groups=2 splits its channels the same way), so ``model.conv1.weight[:C//2]`` are
tower A's kernels. LRN normalises each tower's maps on their own (``groups=2``; the paper's GPUs
each normalised the maps they held), so nothing crosses between towers before conv3 (tested). With
``towers=1`` there are no groups anywhere (the split is then arbitrary).

On the CPU ``forward`` runs the feature layers in channels_last (``cpu_channels_last=True``): the
same function, measured 1.1-1.7x less CPU time per image here (oneDNN's pooling and grouped convs are
much faster in NHWC). Other devices get the input's own memory format.

Knobs (``ModelConfig``): activation, LRN on/off and its alpha convention, overlapping (3/2) or
non-overlapping (2/2) pooling, dropout p, ``remove_conv`` 2-5, ``conv6``, towers, width (every conv
channel count times ``width``, rounded to an even number so towers split evenly; fc width
``fc_width`` or ``round(4096 * width)``), input size and classes. ``conv_channels`` (not a config
knob) gives another network its own channel counts: ``alexnet_one_gpu`` is built so.

- Pooling: both kinds give ``floor(n / 2)`` maps from ``n``, so the two nets have the same map sizes
  and parameter counts at every input size, as the paper's comparison says ("output of equivalent
  dimensions"). Overlapping pooling rounds up (``ceil_mode``, as Caffe and cuda-convnet do): on the
  odd maps of 64, 128 and 224 px inputs that changes nothing; on an even map the last window hangs
  one pixel over the edge instead of dropping a row (28 px: 14/7/3 maps, not 13/6/2).
- Removals: the removed layer's successor reads its predecessor's maps, and every other layer keeps
  its own grouping, so each removal is a different network:

  - ``remove_conv=2``: conv3 reads conv1's pooled maps (conv2's LRN goes with it; its pooling stays,
    so the map sizes do not change).
  - ``remove_conv=3``: conv3 is the only conv layer where the towers talk to each other. Without it
    conv4 and conv5 stay grouped and the towers first meet at fc6; so this also tests the paper's
    cross-tower connection.
  - ``remove_conv=4``: conv5 reads conv3's joined maps, still grouped.
  - ``remove_conv=5``: pool5 and fc6 read conv4's maps, so fc6 has 1.5x the inputs (384 maps, not
    256): the same rule as the other removals, at the price of a wider fc6.
- ``conv6``: the paper's CNN* (§6) had "an extra sixth convolutional layer over the last pooling
  layer": here conv6 3x3 pad 1, grouped like conv4 and conv5, as many maps as it reads, on pool5's
  maps, so fc6 is unchanged. The paper gives no size for it; this is our reading.
- Small inputs (``input_size < 56``): a small stem, conv1 5x5 pad 2 with stride 1 (input <= 48 px)
  or 2 (otherwise); everything else as above. From 56 px (Tiny ImageNet's crops) up conv1 is the
  paper's 11x11/4. ``stem`` sets conv1's geometry explicitly. The fc6 input size follows from the
  actual maps.
- Init ``paper``: weights N(0, init_std), biases ``bias_one`` in conv2, conv4, conv5, conv6, fc6, fc7
  and 0 elsewhere (a layer keeps its own rule when a neighbour is removed; conv6 gets conv4's and
  conv5's). ``torch``: PyTorch's default; ``kaiming``: He-normal weights, zero biases (see
  ``audit/models/init.py``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import Tensor, nn

from audit.config import ModelConfig

from ..init import kaiming_init
from ..lrn import LocalResponseNorm
from ..registry import register_model

# The paper's sizes at width 1.
CONV_CHANNELS = (96, 256, 384, 384, 256)
FC_WIDTH = 4096
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4, 0.75, 2.0
# Layers whose biases the paper sets to 1 (the rest start at 0); conv6 (CNN*) follows conv4 and conv5.
BIAS_ONE_LAYERS = ("conv2", "conv4", "conv5", "conv6", "fc6", "fc7")
REMOVABLE = (2, 3, 4, 5)


def even_channels(channels: int, width: float) -> int:
    """``channels * width`` rounded to an even number (at least 2), so two towers split evenly."""
    return max(2, 2 * round(channels * width / 2))


def activation_layer(name: str) -> nn.Module:
    """ReLU in place (saves a full-size temporary per layer) or tanh."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "tanh":
        return nn.Tanh()
    raise ValueError(f"unknown activation {name!r}")


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Spatial size after a convolution or pooling (floor mode)."""
    return (size + 2 * padding - kernel) // stride + 1


def pool_layer(pooling: str) -> nn.MaxPool2d:
    """3/2 rounding up or 2/2: both map ``n`` to ``n // 2``, so the two nets stay the same size."""
    if pooling == "overlapping":
        return nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)
    if pooling == "non_overlapping":
        return nn.MaxPool2d(kernel_size=2, stride=2)
    raise ValueError(f"unknown pooling {pooling!r}")


def stem_geometry(input_size: int) -> tuple[int, int, int]:
    """conv1's (kernel, stride, padding): the paper's 11/4 (pad 2) from 56 px up, else a small stem.

    At 56 and 64 px the paper's stem still leaves a 1x1 map after pool5 (56 → 13 → 6 → 3 → 1, 64 → 15
    → 7 → 3 → 1) and costs about a fifth of a 5x5 stride-2 stem; below 56 px a 5x5 stem (stride 1 up
    to 48 px, else 2) keeps the three poolings possible.
    """
    if input_size >= 56:
        return 11, 4, 2
    return 5, (1 if input_size <= 48 else 2), 2


@register_model("alexnet")
class AlexNet(nn.Module):
    """Two-tower AlexNet; build it from a ``ModelConfig`` with :meth:`from_config`."""

    def __init__(
        self,
        num_classes: int = 1000,
        *,
        activation: str = "relu",
        lrn: bool = True,
        lrn_alpha_over_n: bool = True,
        pooling: str = "overlapping",
        dropout: float = 0.5,
        remove_conv: int | None = None,
        conv6: bool = False,
        towers: int = 2,
        width: float = 1.0,
        fc_width: int | None = None,
        input_size: int = 224,
        stem: tuple[int, int, int] | None = None,
        init: str = "paper",
        init_std: float = 0.01,
        bias_one: float = 1.0,
        cpu_channels_last: bool = True,
        conv_channels: tuple[int, int, int, int, int] = CONV_CHANNELS,
    ) -> None:
        super().__init__()
        if towers not in (1, 2):
            raise ValueError(f"towers must be 1 or 2, got {towers}")
        if remove_conv is not None and remove_conv not in REMOVABLE:
            raise ValueError(f"remove_conv must be None or one of {REMOVABLE}, got {remove_conv}")
        c1, c2, c3, c4, c5 = (even_channels(c, width) for c in conv_channels)
        fc = fc_width or max(1, round(FC_WIDTH * width))
        groups = towers
        pool_layer(pooling)  # fails early on an unknown kind
        self.towers = towers
        self.cpu_channels_last = cpu_channels_last

        def norm() -> nn.Module:
            if not lrn:
                return nn.Identity()
            return LocalResponseNorm(LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K, lrn_alpha_over_n, groups=towers)

        def act(n: int) -> tuple[str, nn.Module]:
            return f"act{n}", activation_layer(activation)

        kernel, stride, padding = stem or stem_geometry(input_size)
        # conv1: outputs 0..c1/2-1 feed tower A, the rest tower B (groups=2 in conv2 splits them so).
        layers: list[tuple[str, nn.Module]] = [
            ("conv1", nn.Conv2d(3, c1, kernel, stride=stride, padding=padding)),
            act(1), ("norm1", norm()), ("pool1", pool_layer(pooling)),
        ]
        maps = c1  # channels reaching the next layer: a removed layer's successor reads its predecessor's
        if remove_conv != 2:
            layers += [("conv2", nn.Conv2d(maps, c2, 5, padding=2, groups=groups)), act(2), ("norm2", norm())]
            maps = c2
        layers.append(("pool2", pool_layer(pooling)))
        # conv3 is the one conv layer that reads both towers; conv4, conv5 (and conv6) stay per tower.
        for n, out, joined in ((3, c3, True), (4, c4, False), (5, c5, False)):
            if remove_conv != n:
                layers += [(f"conv{n}", nn.Conv2d(maps, out, 3, padding=1, groups=1 if joined else groups)), act(n)]
                maps = out
        layers.append(("pool5", pool_layer(pooling)))
        if conv6:  # CNN*: over the last pooling layer, same maps in and out, so fc6 keeps its size
            layers += [("conv6", nn.Conv2d(maps, maps, 3, padding=1, groups=groups)), act(6)]
        self.features = nn.Sequential(OrderedDict(layers))

        side = conv_out(input_size, kernel, stride, padding)
        for _ in range(3):  # pool1, pool2, pool5 (n -> n // 2); the 3x3 and 5x5 convs keep the size
            side //= 2
        if side < 1:
            raise ValueError(f"input_size {input_size} is too small for this network")
        self.feature_shape = (maps, side, side)
        self.classifier = nn.Sequential(OrderedDict([
            ("fc6", nn.Linear(maps * side * side, fc)),
            ("act6", activation_layer(activation)), ("drop6", nn.Dropout(dropout)),
            ("fc7", nn.Linear(fc, fc)),
            ("act7", activation_layer(activation)), ("drop7", nn.Dropout(dropout)),
            ("fc8", nn.Linear(fc, num_classes)),
        ]))
        if init == "paper":
            self.paper_init(init_std, bias_one)
        elif init == "kaiming":
            kaiming_init(self)
        elif init != "torch":
            raise ValueError(f"unknown init {init!r}")

    @classmethod
    def from_config(cls, cfg: ModelConfig, num_classes: int, **fixed: Any) -> AlexNet:
        """The net ``cfg`` describes; ``fixed`` are a registered variant's own arguments (``conv_channels``)."""
        return cls(
            num_classes,
            activation=cfg.activation,
            lrn=cfg.lrn,
            lrn_alpha_over_n=cfg.lrn_alpha_over_n,
            pooling=cfg.pooling,
            dropout=cfg.dropout,
            remove_conv=cfg.remove_conv,
            conv6=cfg.conv6,
            towers=cfg.towers,
            width=cfg.width,
            fc_width=cfg.fc_width,
            input_size=cfg.input_size,
            init=cfg.init,
            init_std=cfg.init_std,
            bias_one=cfg.bias_one,
            **fixed,
        )

    @property
    def conv1(self) -> nn.Conv2d:
        """The first layer; outputs ``0 .. C/2-1`` are tower A, ``C/2 ..`` tower B."""
        return self.features.conv1

    def bias_constants(self, bias_one: float = 1.0) -> dict[str, float]:
        """Each conv and fc layer's starting bias under the paper's init, in layer order (§5)."""
        return {name: bias_one if name in BIAS_ONE_LAYERS else 0.0
                for name, module in [*self.features.named_children(), *self.classifier.named_children()]
                if isinstance(module, (nn.Conv2d, nn.Linear))}

    def paper_init(self, std: float = 0.01, bias_one: float = 1.0) -> None:
        """Weights N(0, std); biases from :meth:`bias_constants` (§5)."""
        layers = dict([*self.features.named_children(), *self.classifier.named_children()])
        for name, bias in self.bias_constants(bias_one).items():
            nn.init.normal_(layers[name].weight, 0.0, std)
            nn.init.constant_(layers[name].bias, bias)

    def forward_features(self, x: Tensor) -> Tensor:
        """The pooled conv5 maps, before flattening."""
        if self.cpu_channels_last and x.device.type == "cpu" and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.forward_features(x).flatten(1))
