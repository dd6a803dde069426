"""The paper's preprocessing of one image: decode, shorter side to S, centre crop S×S (docs/paper.md §3).

Fast path: JPEGs are decoded in batches by ``torchvision.io.decode_jpeg`` (about 3× PIL here);
anything else, or a JPEG that libjpeg refuses, goes to PIL; when PIL fails too the file is bad
(truncated, corrupt) and is reported, not fatal. Resizing is bilinear with antialiasing on uint8
tensors, which matches ``PIL.Image.resize(BILINEAR)`` to within rounding, and uses torchvision's
size rule (long side = int(S · long / short)) and centre-crop rounding, so the cache equals
``transforms.Resize(S)`` + ``transforms.CenterCrop(S)`` on PIL images.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

JPEG_MAGIC = b"\xff\xd8"
# torchvision 0.29 deprecates its decoders in favour of torchcodec (not installed here); they still work
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                        category=DeprecationWarning)


def resize_centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [n,3,h,w] or [3,h,w] → shorter side to ``size`` (bilinear, antialias), centre crop."""
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    nh, nw = (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
    if (nh, nw) != (h, w):
        x = TF.resize(x, [nh, nw], interpolation=InterpolationMode.BILINEAR, antialias=True)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    return x[..., top:top + size, left:left + size].contiguous()


def read_bytes(path: Path) -> bytearray | None:
    """The file's bytes (writable, so torch can wrap them without a copy); None if unreadable."""
    try:
        with open(path, "rb") as fh:
            buf = bytearray(os.fstat(fh.fileno()).st_size)
            got = fh.readinto(buf)
        return buf[:got] if got != len(buf) else buf
    except OSError:
        return None


def _pil_decode(buf: bytearray) -> torch.Tensor | None:
    from PIL import Image  # lazy: only non-JPEGs and JPEGs libjpeg refuses come here

    try:
        with Image.open(io.BytesIO(buf)) as img:
            arr = np.asarray(img.convert("RGB"))
    except Exception:  # noqa: BLE001 - every decoder failure means "bad file"
        return None
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def decode_images(bufs: list[bytearray | None]) -> list[torch.Tensor | None]:
    """uint8 [3,h,w] RGB per buffer, None for the ones no decoder can read."""
    out: list[torch.Tensor | None] = [None] * len(bufs)
    jpegs = [i for i, b in enumerate(bufs) if b is not None and len(b) > 2 and b[:2] == JPEG_MAGIC]
    if jpegs:
        tensors = [torch.frombuffer(bufs[i], dtype=torch.uint8) for i in jpegs]  # type: ignore[arg-type]
        try:
            decoded: list[torch.Tensor | None] = list(decode_jpeg(tensors, mode=ImageReadMode.RGB))
        except RuntimeError:  # one bad file fails the batch: retry one by one
            decoded = []
            for t in tensors:
                try:
                    decoded.append(decode_jpeg(t, mode=ImageReadMode.RGB))
                except RuntimeError:
                    decoded.append(None)
        for i, img in zip(jpegs, decoded, strict=True):
            out[i] = img
    for i, b in enumerate(bufs):
        if out[i] is None and b is not None:
            out[i] = _pil_decode(b)
    return out


def preprocess_files(paths: list[Path], size: int) -> tuple[torch.Tensor, list[int]]:
    """(uint8 [k,3,S,S] of the readable files in order, indices of the bad ones)."""
    return preprocess_buffers([read_bytes(p) for p in paths], size)


def preprocess_buffers(bufs: list[bytearray | None], size: int) -> tuple[torch.Tensor, list[int]]:
    """(uint8 [k,3,S,S] of the decodable buffers in order, indices of the bad ones: None or undecodable)."""
    images = decode_images(bufs)
    bad = [i for i, img in enumerate(images) if img is None]
    good = [img for img in images if img is not None]
    if not good:
        return torch.empty(0, 3, size, size, dtype=torch.uint8), bad
    groups: dict[tuple[int, int], list[int]] = {}
    for j, img in enumerate(good):
        groups.setdefault(tuple(img.shape[-2:]), []).append(j)  # type: ignore[arg-type]
    result = torch.empty(len(good), 3, size, size, dtype=torch.uint8)
    for idx in groups.values():  # same-size images resize as one batch (CIFAR: one group)
        result[idx] = resize_centre_crop(torch.stack([good[j] for j in idx]), size)
    return result, bad
