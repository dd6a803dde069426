"""The LRN's CPU kernel (``lrn_kernel.c``, fp32 and bf16): built with the system's C compiler on first use.

Why: in pure torch ops the LRN is ~9 elementwise passes each way over the largest maps of the
net, and on a CPU those passes are memory traffic, a few percent of an AlexNet training step. The
kernel reads x and writes y and d once in the forward, and reads g, x, d and writes dx once in the
backward (the window sums stay in cache).

It needs no torch headers: ``cc -O3 -shared -fopenmp`` builds it in about a second, into
``$XDG_CACHE_HOME/alexnet-audit`` (default ``~/.cache``), keyed by the source, the compiler and the
machine, so a shared home on a mixed cluster is fine. Where there is no compiler, the build fails,
or ``AUDIT_NATIVE_LRN=0``, :func:`available` is False and the LRN uses its torch ops (the same
function; ``tests/test_lrn.py`` checks both against ``nn.LocalResponseNorm``).

The work runs on ``torch.get_num_threads()`` threads: OpenMP's (see ``OPENMP``) or, in a build
without OpenMP, Python threads each calling the kernel on a share of the outer indices (ctypes
releases the GIL).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import Tensor

SOURCE = Path(__file__).with_name("lrn_kernel.c")
FLAGS = ["-O3", "-fno-math-errno", "-shared", "-fPIC"]
# With OpenMP the kernel runs on the OpenMP runtime torch has loaded (same soname, so the same
# threads): a pool of our own fought torch's spinning OpenMP threads for the cores (measured on 2
# cores: the AlexNet step at 0.98x torchvision's with a Python thread pool, 1.03x on OpenMP). Without
# OpenMP (e.g. Apple clang) the work is split between Python threads instead.
OPENMP = "-fopenmp"
# Below this many elements one thread does the whole tensor (thread hand-off costs ~20 us).
_PARALLEL_MIN_ELEMENTS = 1 << 16

_i64, _f32, _ptr = ctypes.c_int64, ctypes.c_float, ctypes.c_void_p
_FORWARD_ARGS = [_ptr, _ptr, _ptr, *[_i64] * 7, _f32, _f32, _f32, _i64]
_BACKWARD_ARGS = [_ptr, _ptr, _ptr, _ptr, *[_i64] * 7, _f32, _f32, _i64]
# dtype -> (forward, backward) entry points; d is fp32 for both.
ENTRY_POINTS = {torch.float32: ("lrn_forward", "lrn_backward"),
                torch.bfloat16: ("lrn_forward_bf16", "lrn_backward_bf16")}


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "alexnet-audit"


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def build(compiler: str, out_dir: Path, openmp: bool = True) -> Path:
    """Compile the kernel into ``out_dir`` (atomic rename: concurrent workers may race safely)."""
    source = SOURCE.read_bytes()
    flags = [*FLAGS, OPENMP] if openmp else FLAGS
    key = hashlib.sha256(b"\0".join([source, compiler.encode(), " ".join(flags).encode(),
                                     platform.machine().encode(), platform.system().encode()]))
    target = out_dir / f"lrn_kernel-{key.hexdigest()[:16]}.so"
    if target.exists():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        built = Path(tmp) / target.name
        subprocess.run([compiler, *flags, "-o", str(built), str(SOURCE)], check=True, capture_output=True,
                       timeout=120)
        os.replace(built, target)
    return target


@functools.cache
def library() -> ctypes.CDLL | None:
    """The loaded kernel, or None (no compiler, build failed, or ``AUDIT_NATIVE_LRN=0``)."""
    if os.environ.get("AUDIT_NATIVE_LRN", "1") == "0":
        return None
    compiler = _compiler()
    if compiler is None:
        return None
    for openmp in (True, False):
        try:
            return load(build(compiler, cache_dir(), openmp))
        except (OSError, subprocess.SubprocessError):
            continue
    return None


def load(path: Path) -> ctypes.CDLL:
    """Load a built kernel and declare its entry points' C signatures."""
    lib = ctypes.CDLL(str(path))
    lib.lrn_openmp.restype = ctypes.c_int
    for forward_name, backward_name in ENTRY_POINTS.values():
        getattr(lib, forward_name).argtypes = _FORWARD_ARGS
        getattr(lib, backward_name).argtypes = _BACKWARD_ARGS
        getattr(lib, forward_name).restype = getattr(lib, backward_name).restype = ctypes.c_int
    return lib


