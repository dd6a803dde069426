"""Training-set statistics the augmentation needs, accumulated in one pass while the cache is built.

- mean image: per-pixel mean [3, S, S] (the paper subtracts it), 0–255 units;
- channel std: per-channel std of (x − mean image), so ``normalise: unit`` gives about unit variance;
- PCA: eigenvalues (descending) and eigenvectors (columns) of the 3×3 covariance of RGB pixel values
  over every pixel of every training image (the paper's colour noise), 0–255 units.

Sums are taken on values shifted by 128 (exact in float32 for a sub-batch, accumulated in float64)
so that E[x²] − E[x]² does not cancel catastrophically.
"""

from __future__ import annotations

import numpy as np
import torch

SHIFT = 128.0


class StatsAccumulator:
    """Streaming sums over uint8 batches [n, 3, S, S]."""

    def __init__(self, size: int) -> None:
        self.n = 0
        self.sum = torch.zeros(3, size, size, dtype=torch.float64)
        self.sumsq = torch.zeros(3, size, size, dtype=torch.float64)
        self.outer = torch.zeros(3, 3, dtype=torch.float64)
        self.step = max(1, min(128, 2**21 // (size * size)))  # ≤ 2M pixels per sub-batch

    def update(self, x: torch.Tensor) -> None:
        for start in range(0, len(x), self.step):
            xf = x[start:start + self.step].to(torch.float32) - SHIFT
            self.sum += xf.sum(0, dtype=torch.float64)
            self.sumsq += (xf * xf).sum(0, dtype=torch.float64)
            flat = xf.transpose(0, 1).reshape(3, -1)
            self.outer += (flat @ flat.T).double()
            self.n += len(xf)

    def result(self) -> dict[str, np.ndarray]:
        """mean_image, channel_std, pca_eigvals, pca_eigvecs as float32 numpy arrays."""
        n = max(self.n, 1)
        mean = self.sum / n
        var = (self.sumsq / n - mean * mean).clamp_min(0)
        pixels = n * mean.shape[1] * mean.shape[2]
        mu = self.sum.sum((1, 2)) / pixels
        cov = self.outer / pixels - torch.outer(mu, mu)
        vals, vecs = torch.linalg.eigh(cov)
        vals, vecs = vals.flip(0).clamp_min(0), vecs.flip(1)
        signs = torch.sign(vecs[vecs.abs().argmax(0), torch.arange(3)])  # largest component positive
        vecs = vecs * signs
        return {
            "mean_image": (mean + SHIFT).float().numpy(),
            "channel_std": var.mean((1, 2)).sqrt().float().numpy(),
            "pca_eigvals": vals.float().numpy(),
            "pca_eigvecs": vecs.float().numpy(),
        }


def rgb_pca(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending) and eigenvectors of the RGB covariance of uint8 images [n, 3, S, S]."""
    acc = StatsAccumulator(x.shape[-1])
    acc.update(x)
    r = acc.result()
    return torch.from_numpy(r["pca_eigvals"]), torch.from_numpy(r["pca_eigvecs"])
