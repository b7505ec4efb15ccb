"""Calibration of the five Heston parameters to an implied-volatility chain, and anomalies.

The chain format is iVolatility's RawIV CSV (the bundled SPX sample).  For one
trade date we keep out-of-the-money, non-interpolated quotes with a bid, price each
at its quoted implied vol with Black-76 on the vendor's forward (so rates and
dividends drop out: s0 = F, r = q = 0 per expiry), and fit Heston by robust
least squares on vega-scaled price errors, which are implied-vol errors to first
order.  The fit error is then reported exactly, in vol points, from the model's own
implied vols, and quotes whose residual is far from the rest (robust z-score with
the median absolute deviation) are ranked as anomalies.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares

from argus_core import DataError
from argus_gpu_heston.analytic import black_price, black_vega, heston_price, implied_vol
from argus_gpu_heston.errors import HestonParameterError
from argus_gpu_heston.params import HestonParams

#: Parameter box for the fit: v0, kappa, theta, sigma, rho.
LOWER = np.array([1e-4, 1e-2, 1e-4, 1e-2, -0.999])
UPPER = np.array([2.0, 20.0, 2.0, 5.0, 0.999])
MAD_SCALE = 1.4826  # MAD of a normal sample times this estimates its standard deviation


def bundled_chain() -> Path:
    """Path of the bundled iVolatility SPX chain (2011-01-03 to 2011-01-07)."""
    return Path(str(resources.files("argus_gpu_heston.data").joinpath(
        "ivolatility_SPX_chain_2011-01-03_to_07.csv")))


@attrs.frozen
class Chain:
    """Quotes of one trade date, as parallel arrays (one entry per option)."""

    trade_date: date
    spot: float
    expiry: NDArray[Any]
    t: NDArray[np.float64]
    strike: NDArray[np.float64]
    is_call: NDArray[np.bool_]
    iv: NDArray[np.float64]
    fwd: NDArray[np.float64]

    def __attrs_post_init__(self) -> None:
        _check_chain(self)

    def __len__(self) -> int:
        return int(self.t.size)


#: Implied vols the fit can use: :func:`implied_vol` inverts prices in (1e-4, 10).
MAX_IV = 10.0


def _check_chain(chain: Chain) -> None:
    """Refuse arrays of different lengths and quotes no option can have, naming the
    array and the index (a NaN or zero vol, an expired maturity, a NaN forward)."""
    arrays = {name: np.asarray(getattr(chain, name))
              for name in ("expiry", "t", "strike", "is_call", "iv", "fwd")}
    lengths = {name: a.size for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"option chain arrays differ in length: {lengths}")
    rules = (("t", 0.0, math.inf, "maturities in years must be finite and > 0"),
             ("strike", 0.0, math.inf, "strikes must be finite and > 0"),
             ("fwd", 0.0, math.inf, "forwards must be finite and > 0"),
             ("iv", 0.0, MAX_IV, f"implied vols must be finite, > 0 and < {MAX_IV:g}"))
    for name, lo, hi, rule in rules:
        values = arrays[name].astype(float)
        bad = np.nonzero(~((values > lo) & (values < hi)))[0]
        if bad.size:
            raise DataError(f"option chain: {name}[{bad[0]}] is {values[bad[0]]!r}: {rule} "
                            f"({bad.size} such quote(s))")


def _date(text: str, where: str) -> date:
    for fmt in ("%m/%d/%y", "%m/%d/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    raise DataError(f"{where}: cannot read date {text!r} (expected M/D/YY or YYYY-MM-DD)")


#: Columns read from the chain (header names compared stripped and lower-cased).
NEED = ("date", "option_expiration", "strike", "call/put", "bid", "iv", "forward_price",
        "isinterpolated", "stock_price_close")


def _positive(r: dict[str, str], col: str, where: str) -> float:
    """Column ``col`` of a row: a finite number > 0, else a DataError naming it."""
    text = (r.get(col) or "").strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise DataError(f"{where}: column {col!r} is {text!r}, not a positive number")
    return value


def _quote(r: dict[str, str], col: str) -> float:
    """A bid, ask or implied vol: NaN when blank, not a number or not finite (the quote
    is then not fitted, as a zero bid is not)."""
    try:
        value = float((r.get(col) or "").strip())
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def _rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """``(line, row)`` of the CSV, header names stripped and lower-cased (exports spell
    them ``Strike``, ``IV`` or `` bid``)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            out = [(reader.line_num, dict(zip(header, row, strict=False)))
                   for row in reader if row]
    except FileNotFoundError:
        raise DataError(f"{path}: option chain file not found") from None
    missing = sorted(set(NEED) - set(header))
    if not out or missing:
        raise DataError(f"{path}: not an iVolatility RawIV chain (missing columns "
                        f"{missing or sorted(NEED)})")
    return out


