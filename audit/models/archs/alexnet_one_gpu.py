"""``alexnet_one_gpu``: the one-GPU net the paper measured its two-tower AlexNet against (§3.2).

The paper's two GPUs "reduce our top-1 and top-5 error rates by 1.7% and 1.2%, respectively, as
compared with a net with half as many kernels in each convolutional layer trained on one GPU", and
its footnote says how that net was built: the same number of kernels as the two-GPU net in the
*final* convolutional layer, and the fully-connected layers not halved either, so that the two nets
have about as many parameters. So, at width 1:

    conv1 48 11x11/4 -> act -> LRN -> max-pool    conv2 128 5x5    -> act -> LRN -> max-pool
    conv3 192 3x3    -> act                        conv4 192 3x3    -> act
    conv5 256 3x3    -> act -> max-pool            fc6 4096 -> fc7 4096 -> fc8 classes

with no grouping anywhere (one tower: every kernel sees every map of the layer below, where the
two-tower net's conv2, conv4 and conv5 see only their own tower's). Every other knob (activation,
LRN, pooling, dropout, width, init with bias 1 in conv2, conv4, conv5, fc6, fc7) is ``alexnet``'s.
"""

from __future__ import annotations

from audit.config import ModelConfig

from ..registry import register_model
from .alexnet import CONV_CHANNELS, AlexNet

# Half the kernels of conv1-conv4; conv5 keeps the two-GPU net's 256 (the paper's footnote).
ONE_GPU_CHANNELS = (*(c // 2 for c in CONV_CHANNELS[:4]), CONV_CHANNELS[4])


@register_model("alexnet_one_gpu")
def alexnet_one_gpu(cfg: ModelConfig, num_classes: int) -> AlexNet:
    """The one-GPU net; ``model.towers`` must say 1, so that a config never reads as two towers."""
    if cfg.towers != 1:
        raise ValueError("alexnet_one_gpu is the one-tower net: set model.towers: 1")
    if cfg.remove_conv is not None or cfg.conv6:
        raise ValueError("alexnet_one_gpu is the paper's §3.2 net only: no remove_conv or conv6")
    return AlexNet.from_config(cfg, num_classes, conv_channels=ONE_GPU_CHANNELS)
