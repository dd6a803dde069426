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


def override_layer_stds(module: nn.Module, stds: dict[str, float]) -> None:
    """Redraw the named layers' weights from N(0, std), keeping their biases.

    cuda-convnet's layer files give each layer its own ``initW`` (layers-18pct: conv1 0.0001, the
    rest 0.01); a layer is named by the last part of its module path (``conv1``, ``fc10``).
    """
    layers = {name.rsplit(".", 1)[-1]: layer for name, layer in module.named_modules()
              if hasattr(layer, "weight") and isinstance(layer.weight, nn.Parameter)}
    unknown = sorted(set(stds) - set(layers))
    if unknown:
        raise ValueError(f"model.init_std_by_layer names no layer of this net: {', '.join(unknown)} "
                         f"(layers: {', '.join(sorted(layers))})")
    for name, std in stds.items():
        nn.init.normal_(layers[name].weight, 0.0, std)
