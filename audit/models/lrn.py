"""Local response normalisation (Krizhevsky et al. 2012, §3.3), fast on the CPU, tower-aware.

    b[c] = a[c] / (k + alpha' * sum_{j in window(c)} a[j]^2) ** beta

with the window ``c - n//2 .. c + (n-1)//2`` over channels (zero outside), exactly as
``torch.nn.LocalResponseNorm``. ``alpha' = alpha / n`` is the convention of cuda-convnet, Caffe and
PyTorch (``alpha_over_n=True``); ``alpha' = alpha`` is the paper's formula read literally.

``groups=g`` splits the channels into g consecutive blocks and normalises each on its own (the
window stops at a block's edge). That is what the paper's two-GPU net computes: each GPU
normalises the maps it holds, so no information crosses between towers here. ``groups=1`` is
``nn.LocalResponseNorm``.

Why not ``nn.LocalResponseNorm``: it squares, pads a 5-D copy, runs ``avg_pool3d`` and ``pow``,
and autograd keeps a chain of full-size temporaries; on this 2-core CPU that made the two-tower
AlexNet 1.5-2x slower. What we measured (one thread, [32, 96, 55, 55]): an elementwise pass into
an existing buffer ~3 ms; ``pow`` ~24 ms; a C x C band-matrix ``baddbmm`` ~54 ms in fp32; a fresh
37 MB fp32 temporary ~20 ms of page faults; strided bf16 passes over short rows 3-4x a contiguous
one; many small chunks: op dispatch that a busy machine turns into stalls.

On the CPU, fp32 and bf16 tensors in a dense layout go through a small C kernel
(``lrn_kernel.c`` via ``lrn_native``, built with the system's compiler on first use): one pass
each way, ~3-4x less time than the torch ops below (the AlexNet step at 224 px: 1.03x instead of
0.96x torchvision's images/s in fp32 on this 2-core CPU,
``bench/train.py``). Elsewhere (other devices, dtypes or layouts; no compiler;
``AUDIT_NATIVE_LRN=0``; ``native=False``) the LRN runs in torch ops:

- one autograd node with a hand-written backward; it keeps x, rsqrt(d) and d^-beta, each in
  contiguous memory (elementwise passes over strided views were several times slower);
- the window sum: n-1 adds of shifted channel slices of one buffer that holds
  ``k/n + alpha' * x^2`` with ``k/n`` in the pads, so every window sums to ``k + alpha' * S``
  exactly, boundaries included, with no padding copy; or, for channels_last bf16/fp16, one
  ``addmm`` with a small 0/1 band matrix (see :class:`_Window`);
- ``d^-0.75`` as ``rsqrt(d) * sqrt(rsqrt(d))`` (cheap passes instead of ``pow``);
- on the CPU the batch goes in a few chunks of <= 16 MB, so temporaries come from the heap
  instead of fresh pages; only y and the gradient are full-size allocations.

Torch ops: any device, any float dtype, contiguous or channels_last (kept). Autocast is off
inside, so the output has the input's dtype (bf16 in, bf16 out); the kernel computes bf16 in fp32.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from . import lrn_native

# Inside the function tensors are viewed as [N, groups, channels per group, *spatial] ("x5");
# windows run along dim 2.
_CH = 2


class _Window:
    """Windowed channel sums ``out[c] = sum_{o=-lo..hi} P[c+o]``, with ``fill`` for P outside 0..Cg-1.

    P lives in ``mid``, shaped and laid out like x5. Two layouts, two methods:

    - default: ``mid`` is the middle of a buffer [N, g, Cg + 2 pad, *spatial] (x5's memory order)
      whose pads hold the fill value; n-1 adds of shifted channel slices, no padding copy. In NCHW
      each slice is a few large contiguous slabs; in channels_last, rows of Cg (fine in fp32);
    - channels_last in bf16/fp16: those short strided rows are 3-4x slower than contiguous
      passes here, but the rows [N*H*W*g, Cg] form one contiguous matrix, so one ``addmm`` with a
      Cg x Cg 0/1 band matrix does it (fill folded into the bias; fast bf16 matmul units).
    """

    def __init__(self, x5: Tensor, pad: int) -> None:
        self.channels, self.pad = x5.shape[_CH], pad
        self.matmul = _use_matmul(x5)
        if self.matmul:
            self.buf = self.mid = torch.empty_like(x5)
            return
        # same order of dims in memory as x5, so channels_last stays channels_last
        order = sorted(range(x5.dim()), key=lambda i: -x5.stride(i))
        shape = list(x5.shape)
        shape[_CH] += 2 * pad
        self.buf = x5.new_empty([shape[i] for i in order]).permute([order.index(i) for i in range(x5.dim())])
        self.mid = self.buf.narrow(_CH, pad, self.channels)

    def fill_pads(self, value: float) -> None:
        if self.matmul:
            return
        if self.buf.stride(_CH) == 1:  # channels_last: the pads are 2-wide strided rows; fill all
            self.buf.fill_(value)
            return
        self.buf.narrow(_CH, 0, self.pad).fill_(value)
        self.buf.narrow(_CH, self.pad + self.channels, self.pad).fill_(value)

    def sum_into(self, out: Tensor, lo: int, hi: int, fill: float) -> Tensor:
        """out (shaped like x5, same layout) = the windowed sums; the pads must hold ``fill``."""
        c = self.channels
        if self.matmul:
            i = torch.arange(c, device=out.device)
            offset = i[None, :] - i[:, None]  # [j, col] = col - j
            band = ((offset >= -hi) & (offset <= lo)).to(out.dtype)  # P[j] feeds out[col]
            missing = (lo + hi + 1 - band.sum(0)) * fill
            torch.addmm(missing, _rows(self.mid), band, out=_rows(out))
            return out
        if lo == hi == 0:
            return out.copy_(self.mid)
        pad = self.pad
        torch.add(self.buf.narrow(_CH, pad - lo, c), self.buf.narrow(_CH, pad - lo + 1, c), out=out)
        for o in range(2 - lo, hi + 1):
            out += self.buf.narrow(_CH, pad + o, c)
        return out


def _channels_innermost(x5: Tensor) -> bool:
    """True for [N, g, Cg, H, W] views of channels_last tensors."""
    return x5.dim() == 5 and x5.permute(0, 3, 4, 1, 2).is_contiguous()


def _use_matmul(x5: Tensor) -> bool:
    """The band-matmul window sum: channels_last in a 16-bit dtype (see :class:`_Window`)."""
    return _channels_innermost(x5) and x5.element_size() <= 2


def _rows(t5: Tensor) -> Tensor:
    """[N, g, Cg, H, W] in channels_last order as the matrix [N*H*W*g, Cg] (a view)."""
    return t5.permute(0, 3, 4, 1, 2).reshape(-1, t5.shape[_CH])


def _chunks(x5: Tensor) -> list[slice]:
    """Batch slices whose temporaries stay under _CPU_CHUNK_BYTES on the CPU; one slice elsewhere."""
    if x5.device.type != "cpu" or x5.shape[0] <= 1:
        return [slice(None)]
    per_sample = x5[0].numel() * x5.element_size()
    step = max(1, _CPU_CHUNK_BYTES // max(1, per_sample))
    return [slice(i, i + step) for i in range(0, x5.shape[0], step)]


# glibc maps every block over 32 MB afresh, and first touching its pages costs as much as several
# elementwise passes (a [32, 96, 55, 55] fp32 temporary: ~20 ms on one core here). Temporaries
# below this size are recycled from the heap instead.
_CPU_CHUNK_BYTES = 16 << 20


class _LRNFunction(torch.autograd.Function):
    """One autograd node; on the CPU it walks the batch in chunks so temporaries stay small."""

    @staticmethod
    def forward(ctx, x: Tensor, size: int, scale: float, beta: float, k: float, groups: int,  # type: ignore[override]
                native: bool) -> Tensor:
        lo, hi = size // 2, (size - 1) // 2
        ctx.native = native and lrn_native.supports(x)
        if ctx.native:  # fp32 or bf16 on the CPU: one pass each way in C
            y, d = lrn_native.forward(x, groups, lo, hi, k, scale, beta)
            ctx.params = (groups, lo, hi, scale, beta)
            ctx.save_for_backward(x, d)
            return y
        x5 = x.unflatten(1, (groups, x.shape[1] // groups))
        if not (x5.is_contiguous() or _channels_innermost(x5)):
            x5 = x5.contiguous()
        pad = max(lo, hi)
        y5 = torch.empty_like(x5)
        saved: list[Tensor] = []
        with torch.autocast(x.device.type, enabled=False):
            k_over_n = torch.full((), k / size, dtype=x.dtype, device=x.device)
            for part in _chunks(x5):
                xs = x5[part]
                # P = k/n + s x^2 and out-of-range channels count as k/n: windows sum to k + s S.
                window = _Window(xs, pad)
                window.fill_pads(k / size)
                torch.addcmul(k_over_n, xs, xs, value=scale, out=window.mid)
                d = window.sum_into(torch.empty_like(xs), lo, hi, k / size)
                # r = 1/sqrt(d), kept for the backward (1/d = r^2). It lives in d's own contiguous
                # memory, not in the window's padded buffer: elementwise ops on that strided view were
                # several times slower (sqrt especially) in channels_last.
                if beta == 0.75:  # d^-3/4 = r * sqrt(r): pow costs ~8 elementwise passes here
                    r = d.rsqrt_()
                    dpow = torch.sqrt(r).mul_(r)
                elif beta == 0.5:
                    r = d.rsqrt_()
                    dpow = r
                else:
                    dpow = d.pow(-beta)
                    r = d.rsqrt_()
                torch.mul(xs, dpow, out=y5[part])
                saved += [r, dpow]
        ctx.params = (pad, lo, hi, scale, beta)
        ctx.save_for_backward(x5, *saved)
        return y5.flatten(1, 2)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        # With d = k + s S and y = x d^-beta:
        #   dx[c] = g[c] d[c]^-beta - 2 s beta x[c] * sum_{j: c in window(j)} g[j] x[j] d[j]^(-beta-1)
        # The sum runs over the transposed window (lo and hi swapped).
        if ctx.native:
            x, d = ctx.saved_tensors
            return lrn_native.backward(grad_y, x, d, *ctx.params), None, None, None, None, None, None
        x5, *saved = ctx.saved_tensors
        pad, lo, hi, scale, beta = ctx.params
        g5 = grad_y.unflatten(1, x5.shape[1:3])
        grad5 = torch.empty_like(x5)
        for i, part in enumerate(_chunks(x5)):
            xs, r, dpow = x5[part], saved[2 * i], saved[2 * i + 1]  # r = rsqrt(d)
            t = g5[part] * dpow  # g d^-beta
            window = _Window(xs, pad)
            window.fill_pads(0.0)
            torch.mul(r, r, out=window.mid).mul_(t).mul_(xs)  # g x d^(-beta-1)
            w = window.sum_into(torch.empty_like(xs), hi, lo, 0.0)
            torch.addcmul(t, xs, w, value=-2.0 * scale * beta, out=grad5[part])
        return grad5.flatten(1, 2), None, None, None, None, None, None


def local_response_norm(
    x: Tensor,
    size: int,
    alpha: float = 1e-4,
    beta: float = 0.75,
    k: float = 1.0,
    alpha_over_n: bool = True,
    groups: int = 1,
    native: bool = True,
) -> Tensor:
    """Functional form of :class:`LocalResponseNorm` (channels are dim 1, any dim >= 3).

    ``native=False`` skips the C kernel (``lrn_native``) and uses the torch ops: the same function.
    """
    if x.dim() < 3:
        raise ValueError(f"local_response_norm expects at least 3 dimensions, got {x.dim()}")
    if x.shape[1] % groups:
        raise ValueError(f"{x.shape[1]} channels do not split into {groups} groups")
    if x.numel() == 0:
        return x
    scale = alpha / size if alpha_over_n else alpha
    return _LRNFunction.apply(x, size, scale, beta, k, groups, native)


class LocalResponseNorm(nn.Module):
    """``nn.LocalResponseNorm(size, alpha, beta, k)``, faster, with ``groups``; see the module docstring.

    ``alpha_over_n=False`` uses the paper's formula literally (alpha not divided by the size n).
    ``native=False`` keeps it off the C kernel (the same function; for benchmarks and tests).
    """

    def __init__(
        self,
        size: int,
        alpha: float = 1e-4,
        beta: float = 0.75,
        k: float = 1.0,
        alpha_over_n: bool = True,
        groups: int = 1,
        native: bool = True,
    ) -> None:
        super().__init__()
        if size < 1 or groups < 1:
            raise ValueError(f"LRN size and groups must be >= 1, got {size} and {groups}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.alpha_over_n, self.groups, self.native = alpha_over_n, groups, native

    def forward(self, x: Tensor) -> Tensor:
        return local_response_norm(
            x, self.size, self.alpha, self.beta, self.k, alpha_over_n=self.alpha_over_n, groups=self.groups,
            native=self.native,
        )

    def extra_repr(self) -> str:
        return (f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, "
                f"alpha_over_n={self.alpha_over_n}, groups={self.groups}")


def lrn_spreads(model: nn.Module, x: Tensor, max_values: int = 1_000_000) -> list[float]:
    """How far each LRN layer of ``model`` is from a constant rescaling, on the batch ``x``.

    Per LRN layer, in forward order: (p95 − p5) / median of output / input over the nonzero inputs
    (at most ``max_values`` of them, a fixed random pick). A layer that divides by a near-constant
    (k dominating alpha·Σa², as with unit-variance inputs or small activations) gives ~0; one
    that normalises gives a spread of tens of per cent. Runs ``model`` in eval mode, without grad.
    """
    spreads: list[float] = []

    def hook(_module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        a, b = inputs[0].float(), output.float()
        nonzero = a != 0
        ratio = (b[nonzero] / a[nonzero]).cpu()
        pick = torch.randperm(ratio.numel(), generator=torch.Generator().manual_seed(0))[:max_values]
        p5, p50, p95 = torch.quantile(ratio[pick], torch.tensor([0.05, 0.5, 0.95])).tolist()
        spreads.append((p95 - p5) / p50)

    layers = [m for m in model.modules() if isinstance(m, (LocalResponseNorm, nn.LocalResponseNorm))]
    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return spreads