def available() -> bool:
    return library() is not None


def layout(x: Tensor) -> tuple[int, int] | None:
    """(outer, inner) when x is dense as [outer, C, inner] (channels_last or contiguous), else None."""
    channels = x.shape[1]
    if x.is_contiguous():
        return x.shape[0], x.numel() // max(1, x.shape[0] * channels)
    if x.movedim(1, -1).is_contiguous():
        return x.numel() // channels, 1
    return None


def supports(x: Tensor) -> bool:
    """The kernel handles fp32 and bf16 CPU tensors in a dense layout, when it could be built."""
    return x.device.type == "cpu" and x.dtype in ENTRY_POINTS and layout(x) is not None and available()


def forward(x: Tensor, groups: int, lo: int, hi: int, k: float, scale: float, beta: float) -> tuple[Tensor, Tensor]:
    """(y, d) with d = k + scale * window sum of x^2 (fp32); y and d laid out like x."""
    outer, inner = layout(x)  # type: ignore[misc]
    y, d = torch.empty_like(x), torch.empty_like(x, dtype=torch.float32)
    cg = x.shape[1] // groups
    _parallel(_entry(x, 0), outer, x.numel(), [x, y, d], [groups, cg, inner, lo, hi],
              [k, scale, beta])
    return y, d


def backward(grad_y: Tensor, x: Tensor, d: Tensor, groups: int, lo: int, hi: int, scale: float,
             beta: float) -> Tensor:
    """dL/dx from dL/dy, for the x and d of :func:`forward`."""
    outer, inner = layout(x)  # type: ignore[misc]
    g = grad_y.contiguous() if x.is_contiguous() else grad_y.movedim(1, -1).contiguous().movedim(-1, 1)
    grad_x = torch.empty_like(x)
    cg = x.shape[1] // groups
    _parallel(_entry(x, 1), outer, x.numel(), [g, x, d, grad_x], [groups, cg, inner, lo, hi],
              [scale, beta])
    return grad_x


def _entry(x: Tensor, which: int):
    return getattr(library(), ENTRY_POINTS[x.dtype][which])


def _parallel(fn, outer: int, numel: int, tensors: list[Tensor], sizes: list[int], floats: list[float]) -> None:
    """Run ``fn(*pointers, begin, end, *sizes, *floats, threads)`` over [0, outer) on torch's thread count."""
    pointers = [t.data_ptr() for t in tensors]
    threads = max(1, min(torch.get_num_threads(), outer, numel // _PARALLEL_MIN_ELEMENTS))
    if library().lrn_openmp():  # type: ignore[union-attr]
        if fn(*pointers, 0, outer, *sizes, *floats, threads):
            raise MemoryError("lrn kernel: out of memory for its scratch buffer")
        return
    bounds = [outer * i // threads for i in range(threads + 1)]

    def call(i: int) -> int:
        return fn(*pointers, bounds[i], bounds[i + 1], *sizes, *floats, 1)

    if threads == 1:
        codes = [call(0)]
    else:
        pending = [_pool(threads - 1).submit(call, i) for i in range(1, threads)]
        codes = [call(0), *(p.result() for p in pending)]
    if any(codes):
        raise MemoryError("lrn kernel: out of memory for its scratch buffer")


_POOL: dict[str, ThreadPoolExecutor] = {}


def _pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool, rebuilt when the thread count changes or after a fork."""
    key = f"{os.getpid()}:{workers}"
    if key not in _POOL:
        _POOL.clear()  # a pool from the parent of a fork has no threads here; its shutdown would hang
        _POOL[key] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lrn")
    return _POOL[key]
