"""The paper's augmentation on whole batches of tensors (docs/paper.md §3): no PIL in the training loop.

Training (``train_batch``): per image a random C×C crop (when ``data.crop`` is set) and a horizontal
flip (``data.flip``), subtraction of the training set's mean image (``data.mean_subtract``; the paper
subtracts it from the S×S image *before* cropping, so the mean image is cropped and flipped with the
same indices), PCA colour noise (``data.pca_noise`` = std of α, 0.1 in the paper), then
``normalise``: ``paper`` leaves 0–255 units, ``unit`` divides by the per-channel std of (x − mean).

PCA noise scale: each image gets δ = Σ_i α_i · sqrt(λ_i) · p_i added to every pixel, α_i ~ N(0, σ²).
The paper writes "α_i λ_i", but λ_i in pixel² units would shift colours by hundreds of levels;
Krizhevsky's own cuda-convnet2 data provider scales by the component's standard deviation
(``color_stdevs``), which is what we do: σ = 0.1 moves colours by a tenth of the spread along each axis.

Determinism: every batch draws, in this fixed order, the crop offsets (y, then x), the flip coins and
α from ``generator`` only — whether or not each piece is switched on — so two variants that differ in
one switch still see the same crops, flips and noise for the same seed (paired runs: README, "Verdicts").

Evaluation (``eval_batch``): the centre crop, or with ``eval_crops: 10`` the four corner crops, the
centre crop and their horizontal flips (torchvision's TenCrop order) stacked as [10, B, 3, C, C]; the
caller averages the softmax over the first dimension.

Sizes: C = ``data.crop`` or the model's ``input_size``; stored images larger than C without
``data.crop`` are centre-cropped in training too (see ``audit.data.dataset``).
"""

from __future__ import annotations

import torch

from audit.config import DataConfig
from audit.data.dataset import Dataset
from audit.data.errors import DataError
from audit.data.threads import single_thread


class Augmenter:
    """Batch-level augmentation on tensors, device-agnostic (CPU or CUDA batches)."""

    def __init__(self, cfg: DataConfig, dataset: Dataset, input_size: int) -> None:
        s = dataset.size
        if cfg.crop is not None and cfg.crop != input_size:
            raise DataError(f"data.crop = {cfg.crop} but model.input_size = {input_size}: "
                            "the crop is the network input")
        c = cfg.crop or input_size
        if c > s:
            raise DataError(f"{dataset.name}: images are stored at {s}px, smaller than the {c}px input")
        if cfg.crop is None and cfg.resize is None and s != input_size:
            raise DataError(f"{dataset.name}: stored at {s}px but the model input is {input_size}px: "
                            "load the data set with load_dataset(..., input_size=...)")
        self.size, self.crop = s, c
        self.random_crop = cfg.crop is not None and s > c
        self.flip = cfg.flip
        self.mean_subtract = cfg.mean_subtract
        self.unit = cfg.normalise == "unit"
        self.pca_noise = cfg.pca_noise
        self.eval_crops = cfg.eval_crops
        self._centre = int(round((s - c) / 2.0))
        zero = torch.zeros_like(dataset.mean_image)
        self._mean = dataset.mean_image.float() if cfg.mean_subtract else zero
        self._inv_std = (1.0 / dataset.channel_std.float().clamp_min(1e-3) if cfg.normalise == "unit"
                         else torch.ones(3))
        # rows: principal components scaled by their standard deviation (see module docstring)
        self._pca = (dataset.pca_eigvecs.float() * dataset.pca_eigvals.float().clamp_min(0).sqrt()).T
        self._on: dict[torch.device, tuple[torch.Tensor, ...]] = {}

    def _consts(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        if device not in self._on:
            ar = torch.arange(self.crop)
            rows = ar[:, None] * self.size
            offsets = torch.stack([(rows + ar).flatten(), (rows + ar.flip(0)).flatten()])  # [plain, flipped]
            self._on[device] = (self._mean.to(device), self._inv_std.to(device), self._pca.to(device),
                                offsets.to(device))
        return self._on[device]

    def train_batch(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """uint8 [B,3,S,S] → float32 [B,3,C,C], randomness from ``generator`` only."""
        b, s, c = x.shape[0], self.size, self.crop
        gdev = generator.device
        oy = torch.randint(0, s - c + 1, (b,), generator=generator, device=gdev)
        ox = torch.randint(0, s - c + 1, (b,), generator=generator, device=gdev)
        coin = torch.rand(b, generator=generator, device=gdev) < 0.5
        alpha = torch.randn(b, 3, generator=generator, device=gdev)
        if not self.random_crop:
            oy = ox = torch.full((b,), self._centre, dtype=torch.long, device=gdev)
        flip = coin if self.flip else torch.zeros(b, dtype=torch.bool, device=gdev)
        with single_thread(x.device):
            return self._train(x, oy, ox, flip, alpha)

    def _train(self, x: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, flip: torch.Tensor,
               alpha: torch.Tensor) -> torch.Tensor:
        b, s, c, dev = x.shape[0], self.size, self.crop, x.device
        mean, inv_std, pca, offsets = self._consts(dev)
        # flat index of every output pixel in the S×S plane: crop corner + (flipped) within-crop offsets
        idx = offsets[flip.to(dev).long()] + (oy * s + ox).to(dev)[:, None]  # [B, C·C]
        idx = idx[:, None, :].expand(b, 3, c * c)
        out = x.reshape(b, 3, s * s).gather(2, idx).float()  # one gather: fast on CPU and GPU alike
        if self.mean_subtract:
            out -= mean.view(1, 3, s * s).expand(b, 3, s * s).gather(2, idx)
        if self.pca_noise > 0:
            out += ((alpha.to(dev) * self.pca_noise) @ pca)[:, :, None]
        if self.unit:
            out *= inv_std.view(1, 3, 1)
        return out.view(b, 3, c, c)

    def _view(self, x: torch.Tensor, top: int, left: int) -> torch.Tensor:
        mean, inv_std, _, _ = self._consts(x.device)
        c = self.crop
        sl = (..., slice(top, top + c), slice(left, left + c))
        return (x[sl].float() - mean[sl]) * inv_std.view(3, 1, 1)

    def eval_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Centre crop → float32 [B,3,C,C]; with ``eval_crops: 10`` → [10,B,3,C,C]."""
        m = self._centre
        with single_thread(x.device):
            if self.eval_crops == 1:
                return self._view(x, m, m)
            e = self.size - self.crop
            views = [self._view(x, top, left) for top, left in ((0, 0), (0, e), (e, 0), (e, e), (m, m))]
            return torch.stack(views + [v.flip(-1) for v in views])
