"""Analytic European prices under Heston: characteristic function + damped Fourier integral.

The characteristic function is the "little Heston trap" form of Albrecher, Mayer,
Schoutens and Tistaert (2007), which stays on the principal branch of the complex
logarithm for long maturities, written so that nothing is divided by sigma^2
(the Black-Scholes limit sigma -> 0 stays accurate).

Prices come from the Carr-Madan (1999) damped transform in the form of Lord and
Kahl (2007): for an out-of-the-money call the damping exponent alpha > 0 gives the
call itself, for an out-of-the-money put alpha < -1 gives the put itself, so a
deep out-of-the-money price is never the small difference of two large numbers.
alpha is chosen per option by Lord and Kahl's rule (minimise the integrand at
v = 0) inside the strip where the moment E[S_T^(alpha+1)] is finite; the moment
explosion time of Andersen and Piterbarg (2007) bounds that strip.  The in-the-money
side follows from put-call parity, which only adds positive numbers.

The integral is done by composite 16-point Gauss-Legendre on [0, V]: V is where
the integrand's envelope falls below 1e-16 of its peak, the panel width is short
enough for the oscillation e^{-ivk} to be resolved to double precision.  Options
sharing a maturity and an alpha share one set of characteristic-function values,
so a whole chain costs a few characteristic-function grids.  Where the strip on the
natural side has (almost) closed, as for long maturities with rho > 0, alpha = -1/2
(Lewis's contour, inside the strip where every moment exists) is used instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from argus_gpu_heston.errors import HestonParameterError
from argus_gpu_heston.params import HestonParams, check_contract, check_kind

__all__ = ["black_price", "heston_cf", "heston_price", "implied_vol", "moment_bounds"]

_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)
_GL_X = 0.5 * (_GL_X + 1.0)  # nodes on [0, 1]
_GL_W = 0.5 * _GL_W
_N_ALPHA = 48  # candidate damping exponents per side and maturity
# damping up to e^{-2000 k}: a one-day option 10% out of the money needs alpha ~ 1000
# (a cap of 40 left its price at the integral's rounding floor, 6e-19 for 5e-21)
_ALPHA_CAP = 2000.0
_ENVELOPE_TOL = 1e-17
_MIN_STRIP = 0.05  # narrower damping strips fall back to alpha = -1/2
_N_SMALL_ALPHA = 20  # extra damping candidates, each half the last, below the even grid
_MAX_PANELS = 200_000  # uniform Gauss-Legendre panels per integral (16 nodes each)
# An integral whose error bound (cut tail, panels wider than an oscillation) exceeds
# both this fraction of the price and this fraction of the forward is refused.
_UNRESOLVED_REL = 1e-6
_UNRESOLVED_ABS = 1e-10


def _clog1p(z: NDArray[np.complex128]) -> NDArray[np.complex128]:
    """log(1 + z) accurate for small complex z (numpy's complex log1p drops the real part)."""
    z = np.asarray(z, dtype=np.complex128)
    out = np.log1p(z)
    small = np.abs(z) < 1e-3
    if np.any(small):
        zs = z[small]
        # alternating series to z^6: relative error below 2e-16 for |z| < 1e-3
        out[small] = zs * (1 - zs * (1 / 2 - zs * (1 / 3 - zs * (1 / 4 - zs * (1 / 5 - zs / 6)))))
    return out


def heston_cf(u: ArrayLike, t: float,
              params: HestonParams | Sequence[float]) -> NDArray[np.complex128]:
    """E[exp(i u X)] with X = ln(S_T / F_T), F_T the forward, for complex ``u``.

    The little-trap form: xi = kappa - i rho sigma u, d = sqrt(xi^2 + sigma^2 (u^2 + i u)),
    g = (xi - d)/(xi + d), with xi - d rewritten as -sigma^2 (u^2 + i u)/(xi + d) so the
    expression has a finite sigma -> 0 limit.  phi(0) = phi(-i) = 1 by construction.
    """
    v0, kappa, theta, sigma, rho = (params.as_tuple() if isinstance(params, HestonParams)
                                    else tuple(float(x) for x in params))
    u = np.asarray(u, dtype=np.complex128)
    xi = kappa - 1j * rho * sigma * u
    uu = u * u + 1j * u
    d = np.sqrt(xi * xi + sigma * sigma * uu)
    xpd = xi + d
    # xi + d vanishes only at u in {0, -i} when Re(xi) < 0; there uu = 0 and phi = 1.
    zero = xpd == 0
    xpd = np.where(zero, 1.0, xpd)
    e = np.exp(-d * t)
    g = -sigma * sigma * uu / (xpd * xpd)
    one_minus_ge = 1.0 - g * e
    dcoef = -uu / xpd * (1.0 - e) / one_minus_ge
    # log((1 - g e)/(1 - g)) = log1p(g (1 - e)/(1 - g)); divided by sigma^2 without loss
    log_term = _clog1p(g * (1.0 - e) / (1.0 - g))
    ccoef = kappa * theta * (-uu * t / xpd - 2.0 * log_term / (sigma * sigma))
    with np.errstate(over="ignore", invalid="ignore"):  # probes past a moment explosion
        out = np.exp(ccoef + dcoef * v0)
    return np.where(zero, 1.0 + 0j, out)


def _explosion_time(p: float, kappa: float, sigma: float, rho: float) -> float:
    """Time at which E[(S_T/F)^p] becomes infinite (Andersen & Piterbarg 2007)."""
    if 0.0 <= p <= 1.0:
        return math.inf
    xi = kappa - rho * sigma * p
    d2 = xi * xi - sigma * sigma * p * (p - 1.0)
    if d2 >= 0:
        d = math.sqrt(d2)
        if xi >= 0:
            return math.inf
        if d == 0.0:
            return 2.0 / -xi
        return 2.0 / d * math.atanh(d / -xi)
    gam = math.sqrt(-d2)
    if xi < 0:
        return 2.0 / gam * math.atan(gam / -xi)
    if xi == 0:
        return math.pi / gam
    return 2.0 / gam * (math.pi - math.atan(gam / xi))


def moment_bounds(t: float, params: HestonParams) -> tuple[float, float]:
    """(p_minus, p_plus): E[S_T^p] is finite for p_minus < p < p_plus (capped at +-(cap+1))."""
    _, kappa, _, sigma, rho = params.as_tuple()

    def finite(p: float) -> bool:
        return _explosion_time(p, kappa, sigma, rho) > t

    bounds = []
    for start, far in ((1.0, 1.0 + _ALPHA_CAP + 1.0), (0.0, -_ALPHA_CAP - 1.0)):
        if finite(far):
            bounds.append(far)
            continue
        lo, hi = start, far  # finite at lo, infinite at hi
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            if finite(mid):
                lo = mid
            else:
                hi = mid
        bounds.append(lo)
    return bounds[1], bounds[0]


def _alpha_candidates(width: float, n_alpha: int) -> NDArray[np.float64]:
    """Distances of the damping exponent from its pole (0 for calls, -1 for puts).

    ``n_alpha`` evenly spread over the strip of this ``width``, plus geometrically
    smaller ones down to ~1e-6 of it: with a huge variance V the moment E[S^(1+a)] grows
    like e^{V a (a + 1) t / 2}, so the integrand is smallest near a ~ 1/sqrt(V t), far
    below the even grid, where the integral would be a difference of numbers ~1e30.
    """
    even = width * (np.arange(n_alpha) + 0.5) / n_alpha
    small = even[0] * 0.5 ** np.arange(1, _N_SMALL_ALPHA + 1)
    return np.concatenate((small[::-1], even))


def _otm_prices(k: NDArray[np.float64], t: float, params: HestonParams,
                n_alpha: int = _N_ALPHA, max_panels: int = _MAX_PANELS) -> NDArray[np.float64]:
    """Out-of-the-money forward prices E[(e^X - e^k)^+] (k >= 0) or E[(e^k - e^X)^+] (k < 0)."""
    out = np.empty_like(k)
    if params.v0 == 0.0 and params.theta == 0.0:
        # No variance now and none to revert to: v stays 0, S_T is the forward, and every
        # out-of-the-money price is exactly 0 (the characteristic function is 1, which no
        # Fourier integral can truncate: it returned up to 0.0035 on a spot of 100).
        out[:] = 0.0
        return out
    p_minus, p_plus = moment_bounds(t, params)
    for is_call in (True, False):
        sel = np.nonzero(k >= 0)[0] if is_call else np.nonzero(k < 0)[0]
        if sel.size == 0:
            continue
        ks = k[sel]
        width = (p_plus - 1.0) if is_call else -p_minus
        if width < _MIN_STRIP:
            # The natural strip has (almost) closed: moments just beyond 1 (or 0) explode,
            # as for long maturities with rho > 0.  Use alpha = -1/2, inside (-1, 0) where
            # every moment exists; there the integral is c - 1 (Lewis's formula).
            offset = np.ones_like(ks) if is_call else np.exp(ks)
            covered = _damped_integral(ks, -0.5, t, params, p_minus, p_plus, max_panels,
                                       offset)
            out[sel] = offset + covered
            continue
        if is_call:
            alphas = _alpha_candidates(min(p_plus - 1.0, _ALPHA_CAP), n_alpha)
        else:  # alpha < -1
            alphas = -1.0 - _alpha_candidates(min(-p_minus, _ALPHA_CAP), n_alpha)
        moments = heston_cf(-1j * (alphas + 1.0), t, params).real
        with np.errstate(divide="ignore", invalid="ignore"):
            log_m = np.where(moments > 0, np.log(moments), np.inf)
        # Lord-Kahl objective: log of the integrand at v = 0 (independent of v's phase).
        obj = (log_m - np.log(alphas * (alphas + 1.0)))[None, :] - alphas[None, :] * ks[:, None]
        best = np.argmin(obj, axis=1)
        for j in np.unique(best):
            members = best == j
            out[sel[members]] = _damped_integral(ks[members], float(alphas[j]), t, params,
                                                 p_minus, p_plus, max_panels)
    return out


def _damped_integral(ks: NDArray[np.float64], alpha: float, t: float, params: HestonParams,
                     p_minus: float, p_plus: float, max_panels: int = _MAX_PANELS,
                     offset: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """e^{-alpha k}/pi * int_0^inf Re[e^{-ivk} phi(v-(alpha+1)i) / ((alpha+iv)(alpha+1+iv))] dv.

    The price is ``offset`` (0 by default; 1 or e^k on Lewis's contour) plus this: its
    error bound is judged against that price.
    """

    def psi(v: NDArray[np.float64]) -> NDArray[np.complex128]:
        iv = 1j * v
        return heston_cf(v - 1j * (alpha + 1.0), t, params) / ((alpha + iv) * (alpha + 1.0 + iv))

    # Truncation: the envelope |psi(v)| v on a geometric grid, cut where it is negligible.
    probe = np.geomspace(1e-2, 1e8, 201)
    env = np.abs(psi(probe)) * np.maximum(probe, 1.0)
    env = np.where(np.isfinite(env), env, np.inf)
    ref = max(abs(psi(np.zeros(1))[0]), float(np.max(env[np.isfinite(env)], initial=0.0)))
    above = np.nonzero(env > _ENVELOPE_TOL * ref)[0]
    v_max = float(probe[min(above[-1] + 1, probe.size - 1)]) if above.size else float(probe[0])
    # Panel width: one period of the fastest oscillation, e^{-ivk} or the characteristic
    # function's own drift phase, so 16-point Gauss-Legendre is exact to rounding ...
    v0, kappa, theta, _, _ = params.as_tuple()
    mean_var = theta + (v0 - theta) * (1.0 - math.exp(-kappa * t)) / (kappa * t)
    sd = math.sqrt(max(mean_var * t, 1e-300))
    omega = float(np.max(np.abs(ks))) + 0.5 * mean_var * t + 1.0 + 0.5 * sd
    width = min(2.0 * math.pi / omega, 2.0 / sd)
    # ... and near v = 0 no wider than half the distance to the nearest singularity: the
    # poles at v = i alpha, i (alpha + 1) and the moment-explosion points of phi.
    p = alpha + 1.0
    delta = min(abs(alpha), abs(p), p_plus - p, p - p_minus, width)
    geo = 0.5 * delta * 1.5 ** np.arange(int(math.log(max(width / (0.5 * delta), 1.0), 1.5)) + 1)
    geo = np.concatenate(([0.0], geo))  # edges 0, delta/2, 3 delta/4, ...: width <= distance/2
    geo = geo[geo < v_max]
    start = geo[-1]
    top = max(v_max, start + width)
    needed = max(math.ceil((v_max - start) / width), 1)
    n_uniform = int(min(needed, max_panels))

    def integral(n: int) -> NDArray[np.float64]:
        edges = np.concatenate((geo[:-1], np.linspace(start, top, n + 1)))
        h = np.diff(edges)
        v = (edges[:-1, None] + h[:, None] * _GL_X[None, :]).ravel()
        w = (h[:, None] * _GL_W[None, :]).ravel()
        vals = psi(v) * w
        # Re[e^{-ivk} psi] summed over nodes, for every strike at once (chunked to bound
        # memory)
        res = np.empty(ks.size)
        chunk = max(1, 4_000_000 // v.size)
        for s in range(0, ks.size, chunk):
            kk = ks[s:s + chunk]
            phase = np.exp(-1j * np.outer(kk, v))
            res[s:s + chunk] = (phase @ vals).real
        return res

    res = integral(n_uniform)
    scale = np.exp(-alpha * ks) / math.pi
    truncated = not env[-1] <= _ENVELOPE_TOL * ref  # not decayed by the probe's end
    if truncated or needed > max_panels:
        # The characteristic function decays too slowly for this budget (a variance that
        # is (almost) zero: v0 = 0 over a very short time, a tiny kappa * theta, a vol of
        # 1e-7): the panels are wider than an oscillation, or the tail was cut.  Measure
        # what that costs instead of returning a number nobody checked: the tail beyond
        # v_max is about |phi(v_max)| / v_max (|psi| <= |phi| / v^2, |phi| decreasing
        # there), the envelope at the probe's end; the panels' error at most their
        # difference from a grid half as fine.
        err = np.abs(res - integral(max(n_uniform // 2, 1))) if needed > max_panels \
            else np.zeros(ks.size)
        if truncated:
            err = err + float(env[-1])
        price = scale * res + (0.0 if offset is None else offset)
        bad = scale * err > np.maximum(_UNRESOLVED_REL * np.abs(price), _UNRESOLVED_ABS)
        if np.any(bad):
            i = int(np.nonzero(bad)[0][0])
            raise HestonParameterError(
                f"the Heston Fourier integral cannot resolve this option (t = {t:g}, "
                f"ln(K/F) = {ks[i]:.6g}, v0 = {v0:g}, kappa = {kappa:g}, theta = {theta:g}, "
                f"sigma = {params.sigma:g}, rho = {params.rho:g}): its characteristic "
                f"function decays too slowly (the expected total variance is "
                f"{mean_var * t:.3g}), so the quadrature's error bound "
                f"{float(scale[i] * err[i]):.3g} exceeds its tolerance; price it with "
                f"method='mc'")
    return scale * res


def heston_price(kind: Any, s0: float, strike: ArrayLike, t: ArrayLike, r: float, q: float,
                 params: HestonParams, *, n_alpha: int = _N_ALPHA,
                 max_panels: int = _MAX_PANELS) -> NDArray[np.float64]:
    """Discounted European prices, vectorised over ``strike``, ``t`` and ``kind`` (broadcast).

    ``kind`` is "call"/"put" or an array of them (or booleans, True = call).  Returns an
    array shaped like the broadcast inputs; a scalar input gives a 0-d array.
    ``n_alpha`` is the number of candidate damping exponents per side and maturity:
    fewer means fewer characteristic-function grids (faster chains, as in calibration)
    at some cost in relative accuracy far out of the money.  ``max_panels`` bounds the
    quadrature's work per integral (16 nodes a panel): an option that needs more is priced
    on that many only when a grid half as fine agrees (its error bound within 1e-6 of the
    price or 1e-10 of the forward), else refused with a ``HestonParameterError`` naming
    it -- a characteristic function that decays too slowly to integrate (a variance that
    is all but zero: v0 = theta = 0 prices exactly, at the forward's intrinsic value).
    """
    for t_end in (np.min(t), np.max(t)):  # the forward is monotone in t: check both ends
        check_contract(s0, float(t_end), r, q)
    strike_a, t_a, kind_a = np.broadcast_arrays(np.asarray(strike, dtype=float),
                                                np.asarray(t, dtype=float), np.asarray(kind))
    shape = strike_a.shape
    strike_f = strike_a.ravel()
    t_f = t_a.ravel()
    if np.any(strike_f <= 0) or not np.all(np.isfinite(strike_f)):
        raise HestonParameterError("strikes must be finite and > 0")
    if np.any(t_f <= 0) or not np.all(np.isfinite(t_f)):
        raise HestonParameterError("maturities t must be finite and > 0 years")
    kinds = kind_a.ravel()
    if kinds.dtype == bool:
        is_call = kinds
    else:
        is_call = np.array([check_kind(x) == "call" for x in kinds], dtype=bool)
    fwd = s0 * np.exp((r - q) * t_f)
    disc = np.exp(-r * t_f)
    k = np.log(strike_f / fwd)
    otm = np.empty_like(k)
    for tt in np.unique(t_f):
        sel = t_f == tt
        otm[sel] = _otm_prices(k[sel], float(tt), params, n_alpha, max_panels)
    # rounding can leave -1e-17 on prices below the noise, or a call a few ulps above
    # the forward when the variance is huge: keep within the no-arbitrage bounds
    otm = np.clip(otm, 0.0, np.minimum(1.0, np.exp(k)))
    price = disc * fwd * otm
    # parity for the in-the-money side: C = P + D (F - K), P = C + D (K - F)
    itm_call = is_call & (k < 0)
    itm_put = ~is_call & (k >= 0)
    price = np.where(itm_call, price + disc * (fwd - strike_f), price)
    price = np.where(itm_put, price + disc * (strike_f - fwd), price)
    return price.reshape(shape)


# -- Black (1976) on forwards: used for calibration and implied vols ------------------

def black_price(is_call: ArrayLike, fwd: ArrayLike, strike: ArrayLike, t: ArrayLike,
                vol: ArrayLike, disc: ArrayLike = 1.0) -> NDArray[np.float64]:
    """Black-76 price of calls (``is_call`` True) or puts."""
    from scipy.special import ndtr

    is_call, fwd, strike, t, vol, disc = np.broadcast_arrays(
        np.asarray(is_call, bool), *(np.asarray(x, float) for x in (fwd, strike, t, vol, disc)))
    sd = vol * np.sqrt(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = np.log(fwd / strike) / sd + 0.5 * sd
    d2 = d1 - sd
    call = fwd * ndtr(d1) - strike * ndtr(d2)
    put = strike * ndtr(-d2) - fwd * ndtr(-d1)
    return disc * np.where(is_call, call, put)


def black_vega(fwd: ArrayLike, strike: ArrayLike, t: ArrayLike, vol: ArrayLike,
               disc: ArrayLike = 1.0) -> NDArray[np.float64]:
    """dBlack/dvol (same for calls and puts)."""
    fwd, strike, t, vol, disc = np.broadcast_arrays(*(np.asarray(x, float)
                                                      for x in (fwd, strike, t, vol, disc)))
    sd = vol * np.sqrt(t)
    d1 = np.log(fwd / strike) / sd + 0.5 * sd
    return disc * fwd * np.sqrt(t) * np.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi)


def implied_vol(price: ArrayLike, is_call: ArrayLike, fwd: ArrayLike, strike: ArrayLike,
                t: ArrayLike, disc: ArrayLike = 1.0) -> NDArray[np.float64]:
    """Black implied vols by vectorised bisection on log-vol (NaN outside arbitrage bounds)."""
    price, is_call, fwd, strike, t, disc = np.broadcast_arrays(
        np.asarray(price, float), np.asarray(is_call, bool),
        *(np.asarray(x, float) for x in (fwd, strike, t, disc)))
    intrinsic = disc * np.where(is_call, np.maximum(fwd - strike, 0), np.maximum(strike - fwd, 0))
    upper = disc * np.where(is_call, fwd, strike)
    lo = np.full(price.shape, math.log(1e-4))
    hi = np.full(price.shape, math.log(10.0))
    for _ in range(100):  # 100 halvings of a log-range of 11.5: far below float rounding
        mid = 0.5 * (lo + hi)
        too_high = black_price(is_call, fwd, strike, t, np.exp(mid), disc) > price
        hi = np.where(too_high, mid, hi)
        lo = np.where(too_high, lo, mid)
    out = np.exp(0.5 * (lo + hi))
    bad = (price <= intrinsic) | (price >= upper)
    return np.where(bad, np.nan, out)
