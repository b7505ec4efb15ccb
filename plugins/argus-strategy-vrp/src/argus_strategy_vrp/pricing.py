"""Option pricing for the VRP plugin: Black-Scholes puts, implied vol, lognormal PoP, and the
skew and bid/ask models calibrated on the bundled SPX chain snapshots.

Without historical SPY/QQQ option chains, quotes are *synthesised*: the at-the-money
implied vol is the VIX close times a calibrated ratio, each strike's vol follows a
quadratic skew in standardised moneyness ``m = ln(K/F) / sqrt(T)``, prices are
Black-Scholes, and the half-spread is ``a * S + b * mid`` -- every coefficient
fitted by least squares on ``data/spx_puts_2011-01-03_to_07.csv`` (puts of the
iVolatility SPX sample, 2011-01-03..07; see SOURCES.md).
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import math
from importlib import resources

import attrs
import numpy as np
from scipy import optimize
from scipy.special import ndtr

CHAIN_FILE = "spx_puts_2011-01-03_to_07.csv"
VIX_FILE = "cboe_vix_daily.csv"


def _d1(s: np.ndarray, k: np.ndarray, t: float, r: float, sigma: np.ndarray,
        vt: np.ndarray) -> np.ndarray:
    """Black-Scholes d1; where ``vt = sigma sqrt(t)`` is 0 (at expiry, or no vol) its
    limit: +inf out of the money, -inf in it, 0 at the (discounted) money."""
    moneyness = np.log(s / k) + r * t
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = (moneyness + 0.5 * sigma**2 * t) / vt
    limit = np.where(moneyness > 0, np.inf, np.where(moneyness < 0, -np.inf, 0.0))
    return np.where(vt > 0, d1, limit)


def bs_put(s: float | np.ndarray, k: float | np.ndarray, t: float, r: float,
           sigma: float | np.ndarray) -> np.ndarray:
    """Black-Scholes European put price per unit of underlying (no dividends); at
    ``t = 0`` or ``sigma = 0`` its limit, the discounted intrinsic value."""
    s, k, sigma = np.asarray(s, float), np.asarray(k, float), np.asarray(sigma, float)
    vt = sigma * math.sqrt(t)
    d1 = _d1(s, k, t, r, sigma, vt)
    d2 = np.where(vt > 0, d1 - vt, d1)
    return k * math.exp(-r * t) * ndtr(-d2) - s * ndtr(-d1)


def bs_put_delta(s: float, k: float | np.ndarray, t: float, r: float,
                 sigma: float | np.ndarray) -> np.ndarray:
    """Black-Scholes put delta (negative); -1 or 0 at ``t = 0`` or ``sigma = 0``."""
    k, sigma = np.asarray(k, float), np.asarray(sigma, float)
    return ndtr(_d1(np.asarray(s, float), k, t, r, sigma, sigma * math.sqrt(t))) - 1.0


def implied_vol_put(price: float, s: float, k: float, t: float, r: float) -> float | None:
    """Black-Scholes implied vol of a put price (None when the price is outside the bounds)."""
    intrinsic = max(k * math.exp(-r * t) - s, 0.0)
    if not price > intrinsic or price >= k * math.exp(-r * t):
        return None
    def excess(v: float) -> float:
        return float(bs_put(s, k, t, r, v)) - price

    try:
        return float(optimize.brentq(excess, 1e-4, 5.0, xtol=1e-8))
    except ValueError:
        return None


def lognormal_pop(s: float, breakeven: float, t: float, sigma: float, drift: float = 0.0) -> float:
    """P(S_T > breakeven) when ln S_T ~ N(ln s + (drift - sigma^2/2) t, sigma^2 t)."""
    if breakeven <= 0:
        return 1.0
    if sigma * math.sqrt(t) == 0:  # no randomness left: S_T = s * exp(drift t)
        return 1.0 if math.log(s / breakeven) + drift * t > 0 else 0.0
    z = (math.log(s / breakeven) + (drift - 0.5 * sigma * sigma) * t) / (sigma * math.sqrt(t))
    return float(ndtr(z))


@attrs.frozen
class SkewModel:
    """Calibrated quote model: ATM vol from the VIX, quadratic skew, bid/ask half-spread."""

    vix_to_atm: float  # ATM 30-day implied vol / (VIX / 100)
    skew_b1: float  # iv / atm = 1 + b1 m + b2 m^2, m = ln(K/F)/sqrt(T)
    skew_b2: float
    spread_a: float  # half-spread = a * S + b * mid (same currency as the price)
    spread_b: float
    n_rows: int

    def iv(self, atm_iv: float, k: np.ndarray, f: float, t: float) -> np.ndarray:
        """Implied vol per strike (clipped to [0.6, 3] x ATM so wings stay sane)."""
        m = np.log(np.asarray(k, float) / f) / math.sqrt(t)
        m = np.clip(m, -4.0, 1.0)
        ratio = np.clip(1.0 + self.skew_b1 * m + self.skew_b2 * m * m, 0.6, 3.0)
        return atm_iv * ratio

    def half_spread(self, s: float, mid: np.ndarray) -> np.ndarray:
        """Half of the bid/ask spread for quotes of value ``mid`` on an underlying at ``s``."""
        return np.maximum(self.spread_a * s + self.spread_b * np.asarray(mid, float), 0.0)


def _date(text: str) -> dt.date:
    m, d, y = (int(x) for x in text.split("/"))
    return dt.date(2000 + y if y < 100 else y, m, d)


def _vix_closes(days: set[dt.date]) -> dict[dt.date, float]:
    out = {}
    with resources.files(__package__).joinpath("data", VIX_FILE).open() as fh:
        for row in csv.DictReader(fh):
            d = dt.date.fromisoformat(row["DATE"])
            if d in days:
                out[d] = float(row["CLOSE"])
    return out


#: Columns of the chain file that must be finite numbers > 0 (bid and ask: >= 0).
_POSITIVE_COLUMNS = ("stock_price_close", "strike", "iv", "forward_price")


def _chain_rows() -> list[dict[str, str]]:
    """The bundled chain's put rows, each checked: a spot, strike, implied vol or forward that
    is not a finite number > 0, a bid or ask that is not a finite number >= 0, or a
    repeated (date, expiry, strike, type) is a ``DataError`` naming the file, line and
    column.  (Before, a NaN vol made every skew coefficient NaN, and the replay crashed
    on its first book with ``math.floor(nan)``, far from the file; a duplicate row
    weighed twice in the fit.)"""
    from argus_core import DataError

    rows = []
    seen: dict[tuple[str, ...], int] = {}
    with resources.files(__package__).joinpath("data", CHAIN_FILE).open() as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
            if (row.get("call/put") or "").strip().upper() != "P":
                continue  # the skew and spread models are fitted on puts only
            for col in (*_POSITIVE_COLUMNS, "bid", "ask"):
                try:
                    value = float(row.get(col) or "nan")
                except ValueError:
                    value = math.nan
                low_ok = value >= 0 if col in ("bid", "ask") else value > 0
                if not (low_ok and math.isfinite(value)):
                    rule = "a finite number >= 0" if col in ("bid", "ask") else \
                        "a finite number > 0"
                    raise DataError(f"{CHAIN_FILE} line {n}: column {col!r} is "
                                    f"{row.get(col)!r}, not {rule}")
            key = tuple(row.get(c, "") for c in ("date", "option_expiration", "strike",
                                                 "call/put"))
            if key in seen:
                raise DataError(f"{CHAIN_FILE} line {n}: repeats line {seen[key]} (same date, "
                                f"expiry, strike and type)")
            seen[key] = n
            rows.append(row)
    return rows


@functools.cache
def calibrated_model() -> SkewModel:
    """Fit :class:`SkewModel` on the bundled SPX put snapshots (cached)."""
    rows = _chain_rows()
    m_all, ratio_all, s_all, mid_all, half_all = [], [], [], [], []
    atm_30: dict[dt.date, list[tuple[float, float]]] = {}
    groups: dict[tuple[dt.date, dt.date], list[dict[str, str]]] = {}
    for row in rows:
        groups.setdefault((_date(row["date"]), _date(row["option_expiration"])), []).append(row)
    for (day, expiry), grp in sorted(groups.items()):
        days = (expiry - day).days
        if days < 7 or days > 370:
            continue
        t = days / 365.0
        f = float(grp[0]["forward_price"])
        s = float(grp[0]["stock_price_close"])
        quoted = [g for g in grp if g["isinterpolated"] != "*"]
        if len(quoted) < 5:
            continue
        k = np.array([float(g["strike"]) for g in quoted])
        iv = np.array([float(g["iv"]) for g in quoted])
        order = np.argsort(k)
        k, iv = k[order], iv[order]
        if not (k[0] <= f <= k[-1]):
            continue
        atm = float(np.interp(f, k, iv))
        atm_30.setdefault(day, []).append((days, atm))
        m = np.log(k / f) / math.sqrt(t)
        keep = (m > -3.0) & (m < 0.3)
        m_all.append(m[keep])
        ratio_all.append(iv[keep] / atm)
        bid = np.array([float(g["bid"]) for g in quoted])[order]
        ask = np.array([float(g["ask"]) for g in quoted])[order]
        mid = 0.5 * (bid + ask)
        ok = (mid > 0.2) & (ask > bid)
        s_all.append(np.full(int(ok.sum()), s))
        mid_all.append(mid[ok])
        half_all.append(0.5 * (ask - bid)[ok])
    m = np.concatenate(m_all)
    ratio = np.concatenate(ratio_all)
    # Least squares for ratio - 1 = b1 m + b2 m^2 (the ATM point is 1 by construction).
    design = np.column_stack([m, m * m])
    (b1, b2), *_ = np.linalg.lstsq(design, ratio - 1.0, rcond=None)
    s_arr, mid, half = (np.concatenate(x) for x in (s_all, mid_all, half_all))
    (a, b), *_ = np.linalg.lstsq(np.column_stack([s_arr, mid]), half, rcond=None)
    # ATM vol at 30 calendar days, interpolated per day, against that day's VIX close.
    vix = _vix_closes(set(atm_30))
    ratios = []
    for day, pts in atm_30.items():
        pts.sort()
        xs, ys = zip(*pts, strict=True)
        if day in vix and xs[0] <= 30 <= xs[-1]:
            ratios.append(float(np.interp(30, xs, ys)) / (vix[day] / 100.0))
    return SkewModel(float(np.mean(ratios)), float(b1), float(b2), float(max(a, 0.0)),
                     float(max(b, 0.0)), int(m.size))
