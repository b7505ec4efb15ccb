"""Monte Carlo engine: Philox known answers, cross-backend agreement, accuracy vs analytic."""

from __future__ import annotations

import math

import attrs
import numpy as np
import pytest
from argus_gpu_heston import HestonParams, HestonPricer
from argus_gpu_heston.backends import get_backend
from argus_gpu_heston.backends.cpu_numba import philox_block
from argus_gpu_heston.backends.opencl import list_devices
from argus_gpu_heston.errors import BackendUnavailableError, HestonParameterError
from argus_gpu_heston.mc_common import make_spec
from argus_gpu_heston.pricer import HestonSettings

FO = HestonParams(v0=0.0175, kappa=1.5768, theta=0.0398, sigma=0.5751, rho=-0.5711)
# A grid of model regimes: FO (Feller violated), Lewis (high vol of vol), Andersen case I
# (kappa 0.5, sigma 1, rho -0.9: the hardest for Euler), and a positive-correlation case.
GRID = [FO, HestonParams(0.04, 4.0, 0.25, 1.0, -0.5), HestonParams(0.04, 0.5, 0.04, 1.0, -0.9),
        HestonParams(0.09, 2.0, 0.06, 0.3, 0.3)]
OPENCL = bool(list_devices())
needs_opencl = pytest.mark.skipif(not OPENCL, reason="no OpenCL device (install pocl-opencl-icd)")
BACKENDS = ["cpu", pytest.param("opencl", marks=needs_opencl)]


@pytest.mark.parametrize(("ctr", "key", "expected"), [
    # Random123 kat_vectors, philox4x32 10
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
])
def test_philox_known_answers(ctr: tuple, key: tuple, expected: tuple) -> None:
    assert tuple(int(x) for x in philox_block(*ctr, *key)) == expected