def load_chain(path: str | Path | None = None, trade_date: str | date | None = None, *,
               min_days: int = 7, max_sd: float = 3.0) -> Chain:
    """Read an iVolatility RawIV CSV and keep the quotes worth fitting.

    Kept: the trade date (default: the first in the file), expiries at least
    ``min_days`` (>= 1) away, out-of-the-money side only, not interpolated, bid > 0,
    0 < iv < 10 (a blank, NaN or infinite bid or iv is no quote), not crossed (ask >= bid when an
    ``ask`` column is there), the first row of a repeated (expiry, strike, type), and
    |ln(K/F)| within ``max_sd`` ATM standard deviations.  A strike, forward or spot that
    is not a positive number is a ``DataError`` naming the file, line and column.
    """
    if isinstance(min_days, bool) or not isinstance(min_days, (int, np.integer)) or min_days < 1:
        raise HestonParameterError(f"min_days must be an integer >= 1 (a quote expiring on "
                                   f"the trade date has no time value to fit), got {min_days!r}")
    if not _is_number(max_sd) or not max_sd > 0:
        raise HestonParameterError(f"max_sd must be a finite number > 0, got {max_sd!r}")
    path = Path(path) if path is not None else bundled_chain()
    rows = _rows(path)
    dates = sorted({_date(r["date"], f"{path}:{n}") for n, r in rows})
    if trade_date is None:
        wanted = dates[0]
    else:
        wanted = trade_date if isinstance(trade_date, date) else _date(str(trade_date), "date")
        if wanted not in dates:
            raise DataError(f"{path}: no quotes on {wanted}; dates in file: "
                            f"{', '.join(d.isoformat() for d in dates)}")
    recs = []
    seen: set[tuple[date, float, bool]] = set()
    spot = math.nan
    for i, r in rows:
        where = f"{path}:{i}"
        if _date(r["date"], where) != wanted:
            continue
        spot = _positive(r, "stock_price_close", where)
        exp = _date(r["option_expiration"], where)
        days = (exp - wanted).days
        strike, fwd = _positive(r, "strike", where), _positive(r, "forward_price", where)
        iv, bid, ask = _quote(r, "iv"), _quote(r, "bid"), _quote(r, "ask")
        is_call = r["call/put"].strip().upper().startswith("C")
        if (days < min_days or r["isinterpolated"].strip() == "*" or not bid > 0
                or not 0 < iv < MAX_IV or ask < bid
                or (is_call and strike < fwd) or (not is_call and strike >= fwd)
                or (exp, strike, is_call) in seen):
            continue
        seen.add((exp, strike, is_call))
        recs.append((exp, days / 365.0, strike, is_call, iv, fwd))
    if not recs:
        raise DataError(f"{path}: no usable quotes on {wanted}")
    exp_a = np.array([x[0] for x in recs], dtype=object)
    t = np.array([x[1] for x in recs])
    strike_a = np.array([x[2] for x in recs])
    is_call_a = np.array([x[3] for x in recs])
    iv_a = np.array([x[4] for x in recs])
    fwd_a = np.array([x[5] for x in recs])
    # ATM vol per expiry: the quote nearest the forward
    keep = np.zeros(t.size, dtype=bool)
    for tt in np.unique(t):
        sel = np.nonzero(t == tt)[0]
        atm = iv_a[sel[np.argmin(np.abs(np.log(strike_a[sel] / fwd_a[sel])))]]
        keep[sel] = np.abs(np.log(strike_a[sel] / fwd_a[sel])) <= max_sd * atm * math.sqrt(tt)
    return Chain(wanted, spot, exp_a[keep], t[keep], strike_a[keep], is_call_a[keep],
                 iv_a[keep], fwd_a[keep])


#: Quadrature panels per integral in a fit: parameters needing more (a Feller condition
#: violated a million-fold, sigma 5 with v0 1e-4) are no fit, not minutes of integration.
FIT_MAX_PANELS = 20_000


