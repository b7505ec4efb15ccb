"""The CPU backend: the algorithm of kernels/heston_mc.cl in Numba, vectorised over path pairs.

Same Philox4x32-10 counters, same uniform conversion, same Box-Muller, same step formulas
as the CUDA/OpenCL kernels, so a seed gives the same paths here as on the GPU (to the
rounding of log/sin/cos and of fused multiply-adds).

Layout (why it is fast): pairs are processed in blocks of :data:`LANES`; a block keeps
its state structure-of-arrays (2 * LANES paths: A paths then B paths) and, for every
time step, runs one loop that draws the block's Philox counters and turns them into
normals, then one loop that advances every path.  Those loops have no calls and no
branches (the QE scheme's two regimes are computed side by side and selected, log and
sin/cos come from :mod:`.vecmath`), so LLVM turns them into SIMD code.  Blocks are spread
over the cores with ``prange``; each block writes its own partial sums, added in block
order afterwards, so results do not depend on the number of threads.

One generic function per kernel serves float32 and float64: every literal goes through
:func:`_real`, which Numba resolves at compile time to the precision of the ``one``
argument, so float32 runs stay float32 end to end.  Compiled functions are cached on
disk (``cache=True``).  ``error_model="numpy"``: a division by zero gives inf/NaN (which a
select then discards) instead of a Python exception check that would stop vectorisation.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import overload
from numpy.typing import NDArray

from argus_gpu_heston.backends.vecmath import log32, log64, sincos2pi32, sincos2pi64
from argus_gpu_heston.mc_common import SimSpec

log = logging.getLogger("argus_gpu_heston")

#: Shown once per process before the CPU kernels compile with a cold on-disk cache.
COMPILE_NOTICE = ("compiling the CPU Monte Carlo kernels (first run only, ~1 minute; "
                  "cached afterwards)")
_notice_shown = False

#: Path pairs per block: 2 * LANES paths advance together in SIMD loops.
LANES = 32

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S9 = np.uint64(9)
_ONE_U = np.uint64(1)
_ZERO_U = np.uint64(0)
_SQRT1_2 = 0.70710678118654752440

# Indices into the constants (order of mc_common.CONST_NAMES).
(MU_DT, KAPPA_DT, THETA, SIGMA_SQDT, SQDT, HALF_DT, RHO, RHO_BAR, EX, C1, C2,
 QK0, QK1, QK2, QK3, QK4, A_M, RHO_SQDT, CVAR_DT) = range(19)
N_CONSTS = 19
SCHEME_QE = 1
# _simulate_block modes (an int, never a bool literal, so one compiled version serves all)
MODE_PLAIN, MODE_CONDITIONAL, MODE_TRACK = 0, 1, 2


def _real(x, one):  # pragma: no cover - replaced by the overload inside jitted code
    return type(one)(x)


@overload(_real, inline="always")
def _real_overload(x, one):
    if one == types.float32:
        return lambda x, one: np.float32(x)
    return lambda x, one: np.float64(x)


def _log(x, one):  # pragma: no cover - replaced by the overload inside jitted code
    raise NotImplementedError


@overload(_log)
def _log_overload(x, one):
    if one == types.float32:
        return lambda x, one: log32(x)
    return lambda x, one: log64(x)


def _sincos2pi(w, one):  # pragma: no cover - replaced by the overload inside jitted code
    raise NotImplementedError


@overload(_sincos2pi)
def _sincos2pi_overload(w, one):
    if one == types.float32:
        return lambda w, one: sincos2pi32(w)
    return lambda w, one: sincos2pi64(w)


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
    """The Philox block of counter (step, pair low word, pair high word, stream)."""
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


@njit(inline="always", cache=True, error_model="numpy")
def _box_muller(a, b, one):
    rad = math.sqrt(_real(-2.0, one) * _log(_u01(a, one), one))
    s, c = _sincos2pi(_u01(b, one), one)
    return rad * c, rad * s


@njit(inline="always", cache=True, error_model="numpy")
def _qe_var(vt, zv, u, k, one):
    """One Andersen (2008) QE variance step with the martingale-corrected K0*.

    Returns (V_{t+dt}, drift, var): ln S advances by drift + sqrt(var) Z, so given the
    variance path ln S_T is normal with mean sum(drift) and variance sum(var).  Both
    regimes (psi = s^2/m^2 <= 1.5 quadratic, else exponential) are computed and one is
    selected, so the lane loop has no branches; the unused regime's values may be NaN.
    The formulas are the GPU kernel's (``qe_step`` in heston_mc.cl), written with psi
    and beta eliminated (2/psi = 2m^2/s^2, p = (s^2 - m^2)/(s^2 + m^2), 1/beta =
    (s^2 + m^2)/(2m)); where both regimes divide at the same point, numerator and
    denominator are selected and divided once: 4 divisions a step instead of 9.
    """
    zero = _real(0.0, one)
    half = _real(0.5, one)
    onef = _real(1.0, one)
    two = _real(2.0, one)
    a_m = k[A_M]
    m = k[THETA] + (vt - k[THETA]) * k[EX]
    s2 = vt * k[C1] + k[C2]
    m2 = m * m
    quad = s2 <= _real(1.5, one) * m2
    tot = s2 + m2
    # quadratic: inv = 2/psi = 2 m^2 / s^2;  exponential: p = (s^2 - m^2) / (s^2 + m^2)
    t = (two * m2 if quad else s2 - m2) / (s2 if quad else tot)
    inv = t
    p = t
    b2 = inv - onef + math.sqrt(inv * (inv - onef))
    # quadratic: a = m / (1 + b2);  exponential: 1/beta = (s^2 + m^2) / (2 m)
    t = (m if quad else tot) / (onef + b2 if quad else two * m)
    a = t
    ib = t
    zb = math.sqrt(b2) + zv
    v_quad = a * zb * zb
    den = onef - two * a_m * a
    omp = onef - p
    v_exp = zero if u <= p else _log(omp / (onef - u), one) * ib
    # martingale correction, ln M where M exists: quadratic a_m b2 a / den - ln(den)/2;
    # exponential ln(p + beta (1 - p) / (beta - a_m)) = ln(p + (1 - p) / (1 - a_m / beta))
    t = (a_m * b2 * a if quad else omp) / (den if quad else onef - a_m * ib)
    ok = (den > zero) if quad else (a_m * ib < onef)
    arg = den if quad else p + t
    lg = _log(arg if ok else onef, one)
    lnm = (t - half * lg) if quad else lg
    mpos = m > zero
    vn = (v_quad if quad else v_exp) if mpos else zero
    corrected = mpos & ok
    k0 = (-lnm - (k[QK1] + half * k[QK3]) * vt) if corrected else k[QK0]
    drift = k[MU_DT] + k0 + k[QK1] * vt + k[QK2] * vn
    var = k[QK3] * vt + k[QK4] * vn
    return vn, drift, var


@njit(inline="always", cache=True, error_model="numpy")
def _gen_qe(j, base, key0, key1, antithetic, zv, uu, zx, one):
    """Normals and uniform of QE step ``j`` for the block's 2 * LANES paths."""
    onef = _real(1.0, one)
    if antithetic:
        for lane in range(LANES):
            r0, r1, r2, _ = _draw(j, base + lane, _ZERO_U, key0, key1)
            z0, z1 = _box_muller(r0, r1, one)
            u = _u01(r2, one)
            zv[lane] = z0
            zx[lane] = z1
            uu[lane] = u
            zv[LANES + lane] = -z0
            zx[LANES + lane] = -z1
            uu[LANES + lane] = onef - u
    else:
        for lane in range(2 * LANES):
            second = lane >= LANES
            pair = base + (lane - LANES if second else lane)
            r0, r1, r2, _ = _draw(j, pair, _ONE_U if second else _ZERO_U, key0, key1)
            z0, z1 = _box_muller(r0, r1, one)
            zv[lane] = z0
            zx[lane] = z1
            uu[lane] = _u01(r2, one)


