"""Heston Monte Carlo benchmark: every backend found here, both schemes, both precisions.

Prints one table of path-steps per second (fused kernels vs a naive CuPy loop, one
array operation per step, when CuPy and a GPU are present, and Numba on this CPU),
the variance reduction of each price estimator, then the time to price the
Fang-Oosterlee case to one cent at 99% confidence.

    python benchmarks/heston/bench_heston.py [--quick] [--json results.json]
    python benchmarks/heston/bench_heston.py --require-gpu --backends cuda --repeat 3 \
        --gpu-paths 1048576 --gpu-steps 252     # bounded GPU run (benchmarks/heston/gpu_check.sh)

Timings: each configuration runs once to compile and warm up, then ``--repeat`` times;
the best (minimum) wall time is reported, the least disturbed run on a shared machine
(GPU work is synchronised before the clock stops).  ``--threads N`` runs Numba on N
threads (default: all).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from argus_gpu_heston import HestonParams, HestonPricer
from argus_gpu_heston.backends import get_backend
from argus_gpu_heston.errors import BackendUnavailableError
from argus_gpu_heston.mc_common import make_spec
from argus_gpu_heston.pricer import HestonSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/machine.py
from machine import machine_line

FO = HestonParams(v0=0.0175, kappa=1.5768, theta=0.0398, sigma=0.5751, rho=-0.5711)
Z99 = 2.5758293035489004  # two-sided 99% normal quantile


def best_time(fn: Callable[[], Any], repeat: int) -> float:
    """Seconds of the fastest of ``repeat`` calls, after one warm-up (compile) call."""
    fn()  # compile / warm up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


#: Fused-kernel and naive-loop sizes on a GPU (``--gpu-paths``, ``--gpu-steps``).
GPU_PATHS, GPU_STEPS = 1 << 20, 252


def backends_here(missing: dict[str, str] | None = None) -> list[str]:
    """Backends that start here; why each other one does not goes into ``missing``."""
    found = []
    for name in ("cuda", "opencl", "cpu"):
        try:
            get_backend(name)
            found.append(name)
        except BackendUnavailableError as exc:
            if missing is not None:
                missing[name] = str(exc)
            continue
    return found


def fused_rows(names: list[str], quick: bool, repeat: int) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        be = get_backend(name)
        gpu = name == "cuda" or getattr(be, "is_gpu", False)
        paths, steps = (GPU_PATHS, GPU_STEPS) if gpu else (
            (1 << 15, 64) if quick else (1 << 17, 128))
        for scheme in ("euler", "qe"):
            for dtype in ("float32", "float64"):
                # the simulated payoff (what the naive loops compute too)
                spec = make_spec(FO, 1.0, 0.0, paths, steps, scheme, dtype, 1, True,
                                 conditional=False)
                secs = best_time(lambda spec=spec, be=be: be.price_sums(
                    spec, 100.0, 100.0, 1.0, 0.0, True), repeat)
                rows.append(dict(impl=f"fused kernel ({name})", device=be.device, scheme=scheme,
                                 dtype=dtype, paths=spec.n_paths, steps=steps, ms=secs * 1e3,
                                 path_steps_per_s=spec.n_paths * steps / secs))
    return rows


def naive_cupy_rows(repeat: int) -> list[dict[str, Any]]:
    """Full-truncation Euler with one CuPy operation (or fused elementwise kernel) per step."""
    try:
        import cupy as cp
        if cp.cuda.runtime.getDeviceCount() == 0:
            return []
    except Exception:
        return []
    paths, steps = GPU_PATHS, GPU_STEPS
    dt = 1.0 / steps
    p = FO
    step_kernel = cp.ElementwiseKernel(
        "float32 z1, float32 z2, float32 kdt, float32 theta, float32 ssdt, float32 sqdt, "
        "float32 rho, float32 rhob, float32 hdt", "float32 x, float32 v",
        "float vp = fmaxf(v, 0.f); float sv = sqrtf(vp);"
        "x += -hdt * vp + sqdt * sv * z1;"
        "v += kdt * (theta - vp) + ssdt * sv * (rho * z1 + rhob * z2);",
        "heston_euler_step")
    rng = cp.random.default_rng(1)
    f32 = cp.float32

    def fused_step_loop() -> None:
        x = cp.zeros(paths, dtype=f32)
        v = cp.full(paths, p.v0, dtype=f32)
        for _ in range(steps):
            z = rng.standard_normal((2, paths), dtype=f32)
            step_kernel(z[0], z[1], f32(p.kappa * dt), f32(p.theta), f32(p.sigma * dt ** 0.5),
                        f32(dt ** 0.5), f32(p.rho), f32((1 - p.rho ** 2) ** 0.5), f32(0.5 * dt),
                        x, v)
        float(cp.maximum(100 * cp.exp(x) - 100, 0).mean())

    def plain_loop() -> None:
        x = cp.zeros(paths, dtype=f32)
        v = cp.full(paths, p.v0, dtype=f32)
        for _ in range(steps):
            z1 = rng.standard_normal(paths, dtype=f32)
            z2 = rng.standard_normal(paths, dtype=f32)
            vp = cp.maximum(v, 0)
            sv = cp.sqrt(vp)
            x = x - 0.5 * dt * vp + dt ** 0.5 * sv * z1
            v = v + p.kappa * dt * (p.theta - vp) + p.sigma * dt ** 0.5 * sv * (
                p.rho * z1 + (1 - p.rho ** 2) ** 0.5 * z2)
        float(cp.maximum(100 * cp.exp(x) - 100, 0).mean())

    dev = cp.cuda.runtime.getDeviceProperties(0)["name"]
    dev = dev.decode() if isinstance(dev, bytes) else dev
    rows = []
    for label, fn in (("CuPy loop, fused step kernel", fused_step_loop),
                      ("CuPy loop, array expressions", plain_loop)):
        secs = best_time(fn, max(3, repeat // 3))
        rows.append(dict(impl=label, device=dev, scheme="euler", dtype="float32", paths=paths,
                         steps=steps, ms=secs * 1e3, path_steps_per_s=paths * steps / secs))
    return rows


#: Estimators compared: (label, settings).  "plain" is the simulated payoff.
ESTIMATORS = (
    ("payoff, no antithetics, no control", dict(estimator="plain", antithetic=False,
                                                control_variate=False)),
    ("payoff + antithetics + S_T control", dict(estimator="plain")),
    ("conditional, no antithetics/control", dict(antithetic=False, control_variate=False)),
    ("conditional + antithetics + control", {}),
)
#: FO model, T = 1, QE with 8 steps: an out-of-the-money put, the ATM call, an OTM call.
VR_CASES = (("put", 85.0), ("call", 100.0), ("call", 120.0))


def variance_reduction(names: list[str], quick: bool, repeat: int) -> list[dict[str, Any]]:
    """Per-path variance of every estimator, the variance reduction factor (VRF) against
    the bare payoff, and the efficiency gain (VRF times the bare payoff's time / own time)."""
    paths = 1 << (16 if quick else 18)
    rows = []
    for name in names:
        for kind, strike in VR_CASES:
            base_var = base_secs = None
            for label, kw in ESTIMATORS:
                pricer = HestonPricer(HestonSettings(seed=99, **kw))

                def run(pricer: HestonPricer = pricer, kind: str = kind,
                        strike: float = strike, name: str = name) -> Any:
                    return pricer.price(kind, 100.0, strike, 1.0, 0.0, 0.0, FO, method="mc",
                                        paths=paths, steps=8, backend=name)

                secs = best_time(run, max(1, repeat // 2))
                res = run()
                var = res.stderr ** 2 * res.paths
                if base_var is None:
                    base_var, base_secs = var, secs
                rows.append(dict(backend=name, kind=kind, strike=strike, estimator=label,
                                 paths=res.paths, price=res.price, stderr=res.stderr,
                                 var_per_path=var, vrf=base_var / var, ms=secs * 1e3,
                                 efficiency=base_var / var * base_secs / secs))
    return rows


def time_to_accuracy(names: list[str], repeat: int) -> list[dict[str, Any]]:
    """Wall time of one call that prices the FO case within 1 cent at 99% confidence."""
    exact = HestonPricer().price("call", 100.0, 100.0, 1.0, 0.0, 0.0, FO).price
    steps = 8  # QE-M's bias on this case at 8 steps is ~1e-3, a tenth of the target
    rows = []
    for name in names:
        for estimator in ("conditional", "plain"):
            pricer = HestonPricer(HestonSettings(seed=2024, estimator=estimator))
            for dtype in ("float32", "float64"):
                pilot = pricer.price("call", 100.0, 100.0, 1.0, 0.0, 0.0, FO, method="mc",
                                     paths=1 << 16, steps=steps, backend=name, dtype=dtype)
                sd = pilot.stderr * math.sqrt(pilot.paths)
                paths = math.ceil((Z99 * sd / 0.008) ** 2 / 2.0) * 2  # 20% margin on the cent

                def run(paths: int = paths, name: str = name, dtype: str = dtype,
                        pricer: HestonPricer = pricer) -> Any:
                    return pricer.price("call", 100.0, 100.0, 1.0, 0.0, 0.0, FO, method="mc",
                                        paths=paths, steps=steps, backend=name, dtype=dtype)

                secs = best_time(run, repeat)
                res = run()
                rows.append(dict(backend=name, dtype=dtype, estimator=estimator,
                                 paths=res.paths, steps=steps, price=res.price,
                                 error=res.price - exact, half_width_99=Z99 * res.stderr,
                                 ms=secs * 1e3,
                                 within_cent=abs(res.price - exact) < 0.01
                                 and Z99 * res.stderr <= 0.01))
    return rows


def main(argv: list[str] | None = None) -> int:
    global GPU_PATHS, GPU_STEPS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller CPU sizes")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--threads", type=int, help="Numba threads (default: all cores)")
    ap.add_argument("--only", choices=("throughput", "variance", "accuracy"),
                    help="run one section only")
    ap.add_argument("--backends", help="comma-separated subset of cuda,opencl,cpu")
    ap.add_argument("--gpu-paths", type=int, default=GPU_PATHS,
                    help="paths of the GPU throughput rows (default 2^20)")
    ap.add_argument("--gpu-steps", type=int, default=GPU_STEPS,
                    help="time steps of the GPU throughput rows (default 252)")
    ap.add_argument("--require-gpu", action="store_true",
                    help="exit with status 2 (and say why) when no CUDA device is usable")
    args = ap.parse_args(argv)
    GPU_PATHS, GPU_STEPS = args.gpu_paths, args.gpu_steps
    if args.threads:
        import numba

        numba.set_num_threads(args.threads)
    missing: dict[str, str] = {}
    names = backends_here(missing)
    if "cuda" in missing:
        print(f"no GPU: the CUDA backend cannot start here ({missing['cuda']})")
    if args.require_gpu and "cuda" not in names:
        print("--require-gpu: stopping (run on a machine with an NVIDIA GPU and CuPy)",
              file=sys.stderr)
        return 2
    if args.backends:
        names = [n for n in names if n in args.backends.split(",")]
    if not names:
        print(f"no backend to run (asked for {args.backends!r})", file=sys.stderr)
        return 2
    print(machine_line(f"backends: {names}"))
    rows: list[dict[str, Any]] = []
    vr: list[dict[str, Any]] = []
    tta: list[dict[str, Any]] = []
    if args.only in (None, "throughput"):
        rows = fused_rows(names, args.quick, args.repeat) + naive_cupy_rows(args.repeat)
        print(f"\n{'implementation':<34} {'scheme':<6} {'dtype':<8} {'paths':>9} {'steps':>5} "
              f"{'ms':>10} {'path-steps/s':>13}  device")
        for r in rows:
            print(f"{r['impl']:<34} {r['scheme']:<6} {r['dtype']:<8} {r['paths']:>9} "
                  f"{r['steps']:>5} {r['ms']:>10.3f} {r['path_steps_per_s']:>13.3e}  "
                  f"{r['device']}")
    if args.only in (None, "variance"):
        vr = variance_reduction(names, args.quick, args.repeat)
        print(f"\nvariance reduction (FO model, T = 1, QE 8 steps, float64, {vr[0]['paths']} "
              "paths; VRF = bare payoff's variance / estimator's; efficiency = VRF x time "
              "ratio)")
        print(f"{'backend':<8} {'option':<10} {'estimator':<38} {'price':>10} {'stderr':>9} "
              f"{'VRF':>7} {'ms':>8} {'efficiency':>10}")
        for r in vr:
            print(f"{r['backend']:<8} {r['kind'] + ' ' + format(r['strike'], 'g'):<10} "
                  f"{r['estimator']:<38} {r['price']:>10.5f} {r['stderr']:>9.5f} "
                  f"{r['vrf']:>7.1f} {r['ms']:>8.1f} {r['efficiency']:>10.1f}")
    if args.only in (None, "accuracy"):
        tta = time_to_accuracy(names, args.repeat)
        print(f"\ntime to one cent at 99% (FO case, exact {5.785155434376:.9f}, QE, 8 steps)")
        print(f"{'backend':<8} {'dtype':<8} {'estimator':<12} {'paths':>9} {'price':>12} "
              f"{'error':>10} {'99% half':>9} {'ms':>10} ok")
        for r in tta:
            print(f"{r['backend']:<8} {r['dtype']:<8} {r['estimator']:<12} {r['paths']:>9} "
                  f"{r['price']:>12.6f} {r['error']:>10.5f} {r['half_width_99']:>9.5f} "
                  f"{r['ms']:>10.3f} {'yes' if r['within_cent'] else 'NO'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"throughput": rows, "variance_reduction": vr, "time_to_accuracy": tta,
                       "python": sys.version}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
