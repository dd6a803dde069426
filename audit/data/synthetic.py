"""The embedded default data set: generated, deterministic, natural-image-like, no download.

Why this design: the smoke profile must exercise a CNN the way real photos do, so a class is a
*combination* of a shape/texture family and a colour family, arranged so that neither cue alone names
the class. With m families of each (m = min(8, classes // 2), at least 2), class k has

    shape  = k mod m,        colour = (k mod m + k div m) mod m,

so for an even number of classes ≥ 4 every shape appears in at least two colours and every colour on
at least two shapes (10 classes: 5 shapes × 5 colours, shape i with colours i and i+1). Odd class
counts leave one shape with a single colour. Families:

- shapes (with a texture that modulates brightness): disk, striped square, triangle, ring, checked
  cross, star, dotted diamond, striped ellipse;
- colours: m hues evenly spaced around the wheel (jittered ±0.17 of the spacing), saturation
  0.55–1 and value 0.55–1.

Each image: a smooth random background (low-frequency colour field, low saturation) with mid-frequency
texture, two random distractor ellipses of any hue behind the object and one in front (partial
occlusion), the object at a random position (centre within 30–70 % of the frame), radius 20–32 % of
the frame and random rotation, soft anti-aliased edges, a lighting gradient, global brightness
jitter and pixel noise. All randomness comes from a torch.Generator seeded by (seed, split, chunk),
so the same config always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
import torch.nn.functional as F

from audit.config import SyntheticConfig
from audit.data.sources import Item, Listing

GENERATOR_VERSION = 1
SHAPES = ["disk", "square", "triangle", "ring", "cross", "star", "diamond", "ellipse"]
TEXTURES = ["smooth", "stripes", "smooth", "smooth", "checks", "smooth", "dots", "stripes"]
HUE_NAMES = [(0, "red"), (30, "orange"), (55, "yellow"), (90, "lime"), (125, "green"), (165, "teal"),
             (190, "cyan"), (220, "azure"), (245, "blue"), (275, "violet"), (300, "magenta"), (335, "pink")]
CHUNK = 128


def families(classes: int) -> int:
    """Number m of shape families (= colour families)."""
    return max(2, min(8, classes // 2))


def class_factors(classes: int) -> list[tuple[int, int]]:
    """(shape family, colour family) of each class; all pairs distinct."""
    m = families(classes)
    return [(k % m, (k % m + k // m) % m) for k in range(classes)]


def _hue(j: int, m: int) -> float:
    return (360.0 * j / m) % 360.0


def _hue_name(deg: float) -> str:
    return min(HUE_NAMES, key=lambda hn: min(abs(hn[0] - deg), 360 - abs(hn[0] - deg)))[1]


def class_names(classes: int) -> list[str]:
    m = families(classes)
    names = [f"{_hue_name(_hue(c, m))}-{SHAPES[s]}" for s, c in class_factors(classes)]
    return names if len(set(names)) == len(names) else [f"{i:02d}-{n}" for i, n in enumerate(names)]


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """h in turns, s and v in [0, 1], any equal shapes → [..., 3]."""
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], dim=-1)
    f = torch.clamp(torch.minimum(k, 4 - k), 0, 1)
    return v.unsqueeze(-1) * (1 - s.unsqueeze(-1) * f)


def _sdf(family: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Signed distance (in units of the object radius) of each shape family; negative inside."""
    r = torch.sqrt(u * u + v * v)
    if family == 0:
        return r - 1
    if family == 1:
        return torch.maximum(u.abs(), v.abs()) - 0.8
    if family == 2:
        return torch.maximum(u.abs() * 0.866 + v * 0.5, -v) - 0.5
    if family == 3:
        return (r - 0.78).abs() - 0.24
    if family == 4:
        return torch.minimum(torch.maximum(u.abs() - 0.32, v.abs() - 1),
                             torch.maximum(u.abs() - 1, v.abs() - 0.32))
    if family == 5:
        return r - 0.72 * (1 + 0.35 * torch.cos(5 * torch.atan2(v, u)))
    if family == 6:
        return (u.abs() + v.abs()) / 1.2 - 0.9
    return torch.sqrt(u * u + (v / 0.55) ** 2) - 1