def model_prices(params: HestonParams, chain: Chain, n_alpha: int = 3,
                 max_panels: int = FIT_MAX_PANELS) -> NDArray[np.float64]:
    """Undiscounted Heston prices of every quote (s0 = F per expiry, r = q = 0).

    Three damping candidates per side keep a chain to ~20 characteristic-function grids;
    the price error stays far below a bid-ask spread (checked in the tests).  Parameters
    whose characteristic function needs more than ``max_panels`` quadrature panels are a
    ``HestonParameterError`` (see :func:`heston_price`).
    """
    out = np.empty(len(chain))
    # one call per (maturity, forward): a chain built in code may give quotes of one
    # maturity different forwards (each quote was priced at its own forward for the fit;
    # the first quote's forward for all of them priced the others at the wrong one)
    for tt, fwd in sorted(set(zip(chain.t.tolist(), chain.fwd.tolist(), strict=True))):
        sel = (chain.t == tt) & (chain.fwd == fwd)
        out[sel] = heston_price(chain.is_call[sel], fwd, chain.strike[sel], tt, 0.0, 0.0, params,
                                n_alpha=n_alpha, max_panels=max_panels)
    return out


@attrs.frozen
class Anomaly:
    """One quote of the chain with its fit residual; ranked by |zscore|."""

    expiry: date
    t: float
    kind: str
    strike: float
    moneyness: float  # ln(K/F)
    market_iv: float
    model_iv: float
    residual_vol_pts: float  # market - model, in vol points (1 = 1%)
    zscore: float
    flagged: bool


@attrs.frozen
class CalibrationResult:
    """Fitted parameters, fit quality in vol points and the ranked quote table."""

    params: HestonParams
    trade_date: date
    n_quotes: int
    rmse_vol_pts: float
    mae_vol_pts: float
    max_abs_vol_pts: float
    threshold: float
    table: list[Anomaly]
    nfev: int
    success: bool

    @property
    def anomalies(self) -> list[Anomaly]:
        """The flagged quotes, most anomalous first."""
        return [row for row in self.table if row.flagged]


def robust_zscores(residuals: NDArray[np.float64], min_scale: float = 0.0) -> NDArray[np.float64]:
    """(x - median) / max(1.4826 MAD, min_scale).

    ``min_scale`` keeps a near-perfect fit (MAD of a few hundredths of a vol point) from
    calling quotes a tenth of a point off "anomalous".
    """
    med = float(np.median(residuals))
    mad = float(np.median(np.abs(residuals - med))) * MAD_SCALE
    scale = max(mad, min_scale)
    if scale <= 0:
        scale = float(np.std(residuals)) or 1.0
    return (residuals - med) / scale


def _check_fit_args(x0: Sequence[float] | None, threshold: float, max_nfev: int,
                    min_scale_vol_pts: float) -> None:
    """Refuse a start point that is not five finite numbers and meaningless thresholds
    (a NaN threshold flags nothing; SciPy's own errors name none of these)."""
    if x0 is not None:
        try:
            start = np.asarray(x0, dtype=float)
        except (TypeError, ValueError):
            start = np.array([math.nan])
        if start.shape != (5,) or not np.all(np.isfinite(start)):
            raise HestonParameterError(f"x0 must be five finite numbers (v0, kappa, theta, "
                                       f"sigma, rho), got {x0!r}")
    if not _is_number(threshold) or not threshold > 0:
        raise HestonParameterError(f"threshold must be a finite number > 0, got {threshold!r}")
    if not _is_number(min_scale_vol_pts) or not min_scale_vol_pts >= 0:
        raise HestonParameterError(f"min_scale_vol_pts must be a finite number >= 0, got "
                                   f"{min_scale_vol_pts!r}")
    if isinstance(max_nfev, bool) or not isinstance(max_nfev, (int, np.integer)) or max_nfev < 1:
        raise HestonParameterError(f"max_nfev must be an integer >= 1, got {max_nfev!r}")


def _is_number(value: object) -> bool:
    """A finite int or float (not a bool)."""
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, bool) and math.isfinite(value))


