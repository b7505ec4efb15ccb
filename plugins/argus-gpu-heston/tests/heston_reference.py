"""Independent high-precision Heston prices for the tests (mpmath, 30 digits).

Deliberately a different route from the production pricer: Lewis's (2001) single
integral on the contour Im u = -1/2 (inside the strip where every moment exists,
so no damping choice), adaptive tanh-sinh quadrature, the characteristic function
in Heston's own variable (ln S_T, not ln S_T/F) and 30-digit arithmetic, so the
cancellation in "forward minus integral" costs nothing for deep out-of-the-money
strikes.  Puts follow from parity in the same precision.  Where the price is so far
below the forward that 30 digits would not cover the cancellation (a one-day option
10-20% out of the money: 1e-25 to 1e-102 of the spot), the working precision is raised
to cover it; where the quadrature's own error estimate is not far below the price (the
characteristic function decaying too slowly, e.g. v0 = 0 over one day), it raises
ArithmeticError rather than return a wrong reference.
"""

from __future__ import annotations

import mpmath as mp


def lewis_price(kind: str, s0: float, strike: float, t: float, r: float, q: float,
                v0: float, kappa: float, theta: float, sigma: float, rho: float,
                dps: int = 30) -> float:
    """Discounted European price by Lewis's formula, with at least ``dps`` digits left
    after the cancellation of forward and integral."""
    args = (kind, s0, strike, t, r, q, v0, kappa, theta, sigma, rho)
    work = dps
    for _ in range(4):  # each pass adds the digits the last one lost to cancellation
        price, quad_error, scale = _lewis(*args, dps=work)
        lost = int(mp.ceil(mp.log10(scale / abs(price)))) if price else 2 * work
        if lost <= work - 20:  # 20 digits left: far more than a double holds
            break
        work = dps + lost + 10
    # the error estimate is pessimistic (the last two levels' difference): 1e-6 of the
    # price passes every case that agrees across precisions, and fails where the
    # integrand oscillates past the breakpoints (it is then as large as the price)
    if not (price > 0 and quad_error < mp.mpf(10) ** -6 * price and lost <= work - 20):
        raise ArithmeticError(
            f"lewis_price: the quadrature cannot resolve this case (price {mp.nstr(price, 5)}, "
            f"error estimate {mp.nstr(quad_error, 5)}, {work} digits): {args}")
    return float(price)


def _lewis(kind: str, s0: float, strike: float, t: float, r: float, q: float,
           v0: float, kappa: float, theta: float, sigma: float, rho: float,
           dps: int) -> tuple[mp.mpf, mp.mpf, mp.mpf]:
    """(price, the quadrature's error estimate in price units, the forward + strike
    scale of the cancellation), all in ``dps``-digit arithmetic."""
    with mp.workdps(dps):
        s0m, km, tm = mp.mpf(s0), mp.mpf(strike), mp.mpf(t)
        rm, qm = mp.mpf(r), mp.mpf(q)
        v0m, kap, th, sig, rh = (mp.mpf(x) for x in (v0, kappa, theta, sigma, rho))
        lns = mp.log(s0m) + (rm - qm) * tm

        def cf(u: mp.mpc) -> mp.mpc:
            # Albrecher et al. (2007) form for ln S_T: exp(i u ln F + C + D v0)
            xi = kap - 1j * rh * sig * u
            d = mp.sqrt(xi * xi + sig * sig * (u * u + 1j * u))
            g = (xi - d) / (xi + d)
            e = mp.exp(-d * tm)
            c = kap * th / sig ** 2 * ((xi - d) * tm - 2 * mp.log((1 - g * e) / (1 - g)))
            dd = (xi - d) / sig ** 2 * (1 - e) / (1 - g * e)
            return mp.exp(1j * u * lns + c + dd * v0m)

        lnk = mp.log(km)

        def integrand(u: mp.mpf) -> mp.mpf:
            z = mp.mpc(u, -0.5)
            return mp.re(mp.exp(-1j * u * lnk) * cf(z)) / (u * u + mp.mpf(1) / 4)

        pts = [0, 0.5, 2, 8, 32, 128, 512, 2048, mp.inf]
        integral, error = mp.quad(integrand, pts, error=True)
        disc = mp.exp(-rm * tm)
        fwd = mp.exp(lns)
        # C = D (F - sqrt(K) / pi * int Re[e^{-iu ln K} phi(u - i/2)] / (u^2 + 1/4) du)
        call = disc * fwd - disc * mp.sqrt(km) * integral / mp.pi
        price = call if kind == "call" else call - disc * (fwd - km)
        return price, disc * mp.sqrt(km) * error / mp.pi, disc * (fwd + km)
