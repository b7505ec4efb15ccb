"""Compile-option and block-size variants of the CUDA price kernel, timed on one GPU.

    python benchmarks/heston/gpu_variants.py [--paths 1048576] [--steps 252]

For each variant it prints the kernel's registers and local memory (spills), the best
kernel time of ``--repeat`` launches by CUDA events and the best wall time of a whole
``price_sums`` call (launch, reduction, copy back), in path-steps per second, and the
conditional price of the FO call against the default build's: a faster build that moves
the price by more than its standard error is not a candidate.  This is how the CUDA
backend's NVRTC options and block size were chosen (benchmarks/heston/README.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from argus_gpu_heston import HestonParams
from argus_gpu_heston.backends.cuda import CudaBackend, cuda_source
from argus_gpu_heston.mc_common import BLOCK, SimSpec, make_spec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from machine import machine_line

FO = HestonParams(v0=0.0175, kappa=1.5768, theta=0.0398, sigma=0.5751, rho=-0.5711)
BASE = ("--std=c++14",)
OPTION_VARIANTS: dict[str, tuple[str, ...]] = {
    "default": BASE,
    "fast-math": (*BASE, "--use_fast_math"),
    "ftz+approx-div/sqrt": (*BASE, "-ftz=true", "-prec-div=false", "-prec-sqrt=false"),
    "ftz": (*BASE, "-ftz=true"),
}


class Variant(CudaBackend):
    """The CUDA backend with its kernel built from other options or another block size."""

    def __init__(self, options: tuple[str, ...], block: int) -> None:
        super().__init__()
        self.options, self.block = options, block

    def _module(self, spec: SimSpec) -> Any:
        key = (spec.dtype, spec.scheme, spec.antithetic, spec.conditional)
        mod = self._modules.get(key)
        if mod is None:
            src = cuda_source(spec.dtype, spec.scheme, spec.antithetic, spec.conditional)
            src = src.replace(f"#define BLOCK {BLOCK}\n", f"#define BLOCK {self.block}\n")
            mod = self._modules[key] = self._cp.RawModule(code=src, options=self.options)
        return mod

    def _grid(self, spec: SimSpec) -> int:
        return int(min(self.max_blocks * BLOCK // self.block,
                       max(1, -(-spec.n_pairs // self.block))))

    def launch(self, spec: SimSpec) -> Any:
        cp = self._cp
        grid = self._grid(spec)
        partials = cp.empty((grid, 5), dtype=cp.float64)
        kernel = self._module(spec).get_function("heston_price")
        dt = spec.dtype
        kernel((grid,), (self.block,), (*self._common_args(spec), dt(100.0), dt(100.0),
                                        dt(1.0), dt(0.0), np.int32(1), np.uint32(spec.key0),
                                        np.uint32(spec.key1), partials))
        return partials


def measure(be: Variant, spec: SimSpec, repeat: int) -> tuple[float, float]:
    """(best kernel seconds by CUDA events, best wall seconds of a whole price_sums)."""
    cp = be._cp
    be.launch(spec)
    cp.cuda.Device().synchronize()
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    kern = []
    for _ in range(repeat):
        start.record()
        be.launch(spec)
        stop.record()
        stop.synchronize()
        kern.append(cp.cuda.get_elapsed_time(start, stop) / 1e3)
    wall = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        be.price_sums(spec, 100.0, 100.0, 1.0, 0.0, True)
        wall.append(time.perf_counter() - t0)
    return min(kern), min(wall)


def conditional_price(be: Variant, dtype: str, scheme: str) -> tuple[float, float]:
    spec = make_spec(FO, 1.0, 0.0, 1 << 20, 64, scheme, dtype, 7, True, conditional=True)
    s = be.price_sums(spec, 100.0, 100.0, 1.0, 0.0, True)
    n = spec.n_pairs
    mean = s[0] / n
    return float(mean), float(np.sqrt(max(s[1] / n - mean * mean, 0.0) / n))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=1 << 20)
    ap.add_argument("--steps", type=int, default=252)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    print(machine_line())
    variants = [(name, opts, BLOCK) for name, opts in OPTION_VARIANTS.items()]
    variants += [(f"default, block {b}", BASE, b) for b in (128, 512) if b != BLOCK]
    print(f"{'variant':<24} {'scheme':<6} {'dtype':<8} {'regs':>4} {'local B':>7} "
          f"{'kernel ms':>9} {'kernel ps/s':>11} {'call ms':>8} {'call ps/s':>10} "
          f"{'cond. price':>12} {'vs default':>10}")
    ref: dict[tuple[str, str], float] = {}
    for name, opts, block in variants:
        be = Variant(opts, block)
        for scheme in ("euler", "qe"):
            for dtype in ("float32", "float64"):
                if dtype == "float64" and name not in ("default", "fast-math"):
                    continue
                spec = make_spec(FO, 1.0, 0.0, args.paths, args.steps, scheme, dtype, 1, True,
                                 conditional=False)
                try:
                    kern, wall = measure(be, spec, args.repeat)
                    fn = be._module(spec).get_function("heston_price")
                    price, se = conditional_price(be, dtype, scheme)
                except Exception as exc:  # a variant that fails to build is a finding
                    print(f"{name:<24} {scheme:<6} {dtype:<8} failed: {exc}")
                    continue
                ref.setdefault((scheme, dtype), price)
                diff = (price - ref[(scheme, dtype)]) / se
                ps = spec.n_paths * args.steps
                print(f"{name:<24} {scheme:<6} {dtype:<8} {fn.num_regs:>4} "
                      f"{fn.local_size_bytes:>7} {kern * 1e3:>9.3f} {ps / kern:>11.3e} "
                      f"{wall * 1e3:>8.3f} {ps / wall:>10.3e} {price:>12.6f} "
                      f"{diff:>8.2f}se", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
