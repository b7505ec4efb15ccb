"""The CPU backend: the kernel of kernels/heston_mc.cl ported line for line to Numba.

Same Philox4x32-10 counters, same uniform conversion, same Box-Muller, same step
formulas, so a seed gives the same paths here as on CUDA and OpenCL (to the rounding
of log/sin/cos).  One generic function per kernel serves float32 and float64: every
literal goes through :func:`_real`, which Numba resolves at compile time to the
precision of the ``one`` argument, so float32 runs stay float32 end to end.
Compiled functions are cached on disk (``cache=True``).
"""

from __future__ import annotations

import math
import os

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import overload
from numpy.typing import NDArray

from argus_gpu_heston.mc_common import SimSpec

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S9 = np.uint64(9)
_ONE_U = np.uint64(1)
_ZERO_U = np.uint64(0)

# Indices into the constants array (order of mc_common.CONST_NAMES).
(MU_DT, KAPPA_DT, THETA, SIGMA_SQDT, SQDT, HALF_DT, RHO, RHO_BAR, EX, C1, C2,
 QK0, QK1, QK2, QK3, QK4, A_M) = range(17)


def _real(x, one):  # pragma: no cover - replaced by the overload inside jitted code
    return type(one)(x)


@overload(_real, inline="always")
def _real_overload(x, one):
    if one == types.float32:
        return lambda x, one: np.float32(x)
    return lambda x, one: np.float64(x)


