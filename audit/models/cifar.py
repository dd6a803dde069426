"""The two CIFAR-10 nets of docs/paper.md §6, read from the authors' cuda-convnet configs.

- ``CifarFig1`` (``arch="cifar_fig1"``): the four-weight-layer net we use for Figure 1 (ReLU vs tanh):

      conv 32 5x5 pad 2 -> act -> max-pool 3/2 [-> LRN] -> conv 32 5x5 pad 2 -> act [-> LRN]
      -> avg-pool 3/2 -> conv 64 5x5 pad 2 -> act -> avg-pool 3/2 -> fc10

  The LRN layers (placed as in cuda-convnet's layers-18pct) exist only with ``lrn=True``; the
  Figure-1 claim is about the net without them, so its claim file should turn them off.
- ``CifarLRN`` (``arch="cifar_lrn"``): the net of the LRN pair (cuda-convnet's layers-conv-local):

      conv 64 5x5 pad 2 -> act -> max-pool 3/2 -> LRN -> conv 64 5x5 pad 2 -> act -> LRN -> max-pool 3/2
      -> local 64 3x3 pad 1 -> act -> local 32 3x3 pad 1 -> act -> fc10

  ``lrn=False`` is the "without" net of the pair: both LRN layers become identities.

LRN here is cuda-convnet's cross-map ``cmrnorm``: size 9, scale 0.001, pow 0.75, k=1, with the
scale divided by the size unless ``lrn_alpha_over_n=False``. Pooling uses ``ceil_mode=True``, which
is how cuda-convnet sizes its pooling outputs (32 -> 16 -> 8 -> 4, 24 -> 12 -> 6 -> 3), so both
nets take 24-px crops and full 32-px images. ``width`` multiplies every channel count.

Init: ``init="torch"`` is PyTorch's default (it trains out of the box; the natural choice for
these nets). ``init="paper"`` is the cuda-convnet style the authors used for them: every weight
N(0, init_std), every bias 0. The paper's bias-1 rule names AlexNet layers, so ``bias_one`` does
not apply here.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audit.config import ModelConfig

from .alexnet import activation_layer, conv_out
from .init import kaiming_init
from .lrn import LocalResponseNorm

CMRNORM_SIZE, CMRNORM_SCALE, CMRNORM_POW, CMRNORM_K = 9, 1e-3, 0.75, 1.0


def _channels(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def _pool_out(size: int) -> int:
    """Output size of a 3/2 pooling with ceil_mode=True (no padding)."""
    return math.ceil((size - 3) / 2) + 1


class LocallyConnected2d(nn.Module):
    """A convolution whose weights are not shared across positions (cuda-convnet's ``local`` layer).

    Weight ``[L, out, in*k*k]`` for the ``L = H_out*W_out`` positions, bias ``[out, H_out, W_out]``
    (unshared too). Computed as one batched matmul over positions: the patches are a strided view of
    the padded input, gathered once into [L, N, in*k*k] (faster here than ``F.unfold`` + einsum,
    whose backward copied per position), then ``baddbmm`` with the bias.
    """

    def __init__(
        self, in_channels: int, out_channels: int, in_size: int, kernel_size: int, padding: int = 0
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.padding = kernel_size, padding
        self.out_size = conv_out(in_size, kernel_size, 1, padding)
        if self.out_size < 1:
            raise ValueError(f"input {in_size} px is too small for a {kernel_size}x{kernel_size} local layer")
        positions = self.out_size * self.out_size
        fan_in = in_channels * kernel_size * kernel_size
        self.weight = nn.Parameter(torch.empty(positions, out_channels, fan_in))
        self.bias = nn.Parameter(torch.empty(out_channels, self.out_size, self.out_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's conv default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases."""
        bound = 1.0 / math.sqrt(self.weight.shape[-1])
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        n, k, side, positions = x.shape[0], self.kernel_size, self.out_size, self.out_size ** 2
        padded = F.pad(x, (self.padding,) * 4)
        patches = padded.unfold(2, k, 1).unfold(3, k, 1)  # [N, in, side, side, k, k], a view
        cols = patches.permute(2, 3, 0, 1, 4, 5).reshape(positions, n, -1)  # (in, ki, kj) order as unfold
        bias = self.bias.flatten(1).t().unsqueeze(1)  # [L, 1, out]
        out = torch.baddbmm(bias, cols, self.weight.transpose(1, 2))  # [L, N, out]
        return out.permute(1, 2, 0).reshape(n, self.out_channels, side, side)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"padding={self.padding}, out_size={self.out_size}"
        )