def calibrate(chain: Chain, x0: Sequence[float] | None = None, *, threshold: float = 3.5,
              max_nfev: int = 200, min_scale_vol_pts: float = 0.1) -> CalibrationResult:
    """Fit v0, kappa, theta, sigma, rho to ``chain`` and rank its quotes by robust z-score.

    A quote is flagged when |z| > ``threshold``, z being its residual (market minus model
    implied vol, in vol points) standardised by the residuals' median and MAD, the MAD
    floored at ``min_scale_vol_pts``.
    """
    _check_fit_args(x0, threshold, max_nfev, min_scale_vol_pts)
    distinct = len(set(zip(chain.t.tolist(), chain.strike.tolist(), chain.is_call.tolist(),
                           strict=True)))
    if distinct < 5:  # five parameters: fewer distinct quotes fit "exactly" by any of many
        raise DataError(f"calibration needs at least 5 distinct quotes (maturity, strike, "
                        f"type), got {distinct} among {len(chain)}")
    mkt = black_price(chain.is_call, chain.fwd, chain.strike, chain.t, chain.iv)
    vega = np.maximum(black_vega(chain.fwd, chain.strike, chain.t, chain.iv), 1e-8 * chain.fwd)
    if x0 is None:
        short = chain.t == chain.t.min()
        atm = float(chain.iv[short][np.argmin(np.abs(np.log(chain.strike[short]
                                                            / chain.fwd[short])))])
        x0 = (atm * atm, 2.0, atm * atm, 0.6, -0.7)
    x0 = np.clip(np.asarray(x0, dtype=float), LOWER + 1e-9, UPPER - 1e-9)

    # Where the model has no price (parameters the Fourier integral cannot resolve: a
    # Feller condition violated a million-fold), each quote's residual is the worst any
    # arbitrage-free price could have: such a corner never fits better than a priced one
    # (a flat 1.0 did, for quotes far off every surface, and the fit ended there).
    lower = np.where(chain.is_call, np.maximum(chain.fwd - chain.strike, 0.0),
                     np.maximum(chain.strike - chain.fwd, 0.0))
    upper = np.where(chain.is_call, chain.fwd, chain.strike)
    worst = np.maximum(mkt - lower, upper - mkt) / vega

    def residuals(x: NDArray[np.float64]) -> NDArray[np.float64]:
        try:
            params = HestonParams(*x)
            with np.errstate(all="ignore"):
                res = (model_prices(params, chain) - mkt) / vega
        except HestonParameterError:
            return worst
        return np.where(np.isfinite(res), res, worst)

    # soft_l1 with a 1-vol-point scale: quotes far off the surface (the anomalies we want
    # to find) cannot drag the fit toward themselves.
    fit = least_squares(residuals, x0, bounds=(LOWER, UPPER), loss="soft_l1", f_scale=0.01,
                        x_scale=np.array([0.01, 1.0, 0.01, 0.3, 0.3]), max_nfev=max_nfev)
    params = HestonParams(*fit.x)
    try:
        prices = model_prices(params, chain)
    except HestonParameterError as exc:
        raise HestonParameterError(f"calibration ended at {params}, where the chain cannot "
                                   f"be priced ({exc}); try another x0") from exc
    model_iv = implied_vol(prices, chain.is_call, chain.fwd, chain.strike, chain.t)
    resid = (chain.iv - model_iv) * 100.0
    ok = np.isfinite(resid)
    z = np.full(resid.shape, np.nan)
    z[ok] = robust_zscores(resid[ok], min_scale_vol_pts)
    order = np.argsort(-np.where(ok, np.abs(z), np.inf))
    table = [Anomaly(expiry=chain.expiry[i], t=float(chain.t[i]),
                     kind="call" if chain.is_call[i] else "put", strike=float(chain.strike[i]),
                     moneyness=float(math.log(chain.strike[i] / chain.fwd[i])),
                     market_iv=float(chain.iv[i]), model_iv=float(model_iv[i]),
                     residual_vol_pts=float(resid[i]), zscore=float(z[i]),
                     flagged=bool(not ok[i] or abs(z[i]) > threshold)) for i in order]
    good = resid[ok]
    return CalibrationResult(params=params, trade_date=chain.trade_date, n_quotes=len(chain),
                             rmse_vol_pts=float(np.sqrt(np.mean(good ** 2))),
                             mae_vol_pts=float(np.mean(np.abs(good))),
                             max_abs_vol_pts=float(np.max(np.abs(good))), threshold=threshold,
                             table=table, nfev=int(fit.nfev), success=bool(fit.success))
