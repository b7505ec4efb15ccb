"""Compile CUDA C++ to PTX with NVRTC through ctypes: no GPU and no driver needed.

Lets a machine without a GPU check that the CUDA variant of the shared kernel
compiles.  The library is looked up on the loader path and in the
``nvidia-cuda-nvrtc-cu12`` wheel; None when neither has it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import sys


def find_nvrtc() -> ctypes.CDLL | None:
    """A loaded libnvrtc, or None."""
    candidates = []
    name = ctypes.util.find_library("nvrtc")
    if name:
        candidates.append(name)
    for entry in sys.path:
        candidates += glob.glob(os.path.join(entry, "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so*"))
    for cand in candidates:
        try:
            return ctypes.CDLL(cand)
        except OSError:
            continue
    return None


def compile_ptx(lib: ctypes.CDLL, source: str, options: list[str]) -> tuple[bool, str]:
    """(ok, log or PTX) for ``source`` compiled with ``options``."""
    prog = ctypes.c_void_p()
    rc = lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"heston.cu", 0, None, None)
    if rc != 0:
        return False, f"nvrtcCreateProgram failed with {rc}"
    opts = (ctypes.c_char_p * len(options))(*(o.encode() for o in options))
    rc = lib.nvrtcCompileProgram(prog, len(options), opts)
    size = ctypes.c_size_t()
    if rc != 0:
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        return False, log.value.decode(errors="replace")
    lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
    ptx = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetPTX(prog, ptx)
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return True, ptx.value.decode(errors="replace")