@njit(inline="always", cache=True, error_model="numpy")
def _gen_euler(jj, base, key0, key1, antithetic, z1, z2, z3, z4):
    """Normals of Euler steps 2 jj (z1, z2) and 2 jj + 1 (z3, z4): one Philox block each."""
    one = z1[0]
    if antithetic:
        for lane in range(LANES):
            r0, r1, r2, r3 = _draw(jj, base + lane, _ZERO_U, key0, key1)
            a1, a2 = _box_muller(r0, r1, one)
            a3, a4 = _box_muller(r2, r3, one)
            z1[lane] = a1
            z2[lane] = a2
            z3[lane] = a3
            z4[lane] = a4
            z1[LANES + lane] = -a1
            z2[LANES + lane] = -a2
            z3[LANES + lane] = -a3
            z4[LANES + lane] = -a4
    else:
        for lane in range(2 * LANES):
            second = lane >= LANES
            pair = base + (lane - LANES if second else lane)
            r0, r1, r2, r3 = _draw(jj, pair, _ONE_U if second else _ZERO_U, key0, key1)
            a1, a2 = _box_muller(r0, r1, one)
            a3, a4 = _box_muller(r2, r3, one)
            z1[lane] = a1
            z2[lane] = a2
            z3[lane] = a3
            z4[lane] = a4


