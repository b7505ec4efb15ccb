"""Compute backends for the Monte Carlo engine and the rule that picks one.

``auto`` prefers CUDA (CuPy and a device), then an OpenCL GPU, then the CPU (Numba);
PoCL's CPU device is never picked automatically because Numba is faster there.
Backends are built once per process and reused, so kernels compile once.
"""

from __future__ import annotations

import threading

from argus_gpu_heston.errors import BackendUnavailableError, HestonParameterError
from argus_gpu_heston.mc_common import MCBackend

BACKENDS = ("auto", "cuda", "opencl", "cpu")
_cache: dict[str, MCBackend] = {}
_lock = threading.Lock()


def _build(name: str) -> MCBackend:
    if name == "cuda":
        from argus_gpu_heston.backends.cuda import CudaBackend

        return CudaBackend()
    if name == "opencl":
        from argus_gpu_heston.backends.opencl import OpenCLBackend

        return OpenCLBackend()
    from argus_gpu_heston.backends.cpu_numba import NumbaBackend

    return NumbaBackend()


def get_backend(name: str | None = "auto") -> MCBackend:
    """The backend called ``name`` (auto, cuda, opencl, cpu); a clear error when absent."""
    name = (name or "auto").lower()
    if name not in BACKENDS:
        raise HestonParameterError(f"backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    with _lock:
        if name == "auto":
            if "auto" not in _cache:
                _cache["auto"] = _auto()
            return _cache["auto"]
        if name not in _cache:
            _cache[name] = _build(name)
        return _cache[name]


def _auto() -> MCBackend:
    from argus_gpu_heston.backends.cuda import cuda_available

    if cuda_available():
        try:
            return _cache.setdefault("cuda", _build("cuda"))
        except BackendUnavailableError:
            pass
    from argus_gpu_heston.backends.opencl import OpenCLBackend, list_devices

    gpus = list_devices(gpu_only=True)
    if gpus:
        try:
            return _cache.setdefault("opencl", OpenCLBackend(gpus[0]))
        except Exception:  # a broken GPU ICD must not stop the CPU fallback
            pass
    return _cache.setdefault("cpu", _build("cpu"))


def available_backends() -> dict[str, str]:
    """Backend name -> device description, for every backend that can start here."""
    out: dict[str, str] = {}
    for name in ("cuda", "opencl", "cpu"):
        try:
            out[name] = get_backend(name).device
        except BackendUnavailableError:
            continue
    return out