def _norm(lrn: bool, alpha_over_n: bool) -> nn.Module:
    if not lrn:
        return nn.Identity()
    return LocalResponseNorm(CMRNORM_SIZE, CMRNORM_SCALE, CMRNORM_POW, CMRNORM_K, alpha_over_n)


def _init(module: nn.Module, init: str, std: float) -> None:
    if init == "torch":
        return
    if init == "kaiming":
        kaiming_init(module)
        return
    if init != "paper":
        raise ValueError(f"unknown init {init!r}")
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear, LocallyConnected2d)):
            nn.init.normal_(layer.weight, 0.0, std)
            nn.init.zeros_(layer.bias)


class _CifarNet(nn.Module):
    """Shared plumbing: ``features`` then a flatten and ``classifier``, like torchvision."""

    features: nn.Sequential
    classifier: nn.Module

    @classmethod
    def from_config(cls, cfg: ModelConfig, num_classes: int) -> _CifarNet:
        return cls(
            num_classes,
            activation=cfg.activation,
            lrn=cfg.lrn,
            lrn_alpha_over_n=cfg.lrn_alpha_over_n,
            width=cfg.width,
            input_size=cfg.input_size,
            init=cfg.init,
            init_std=cfg.init_std,
        )

    @property
    def conv1(self) -> nn.Conv2d:
        return self.features.conv1

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


class CifarFig1(_CifarNet):
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
        c1, c2, c3 = (_channels(c, width) for c in (32, 32, 64))
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, c1, 5, padding=2)), ("act1", activation_layer(activation)),
            ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)), ("norm1", _norm(lrn, lrn_alpha_over_n)),
            ("conv2", nn.Conv2d(c1, c2, 5, padding=2)), ("act2", activation_layer(activation)),
            ("norm2", _norm(lrn, lrn_alpha_over_n)), ("pool2", nn.AvgPool2d(3, 2, ceil_mode=True)),
            ("conv3", nn.Conv2d(c2, c3, 5, padding=2)), ("act3", activation_layer(activation)),
            ("pool3", nn.AvgPool2d(3, 2, ceil_mode=True)),
        ]))
        side = _pool_out(_pool_out(_pool_out(input_size)))
        self.feature_shape = (c3, side, side)
        self.classifier = nn.Sequential(OrderedDict([("fc10", nn.Linear(c3 * side * side, num_classes))]))
        _init(self, init, init_std)


class CifarLRN(_CifarNet):
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
        c1, c2, c3, c4 = (_channels(c, width) for c in (64, 64, 64, 32))
        side = _pool_out(_pool_out(input_size))
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, c1, 5, padding=2)), ("act1", activation_layer(activation)),
            ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)), ("norm1", _norm(lrn, lrn_alpha_over_n)),
            ("conv2", nn.Conv2d(c1, c2, 5, padding=2)), ("act2", activation_layer(activation)),
            ("norm2", _norm(lrn, lrn_alpha_over_n)), ("pool2", nn.MaxPool2d(3, 2, ceil_mode=True)),
            ("local3", LocallyConnected2d(c2, c3, side, 3, padding=1)),
            ("act3", activation_layer(activation)),
            ("local4", LocallyConnected2d(c3, c4, side, 3, padding=1)),
            ("act4", activation_layer(activation)),
        ]))
        self.feature_shape = (c4, side, side)
        self.classifier = nn.Sequential(OrderedDict([("fc10", nn.Linear(c4 * side * side, num_classes))]))
        _init(self, init, init_std)
