"""The CPU kernel's building blocks: vectorisable log/sincos, and the block layout's
guarantees (a path depends only on seed and pair index; sums do not depend on threads)."""

from __future__ import annotations

import mpmath
import numba
import numpy as np
import pytest
from argus_gpu_heston import HestonParams
from argus_gpu_heston.backends import get_backend
from argus_gpu_heston.backends import vecmath as vm
from argus_gpu_heston.backends.cpu_numba import LANES
from argus_gpu_heston.mc_common import make_spec

FO = HestonParams(v0=0.0175, kappa=1.5768, theta=0.0398, sigma=0.5751, rho=-0.5711)
RNG = np.random.default_rng(20240601)


def _log_inputs() -> np.ndarray:
    return np.concatenate([
        RNG.random(20_000),                          # Box-Muller's uniforms
        1.0 - RNG.random(5_000) * 1e-9,              # just below 1: log ~ -(1 - x)
        1.0 + RNG.random(5_000) * 1e-9,              # just above 1
        2.0 ** RNG.uniform(-1020.0, 1020.0, 20_000),  # every exponent
        (np.arange(1, 2001, dtype=np.float64) + 0.5) * 2.0 ** -32,  # smallest uniforms
        np.array([np.finfo(np.float64).tiny, np.finfo(np.float64).max, 1.0, 2.0, 0.5]),
    ])


def _ulps(got: np.ndarray, ref: np.ndarray, dtype: type) -> float:
    return float(np.max(np.abs(got.astype(np.float64) - ref)
                        / np.spacing(np.abs(ref).astype(dtype)).astype(np.float64)))


def test_log64_is_within_one_ulp_of_numpy() -> None:
    x = _log_inputs()
    x = x[np.isfinite(x) & (x >= np.finfo(np.float64).tiny)]
    ref = np.log(x)
    got = vm.log64_array(x)
    exact = ref != 0.0
    assert _ulps(got[exact], ref[exact], np.float64) <= 1.0
    assert vm.log64_array(np.array([1.0]))[0] == 0.0


def test_log32_is_within_one_ulp_of_the_float64_log() -> None:
    x = _log_inputs()
    f32 = np.finfo(np.float32)
    x = x[(x >= float(f32.tiny)) & (x <= float(f32.max))].astype(np.float32)
    ref = np.log(x.astype(np.float64))
    got = vm.log32_array(x)
    assert got.dtype == np.float32
    exact = ref != 0.0
    assert _ulps(got[exact], ref[exact], np.float32) <= 1.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sincos2pi_matches_high_precision_values(dtype: type) -> None:
    # Box-Muller's angle uniforms: every value k 2^-12 (all quadrant boundaries) and
    # random ones; errors in units of the precision's epsilon (|sin|, |cos| <= 1)
    w = np.concatenate([np.arange(1, 4096) / 4096.0, RNG.random(1500)]).astype(dtype)
    fn = vm.sincos2pi64_array if dtype == np.float64 else vm.sincos2pi32_array
    s, c = fn(w)
    assert s.dtype == dtype and c.dtype == dtype
    mpmath.mp.dps = 30
    ref_s = np.array([float(mpmath.sinpi(2 * mpmath.mpf(float(v)))) for v in w])
    ref_c = np.array([float(mpmath.cospi(2 * mpmath.mpf(float(v)))) for v in w])
    eps = float(np.finfo(dtype).eps)
    assert np.max(np.abs(s - ref_s)) <= eps and np.max(np.abs(c - ref_c)) <= eps
    # exact at the quarter turns, as sincospi is
    q = np.array([0.25, 0.5, 0.75], dtype=dtype)
    s, c = fn(q)
    np.testing.assert_array_equal(s, np.array([1.0, 0.0, -1.0], dtype=dtype) + 0.0)
    np.testing.assert_array_equal(np.abs(c), np.array([0.0, 1.0, 0.0], dtype=dtype))


@pytest.mark.parametrize("scheme", ["qe", "euler"])
def test_a_path_depends_only_on_seed_and_pair_index(scheme: str) -> None:
    # Counter-based streams: a block of LANES pairs, or a partial last block, must not
    # change what any pair draws.
    be = get_backend("cpu")
    big = make_spec(FO, 0.5, 0.01, 2 * (3 * LANES + 5), 9, scheme, "float64", 77, True)
    small = make_spec(FO, 0.5, 0.01, 2 * 7, 9, scheme, "float64", 77, True)
    end_big, lo_big, _ = be.paths(big, 100.0)
    end_small, lo_small, _ = be.paths(small, 100.0)
    n_big, n_small = big.n_pairs, small.n_pairs
    np.testing.assert_array_equal(end_big[:n_small], end_small[:n_small])          # A paths
    np.testing.assert_array_equal(end_big[n_big:n_big + n_small], end_small[n_small:])  # B
    np.testing.assert_array_equal(lo_big[:n_small], lo_small[:n_small])


def test_results_do_not_depend_on_the_thread_count() -> None:
    threads = numba.get_num_threads()
    if threads < 2:
        pytest.skip("Numba runs one thread here")
    be = get_backend("cpu")
    spec = make_spec(FO, 1.0, 0.0, 20_000, 16, "qe", "float64", 3, True)
    try:
        numba.set_num_threads(1)
        one = be.price_sums(spec, 100.0, 100.0, 1.0, 0.0, True)
        one_paths = be.paths(spec, 100.0)
    finally:
        numba.set_num_threads(threads)
    many = be.price_sums(spec, 100.0, 100.0, 1.0, 0.0, True)
    many_paths = be.paths(spec, 100.0)
    np.testing.assert_array_equal(one, many)  # bit for bit: block sums added in block order
    for a, b in zip(one_paths, many_paths, strict=True):
        np.testing.assert_array_equal(a, b)
