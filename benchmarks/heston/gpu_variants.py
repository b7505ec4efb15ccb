"""Compile-option and block-size variants of the CUDA price kernel, timed on one GPU.

    python benchmarks/heston/gpu_variants.py [--paths 1048576] [--steps 252]

For each variant it prints the kernel's registers and local memory (spills), the best
kernel time of ``--repeat`` launches by CUDA events and the best wall time of a whole
``price_sums`` call (launch, reduction, copy back), in path-steps per second, and the
conditional price of the FO call against the shipped build's: a faster build that moves
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
from argus_gpu_heston.backends.cuda import CudaBackend, cuda_source, nvrtc_options
from argus_gpu_heston.mc_common import BLOCK, SimSpec, combine_sums, make_spec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from machine import machine_line

FO = HestonParams(v0=0.0175, kappa=1.5768, theta=0.0398, sigma=0.5751, rho=-0.5711)
BASE = ("--std=c++14",)
FAST = (*BASE, "--use_fast_math")
#: Philox's two 32x32 products as one widening multiply each (the same numbers).
WIDE_PHILOX = ("""        const uint32 hi0 = MULHI(0xD2511F53u, c.v0), lo0 = 0xD2511F53u * c.v0;
        const uint32 hi1 = MULHI(0xCD9E8D57u, c.v2), lo1 = 0xCD9E8D57u * c.v2;
""", """        const uint64 p0 = (uint64)0xD2511F53u * c.v0, p1 = (uint64)0xCD9E8D57u * c.v2;
        const uint32 hi0 = (uint32)(p0 >> 32), lo0 = (uint32)p0;
        const uint32 hi1 = (uint32)(p1 >> 32), lo1 = (uint32)p1;
""")
#: The shipped QE step with other shared reciprocals: one for 1/s2, 1/tot and 1/(2m), one
#: for the correction's denominator and 1/(1 - u): 3 divisions a step instead of 4.
QE_FUSED = """DEVICE void qe_step(path_t* st, REAL zv, REAL u, REAL zx, const consts_t* k) {
    const REAL vt = st->v;
    const REAL m = k->theta + (vt - k->theta) * k->ex;
    const REAL s2 = vt * k->c1 + k->c2;
    const REAL m2 = m * m;
    const REAL tot = s2 + m2;
    const REAL tm = R(2.0) * m;
    const int live = m > R(0.0);
    const int quad = s2 <= R(1.5) * m2;
    const REAL r = R(1.0) / (live ? s2 * tot * tm : R(1.0));
    const REAL inv = R(2.0) * m2 * (r * tot * tm);
    const REAL rtot = r * s2 * tm;
    const REAL ib = tot * (r * s2 * tot);
    const REAL p = (s2 - m2) * rtot;
    const REAL omp = R(2.0) * m2 * rtot;
    const REAL b2 = inv - R(1.0) + sqrt(fmax(inv * (inv - R(1.0)), R(0.0)));
    const REAL a = m / (R(1.0) + b2);
    const REAL zb = sqrt(b2) + zv;
    const REAL den = R(1.0) - R(2.0) * k->a_m * a;
    const REAL dexp = R(1.0) - k->a_m * ib;
    const int corrected = live && (quad ? den > R(0.0) : dexp > R(0.0));
    const REAL dsel = corrected ? (quad ? den : dexp) : R(1.0);
    const REAL r2 = R(1.0) / (dsel * (R(1.0) - u));
    const REAL rd = r2 * (R(1.0) - u);
    const REAL ru = r2 * dsel;
    const REAL lg = log(quad ? dsel : p + omp * rd);
    const REAL ve = (u <= p) ? R(0.0) : log(omp * ru) * ib;
    const REAL vn = live ? (quad ? a * zb * zb : ve) : R(0.0);
    const REAL lnm = quad ? k->a_m * b2 * a * rd - R(0.5) * lg : lg;
    const REAL k0 = corrected ? -lnm - (k->k1 + R(0.5) * k->k3) * vt : k->k0;
    const REAL drift = k->mu_dt + k0 + k->k1 * vt + k->k2 * vn;
    const REAL var = k->k3 * vt + k->k4 * vn;
    st->x += drift + sqrt(var) * zx;
    st->ca += drift;
    st->cb += var;
    st->v = vn;
}
"""

def qe_step_source() -> str:
    """The kernel's own qe_step function, as text (what QE_FUSED replaces)."""
    from argus_gpu_heston.mc_common import kernel_source

    src = kernel_source()
    start = src.index("DEVICE void qe_step(")
    return src[start:src.index("\n}\n", start) + 3]


#: (name, NVRTC options (None: the backend's own for the precision), threads per block,
#: source substitutions, float64 too)
Options = tuple[str, ...] | None
VARIANTS: list[tuple[str, Options, int, tuple[tuple[str, str], ...], bool]] = [
    ("shipped", None, BLOCK, (), True),
    ("IEEE float32 (no fast-math)", BASE, BLOCK, (), False),
    ("ftz, approx div+sqrt", (*BASE, "-ftz=true", "-prec-div=false", "-prec-sqrt=false"),
     BLOCK, (), False),
    ("wide philox", None, BLOCK, (WIDE_PHILOX,), False),
    ("48 registers", (*FAST, "--maxrregcount=48"), BLOCK, (), False),
    ("block 512", None, 512, (), True),
    ("QE fused reciprocals", None, BLOCK, ((qe_step_source(), QE_FUSED),), True),
]


