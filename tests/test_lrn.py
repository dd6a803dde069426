"""The fast LRN against nn.LocalResponseNorm: the C kernel and the torch ops, every layout and dtype."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import audit.models.lrn as lrn_module
from audit.models import LocalResponseNorm, local_response_norm, lrn_native

LRN_CASES = [((2, 96, 7, 7), 5, 2.0), ((3, 20, 5, 4), 9, 1.0), ((2, 10, 9), 5, 2.0), ((1, 6, 3, 3), 4, 1.0)]
needs_kernel = pytest.mark.skipif(not lrn_native.available(), reason="no C compiler here: the LRN kernel is not built")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def compare_lrn(
    x: torch.Tensor, size: int, k: float, alpha: float = 1e-2, beta: float = 0.75, groups: int = 1,
    native: bool = True,
) -> None:
    """Ours against nn.LocalResponseNorm (per group), forward and backward, in x's layout."""
    ours_in = x.clone().requires_grad_()
    ref_in = x.clone().requires_grad_()
    ours = local_response_norm(ours_in, size, alpha, beta, k, groups=groups, native=native)
    ref_mod = nn.LocalResponseNorm(size, alpha, beta, k)
    ref = torch.cat([ref_mod(part.contiguous()) for part in ref_in.chunk(groups, 1)], 1)
    grad = torch.randn_like(ref)
    ours.backward(grad)
    ref.backward(grad)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=1e-5, atol=1e-6)
    if x.dim() == 4:  # the layout is kept
        fmt = torch.channels_last if not x.is_contiguous() else torch.contiguous_format
        assert ours.is_contiguous(memory_format=fmt) and ours_in.grad.is_contiguous(memory_format=fmt)


@pytest.mark.parametrize(("shape", "size", "k"), LRN_CASES)
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("path", ["kernel", "torch", "torch_chunked"])
def test_fast_lrn_equals_torch(shape, size, k, channels_last: bool, path: str, monkeypatch) -> None:
    if path == "kernel" and not lrn_native.available():
        pytest.skip("no C compiler here: the LRN kernel is not built")
    if path == "torch_chunked":
        monkeypatch.setattr(lrn_module, "_CPU_CHUNK_BYTES", 1)  # one sample per chunk
    native = path == "kernel"
    x = torch.randn(shape) * 3
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    compare_lrn(x, size, k, native=native)
    compare_lrn(x, size, k, alpha=1e-4, beta=0.6, native=native)
    if shape[1] % 2 == 0:
        compare_lrn(x, size, k, groups=2, native=native)


def test_fast_lrn_band_matmul_path(monkeypatch) -> None:
    """The bf16 channels_last torch path (a band matmul), forced in fp32 to compare exactly."""
    monkeypatch.setattr(lrn_module, "_use_matmul", lrn_module._channels_innermost)
    x = (torch.randn(2, 12, 5, 5) * 3).contiguous(memory_format=torch.channels_last)
    compare_lrn(x, 5, 2.0, native=False)
    compare_lrn(x, 5, 2.0, groups=2, native=False)
    compare_lrn(x, 4, 1.0, beta=0.5, native=False)