@njit(inline="always", cache=True, error_model="numpy")
def _qe_lanes(x, v, ca, cb, zv, uu, zx, k, conditional, one):
    """Advance 2 * LANES paths one QE step: ln S in ``x``, or the conditional moments."""
    if conditional:
        for lane in range(2 * LANES):
            vn, drift, var = _qe_var(v[lane], zv[lane], uu[lane], k, one)
            ca[lane] += drift
            cb[lane] += var
            v[lane] = vn
    else:
        for lane in range(2 * LANES):
            vn, drift, var = _qe_var(v[lane], zv[lane], uu[lane], k, one)
            x[lane] += drift + math.sqrt(var) * zx[lane]
            v[lane] = vn


@njit(inline="always", cache=True, error_model="numpy")
def _euler_lanes(x, v, ca, cb, z1, z2, k, conditional, one):
    """Advance 2 * LANES paths one full-truncation Euler step (Lord et al. 2010).

    Conditional form: with W = rho Z1 + rho_bar Z2 (the variance's normal), Z1 = rho W +
    rho_bar Z_perp, so given the variance path ln S gains rho sqrt(v dt) W in mean and
    (1 - rho^2) v dt in variance.
    """
    zero = _real(0.0, one)
    if conditional:
        for lane in range(2 * LANES):
            vt = v[lane]
            vp = vt if vt > zero else zero
            sv = math.sqrt(vp)
            w = k[RHO] * z1[lane] + k[RHO_BAR] * z2[lane]
            ca[lane] += k[MU_DT] - k[HALF_DT] * vp + k[RHO_SQDT] * sv * w
            cb[lane] += k[CVAR_DT] * vp
            v[lane] = vt + (k[KAPPA_DT] * (k[THETA] - vp) + k[SIGMA_SQDT] * sv * w)
    else:
        for lane in range(2 * LANES):
            vt = v[lane]
            vp = vt if vt > zero else zero
            sv = math.sqrt(vp)
            x[lane] += k[MU_DT] - k[HALF_DT] * vp + k[SQDT] * sv * z1[lane]
            v[lane] = vt + (k[KAPPA_DT] * (k[THETA] - vp)
                            + k[SIGMA_SQDT] * sv * (k[RHO] * z1[lane] + k[RHO_BAR] * z2[lane]))


@njit(inline="always", cache=True)
def _track(x, lo, hi):
    for lane in range(2 * LANES):
        lo[lane] = min(lo[lane], x[lane])
        hi[lane] = max(hi[lane], x[lane])


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _simulate_block(blk, n_steps, v0, k, key0, key1, scheme, antithetic, mode, x, ca, cb, lo,
                    hi):
    """Simulate the 2 * LANES paths of block ``blk`` (pairs blk * LANES + lane).

    Leaves ln(S_T/S_0) in ``x`` (MODE_PLAIN), or the conditional mean/variance of
    ln(S_T/S_0) given the variance path in ``ca``/``cb`` (MODE_CONDITIONAL), or ln(S_T/S_0)
    and its running minimum/maximum over the steps (from 0) in ``lo``/``hi`` (MODE_TRACK).
    """
    conditional = mode == MODE_CONDITIONAL
    track = mode == MODE_TRACK
    one = x[0]
    zero = _real(0.0, one)
    n2 = 2 * LANES
    base = np.int64(blk) * LANES
    v = np.full(n2, v0)
    x[:] = zero
    ca[:] = zero
    cb[:] = zero
    lo[:] = zero
    hi[:] = zero
    r1 = np.empty_like(x)
    r2 = np.empty_like(x)
    r3 = np.empty_like(x)
    if scheme == SCHEME_QE:
        for j in range(n_steps):
            _gen_qe(j, base, key0, key1, antithetic, r1, r2, r3, one)
            _qe_lanes(x, v, ca, cb, r1, r2, r3, k, conditional, one)
            if track:
                _track(x, lo, hi)
    else:
        r4 = np.empty_like(x)
        for j in range(0, n_steps, 2):
            _gen_euler(j >> 1, base, key0, key1, antithetic, r1, r2, r3, r4)
            _euler_lanes(x, v, ca, cb, r1, r2, k, conditional, one)
            if track:
                _track(x, lo, hi)
            if j + 1 < n_steps:
                _euler_lanes(x, v, ca, cb, r3, r4, k, conditional, one)
                if track:
                    _track(x, lo, hi)


