"""Two-device tower placement: the paper's model parallelism for a built two-tower AlexNet.

On one device the towers are grouped convolutions (``groups=2``). Here each layer of a built
:class:`~audit.models.archs.alexnet.AlexNet` is cut into a tower-A half on one device and a tower-B half on
the other, so the same weights compute the same function:

- a grouped conv (conv2, conv4, conv5) becomes two ungrouped convs, each seeing only its own
  tower's maps: no cross-device traffic;
- a joined layer (conv1 on the input, conv3, fc6, fc7, fc8) gives each device half of the output
  units, computed from *all* inputs: this is where maps are copied across devices (the paper's
  "the GPUs communicate only in certain layers");
- per-channel layers (activations, pooling, dropout) run on each half;
- LRN normalises across neighbouring channels. The two-tower model normalises each tower's maps on
  their own (``LocalResponseNorm(groups=2)``, as the paper's GPUs did): each device runs an ungrouped
  LRN on its half, no copy. An LRN over all C maps (``groups=1``) reaches across the tower boundary;
  to stay exactly equal to it each device borrows the ``size // 2`` halo channels it needs.

Every parameter of the placed model is a row block of one parameter of the grouped model (tower A's
rows first), so :meth:`TwoDeviceAlexNet.to_canonical` / :meth:`from_canonical` convert parameters —
and same-shaped optimiser buffers — between the two layouts: checkpoints and final weights are always
stored in the grouped layout, whatever the placement.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from .archs.alexnet import AlexNet
from .lrn import LocalResponseNorm

Pair = tuple[Tensor, Tensor]
_LOCAL = (nn.ReLU, nn.Tanh, nn.MaxPool2d, nn.AvgPool2d, nn.Dropout, nn.Identity)


def two_devices() -> tuple[torch.device, torch.device]:
    """cuda:0 and cuda:1 when there are two GPUs; two CPU "devices" on a CPU-only machine (tests)."""
    if torch.cuda.is_available():
        if torch.cuda.device_count() < 2:
            raise ValueError(f"two-device placement needs 2 GPUs; {torch.cuda.device_count()} visible")
        return torch.device("cuda", 0), torch.device("cuda", 1)
    return torch.device("cpu"), torch.device("cpu")


def place(model: nn.Module, placement: str, device: torch.device) -> nn.Module:
    """``single``: the model on ``device``; ``two-device``: towers split over :func:`two_devices`."""
    if placement == "single":
        return model.to(device)
    if placement == "two-device":
        if not isinstance(model, AlexNet):
            raise ValueError(f"two-device placement needs the two-tower AlexNet, not {type(model).__name__}")
        return TwoDeviceAlexNet(model, two_devices())
    raise ValueError(f"unknown placement {placement!r}")


def _kind(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        if module.groups == 2:
            return "grouped"
        if module.groups == 1:
            return "joined"
        raise ValueError(f"cannot place a conv with groups={module.groups}")
    if isinstance(module, nn.Linear):
        return "joined"
    if isinstance(module, (LocalResponseNorm, nn.LocalResponseNorm)):
        groups = getattr(module, "groups", 1)
        if groups not in (1, 2):
            raise ValueError(f"cannot place an LRN with groups={groups}")
        return "tower_lrn" if groups == 2 else "lrn"
    if isinstance(module, _LOCAL):
        return "local"
    raise ValueError(f"cannot place layer {type(module).__name__}")


def _halves(module: nn.Module, kind: str) -> tuple[nn.Module, nn.Module]:
    """Two ungrouped layers holding tower A's and tower B's rows of ``module``'s weights."""
    if kind == "tower_lrn":  # each tower normalises its own maps: one ungrouped LRN per half
        halves = copy.deepcopy(module), copy.deepcopy(module)
        for half in halves:
            half.groups = 1
        return halves
    if kind not in ("grouped", "joined"):
        return copy.deepcopy(module), copy.deepcopy(module)
    out = module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
    sizes = (out // 2, out - out // 2)
    parts = []
    for i, rows in enumerate(sizes):
        start = i * sizes[0]
        if isinstance(module, nn.Conv2d):
            fan_in = module.in_channels // module.groups
            part: nn.Module = nn.Conv2d(fan_in, rows, module.kernel_size, module.stride, module.padding,
                                        module.dilation, bias=module.bias is not None)
        else:
            part = nn.Linear(module.in_features, rows, bias=module.bias is not None)
        with torch.no_grad():
            part.weight.copy_(module.weight[start:start + rows])
            if module.bias is not None:
                part.bias.copy_(module.bias[start:start + rows])
        parts.append(part)
    return parts[0], parts[1]


class TwoDeviceAlexNet(nn.Module):
    """Tower A on ``devices[0]``, tower B on ``devices[1]``; input and logits live on ``devices[0]``."""

    def __init__(self, net: AlexNet, devices: tuple[torch.device, torch.device]) -> None:
        super().__init__()
        self.devices = devices
        self.a, self.b = nn.ModuleDict(), nn.ModuleDict()
        self.layers: list[tuple[str, str, str, tuple[str, ...]]] = []  # (key, canonical name, kind, params)
        for prefix, seq in (("features", net.features), ("classifier", net.classifier)):
            for name, module in seq.named_children():
                key, kind = f"{prefix}_{name}", _kind(module)
                ma, mb = _halves(module, kind)
                self.a[key], self.b[key] = ma.to(devices[0]), mb.to(devices[1])
                params = tuple(p for p, _ in module.named_parameters())
                self.layers.append((key, f"{prefix}.{name}", kind, params))
        self._flatten_after = f"features_{list(net.features.named_children())[-1][0]}"

    # ------------------------------------------------------------------ forward
    def _cross(self, x: Tensor | Pair) -> Pair:
        """The whole input on both devices (the cross-device copy of a joined layer)."""
        if isinstance(x, Tensor):
            return x, x.to(self.devices[1], non_blocking=True)
        xa, xb = x
        return (torch.cat([xa, xb.to(self.devices[0], non_blocking=True)], 1),
                torch.cat([xa.to(self.devices[1], non_blocking=True), xb], 1))

    def _split(self, x: Tensor | Pair) -> Pair:
        if isinstance(x, Tensor):
            half = x.shape[1] // 2
            return x[:, :half], x[:, half:].to(self.devices[1], non_blocking=True)
        return x

    def _lrn(self, x: Pair, ma: nn.Module, mb: nn.Module) -> Pair:
        """Each half with the other tower's boundary channels as halo; halo outputs are dropped."""
        xa, xb = x
        before, after = ma.size // 2, (ma.size - 1) // 2
        ca = xa.shape[1]
        ya = ma(torch.cat([xa, xb[:, :after].to(self.devices[0], non_blocking=True)], 1))[:, :ca]
        halo = xa[:, ca - before:].to(self.devices[1], non_blocking=True)
        yb = mb(torch.cat([halo, xb], 1))[:, halo.shape[1]:]
        return ya, yb

    def forward(self, x: Tensor) -> Tensor:
        h: Tensor | Pair = x
        for key, _, kind, _ in self.layers:
            ma, mb = self.a[key], self.b[key]
            if kind == "joined":
                xa, xb = self._cross(h)
                h = (ma(xa), mb(xb))
            elif kind == "grouped":
                xa, xb = self._split(h)
                h = (ma(xa), mb(xb))
            elif kind == "lrn":
                h = self._lrn(self._split(h), ma, mb)
            elif kind == "tower_lrn":
                xa, xb = self._split(h)
                h = (ma(xa), mb(xb))
            else:
                h = ma(h) if isinstance(h, Tensor) else (ma(h[0]), mb(h[1]))
            if key == self._flatten_after:
                h = h.flatten(1) if isinstance(h, Tensor) else (h[0].flatten(1), h[1].flatten(1))
        if isinstance(h, Tensor):
            return h
        return torch.cat([h[0], h[1].to(self.devices[0], non_blocking=True)], 1)

    # ------------------------------------------------------------------ layouts
    def _names(self) -> list[tuple[str, str, str]]:
        """(canonical, tower-A, tower-B) parameter names."""
        out = []
        for key, canonical, _, params in self.layers:
            out += [(f"{canonical}.{p}", f"a.{key}.{p}", f"b.{key}.{p}") for p in params]
        return out

    def to_canonical(self, named: dict[str, Tensor]) -> dict[str, Tensor]:
        """Placed-layout tensors (parameters or same-shaped buffers) → the grouped model's, on the CPU."""
        return {c: torch.cat([named[a].detach().cpu(), named[b].detach().cpu()], 0)
                for c, a, b in self._names() if a in named and b in named}

    def from_canonical(self, named: dict[str, Tensor]) -> dict[str, Tensor]:
        """The inverse: grouped-layout tensors → row blocks on each tower's device."""
        params = dict(self.named_parameters())
        out = {}
        for c, a, b in self._names():
            if c in named:
                rows = params[a].shape[0]
                out[a] = named[c][:rows].to(self.devices[0])
                out[b] = named[c][rows:].to(self.devices[1])
        return out

    def canonical_state_dict(self) -> dict[str, Tensor]:
        return self.to_canonical(dict(self.named_parameters()))

    def load_canonical_state_dict(self, state: dict[str, Tensor]) -> None:
        self.load_state_dict(self.from_canonical(state))
