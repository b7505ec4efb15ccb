"""The OpenCL backend: kernels/heston_mc.cl built as OpenCL C through PyOpenCL.

Runs on any OpenCL 1.2 device with double support (cl_khr_fp64): NVIDIA/AMD/Intel
GPUs, and PoCL on CPUs (Debian's ``pocl-opencl-icd``), which is what CI uses.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from argus_gpu_heston.errors import BackendUnavailableError
from argus_gpu_heston.mc_common import BLOCK, SimSpec, kernel_source

_PREAMBLE = """
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef uint uint32;
typedef ulong uint64;
#define KERNEL __kernel
#define GLOBAL __global
#define LOCAL_MEM __local
#define BARRIER() barrier(CLK_LOCAL_MEM_FENCE)
#define GID ((uint64)get_global_id(0))
#define GSIZE ((uint64)get_global_size(0))
#define LID ((uint32)get_local_id(0))
#define GROUP_ID ((uint64)get_group_id(0))
#define DEVICE inline
#define MULHI(a, b) mul_hi((uint32)(a), (uint32)(b))
#define SINCOSPI(x, s, c) do { *(s) = sinpi(x); *(c) = cospi(x); } while (0)
"""


def _import_cl() -> Any:
    # PoCL's kernel cache lives in the user's cache dir; PyOpenCL's compiler cache too.
    os.environ.setdefault("PYOPENCL_NO_CACHE", "0")
    try:
        import pyopencl as cl
    except ImportError as exc:
        raise BackendUnavailableError(
            "backend 'opencl' needs PyOpenCL and an OpenCL driver: pip install pyopencl, plus "
            "an ICD such as Debian's pocl-opencl-icd (CPU) or the GPU vendor's driver") from exc
    return cl


def list_devices(gpu_only: bool = False) -> list[Any]:
    """OpenCL devices with double support, GPUs first ([] when there is no platform)."""
    try:
        cl = _import_cl()
        platforms = cl.get_platforms()
    except Exception:
        return []
    gpus: list[Any] = []
    others: list[Any] = []
    for platform in platforms:
        try:
            devices = platform.get_devices()
        except Exception:
            continue
        for dev in devices:
            if "cl_khr_fp64" not in dev.extensions:
                continue
            (gpus if dev.type & cl.device_type.GPU else others).append(dev)
    return gpus if gpu_only else gpus + others


class OpenCLBackend:
    """Heston kernels on an OpenCL device (the first GPU, else the first device)."""

    name = "opencl"

    def __init__(self, device: Any = None) -> None:
        cl = _import_cl()
        if device is None:
            devices = list_devices()
            if not devices:
                raise BackendUnavailableError(
                    "backend 'opencl' found no OpenCL device with double support; install an "
                    "ICD (apt-get install pocl-opencl-icd ocl-icd-libopencl1 for the CPU)")
            device = devices[0]
        self._cl = cl
        self._dev = device
        self.device = f"{device.name.strip()} ({device.platform.name.strip()})"
        self.is_gpu = bool(device.type & cl.device_type.GPU)
        self.ctx = cl.Context([device])
        self.queue = cl.CommandQueue(self.ctx)
        self._programs: dict[tuple, Any] = {}
        self.n_groups = max(1, device.max_compute_units) * (8 if self.is_gpu else 4)

    def _kernel(self, spec: SimSpec, name: str) -> Any:
        """The built kernel ``name`` for this variant (built and retrieved once)."""
        key = (spec.dtype, spec.scheme, spec.antithetic, spec.conditional)
        kernels = self._programs.get(key)
        if kernels is None:
            double = spec.dtype == np.float64
            defines = (f"#define REAL {'double' if double else 'float'}\n"
                       f"#define REAL_IS_DOUBLE {int(double)}\n#define ACC double\n"
                       f"#define SCHEME {spec.scheme}\n#define ANTITHETIC {int(spec.antithetic)}\n"
                       f"#define CONDITIONAL {int(spec.conditional)}\n#define BLOCK {BLOCK}\n")
            # Correctly rounded division and sqrt, no fast-math: the CPU twin must agree.
            prog = self._cl.Program(self.ctx, _PREAMBLE + defines + kernel_source()).build(
                options=["-cl-fp32-correctly-rounded-divide-sqrt"])
            kernels = {n: self._cl.Kernel(prog, n) for n in ("heston_price", "heston_paths")}
            self._programs[key] = kernels
        return kernels[name]

    def _common_args(self, spec: SimSpec) -> list[Any]:
        dt = spec.dtype
        return [np.uint64(spec.n_pairs), np.uint32(spec.n_steps), dt(spec.v0),
                *(dt(c) for c in spec.consts)]

    def _groups(self, spec: SimSpec) -> int:
        return int(min(self.n_groups, max(1, -(-spec.n_pairs // BLOCK))))

    def price_sums(self, spec: SimSpec, s0: float, strike: float, disc: float, mu_t: float,
                   is_call: bool) -> NDArray[np.float64]:
        """Sums of the control-variate statistics (see :class:`MCBackend`)."""
        cl = self._cl
        dt = spec.dtype
        groups = self._groups(spec)
        partials = cl.Buffer(self.ctx, cl.mem_flags.WRITE_ONLY, size=groups * 5 * 8)
        kernel = self._kernel(spec, "heston_price")
        args = [*self._common_args(spec), dt(s0), dt(strike), dt(disc), dt(mu_t),
                np.int32(bool(is_call)), np.uint32(spec.key0), np.uint32(spec.key1), partials]
        kernel.set_args(*args)
        self._cl.enqueue_nd_range_kernel(self.queue, kernel, (groups * BLOCK,), (BLOCK,))
        host = np.empty(groups * 5, dtype=np.float64)
        cl.enqueue_copy(self.queue, host, partials)
        self.queue.finish()
        return host.reshape(groups, 5).sum(axis=0)

    def paths(self, spec: SimSpec, s0: float) -> tuple[NDArray, NDArray, NDArray]:
        """Terminal, min and max prices of the 2 * n_pairs paths."""
        cl = self._cl
        n = spec.n_paths
        itemsize = np.dtype(spec.dtype).itemsize
        bufs = [cl.Buffer(self.ctx, cl.mem_flags.WRITE_ONLY, size=n * itemsize) for _ in range(3)]
        kernel = self._kernel(spec, "heston_paths")
        args = [*self._common_args(spec), spec.dtype(s0), np.uint32(spec.key0),
                np.uint32(spec.key1), *bufs]
        kernel.set_args(*args)
        self._cl.enqueue_nd_range_kernel(self.queue, kernel, (self._groups(spec) * BLOCK,),
                                         (BLOCK,))
        out: list[NDArray[Any]] = [np.empty(n, dtype=spec.dtype) for _ in range(3)]
        for host, buf in zip(out, bufs, strict=True):
            cl.enqueue_copy(self.queue, host, buf)
        self.queue.finish()
        return out[0], out[1], out[2]
