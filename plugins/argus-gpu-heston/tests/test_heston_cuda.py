"""The CUDA backend: NVRTC compiles every kernel variant (no GPU needed, only libnvrtc);
on a machine with a CUDA device the same seed gives the same paths as the CPU backend and
prices agree with the analytic formula.  Skipped where the tools or the device are absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from argus_gpu_heston import HestonParams, HestonPricer
from argus_gpu_heston.backends import get_backend
from argus_gpu_heston.backends.cuda import cuda_available, cuda_source, nvrtc_options
from argus_gpu_heston.mc_common import make_spec

sys.path.insert(0, str(Path(__file__).parent))
from nvrtc_compile import compile_ptx, find_nvrtc

FO = HestonParams(v0=0.0175, kappa=1.5768, theta=0.0398, sigma=0.5751, rho=-0.5711)
HAS_CUDA = cuda_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scheme", [1, 2])
@pytest.mark.parametrize(("antithetic", "conditional"), [(True, True), (False, True),
                                                         (True, False), (False, False)])
def test_cuda_kernels_compile_with_nvrtc(dtype: type, scheme: int, antithetic: bool,
                                         conditional: bool) -> None:
    lib = find_nvrtc()
    if lib is None:
        pytest.skip("libnvrtc not found (pip install nvidia-cuda-nvrtc-cu12 to run this check)")
    ok, out = compile_ptx(lib, cuda_source(dtype, scheme, antithetic, conditional),
                          [*nvrtc_options(dtype), "-arch=compute_90"])
    assert ok, out
    assert ".entry heston_price" in out and ".entry heston_paths" in out
    if dtype == np.float32:
        assert "ld.local" not in out  # float32 state stays in registers
        # the float32 kernels compute in float32: double only in the ACC accumulators
        # (add/mul/fma for sums of y, y^2, c, c^2, y c) and the conversions into them
        f64_math = [line for line in out.splitlines()
                    if any(op in line for op in ("sqrt.rn.f64", "div.rn.f64", "lg2.approx.f64",
                                                 "ex2.approx.f64", "sin.approx.f64"))]
        assert not f64_math, f64_math[:5]


@needs_cuda
@pytest.mark.parametrize("scheme", ["qe", "euler"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cuda_matches_cpu_paths(scheme: str, dtype: str) -> None:
    spec = make_spec(FO, 0.75, 0.01, 4000, 23, scheme, dtype, seed=123, antithetic=True)
    cpu = get_backend("cpu").paths(spec, 100.0)
    gpu = get_backend("cuda").paths(spec, 100.0)
    rtol = 1e-12 if dtype == "float64" else 1e-4
    for a, b in zip(cpu, gpu, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol)


@needs_cuda
@pytest.mark.parametrize("scheme", ["qe", "euler"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cuda_price_sums_match_cpu(scheme: str, dtype: str) -> None:
    for conditional in (True, False):
        spec = make_spec(FO, 0.75, 0.01, 4000, 23, scheme, dtype, seed=123, antithetic=True,
                         conditional=conditional)
        cpu = get_backend("cpu").price_sums(spec, 100.0, 95.0, 0.99, 0.0075, False)
        gpu = get_backend("cuda").price_sums(spec, 100.0, 95.0, 0.99, 0.0075, False)
        np.testing.assert_allclose(cpu, gpu, rtol=1e-9 if dtype == "float64" else 1e-4,
                                   atol=1e-9 if dtype == "float64" else 1e-3)


@needs_cuda
@pytest.mark.parametrize("scheme", ["qe", "euler"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cuda_price_within_three_standard_errors(scheme: str, dtype: str) -> None:
    # 256 steps: full-truncation Euler's bias on this call is +0.29% at 64 steps, which the
    # conditional estimator's standard error (~5e-4 at 2M paths) would expose; at 256 it
    # is +0.04% (the same seed on the CPU backend gives these numbers to float rounding).
    pr = HestonPricer()
    ref = pr.price("call", 100.0, 100.0, 1.0, 0.0, 0.0, FO).price
    res = pr.price("call", 100.0, 100.0, 1.0, 0.0, 0.0, FO, method="mc", scheme=scheme,
                   paths=2_000_000, steps=256, backend="cuda", dtype=dtype, seed=17)
    assert res.backend == "cuda"
    assert abs(res.price - ref) < 3 * res.stderr + 1e-3 * ref


@needs_cuda
def test_auto_prefers_cuda() -> None:
    assert get_backend("auto").name == "cuda"