class Variant(CudaBackend):
    """The CUDA backend with its kernels built from other options, block size or source."""

    def __init__(self, options: Options, block: int,
                 subs: tuple[tuple[str, str], ...]) -> None:
        super().__init__()
        self.options, self.block, self.subs = options, block, subs

    def _module(self, spec: SimSpec) -> Any:
        key = (spec.dtype, spec.scheme, spec.antithetic, spec.conditional)
        mod = self._modules.get(key)
        if mod is None:
            src = cuda_source(spec.dtype, spec.scheme, spec.antithetic, spec.conditional)
            src = src.replace(f"#define BLOCK {BLOCK}\n", f"#define BLOCK {self.block}\n")
            for old, new in self.subs:
                if old not in src:
                    raise ValueError(f"substitution not found: {old[:40]!r}")
                src = src.replace(old, new)
            opts = nvrtc_options(spec.dtype) if self.options is None else self.options
            mod = self._modules[key] = self._cp.RawModule(code=src, options=opts)
        return mod


def measure(be: Variant, spec: SimSpec, repeat: int) -> tuple[float, float]:
    """(best kernel seconds by CUDA events, best wall seconds of a whole price_sums)."""
    cp = be._cp
    args = (spec, 100.0, 100.0, 1.0, 0.0, True)
    be.launch_price(*args)
    cp.cuda.Device().synchronize()
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    kern = []
    for _ in range(repeat):
        start.record()
        be.launch_price(*args)
        stop.record()
        stop.synchronize()
        kern.append(cp.cuda.get_elapsed_time(start, stop) / 1e3)
    wall = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        be.price_sums(*args)
        wall.append(time.perf_counter() - t0)
    return min(kern), min(wall)


def conditional_price(be: Variant, dtype: str, scheme: str) -> tuple[float, float]:
    spec = make_spec(FO, 1.0, 0.0, 1 << 20, 64, scheme, dtype, 7, True, conditional=True)
    est = combine_sums(be.price_sums(spec, 100.0, 100.0, 1.0, 0.0, True), spec.n_pairs, False)
    return est.value, est.stderr


def paths_vs_cpu(be: Variant, dtype: str, scheme: str, ref: Any) -> str:
    """Largest relative difference of the test's paths from the CPU backend's (carried in
    ``--cpu-ref``, made by ``--write-cpu-ref`` on a machine without a GPU)."""
    key = f"{scheme}_{dtype}"
    if ref is None or f"{key}_0" not in ref:
        return "n/a"
    spec = make_spec(FO, 0.75, 0.01, 4000, 23, scheme, dtype, seed=123, antithetic=True)
    gpu = be.paths(spec, 100.0)
    return f"{max(float(np.max(np.abs(g / ref[f'{key}_{i}'] - 1))) for i, g in enumerate(gpu)):.1e}"


def write_cpu_ref(path: str) -> None:
    from argus_gpu_heston.backends import get_backend

    out = {}
    for scheme in ("euler", "qe"):
        for dtype in ("float32", "float64"):
            spec = make_spec(FO, 0.75, 0.01, 4000, 23, scheme, dtype, seed=123, antithetic=True)
            for i, a in enumerate(get_backend("cpu").paths(spec, 100.0)):
                out[f"{scheme}_{dtype}_{i}"] = a
    np.savez(path, **out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paths", type=int, default=1 << 20)
    ap.add_argument("--steps", type=int, default=252)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--cpu-ref", help="the CPU backend's paths (.npz) to compare against")
    ap.add_argument("--write-cpu-ref", help="write the CPU backend's paths here and stop")
    ap.add_argument("--variants", help="variant names separated by ';' (default: all)")
    ap.add_argument("--schemes", default="euler,qe", help="comma-separated: euler, qe")
    args = ap.parse_args()
    if args.write_cpu_ref:
        write_cpu_ref(args.write_cpu_ref)
        return 0
    ref = np.load(args.cpu_ref) if args.cpu_ref and Path(args.cpu_ref).exists() else None
    print(machine_line())
    print(f"{'variant':<24} {'scheme':<6} {'dtype':<8} {'regs':>4} {'local B':>7} "
          f"{'kernel ms':>9} {'kernel ps/s':>11} {'call ms':>8} {'call ps/s':>10} "
          f"{'cond. price':>12} {'vs default':>10} {'vs cpu':>8}")
    prices: dict[tuple[str, str], float] = {}
    chosen = args.variants.split(";") if args.variants else [v[0] for v in VARIANTS]
    for name, opts, block, subs, f64 in VARIANTS:
        if name not in chosen:
            continue
        be = Variant(opts, block, subs)
        for scheme in args.schemes.split(","):
            for dtype in ("float32", "float64") if f64 else ("float32",):
                spec = make_spec(FO, 1.0, 0.0, args.paths, args.steps, scheme, dtype, 1, True,
                                 conditional=False)
                try:
                    kern, wall = measure(be, spec, args.repeat)
                    fn = be._module(spec).get_function("heston_price")
                    price, se = conditional_price(be, dtype, scheme)
                    vs_cpu = paths_vs_cpu(be, dtype, scheme, ref)
                except Exception as exc:  # a variant that fails to build is a finding
                    print(f"{name:<24} {scheme:<6} {dtype:<8} failed: {exc}", flush=True)
                    continue
                prices.setdefault((scheme, dtype), price)
                diff = (price - prices[(scheme, dtype)]) / se
                ps = spec.n_paths * args.steps
                print(f"{name:<24} {scheme:<6} {dtype:<8} {fn.num_regs:>4} "
                      f"{fn.local_size_bytes:>7} {kern * 1e3:>9.3f} {ps / kern:>11.3e} "
                      f"{wall * 1e3:>8.3f} {ps / wall:>10.3e} {price:>12.6f} "
                      f"{diff:>8.2f}se {vs_cpu:>8}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
