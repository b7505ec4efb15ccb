"""The CUDA backend: kernels/heston_mc.cl compiled as CUDA C++ by NVRTC through CuPy.

One thread per path pair, Philox generated in registers, the whole time loop inside
the kernel and the payoff statistics reduced per block in shared memory: one launch
per price, no per-step Python work.  CuPy is optional (the ``cuda`` extra).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from argus_gpu_heston.errors import BackendUnavailableError
from argus_gpu_heston.mc_common import BLOCK, SimSpec, kernel_source

PREAMBLE = """
typedef unsigned int uint32;
typedef unsigned long long uint64;
#define KERNEL extern "C" __global__
#define GLOBAL
#define LOCAL_MEM __shared__
#define BARRIER() __syncthreads()
#define GID ((uint64)blockIdx.x * blockDim.x + threadIdx.x)
#define GSIZE ((uint64)gridDim.x * blockDim.x)
#define LID threadIdx.x
#define GROUP_ID blockIdx.x
#define DEVICE __device__ __forceinline__
#define MULHI(a, b) __umulhi((a), (b))
#if REAL_IS_DOUBLE
#define SINCOSPI(x, s, c) sincospi((x), (s), (c))
#else
#define SINCOSPI(x, s, c) sincospif((x), (s), (c))
#endif
"""


def cuda_source(dtype: type, scheme: int, antithetic: bool, conditional: bool = True) -> str:
    """Full CUDA C++ text of the kernels for one variant."""
    double = dtype == np.float64
    defines = (f"#define REAL {'double' if double else 'float'}\n"
               f"#define REAL_IS_DOUBLE {int(double)}\n#define ACC double\n"
               f"#define SCHEME {scheme}\n#define ANTITHETIC {int(antithetic)}\n"
               f"#define CONDITIONAL {int(conditional)}\n#define BLOCK {BLOCK}\n")
    return defines + PREAMBLE + kernel_source()


def nvrtc_options(dtype: type) -> tuple[str, ...]:
    """NVRTC options for one precision.  float32 kernels use the hardware approximations
    of log, sqrt, division and sin/cos (``--use_fast_math``): 1.7x (Euler) and 2.3x (QE)
    the throughput on an H200, paths within 3e-6 relative of the CPU backend's and prices
    within 0.03 standard errors (benchmarks/heston/README.md); float64 kernels keep IEEE
    operations and match the CPU backend to 1e-15."""
    return ("--std=c++14",) if dtype == np.float64 else ("--std=c++14", "--use_fast_math")


def _import_cupy() -> Any:
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailableError(
            "backend 'cuda' needs CuPy: pip install 'argus-gpu-heston[cuda]' (cupy-cuda12x) or "
            "cupy-cuda13x to match the driver") from exc
    return cupy


def cuda_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        cupy = _import_cupy()
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


class CudaBackend:
    """Heston kernels on the current CUDA device."""

    name = "cuda"

    def __init__(self) -> None:
        cupy = _import_cupy()
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:
            raise BackendUnavailableError(f"backend 'cuda': no usable CUDA driver ({exc})") from exc
        if count == 0:
            raise BackendUnavailableError("backend 'cuda': CuPy sees no CUDA device")
        self._cp = cupy
        dev = cupy.cuda.Device()
        props = cupy.cuda.runtime.getDeviceProperties(dev.id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        self.device = f"{name} (CUDA device {dev.id}, {props['multiProcessorCount']} SMs)"
        self.max_blocks = int(props["multiProcessorCount"]) * 16
        # threads per block, the kernel source's BLOCK: 512 was no faster in float32 on
        # an H200 and 11% slower for QE in float64 (benchmarks/heston/gpu_variants.py)
        self.block = BLOCK
        self._modules: dict[tuple, Any] = {}

    def _module(self, spec: SimSpec) -> Any:
        key = (spec.dtype, spec.scheme, spec.antithetic, spec.conditional)
        mod = self._modules.get(key)
        if mod is None:
            mod = self._cp.RawModule(code=cuda_source(spec.dtype, spec.scheme, spec.antithetic,
                                                      spec.conditional),
                                     options=nvrtc_options(spec.dtype))
            self._modules[key] = mod
        return mod

    def _grid(self, spec: SimSpec) -> int:
        return int(min(self.max_blocks, max(1, -(-spec.n_pairs // self.block))))

    def _common_args(self, spec: SimSpec) -> list[Any]:
        dt = spec.dtype
        return [np.uint64(spec.n_pairs), np.uint32(spec.n_steps), dt(spec.v0),
                *(dt(c) for c in spec.consts)]

    def launch_price(self, spec: SimSpec, s0: float, strike: float, disc: float, mu_t: float,
                     is_call: bool) -> Any:
        """Launch the price kernel; returns the device array of per-block partial sums."""
        cp = self._cp
        dt = spec.dtype
        grid = self._grid(spec)
        partials = cp.empty((grid, 5), dtype=cp.float64)
        kernel = self._module(spec).get_function("heston_price")
        kernel((grid,), (self.block,), (*self._common_args(spec), dt(s0), dt(strike), dt(disc),
                                   dt(mu_t), np.int32(bool(is_call)), np.uint32(spec.key0),
                                   np.uint32(spec.key1), partials))
        return partials

    def price_sums(self, spec: SimSpec, s0: float, strike: float, disc: float, mu_t: float,
                   is_call: bool) -> NDArray[np.float64]:
        """Sums of the control-variate statistics (see :class:`MCBackend`)."""
        partials = self.launch_price(spec, s0, strike, disc, mu_t, is_call)
        return partials.sum(axis=0).get()

    def paths(self, spec: SimSpec, s0: float) -> tuple[NDArray, NDArray, NDArray]:
        """Terminal, min and max prices of the 2 * n_pairs paths (copied to the host)."""
        cp = self._cp
        out = [cp.empty(spec.n_paths, dtype=spec.dtype) for _ in range(3)]
        kernel = self._module(spec).get_function("heston_paths")
        kernel((self._grid(spec),), (self.block,), (*self._common_args(spec), spec.dtype(s0),
                                               np.uint32(spec.key0), np.uint32(spec.key1), *out))
        return out[0].get(), out[1].get(), out[2].get()