@njit(inline="always", cache=True)
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on uint64 words holding 32-bit values (Random123's round function)."""
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = ((p1 >> _S32) ^ c1 ^ k0, p1 & _MASK, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK)
        k0 = (k0 + _W0) & _MASK
        k1 = (k1 + _W1) & _MASK
    return c0, c1, c2, c3


@njit(inline="always", cache=True)
def _draw(step, pair, stream, k0, k1):
    return philox4x32_10(np.uint64(step), np.uint64(pair) & _MASK, np.uint64(pair) >> _S32,
                         stream, k0, k1)


def _u01(x, one):  # pragma: no cover - replaced by the overload inside jitted code
    raise NotImplementedError


@overload(_u01, inline="always")
def _u01_overload(x, one):
    # float64: (x + 1/2) 2^-32; float32: ((x >> 9) + 1/2) 2^-23, both exact (see the .cl file)
    if one == types.float32:
        return lambda x, one: (np.float32(x >> _S9) * np.float32(1.1920928955078125e-07)
                               + np.float32(5.9604644775390625e-08))
    return lambda x, one: (np.float64(x) + 0.5) * 2.3283064365386962890625e-10


@njit(inline="always", cache=True)
def _sincospi2(w, one):
    """(sin 2 pi w, cos 2 pi w) with exact argument reduction, as sincospi on the GPU."""
    x = w + w
    n = math.floor(x + _real(0.5, one))
    r = x - _real(n, one)  # exact, in [-1/2, 1/2]
    a = _real(math.pi, one) * r
    s = math.sin(a)
    c = math.cos(a)
    if int(n) % 2 == 1:
        s = -s
        c = -c
    return s, c


@njit(inline="always", cache=True)
def _box_muller(a, b, one):
    rad = math.sqrt(_real(-2.0, one) * math.log(_u01(a, one)))
    s, c = _sincospi2(_u01(b, one), one)
    return rad * c, rad * s


@njit(inline="always", cache=True)
def _qe_step(x, v, zv, u, zx, kc, one):
    zero = _real(0.0, one)
    half = _real(0.5, one)
    onef = _real(1.0, one)
    two = _real(2.0, one)
    vt = v
    m = kc[THETA] + (vt - kc[THETA]) * kc[EX]
    s2 = vt * kc[C1] + kc[C2]
    vn = zero
    lnm = zero
    corrected = False
    if m > zero:
        psi = s2 / (m * m)
        if psi <= _real(1.5, one):
            inv = two / psi
            b2 = inv - onef + math.sqrt(inv * (inv - onef))
            a = m / (onef + b2)
            zb = math.sqrt(b2) + zv
            vn = a * zb * zb
            den = onef - two * kc[A_M] * a
            if den > zero:
                lnm = kc[A_M] * b2 * a / den - half * math.log(den)
                corrected = True
        else:
            p = (psi - onef) / (psi + onef)
            beta = (onef - p) / m
            vn = zero if u <= p else math.log((onef - p) / (onef - u)) / beta
            if beta > kc[A_M]:
                lnm = math.log(p + beta * (onef - p) / (beta - kc[A_M]))
                corrected = True
    k0 = -lnm - (kc[QK1] + half * kc[QK3]) * vt if corrected else kc[QK0]
    x = x + (kc[MU_DT] + k0 + kc[QK1] * vt + kc[QK2] * vn
             + math.sqrt(kc[QK3] * vt + kc[QK4] * vn) * zx)
    return x, vn


@njit(inline="always", cache=True)
def _euler_step(x, v, z1, z2, kc, one):
    zero = _real(0.0, one)
    vp = v if v > zero else zero
    sv = math.sqrt(vp)
    x = x + (kc[MU_DT] - kc[HALF_DT] * vp + kc[SQDT] * sv * z1)
    v = v + (kc[KAPPA_DT] * (kc[THETA] - vp)
             + kc[SIGMA_SQDT] * sv * (kc[RHO] * z1 + kc[RHO_BAR] * z2))
    return x, v


@njit(inline="always", cache=True)
def _simulate_pair(pair, n_steps, v0, kc, k0, k1, scheme, antithetic, track, one):
    zero = _real(0.0, one)
    onef = _real(1.0, one)
    xa = zero
    xb = zero
    va = v0
    vb = v0
    lo_a = zero
    hi_a = zero
    lo_b = zero
    hi_b = zero
    if scheme == 1:
        for j in range(n_steps):
            a0, a1, a2, _ = _draw(j, pair, _ZERO_U, k0, k1)
            zv, zx = _box_muller(a0, a1, one)
            u = _u01(a2, one)
            xa, va = _qe_step(xa, va, zv, u, zx, kc, one)
            if antithetic:
                xb, vb = _qe_step(xb, vb, -zv, onef - u, -zx, kc, one)
            else:
                b0, b1, b2, _ = _draw(j, pair, _ONE_U, k0, k1)
                zvb, zxb = _box_muller(b0, b1, one)
                xb, vb = _qe_step(xb, vb, zvb, _u01(b2, one), zxb, kc, one)
            if track:
                lo_a = min(lo_a, xa)
                hi_a = max(hi_a, xa)
                lo_b = min(lo_b, xb)
                hi_b = max(hi_b, xb)
    else:
        for j in range(0, n_steps, 2):
            a0, a1, a2, a3 = _draw(j >> 1, pair, _ZERO_U, k0, k1)
            b0, b1, b2, b3 = a0, a1, a2, a3
            if not antithetic:
                b0, b1, b2, b3 = _draw(j >> 1, pair, _ONE_U, k0, k1)
            for half_step in range(2):
                if half_step == 1 and j + 1 >= n_steps:
                    break
                ua, ub = (a0, a1) if half_step == 0 else (a2, a3)
                z1, z2 = _box_muller(ua, ub, one)
                xa, va = _euler_step(xa, va, z1, z2, kc, one)
                if antithetic:
                    xb, vb = _euler_step(xb, vb, -z1, -z2, kc, one)
                else:
                    wa, wb = (b0, b1) if half_step == 0 else (b2, b3)
                    w1, w2 = _box_muller(wa, wb, one)
                    xb, vb = _euler_step(xb, vb, w1, w2, kc, one)
                if track:
                    lo_a = min(lo_a, xa)
                    hi_a = max(hi_a, xa)
                    lo_b = min(lo_b, xb)
                    hi_b = max(hi_b, xb)
    return xa, xb, lo_a, hi_a, lo_b, hi_b


@njit(parallel=True, cache=True)
def price_kernel(n_pairs, n_steps, v0, kc, s0, strike, disc, mu_t, is_call, k0, k1, scheme,
                 antithetic, one):
    """CPU twin of ``heston_price``: the five float64 sums over all pairs."""
    zero = _real(0.0, one)
    half = _real(0.5, one)
    sy = 0.0
    syy = 0.0
    sc = 0.0
    scc = 0.0
    syc = 0.0
    for i in prange(n_pairs):
        xa, xb, _, _, _, _ = _simulate_pair(i, n_steps, v0, kc, k0, k1, scheme, antithetic,
                                            False, one)
        sa = s0 * math.exp(xa)
        sb = s0 * math.exp(xb)
        if is_call:
            pa = max(sa - strike, zero)
            pb = max(sb - strike, zero)
        else:
            pa = max(strike - sa, zero)
            pb = max(strike - sb, zero)
        y = np.float64(half * disc * (pa + pb))
        c = np.float64(half * (math.expm1(xa - mu_t) + math.expm1(xb - mu_t)))
        sy += y
        syy += y * y
        sc += c
        scc += c * c
        syc += y * c
    return np.array([sy, syy, sc, scc, syc])


@njit(parallel=True, cache=True)
def paths_kernel(n_pairs, n_steps, v0, kc, s0, k0, k1, scheme, antithetic, one, s_end, s_min,
                 s_max):
    """CPU twin of ``heston_paths``: terminal, min and max price of every path."""
    for i in prange(n_pairs):
        xa, xb, la, ha, lb, hb = _simulate_pair(i, n_steps, v0, kc, k0, k1, scheme, antithetic,
                                                True, one)
        s_end[i] = s0 * math.exp(xa)
        s_end[n_pairs + i] = s0 * math.exp(xb)
        s_min[i] = s0 * math.exp(la)
        s_min[n_pairs + i] = s0 * math.exp(lb)
        s_max[i] = s0 * math.exp(ha)
        s_max[n_pairs + i] = s0 * math.exp(hb)


@njit(cache=True)
def philox_block(c0, c1, c2, c3, k0, k1):
    """One Philox4x32-10 block from Python ints (for known-answer tests)."""
    return philox4x32_10(np.uint64(c0), np.uint64(c1), np.uint64(c2), np.uint64(c3),
                         np.uint64(k0), np.uint64(k1))


class NumbaBackend:
    """Parallel CPU backend (Numba, one thread per core)."""

    name = "cpu"

    def __init__(self) -> None:
        self.device = f"CPU ({os.cpu_count()} cores, numba {numba.__version__}, " \
                      f"{numba.get_num_threads()} threads)"

    @staticmethod
    def _args(spec: SimSpec) -> tuple:
        dt = spec.dtype
        kc = np.array(spec.consts, dtype=dt)
        return (np.int64(spec.n_pairs), np.int64(spec.n_steps), dt(spec.v0), kc)

    def price_sums(self, spec: SimSpec, s0: float, strike: float, disc: float, mu_t: float,
                   is_call: bool) -> NDArray[np.float64]:
        """Sums of the control-variate statistics (see :class:`MCBackend`)."""
        dt = spec.dtype
        return price_kernel(*self._args(spec), dt(s0), dt(strike), dt(disc), dt(mu_t),
                            bool(is_call), np.uint64(spec.key0), np.uint64(spec.key1),
                            np.int64(spec.scheme), bool(spec.antithetic), dt(1.0))

    def paths(self, spec: SimSpec, s0: float) -> tuple[NDArray, NDArray, NDArray]:
        """Terminal, min and max prices of the 2 * n_pairs paths."""
        n = spec.n_paths
        out = [np.empty(n, dtype=spec.dtype) for _ in range(3)]
        paths_kernel(*self._args(spec), spec.dtype(s0), np.uint64(spec.key0),
                     np.uint64(spec.key1), np.int64(spec.scheme), bool(spec.antithetic),
                     spec.dtype(1.0), *out)
        return out[0], out[1], out[2]