@needs_opencl
@pytest.mark.parametrize("scheme", ["qe", "euler"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("antithetic", [True, False])
def test_same_seed_same_paths_on_cpu_and_opencl(scheme: str, dtype: str, antithetic: bool) -> None:
    spec = make_spec(FO, 0.75, 0.01, 4000, 23, scheme, dtype, seed=2 ** 40 + 7,
                     antithetic=antithetic)
    cpu = get_backend("cpu").paths(spec, 100.0)
    ocl = get_backend("opencl").paths(spec, 100.0)
    # float rounding of log/sin/cos accumulated over 23 steps
    rtol = 1e-12 if dtype == "float64" else 1e-4
    for a, b in zip(cpu, ocl, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol)
    for conditional in (True, False):
        spec = attrs.evolve(spec, conditional=conditional)
        sums_cpu = get_backend("cpu").price_sums(spec, 100.0, 95.0, 0.99, 0.0075, False)
        sums_ocl = get_backend("opencl").price_sums(spec, 100.0, 95.0, 0.99, 0.0075, False)
        # the control sum is near zero, so it gets an absolute tolerance (2000 float32 terms)
        np.testing.assert_allclose(sums_cpu, sums_ocl, rtol=1e-9 if dtype == "float64" else 1e-4,
                                   atol=1e-9 if dtype == "float64" else 1e-3)


def test_seed_determinism_and_stream_independence() -> None:
    pr = HestonPricer()
    a = pr.price("call", 100, 100, 1.0, 0.0, 0.0, FO, method="mc", paths=4000, steps=8, seed=5,
                 backend="cpu")
    b = pr.price("call", 100, 100, 1.0, 0.0, 0.0, FO, method="mc", paths=4000, steps=8, seed=5,
                 backend="cpu")
    c = pr.price("call", 100, 100, 1.0, 0.0, 0.0, FO, method="mc", paths=4000, steps=8, seed=6,
                 backend="cpu")
    assert a.price == b.price
    assert a.price != c.price


def test_antithetic_pairs_are_reflections() -> None:
    # With a tiny vol of vol the variance stays ~v0 on both paths, so the antithetic B path's
    # log-return is the mirror image of A's around the drift (up to sigma-sized terms).
    p = HestonParams(0.04, 1.0, 0.04, 1e-6, 0.0)
    spec = make_spec(p, 1.0, 0.0, 2000, 10, "euler", "float64", seed=1, antithetic=True)
    s_end, _, _ = get_backend("cpu").paths(spec, 1.0)
    n = spec.n_pairs
    drift = -0.5 * 0.04 * 1.0
    np.testing.assert_allclose(np.log(s_end[:n]) - drift, -(np.log(s_end[n:]) - drift),
                               atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_qe_within_three_standard_errors_across_grid(backend: str, dtype: str) -> None:
    pr = HestonPricer(HestonSettings(seed=11))
    worst = 0.0
    for params in GRID:
        for strike, kind in ((90.0, "put"), (100.0, "call"), (115.0, "call")):
            ref = pr.price(kind, 100.0, strike, 1.0, 0.02, 0.01, params).price
            res = pr.price(kind, 100.0, strike, 1.0, 0.02, 0.01, params, method="mc",
                           scheme="qe", paths=40_000, steps=16, backend=backend, dtype=dtype)
            assert res.backend == backend
            # QE-M's bias at 16 steps a year is below 1e-3 of these prices (Andersen 2008)
            tol = 3.0 * res.stderr + 1e-3 * ref
            worst = max(worst, abs(res.price - ref) / res.stderr)
            assert abs(res.price - ref) < tol, (params, strike, kind, res, ref)
    assert worst > 0.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_euler_within_three_standard_errors_where_bias_is_small(backend: str) -> None:
    # Full-truncation Euler's O(dt) bias at 256 steps a year is below 0.07% of these prices
    # (measured with 2M paths); at 64 steps it is 0.5% on the FO call, which the
    # conditional estimator's small standard error would (rightly) expose.
    pr = HestonPricer(HestonSettings(seed=3))
    for params in (GRID[0], GRID[1], GRID[3]):
        for strike, kind in ((90.0, "put"), (105.0, "call")):
            ref = pr.price(kind, 100.0, strike, 1.0, 0.02, 0.01, params).price
            res = pr.price(kind, 100.0, strike, 1.0, 0.02, 0.01, params, method="mc",
                           scheme="euler", paths=40_000, steps=256, backend=backend)
            assert abs(res.price - ref) < 3.0 * res.stderr + 1e-3 * ref, (params, strike, res, ref)


def test_euler_bias_shrinks_like_dt_on_andersen_case_one() -> None:
    # Full-truncation Euler's known O(dt) bias (Lord et al. 2010) is large on Andersen's
    # case I; with common random numbers halving dt must roughly halve the error, and QE
    # at the coarsest step must already be better than Euler at the finest.
    params = GRID[2]
    pr = HestonPricer(HestonSettings(seed=9))
    ref = pr.price("call", 100.0, 100.0, 1.0, 0.0, 0.0, params).price
    errs = [pr.price("call", 100.0, 100.0, 1.0, 0.0, 0.0, params, method="mc", scheme="euler",
                     paths=60_000, steps=n, backend="cpu").price - ref for n in (16, 32, 64)]
    assert errs[0] > errs[1] > errs[2] > 0
    assert 1.4 < errs[0] / errs[1] < 2.8 and 1.4 < errs[1] / errs[2] < 2.8
    qe = pr.price("call", 100.0, 100.0, 1.0, 0.0, 0.0, params, method="mc", scheme="qe",
                  paths=60_000, steps=16, backend="cpu")
    # QE-M's own bias here at 16 steps is about -0.17% of the price (2M paths: -0.0076)
    assert abs(qe.price - ref) < min(3.5 * qe.stderr + 2e-3 * ref, errs[2])


def test_control_variate_and_antithetics_reduce_the_standard_error() -> None:
    plain = HestonPricer(HestonSettings(antithetic=False, control_variate=False,
                                        estimator="plain"))
    reduced = HestonPricer(HestonSettings(estimator="plain"))
    args = ("call", 100.0, 100.0, 1.0, 0.0, 0.0, FO)
    kw = dict(method="mc", paths=40_000, steps=16, backend="cpu", seed=4)
    assert reduced.price(*args, **kw).stderr < 0.75 * plain.price(*args, **kw).stderr


# Feller condition violated in all three (2 kappa theta / sigma^2 = 0.38, 0.03, 0.12):
# Fang-Oosterlee, an Andersen (2008) case II-like set, and rho > 0 with vol of vol 1.
COND_CASES = [FO, HestonParams(0.04, 0.3, 0.04, 0.9, -0.5), HestonParams(0.09, 1.0, 0.06, 1.0, 0.3)]


def test_conditional_estimator_is_unbiased_against_analytic_prices() -> None:
    # Steps fine enough that QE-M's own bias is far below the standard error (at 1/32 of
    # a year it is not: ~1% on a 3-month OTM call, seen by both estimators alike).
    pr = HestonPricer(HestonSettings(seed=21))
    zs = []
    for params in COND_CASES:
        assert 2.0 * params.kappa * params.theta < params.sigma ** 2
        for t, steps in ((0.25, 32), (1.0, 64), (3.0, 96)):
            sd = math.sqrt(params.theta * t)
            for m in (-1.5, 0.0, 1.5):  # OTM put, ATM call, OTM call
                strike = 100.0 * math.exp(m * sd)
                kind = "put" if m < 0 else "call"
                ref = pr.price(kind, 100.0, strike, t, 0.03, 0.01, params).price
                res = pr.price(kind, 100.0, strike, t, 0.03, 0.01, params, method="mc",
                               paths=50_000, steps=steps, backend="cpu")
                z = (res.price - ref) / res.stderr
                assert abs(z) < 3.5, (params, t, strike, kind, res, ref)
                zs.append(z)
    # the stated standard errors are honest on aggregate too (27 cases sharing one seed)
    assert float(np.mean(np.square(zs))) < 3.0


@pytest.mark.parametrize(("scheme", "steps"), [("euler", 16), ("qe", 4)])
def test_conditional_estimator_has_the_mean_of_the_simulated_payoff(scheme: str,
                                                                    steps: int) -> None:
    # It is E[payoff | variance path] of the *discretised* scheme, so it must reproduce the
    # scheme's bias exactly, not the model's price: on Andersen's case I at coarse steps
    # the bias is many standard errors wide and both estimators must still agree.
    params = GRID[2]
    pr = HestonPricer(HestonSettings(seed=8))
    ref = pr.price("call", 100.0, 100.0, 1.0, 0.0, 0.0, params).price
    kw = dict(method="mc", scheme=scheme, paths=800_000, steps=steps, backend="cpu")
    cond = pr.price("call", 100.0, 100.0, 1.0, 0.0, 0.0, params, estimator="conditional", **kw)
    plain = pr.price("call", 100.0, 100.0, 1.0, 0.0, 0.0, params, estimator="plain", **kw)
    assert abs(cond.price - ref) > 6.0 * plain.stderr  # the scheme's bias is visible...
    # ...and shared (the two use the same variance paths, so this bound is conservative)
    assert abs(cond.price - plain.price) < 3.0 * math.hypot(cond.stderr, plain.stderr)


@pytest.mark.parametrize(("kind", "strike", "max_ratio"), [
    ("call", 100.0, 0.35), ("call", 130.0, 0.2), ("put", 85.0, 0.6)])
def test_conditional_estimator_cuts_the_standard_error(kind: str, strike: float,
                                                       max_ratio: float) -> None:
    # Against the simulated payoff with the same antithetics and S_T control variate,
    # same paths; measured ratios 0.17 (ATM), 0.09 (OTM call), 0.44 (OTM put).
    pr = HestonPricer(HestonSettings(seed=4))
    kw = dict(method="mc", paths=40_000, steps=16, backend="cpu")
    args = (kind, 100.0, strike, 1.0, 0.0, 0.0, FO)
    cond = pr.price(*args, estimator="conditional", **kw)
    plain = pr.price(*args, estimator="plain", **kw)
    assert cond.stderr < max_ratio * plain.stderr, (cond, plain)


def test_auto_backend_reports_what_it_used() -> None:
    res = HestonPricer().price("put", 100.0, 95.0, 0.5, 0.01, 0.0, FO, method="mc",
                               paths=2000, steps=4, backend="auto")
    assert res.backend in ("cuda", "opencl", "cpu")
    assert res.paths == 2000 and res.steps == 4 and res.elapsed_ms > 0


def test_invalid_simulation_settings_are_refused() -> None:
    pr = HestonPricer()
    args = ("call", 100.0, 100.0, 1.0, 0.0, 0.0, FO)
    with pytest.raises(HestonParameterError, match="paths"):
        pr.price(*args, method="mc", paths=1, backend="cpu")
    with pytest.raises(HestonParameterError, match="steps"):
        pr.price(*args, method="mc", paths=100, steps=0, backend="cpu")
    with pytest.raises(HestonParameterError, match="scheme"):
        pr.price(*args, method="mc", scheme="milstein", backend="cpu")
    with pytest.raises(HestonParameterError, match="backend"):
        pr.price(*args, method="mc", backend="tpu")
    with pytest.raises(HestonParameterError, match="method"):
        pr.price(*args, method="fft")
    with pytest.raises(HestonParameterError, match="estimator"):
        pr.price(*args, method="mc", estimator="magic", backend="cpu")
    with pytest.raises(HestonParameterError, match="maturity"):
        pr.price("call", 100.0, 100.0, -1.0, 0.0, 0.0, FO, method="mc")


def test_missing_backend_is_a_clear_error() -> None:
    from argus_gpu_heston.backends.cuda import cuda_available

    if cuda_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(BackendUnavailableError, match="cuda"):
        HestonPricer().price("call", 100.0, 100.0, 1.0, 0.0, 0.0, FO, method="mc",
                             backend="cuda")
