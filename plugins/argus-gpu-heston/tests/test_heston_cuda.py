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
from argus_gpu_heston.backends.cuda import cuda_available, cuda_source
from argus_gpu_heston.mc_common import make_spec

sys.path.insert(0, str(Path(__file__).parent))
from nvrtc_compile import compile_ptx, find_nvrtc

FO = HestonParams(v0=0.0175, kappa=1.5768, theta=0.0398, sigma=0.5751, rho=-0.5711)
HAS_CUDA = cuda_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scheme", [1, 2])
@pytest.mark.parametrize("antithetic", [True, False])
def test_cuda_kernels_compile_with_nvrtc(dtype: type, scheme: int, antithetic: bool) -> None:
    lib = find_nvrtc()
    if lib is None:
        pytest.skip("libnvrtc not found (pip install nvidia-cuda-nvrtc-cu12 to run this check)")
    ok, out = compile_ptx(lib, cuda_source(dtype, scheme, antithetic),
                          ["--std=c++14", "-arch=compute_90"])
    assert ok, out
    assert ".entry heston_price" in out and ".entry heston_paths" in out
    assert "ld.local" not in out or dtype == np.float64  # float32 state stays in registers


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
def test_cuda_price_within_three_standard_errors(scheme: str, dtype: str) -> None:
    pr = HestonPricer()
    ref = pr.price("call", 100.0, 100.0, 1.0, 0.0, 0.0, FO).price
    res = pr.price("call", 100.0, 100.0, 1.0, 0.0, 0.0, FO, method="mc", scheme=scheme,
                   paths=2_000_000, steps=64, backend="cuda", dtype=dtype, seed=17)
    assert res.backend == "cuda"
    assert abs(res.price - ref) < 3 * res.stderr + 2e-3 * ref


@needs_cuda
def test_auto_prefers_cuda() -> None:
    assert get_backend("auto").name == "cuda"