@pytest.mark.parametrize(("dtype", "native"), [(torch.bfloat16, True), (torch.bfloat16, False), (torch.float16, True)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fast_lrn_half_precision(dtype: torch.dtype, native: bool, channels_last: bool) -> None:
    """bf16 and fp16 in, same dtype and layout out, close to fp32 (fp16 has no kernel: torch ops)."""
    x = torch.randn(2, 16, 6, 6) * 3
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    low = x.to(dtype).requires_grad_()
    ours = local_response_norm(low, 5, 1e-2, 0.75, 2.0, groups=2, native=native)
    assert ours.dtype == dtype and ours.stride() == x.stride()
    ref_in = x.clone().requires_grad_()
    ref = torch.cat([F.local_response_norm(p.contiguous(), 5, 1e-2, 0.75, 2.0) for p in ref_in.chunk(2, 1)], 1)
    grad = torch.randn_like(ref)
    ours.backward(grad.to(dtype))
    ref.backward(grad)
    assert low.grad.dtype == dtype
    torch.testing.assert_close(ours.float(), ref, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(low.grad.float(), ref_in.grad, rtol=4e-2, atol=4e-2)


@needs_kernel
def test_kernel_bf16_rounds_like_torch() -> None:
    """The kernel's bf16 output is its fp32 result rounded to nearest even, as torch rounds."""
    x = (torch.randn(3, 10, 4, 4) * 3).bfloat16()
    ours = local_response_norm(x, 5, 1e-2, 0.75, 2.0)
    exact = local_response_norm(x.float(), 5, 1e-2, 0.75, 2.0)
    assert torch.equal(ours, exact.bfloat16())
    specials = torch.tensor([float("nan"), 1.0, 3.0]).reshape(1, 3, 1).bfloat16()
    assert local_response_norm(specials, 1, 1e-2, 0.75, 2.0).float()[0, 0].isnan()


def test_paper_literal_alpha_is_the_formula() -> None:
    """b = a / (k + alpha * sum_{j=max(0,i-n/2)}^{min(N-1,i+n/2)} a_j^2)^beta, alpha not divided by n."""
    x = torch.randn(2, 7, 3, 3, dtype=torch.double)
    n, alpha, beta, k = 5, 1e-1, 0.75, 2.0
    expected = torch.empty_like(x)
    for i in range(7):
        window = x[:, max(0, i - n // 2): min(6, i + n // 2) + 1]
        expected[:, i] = x[:, i] / (k + alpha * (window**2).sum(1)) ** beta
    module = LocalResponseNorm(n, alpha, beta, k, alpha_over_n=False)
    torch.testing.assert_close(module(x), expected)
    torch.testing.assert_close(LocalResponseNorm(n, alpha * n, beta, k)(x), expected)


def test_fast_lrn_gradcheck() -> None:
    x = torch.randn(2, 8, 3, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: local_response_norm(t, 5, 0.5, 0.75, 1.0, groups=2), (x,))


@needs_kernel
def test_kernel_splits_work_between_threads() -> None:
    """Big enough to split: the same result with 1 and 2 threads, down to the bit."""
    x = (torch.randn(8, 96, 15, 15) * 3).contiguous(memory_format=torch.channels_last)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = local_response_norm(x, 5, 1e-4, 0.75, 2.0, groups=2)
        torch.set_num_threads(2)
        two = local_response_norm(x, 5, 1e-4, 0.75, 2.0, groups=2)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)


@needs_kernel
def test_kernel_without_openmp_splits_between_python_threads(tmp_path, monkeypatch) -> None:
    """A build without OpenMP (e.g. Apple clang) runs the same function on a pool of Python threads."""
    plain = lrn_native.load(lrn_native.build(lrn_native._compiler(), tmp_path, openmp=False))
    assert plain.lrn_openmp() == 0 and lrn_native.library().lrn_openmp() == 1
    monkeypatch.setattr(lrn_native, "library", lambda: plain)
    monkeypatch.setattr(lrn_native, "_PARALLEL_MIN_ELEMENTS", 1)  # split even this small tensor
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        compare_lrn((torch.randn(4, 16, 5, 5) * 3).contiguous(memory_format=torch.channels_last), 5, 2.0, groups=2)
        compare_lrn(torch.randn(4, 16, 5, 5) * 3, 5, 2.0)
    finally:
        torch.set_num_threads(threads)


@needs_kernel
def test_kernel_build_is_cached_by_source_and_compiler(tmp_path) -> None:
    compiler = lrn_native._compiler()
    first = lrn_native.build(compiler, tmp_path)
    stamp = first.stat().st_mtime_ns
    assert lrn_native.build(compiler, tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary left behind


@pytest.mark.parametrize("setting", ["switched_off", "broken_compiler", "no_compiler"])
def test_without_the_kernel_the_lrn_falls_back_to_torch_ops(setting: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if setting == "switched_off":
        monkeypatch.setenv("AUDIT_NATIVE_LRN", "0")
    elif setting == "broken_compiler":
        monkeypatch.setenv("CC", "false")  # exits 1: the build fails
    else:
        monkeypatch.setattr(lrn_native, "_compiler", lambda: None)
    lrn_native.library.cache_clear()
    try:
        assert not lrn_native.available()
        compare_lrn(torch.randn(2, 8, 3, 3), 5, 2.0, groups=2)
    finally:
        monkeypatch.undo()
        lrn_native.library.cache_clear()