@njit(inline="always", cache=True, error_model="numpy")
def _ncdf(x, one):
    return _real(0.5, one) * math.erfc(-x * _real(_SQRT1_2, one))


@njit(inline="always", cache=True, error_model="numpy")
def _cond_payoff(a, b, s0, strike, lnk, is_call, one):
    """E[payoff(S_0 e^X)] for X ~ N(a, b): Black-Scholes with the path's moments."""
    zero = _real(0.0, one)
    sd = math.sqrt(b)
    fwd = s0 * math.exp(a + _real(0.5, one) * b)
    if sd > zero:
        d2 = (lnk + a) / sd
        d1 = d2 + sd
        if is_call:
            return fwd * _ncdf(d1, one) - strike * _ncdf(d2, one)
        return strike * _ncdf(-d2, one) - fwd * _ncdf(-d1, one)
    return max(fwd - strike, zero) if is_call else max(strike - fwd, zero)


@njit(cache=True, error_model="numpy")
def _price_block(blk, n_pairs, n_steps, v0, k, s0, strike, disc, mu_t, is_call, key0, key1,
                 scheme, antithetic, conditional, part):
    """Simulate one block and store its five sums (see ``heston_price``) in part[blk]."""
    one = s0
    x = np.full(2 * LANES, _real(0.0, one))
    ca = np.empty_like(x)
    cb = np.empty_like(x)
    lo = np.empty_like(x)
    hi = np.empty_like(x)
    mode = np.int64(MODE_CONDITIONAL if conditional else MODE_PLAIN)
    _simulate_block(np.int64(blk), n_steps, v0, k, key0, key1, scheme, antithetic, mode, x, ca,
                    cb, lo, hi)
    zero = _real(0.0, one)
    half = _real(0.5, one)
    lnk = math.log(s0 / strike)
    base = np.int64(blk) * LANES
    sy = 0.0
    syy = 0.0
    sc = 0.0
    scc = 0.0
    syc = 0.0
    for lane in range(min(LANES, n_pairs - base)):
        if conditional:
            pa = _cond_payoff(ca[lane], cb[lane], s0, strike, lnk, is_call, one)
            pb = _cond_payoff(ca[LANES + lane], cb[LANES + lane], s0, strike, lnk, is_call, one)
            ea = math.expm1(ca[lane] + half * cb[lane] - mu_t)
            eb = math.expm1(ca[LANES + lane] + half * cb[LANES + lane] - mu_t)
        else:
            sa = s0 * math.exp(x[lane])
            sb = s0 * math.exp(x[LANES + lane])
            if is_call:
                pa = max(sa - strike, zero)
                pb = max(sb - strike, zero)
            else:
                pa = max(strike - sa, zero)
                pb = max(strike - sb, zero)
            ea = math.expm1(x[lane] - mu_t)
            eb = math.expm1(x[LANES + lane] - mu_t)
        y = np.float64(half * disc * (pa + pb))
        c = np.float64(half * (ea + eb))
        sy += y
        syy += y * y
        sc += c
        scc += c * c
        syc += y * c
    part[blk, 0] = sy
    part[blk, 1] = syy
    part[blk, 2] = sc
    part[blk, 3] = scc
    part[blk, 4] = syc


@njit(cache=True)
def _unpack(kc):
    return (kc[0], kc[1], kc[2], kc[3], kc[4], kc[5], kc[6], kc[7], kc[8], kc[9], kc[10],
            kc[11], kc[12], kc[13], kc[14], kc[15], kc[16], kc[17], kc[18])


@njit(parallel=True, cache=True)
def price_kernel(n_pairs, n_steps, v0, kc, s0, strike, disc, mu_t, is_call, key0, key1, scheme,
                 antithetic, conditional):
    """CPU twin of ``heston_price``: the five float64 sums over all pairs.

    Each block's sums land in their own row and are added in block order, so the result
    does not depend on the thread count.
    """
    k = _unpack(kc)
    n_blocks = (n_pairs + LANES - 1) // LANES
    part = np.zeros((n_blocks, 5))
    for blk in prange(n_blocks):
        _price_block(blk, n_pairs, n_steps, v0, k, s0, strike, disc, mu_t, is_call, key0, key1,
                     scheme, antithetic, conditional, part)
    out = np.zeros(5)
    for blk in range(n_blocks):
        for i in range(5):
            out[i] += part[blk, i]
    return out


