"""IV-surface anomalies of a posted option chain.

For each quote with a two-sided market, the mid ``(bid + ask) / 2`` is inverted to a
Black-Scholes implied vol (European, continuous ``rate`` and ``dividend_yield``) with
:func:`scipy.optimize.brentq` on ``[1e-4, 5]`` (xtol 1e-10); a mid outside the no-arbitrage
bounds (at or below the discounted intrinsic value, at or above the discounted
underlying or strike) has no implied vol and is reported with the reason.

Per expiry, a smile ``iv(x) = a + b x + c x^2`` in log-moneyness ``x = ln(K / F)``,
``F = S exp((r - q) t)``, is fitted by least squares, robustly: fit, drop the quotes whose
residual exceeds ``k`` robust standard deviations (1.4826 x the median absolute
residual), refit on the rest, until nothing more is dropped.  The residuals' standard
deviation ``sigma`` is then that of the kept quotes (3 degrees of freedom used, floored
at ``min_sigma`` so a near-perfect smile does not flag rounding), and a quote is an
anomaly when ``|iv - fit| > k x sigma``.  An expiry with fewer than ``min_quotes``
invertible quotes is not fitted (its quotes are reported unjudged).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
from scipy import optimize
from scipy.special import ndtr

from argus_core import DataError


def bs_price(kind: str, s: float, k: float, t: float, r: float, q: float, sigma: float
             ) -> float:
    """Black-Scholes price of a European call or put."""
    vt = sigma * math.sqrt(t)
    d1 = (math.log(s / k) + (r - q + 0.5 * sigma * sigma) * t) / vt
    d2 = d1 - vt
    if kind == "call":
        return float(s * math.exp(-q * t) * ndtr(d1) - k * math.exp(-r * t) * ndtr(d2))
    return float(k * math.exp(-r * t) * ndtr(-d2) - s * math.exp(-q * t) * ndtr(-d1))


def implied_vol(kind: str, price: float, s: float, k: float, t: float, r: float, q: float
                ) -> tuple[float | None, str]:
    """``(implied vol, "")``, or ``(None, why)`` when ``price`` has none."""
    disc_s, disc_k = s * math.exp(-q * t), k * math.exp(-r * t)
    lower = max(disc_s - disc_k, 0.0) if kind == "call" else max(disc_k - disc_s, 0.0)
    upper = disc_s if kind == "call" else disc_k
    if not price > lower:
        return None, f"mid {price:g} is at or below the discounted intrinsic value {lower:g}"
    if not price < upper:
        return None, f"mid {price:g} is at or above the no-arbitrage upper bound {upper:g}"

    def excess(v: float) -> float:
        return bs_price(kind, s, k, t, r, q, v) - price

    try:
        return float(optimize.brentq(excess, 1e-4, 5.0, xtol=1e-10)), ""
    except ValueError:
        return None, "no implied vol between 0.01% and 500%"


@attrs.frozen
class Quote:
    """One posted option quote."""

    expiry: dt.date
    strike: float
    kind: str  # "call" | "put"
    bid: float
    ask: float


def _fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    design = np.column_stack([np.ones_like(x), x, x * x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return np.asarray(coef, dtype=np.float64)


def _predict(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.asarray(coef[0] + coef[1] * x + coef[2] * x * x, dtype=np.float64)


def anomalies(quotes: Sequence[Quote], spot: float, as_of: dt.date, *, rate: float = 0.0,
              dividend_yield: float = 0.0, k: float = 3.0, min_quotes: int = 5,
              min_sigma: float = 0.002) -> dict[str, Any]:
    """Every quote's implied vol, its expiry's fitted smile, and the anomalies."""
    if not spot > 0 or not k > 0:
        raise DataError("spot and k must be > 0")
    by_expiry: dict[dt.date, list[int]] = {}
    for i, quote in enumerate(quotes):
        by_expiry.setdefault(quote.expiry, []).append(i)
    rows: list[dict[str, Any]] = [{} for _ in quotes]
    expiries = []
    for expiry, idx in sorted(by_expiry.items()):
        days = (expiry - as_of).days
        if days <= 0:
            raise DataError(f"expiry {expiry} is not after as_of {as_of}")
        t = days / 365.0
        fwd = spot * math.exp((rate - dividend_yield) * t)
        ivs: list[float] = []
        good: list[int] = []
        for i in idx:
            qt = quotes[i]
            mid = 0.5 * (qt.bid + qt.ask)
            iv, why = (None, "no two-sided market (bid and ask must be > 0, bid <= ask)")
            if 0 < qt.bid <= qt.ask:
                iv, why = implied_vol(qt.kind, mid, spot, qt.strike, t, rate, dividend_yield)
            rows[i] = {"expiry": expiry.isoformat(), "strike": qt.strike, "kind": qt.kind,
                       "bid": qt.bid, "ask": qt.ask, "mid": mid, "iv": iv, "fitted_iv": None,
                       "residual": None, "z": None, "anomaly": False,
                       "reason": why or None}
            if iv is not None:
                ivs.append(iv)
                good.append(i)
        info: dict[str, Any] = {"expiry": expiry.isoformat(), "t_years": t, "forward": fwd,
                                "quotes": len(idx), "fitted": False}
        expiries.append(info)
        if len(good) < min_quotes:
            info["reason"] = f"{len(good)} invertible quotes, fewer than {min_quotes}"
            for i in good:
                rows[i]["reason"] = "expiry not fitted"
            continue
        x = np.log(np.array([quotes[i].strike for i in good]) / fwd)
        y = np.array(ivs)
        keep = np.ones(len(good), dtype=bool)
        for _ in range(len(good)):
            coef = _fit(x[keep], y[keep])
            resid = y - _predict(coef, x)
            robust = max(1.4826 * float(np.median(np.abs(resid[keep]))), min_sigma)
            new_keep = np.abs(resid) <= k * robust
            if new_keep.sum() < min_quotes or np.array_equal(new_keep, keep):
                break
            keep = new_keep
        coef = _fit(x[keep], y[keep])
        resid = y - _predict(coef, x)
        dof = max(int(keep.sum()) - 3, 1)
        sigma = max(math.sqrt(float(np.sum(resid[keep] ** 2)) / dof), min_sigma)
        info.update(fitted=True, coefficients=[float(c) for c in coef], sigma=sigma,
                    kept=int(keep.sum()))
        for j, i in enumerate(good):
            z = float(resid[j] / sigma)
            rows[i].update(fitted_iv=float(y[j] - resid[j]), residual=float(resid[j]), z=z,
                           anomaly=abs(z) > k)
    return {"k": k, "expiries": expiries, "quotes": rows,
            "anomalies": [r for r in rows if r["anomaly"]]}