def _texture(family: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    kind = TEXTURES[family]
    if kind == "stripes":
        return 0.72 + 0.28 * torch.sin(2 * math.pi * 2.2 * u)
    if kind == "checks":
        return 0.72 + 0.28 * torch.tanh(4 * torch.sin(math.pi * 2.5 * u) * torch.sin(math.pi * 2.5 * v))
    if kind == "dots":
        return 0.72 + 0.28 * torch.cos(2 * math.pi * 2 * u) * torch.cos(2 * math.pi * 2 * v)
    return torch.ones_like(u)


def _uniform(g: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _local(g: torch.Generator, n: int, size: int, radius: torch.Tensor, centre: tuple[float, float],
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotated coordinates of every pixel relative to a random centre, in units of ``radius`` (px)."""
    cx, cy = (_uniform(g, n, *centre) * size for _ in range(2))
    theta = _uniform(g, n, 0, 2 * math.pi)
    grid = torch.arange(size, dtype=torch.float32) + 0.5
    dx = grid.view(1, 1, -1) - cx.view(-1, 1, 1)
    dy = grid.view(1, -1, 1) - cy.view(-1, 1, 1)
    c, s = torch.cos(theta).view(-1, 1, 1), torch.sin(theta).view(-1, 1, 1)
    r = radius.view(-1, 1, 1)
    return (c * dx + s * dy) / r, (-s * dx + c * dy) / r


def _blend(img: torch.Tensor, mask: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """img [n,3,S,S], mask [n,S,S] in [0,1], colour [n,3] or [n,3,S,S]."""
    if colour.dim() == 2:
        colour = colour[:, :, None, None].expand_as(img)
    return torch.lerp(img, colour, mask.unsqueeze(1))


def _distractor(g: torch.Generator, img: torch.Tensor, size: int) -> torch.Tensor:
    n = img.shape[0]
    a = _uniform(g, n, 0.04, 0.11) * size
    aspect = _uniform(g, n, 0.3, 1.0).view(-1, 1, 1)
    u, v = _local(g, n, size, a, (0.05, 0.95))
    mask = torch.sigmoid(-(torch.sqrt(u * u + (v / aspect) ** 2) - 1) * a.view(-1, 1, 1) / 0.6)
    colour = _hsv_to_rgb(torch.rand(n, generator=g), _uniform(g, n, 0.2, 0.9), _uniform(g, n, 0.3, 1.0))
    return _blend(img, mask, colour)


def _render(g: torch.Generator, labels: torch.Tensor, classes: int, size: int) -> torch.Tensor:
    """uint8 [n, 3, size, size] images of the given labels."""
    n, m = len(labels), families(classes)
    factors = torch.tensor(class_factors(classes), dtype=torch.long)[labels]
    shape, colour = factors[:, 0], factors[:, 1]
    # background: low-frequency colour field around a low-saturation base colour, plus texture
    base = _hsv_to_rgb(torch.rand(n, generator=g), _uniform(g, n, 0.0, 0.35), _uniform(g, n, 0.3, 0.8))
    low = F.interpolate(torch.randn(n, 3, 4, 4, generator=g), size=(size, size), mode="bicubic",
                        align_corners=False)
    mid = F.interpolate(torch.randn(n, 1, 16, 16, generator=g), size=(size, size), mode="bilinear",
                        align_corners=False)
    img = base[:, :, None, None] + 0.12 * low + 0.05 * mid
    for _ in range(2):
        img = _distractor(g, img, size)
    # the object
    radius = _uniform(g, n, 0.20, 0.32) * size
    u, v = _local(g, n, size, radius, (0.3, 0.7))
    sdf = torch.empty_like(u)
    tex = torch.empty_like(u)
    for f in range(m):
        sel = shape == f
        if sel.any():
            sdf[sel], tex[sel] = _sdf(f, u[sel], v[sel]), _texture(f, u[sel], v[sel])
    mask = torch.sigmoid(-sdf * radius.view(-1, 1, 1) / 0.6)
    hue = (colour.float() / m + (torch.rand(n, generator=g) - 0.5) * 0.34 / m) % 1.0
    rgb = _hsv_to_rgb(hue, _uniform(g, n, 0.55, 1.0), _uniform(g, n, 0.55, 1.0))
    phi = _uniform(g, n, 0, 2 * math.pi).view(-1, 1, 1)
    light = 1 + 0.15 * (u * torch.cos(phi) + v * torch.sin(phi)).clamp(-1.5, 1.5)
    img = _blend(img, mask, rgb[:, :, None, None] * (tex * light).unsqueeze(1))
    img = _distractor(g, img, size)
    img = img * _uniform(g, n, 0.8, 1.15).view(-1, 1, 1, 1) + 0.025 * torch.randn(img.shape, generator=g)
    return (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8)


def _seed(*key: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, key)).encode()).digest()[:8], "little") >> 1


def generate(cfg: SyntheticConfig, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 [N,3,size,size], int64 [N]) for one split, class-sorted; deterministic in cfg."""
    per_class = cfg.train_per_class if split == "train" else cfg.val_per_class
    labels = torch.arange(cfg.classes).repeat_interleave(per_class)
    chunks = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small element-wise ops: extra OpenMP threads cost more than they give
    try:
        for i, start in enumerate(range(0, len(labels), CHUNK)):
            g = torch.Generator().manual_seed(_seed(GENERATOR_VERSION, cfg.seed, split, i))
            chunks.append(_render(g, labels[start:start + CHUNK], cfg.classes, cfg.size))
    finally:
        torch.set_num_threads(threads)
    return torch.cat(chunks), labels


def list_synthetic(cfg: SyntheticConfig) -> Listing:
    """A listing whose pixels are generated on first use (the cache stores them afterwards)."""
    items: dict[str, list[Item]] = {}
    offset = 0
    for split, per_class in (("train", cfg.train_per_class), ("val", cfg.val_per_class)):
        n = cfg.classes * per_class
        items[split] = [Item(f"synthetic/{split}/{i:06d}", i // per_class, 0, offset + i) for i in range(n)]
        offset += n

    def arrays() -> np.ndarray:
        return torch.cat([generate(cfg, "train")[0], generate(cfg, "val")[0]]).numpy()

    return Listing("synthetic", f"synthetic-{cfg.classes}c-{cfg.size}px", None, class_names(cfg.classes),
                   items, arrays=arrays, extra=f"generator={GENERATOR_VERSION} {cfg.model_dump_json()}")