@njit(cache=True, error_model="numpy")
def _paths_block(blk, n_pairs, n_steps, v0, k, s0, key0, key1, scheme, antithetic, s_end,
                 s_min, s_max):
    x = np.full(2 * LANES, _real(0.0, s0))
    ca = np.empty_like(x)
    cb = np.empty_like(x)
    lo = np.empty_like(x)
    hi = np.empty_like(x)
    _simulate_block(np.int64(blk), n_steps, v0, k, key0, key1, scheme, antithetic,
                    np.int64(MODE_TRACK), x, ca, cb, lo, hi)
    base = np.int64(blk) * LANES
    for lane in range(min(LANES, n_pairs - base)):
        i = base + lane
        s_end[i] = s0 * math.exp(x[lane])
        s_end[n_pairs + i] = s0 * math.exp(x[LANES + lane])
        s_min[i] = s0 * math.exp(lo[lane])
        s_min[n_pairs + i] = s0 * math.exp(lo[LANES + lane])
        s_max[i] = s0 * math.exp(hi[lane])
        s_max[n_pairs + i] = s0 * math.exp(hi[LANES + lane])


@njit(parallel=True, cache=True)
def paths_kernel(n_pairs, n_steps, v0, kc, s0, key0, key1, scheme, antithetic, s_end, s_min,
                 s_max):
    """CPU twin of ``heston_paths``: terminal, min and max price of every path."""
    k = _unpack(kc)
    n_blocks = (n_pairs + LANES - 1) // LANES
    for blk in prange(n_blocks):
        _paths_block(blk, n_pairs, n_steps, v0, k, s0, key0, key1, scheme, antithetic, s_end,
                     s_min, s_max)


@njit(cache=True)
def philox_block(c0, c1, c2, c3, k0, k1):
    """One Philox4x32-10 block from Python ints (for known-answer tests)."""
    return philox4x32_10(np.uint64(c0), np.uint64(c1), np.uint64(c2), np.uint64(c3),
                         np.uint64(k0), np.uint64(k1))


def _cache_is_cold(kernel: object) -> bool:
    """True when ``kernel`` has nothing compiled in this process and no on-disk cache index
    (Numba's private cache layout; anything unexpected counts as warm, never an error)."""
    try:
        if kernel.signatures:  # type: ignore[attr-defined]
            return False
        return not os.path.exists(kernel._cache._cache_file._index_path)  # type: ignore[attr-defined]
    except Exception:
        return False


def _compile_notice(kernel: object) -> None:
    """Log :data:`COMPILE_NOTICE` (WARNING, once) before a cold kernel's first call."""
    global _notice_shown
    if not _notice_shown and _cache_is_cold(kernel):
        _notice_shown = True
        log.warning(COMPILE_NOTICE)


class NumbaBackend:
    """Parallel, SIMD-vectorised CPU backend (Numba, one thread per core)."""

    name = "cpu"

    def __init__(self) -> None:
        self.device = f"CPU ({os.cpu_count()} cores, numba {numba.__version__}, " \
                      f"{numba.get_num_threads()} threads)"

    @staticmethod
    def _args(spec: SimSpec) -> tuple[np.int64, np.int64, Any, NDArray[Any]]:
        dt = spec.dtype
        kc: NDArray[Any] = np.array(spec.consts, dtype=dt)
        if kc.size != N_CONSTS:
            raise ValueError(f"expected {N_CONSTS} step constants, got {kc.size}")
        return (np.int64(spec.n_pairs), np.int64(spec.n_steps), dt(spec.v0), kc)

    def price_sums(self, spec: SimSpec, s0: float, strike: float, disc: float, mu_t: float,
                   is_call: bool) -> NDArray[np.float64]:
        """Sums of the control-variate statistics (see :class:`MCBackend`)."""
        dt = spec.dtype
        _compile_notice(price_kernel)
        return price_kernel(*self._args(spec), dt(s0), dt(strike), dt(disc), dt(mu_t),
                            bool(is_call), np.uint64(spec.key0), np.uint64(spec.key1),
                            np.int64(spec.scheme), bool(spec.antithetic),
                            bool(spec.conditional))

    def paths(self, spec: SimSpec, s0: float) -> tuple[NDArray, NDArray, NDArray]:
        """Terminal, min and max prices of the 2 * n_pairs paths."""
        n = spec.n_paths
        out: list[NDArray[Any]] = [np.empty(n, dtype=spec.dtype) for _ in range(3)]
        _compile_notice(paths_kernel)
        paths_kernel(*self._args(spec), spec.dtype(s0), np.uint64(spec.key0),
                     np.uint64(spec.key1), np.int64(spec.scheme), bool(spec.antithetic), *out)
        return out[0], out[1], out[2]
