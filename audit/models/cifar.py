"""What the two CIFAR-10 nets of docs/paper.md §6 share (the nets: ``archs/cifar_fig1.py``, ``archs/cifar_lrn.py``).

Both are read from the authors' cuda-convnet configs. LRN here is cuda-convnet's cross-map
``cmrnorm``: size 9, scale 0.001, pow 0.75, k=1, with the scale divided by the size unless
``lrn_alpha_over_n=False``. Pooling uses ``ceil_mode=True``, which
is how cuda-convnet sizes its pooling outputs (32 -> 16 -> 8 -> 4, 24 -> 12 -> 6 -> 3), so both
nets take 24-px crops and full 32-px images. ``width`` multiplies every channel count.

Init: ``init="torch"`` is PyTorch's default (it trains out of the box; the natural choice for
these nets). ``init="paper"`` is the cuda-convnet style the authors used for them: every weight
N(0, init_std), every bias 0. The paper's bias-1 rule names AlexNet layers, so ``bias_one`` does
not apply here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audit.config import ModelConfig

from .archs.alexnet import conv_out
from .init import kaiming_init
from .lrn import LocalResponseNorm

CMRNORM_SIZE, CMRNORM_SCALE, CMRNORM_POW, CMRNORM_K = 9, 1e-3, 0.75, 1.0


def scaled_channels(channels: int, width: float) -> int:
    """``channels * width``, at least 1 (no towers here, so no rounding to even)."""
    return max(1, round(channels * width))


def pool_out(size: int) -> int:
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


def norm_layer(lrn: bool, alpha_over_n: bool) -> nn.Module:
    """cuda-convnet's cmrnorm, or an identity: ``lrn=False`` keeps the layer names, so the pair stays comparable."""
    if not lrn:
        return nn.Identity()
    return LocalResponseNorm(CMRNORM_SIZE, CMRNORM_SCALE, CMRNORM_POW, CMRNORM_K, alpha_over_n)


def init_weights(module: nn.Module, init: str, std: float) -> None:
    """``init="paper"``: every weight N(0, std), every bias 0, as cuda-convnet drew them (no bias-1 rule here)."""
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
            if layer.bias is not None:  # cifar_fig1_bn's convolutions have none
                nn.init.zeros_(layer.bias)


class CifarNet(nn.Module):
    """Shared plumbing: ``features`` then a flatten and ``classifier``, like torchvision."""

    features: nn.Sequential
    classifier: nn.Module

    @classmethod
    def from_config(cls, cfg: ModelConfig, num_classes: int) -> CifarNet:
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
