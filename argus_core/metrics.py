"""Performance metrics computed from a run's ledger (the core's "truth benchmarks").

Everything here is derived from committed ledger rows — equity marks and
fills — so no strategy (and no AI) can edit the numbers it is judged by.

Annualisation has one rule, used by the report, the lab's sweeps, walk-forward and
gates alike: :func:`observations_per_year`, the number of observations per year
*measured from the data's own timestamps* (intervals / span in years).  Daily
equity-market bars get their ~252 trading days, hourly 24/7 bars ~8,766; nothing
assumes a calendar.  Conventions follow empyrical (checked against it in
``tests/test_metrics_reference.py``): simple returns between consecutive equity
rows, zero risk-free rate, ``ddof=1`` standard deviations, Sortino over the
root-mean-square of the negative returns.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any, cast

import numpy as np

from argus_core.errors import LedgerError
from argus_core.ledger import Ledger
from argus_core.models import bust_id, busted_by

YEAR_S = 365.25 * 86_400
_YEAR_NS = YEAR_S * 1e9


#: Below this many units of 1e-8, an integer converts to a float exactly: one rounding.
_EXACT_E8 = 2**53


def decimal_column(text: str | bytes) -> np.ndarray:
    """Comma-joined decimal texts (SQLite's ``group_concat``, as ``str`` or ASCII
    ``bytes``) as float64, each correctly rounded as ``float()`` would round it.

    The ledger writes equity with exactly 8 decimals (quantized to 1e-8): then the
    digits, read as one integer each and divided by 1e8, give the correctly rounded
    value with one rounding (the integer is exact below 2**53 units, the division
    rounds once); numpy reads integers ~4x faster than decimals.  Any other text
    (another number of decimals, an exponent, larger values) is read as decimals.
    ``bytes`` are read in place (a ``str`` is encoded once): 700k rows are ~10 MB of
    text, and the report's peak memory is mostly such copies."""
    if not text:
        return np.empty(0, dtype=np.float64)
    raw = text if isinstance(text, bytes) else text.encode("ascii", "replace")
    chars = np.frombuffer(raw, dtype=np.uint8)
    dots = np.flatnonzero(chars == ord("."))
    ends = np.flatnonzero(chars == ord(","))
    del chars  # a view of raw: raw's copies below are the only other large buffers
    n_ends = len(ends) + 1  # the last value ends at the end of the text
    if len(dots) == n_ends and dots[0] > 0 and int(dots[-1]) == len(raw) - 9 \
            and bool(np.all(ends - dots[:-1] == 9)) \
            and bool(np.all(dots[1:] - ends > 1)):
        del dots, ends
        try:
            units = np.fromstring(raw.replace(b".", b""), dtype=np.int64, sep=",")
        except ValueError:  # not digits after all: read as decimals below
            units = np.empty(0, dtype=np.int64)
        if len(units) == n_ends and bool(np.all(np.abs(units) < _EXACT_E8)):
            return units / 1e8
    return np.fromstring(raw, dtype=np.float64, sep=",")


def equity_series(ledger: Ledger) -> tuple[np.ndarray, np.ndarray]:
    """``(ts_ns int64, equity float64)`` in time order."""
    ts, eq, _exposed = _equity_columns(ledger, exposure=False)
    return ts, eq


def equity_exposure_series(ledger: Ledger) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`equity_series` and, per row, whether any position was held (gross exposure
    above zero), read in the same single scan."""
    return _equity_columns(ledger, exposure=True)


def _equity_columns(ledger: Ledger, *, exposure: bool) -> tuple[np.ndarray, np.ndarray,
                                                                 np.ndarray]:
    # SQLite joins each column into one comma-separated text and numpy parses it in C: no
    # Python object per row.  A plain scan of the table goes in rowid order, which is time
    # order (ts_ns is its integer primary key), with no sort and no subquery (an
    # aggregate's own ORDER BY sorted every row again: 700k rows 0.37 s, a scan 0.08 s).
    # SQLite does not promise that order, so it is checked below and mended if need be.
    # Equity is exact decimal text, parsed correctly rounded like float() (a test
    # compares the two).  The exposure flag may use SQLite's real cast: only its sign counts.
    # The texts come back as bytes (no str decoding, read in place) and each is dropped
    # once parsed: peak memory, not time, is what they cost (700k rows: ~25 MB of text).
    flag = ", cast(group_concat(cast(gross_exposure as real) > 0, '') as blob)" \
        if exposure else ""
    texts = list(ledger.conn.execute(
        f"select count(*), cast(group_concat(ts_ns, ',') as blob), "
        f"cast(group_concat(equity, ',') as blob){flag} from equity").fetchall()[0])
    n = cast(int, texts[0])  # count(*)

    def take(i: int) -> bytes:  # the list's reference goes: parsed, the text is freed
        return cast(bytes, texts.pop(i) or b"")  # NULL (no rows): empty

    ts = np.fromstring(take(1), dtype=np.int64, sep=",")  # the longest text first
    exposed = (np.frombuffer(take(-1), dtype=np.uint8) == ord("1")
               if exposure else np.zeros(n, dtype=bool))
    eq = decimal_column(take(-1))
    if not len(ts) == len(eq) == len(exposed) == n:
        raise LedgerError(f"{ledger.path}: {n} equity rows could not be read back whole")
    if n > 1 and not bool(np.all(ts[1:] > ts[:-1])):
        # Not in time order (no SQLite tested does this): the columns come from one
        # scan, so one sort by stamp mends all three.
        order = np.argsort(ts, kind="stable")
        ts, eq, exposed = ts[order], eq[order], exposed[order]
    return ts, eq, exposed


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Fractional drawdown from the running peak at each point (0 at new highs)."""
    if len(equity) == 0:
        return equity
    # In place (the values of np.where(peak > 0, (peak - equity) / peak, 0.0)): two
    # series-sized arrays instead of five at once on a 700k-row report.
    peak = np.maximum.accumulate(equity)
    out = np.subtract(peak, equity, dtype=np.float64)
    positive = peak > 0
    np.divide(out, peak, out=out, where=positive)
    out[~positive] = 0.0
    return out


def round_trips(fills: list[dict[str, Any]],
                baskets: dict[str, str | None] | None = None) -> list[dict[str, Any]]:
    """Round trips per instrument: from flat back to flat, P&L net of every fee paid.

    ``baskets`` (client order id -> basket id) tags each trip with the basket of the
    order that opened it, so :func:`plays` can join the legs of one basket.
    """
    baskets = baskets or {}
    fills = standing(fills)
    qty: dict[str, Decimal] = defaultdict(Decimal)
    cash: dict[str, Decimal] = defaultdict(Decimal)
    opened: dict[str, int] = {}
    basket_of: dict[str, str | None] = {}
    fees: dict[str, Decimal] = defaultdict(Decimal)
    trips = []
    for f in fills:
        inst = f["instrument_id"]
        q, p, fee = Decimal(f["quantity"]), Decimal(f["price"]), Decimal(f["fee"])
        sign = 1 if f["side"] == "buy" else -1
        if qty[inst] == 0:
            opened[inst] = f["ts_ns"]
            basket_of[inst] = baskets.get(f["client_order_id"])
            cash[inst] = Decimal(0)
            fees[inst] = Decimal(0)
        qty[inst] += sign * q
        cash[inst] -= sign * q * p + fee
        fees[inst] += fee
        if qty[inst] == 0:
            trips.append({"instrument_id": inst, "opened_ns": opened[inst],
                          "closed_ns": f["ts_ns"], "pnl": cash[inst], "fees": fees[inst],
                          "basket_id": basket_of[inst]})
    return trips


def standing(fills: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fills that stood: a fill busted whole and its offset ``<fill id>:bust`` are left
    out (the trade never happened: the pair made a round trip of P&L 0, a trade lost, and
    twice its notional of turnover); a part's offset ``<fill id>:bust:<part>`` stays, as
    it takes back only that part."""
    ids = [str(f.get("fill_id", "")) for f in fills]  # (rows built by hand may have none)
    present = set(ids)
    return [f for f, i in zip(fills, ids, strict=True)
            if bust_id(i) not in present and _offset_part(i) != ""]


def _offset_part(fill_id: str) -> str | None:
    """The part a bust's offset takes back ("" for the whole fill); None for other fills."""
    busted = busted_by(fill_id)
    return None if busted is None else busted[1]


def plays(trips: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Round trips joined per opening basket: a put spread, an arbitrage basket, is one
    play won or lost by its net P&L (judged leg by leg, the protective leg of every
    winning spread would count as a loss).  Trips without a basket stand alone; plays
    are in the order of their first closing leg."""
    out: dict[Any, dict[str, Any]] = {}
    for n, t in enumerate(trips):
        key = t.get("basket_id") or n
        play = out.get(key)
        if play is None:
            out[key] = {**t, "instruments": [t["instrument_id"]], "legs": 1}
            continue
        play["pnl"] += t["pnl"]
        play["fees"] += t["fees"]
        play["opened_ns"] = min(play["opened_ns"], t["opened_ns"])
        play["closed_ns"] = max(play["closed_ns"], t["closed_ns"])
        play["instruments"].append(t["instrument_id"])
        play["legs"] += 1
    return list(out.values())


def basket_map(ledger: Ledger) -> dict[str, str | None]:
    """Client order id -> basket id, for every order of the run."""
    return {r["client_order_id"]: r["basket_id"] for r in ledger.query(
        "select client_order_id, basket_id from orders")}


def compute_metrics(ledger: Ledger, starting_cash: Decimal, *,
                    series: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """Sharpe, Sortino, drawdown, CAGR, win rate, fees, turnover and friends for one run
    (annualised figures come with ``obs_per_year``, see :func:`annualisation_note`).

    ``series``: this ledger's :func:`equity_series`, when the caller has read it already
    (reading 700k rows is most of the cost)."""
    ts, eq = series if series is not None else equity_series(ledger)
    fills = ledger.fills()
    return metrics_of(ts, eq, fills, plays(round_trips(fills, basket_map(ledger))),
                      starting_cash)


def metrics_of(ts: np.ndarray, eq: np.ndarray, fills: list[dict[str, Any]],
               trips: list[dict[str, Any]], starting_cash: Decimal) -> dict[str, Any]:
    """:func:`compute_metrics` of what a caller has read already: the equity series, the
    fills and their :func:`plays` (the report reads each once and shares them)."""
    pnls = np.array([float(t["pnl"]) for t in trips], dtype=np.float64)
    fees = sum((Decimal(f["fee"]) for f in fills), Decimal(0))
    # the notional that stood: a part's bust takes its notional back
    traded = sum((Decimal(f["price"]) * Decimal(f["quantity"])
                  * (-1 if _offset_part(str(f.get("fill_id", ""))) else 1)
                  for f in standing(fills)),
                 Decimal(0))
    out: dict[str, Any] = {
        "n_fills": len(fills), "n_trades": len(trips), "fees": float(fees),
        "turnover": float(traded / starting_cash) if starting_cash else 0.0,
        "win_rate": float(np.mean(pnls > 0)) if len(pnls) else 0.0,
        "expectancy": float(np.mean(pnls)) if len(pnls) else 0.0,
        "total_pnl": float(eq[-1] - float(starting_cash)) if len(eq) else 0.0,
        "total_return": float(eq[-1] / float(starting_cash) - 1) if len(eq) else 0.0,
        "max_drawdown": float(drawdown(eq).max()) if len(eq) else 0.0,
    }
    out.update(return_stats(simple_returns(eq), ts))
    out.update(growth_stats(eq, ts, out["max_drawdown"]))
    return out


def simple_returns(equity: np.ndarray) -> np.ndarray:
    """Per-row returns of an equity series; 0 after equity has reached 0 or below (a ruined
    account earns nothing; 0/0 made every ratio of a ruined run NaN)."""
    if len(equity) < 2:
        return np.empty(0)
    before = equity[:-1]
    return np.divide(np.diff(equity), before, out=np.zeros(len(equity) - 1),
                     where=before > 0)


def observations_per_year(ts_ns: np.ndarray) -> float:
    """How many observations a year the series has, measured from its timestamps:
    ``(stamps - 1) / span in years`` (a year is 365.25 days).  The one annualisation
    rule of Argus; 0.0 when it cannot be measured (fewer than two stamps, no span)."""
    ts = np.asarray(ts_ns)
    if ts.size < 2:
        return 0.0
    span_ns = float(ts[-1] - ts[0])
    return float((ts.size - 1) / (span_ns / _YEAR_NS)) if span_ns > 0 else 0.0


def annualisation_note(obs_per_year: float) -> str:
    """The sentence every output that shows annualised figures states beside them."""
    if obs_per_year <= 0:
        return "not annualised: the data's timestamps span no time"
    return f"annualised with {obs_per_year:,.1f} observations/year, measured from the data"


def annualise(per_obs: float, obs_per_year: float) -> float:
    """A per-observation Sharpe (or Sortino) ratio scaled by ``sqrt(obs_per_year)``."""
    return per_obs * float(np.sqrt(obs_per_year)) if obs_per_year > 0 else 0.0


def return_stats(returns: np.ndarray, ts_ns: np.ndarray) -> dict[str, float]:
    """Sharpe (per observation and annualised), Sortino, volatility, skew and (non-excess)
    kurtosis of ``returns``; ``ts_ns`` are the stamps of the series the returns come from
    (annualised with :func:`observations_per_year` of them)."""
    out = ratio_stats(returns, ts_ns)
    tail = {key: out.pop(key) for key in ("n_obs", "obs_per_year")}
    return {**out, **moment_stats(returns), **tail}  # the report's rows keep their order


#: A return series is flat when ``std(ddof=1) <= FLAT_TOLERANCE * max |r|``: float
#: rounding leaves a constant return (a riskless carry) a standard deviation of ~1e-19,
#: which made a Sharpe ratio of ~1e16.  No real strategy comes near it (a per-observation
#: Sharpe ratio of 1e9).
FLAT_TOLERANCE = 1e-9


def is_flat(returns: np.ndarray) -> bool:
    """Whether ``returns`` has no variation beyond float rounding (or fewer than two
    values): its Sharpe and Sortino ratios are 0.  NaN anywhere gives False."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2:
        return True
    return float(r.std(ddof=1)) <= FLAT_TOLERANCE * float(np.max(np.abs(r)))



def ratio_stats(returns: np.ndarray, ts_ns: np.ndarray) -> dict[str, float]:
    """:func:`return_stats` without skew and kurtosis (their third and fourth powers are
    most of its cost on long series: 700k returns, ~0.1 s of ~0.15 s)."""
    per_year = observations_per_year(ts_ns)
    if is_flat(returns):
        return {"sharpe": 0.0, "sharpe_per_obs": 0.0, "sortino": 0.0, "volatility": 0.0,
                "n_obs": float(len(returns)), "obs_per_year": per_year}
    mu, sd = float(np.mean(returns)), float(np.std(returns, ddof=1))
    # Downside deviation: root mean square of the returns below zero (over all returns).
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
    return {"sharpe_per_obs": mu / sd, "sharpe": annualise(mu / sd, per_year),
            "sortino": annualise(mu / downside, per_year) if downside > 0 else 0.0,
            "volatility": annualise(sd, per_year),
            "n_obs": float(len(returns)), "obs_per_year": per_year}


def moment_stats(returns: np.ndarray) -> dict[str, float]:
    """Skew and (non-excess) kurtosis of ``returns`` (0 and 3 when they are flat)."""
    if is_flat(returns):
        return {"skew": 0.0, "kurtosis": 3.0}
    z = (returns - float(np.mean(returns))) / float(np.std(returns))
    return {"skew": float(np.mean(z**3)), "kurtosis": float(np.mean(z**4))}


def growth_stats(equity: np.ndarray, ts_ns: np.ndarray, max_dd: float) -> dict[str, float]:
    """CAGR of the equity series over its own span, and Calmar (CAGR / max drawdown)."""
    if len(equity) < 2 or equity[0] <= 0 or ts_ns[-1] <= ts_ns[0]:
        return {"cagr": 0.0, "calmar": 0.0}
    years = float(ts_ns[-1] - ts_ns[0]) / _YEAR_NS
    ratio = float(equity[-1] / equity[0])
    with np.errstate(over="ignore"):  # a short span compounds to inf, honestly
        cagr = float(np.power(ratio, 1.0 / years)) - 1.0 if ratio > 0 else -1.0
    return {"cagr": cagr, "calmar": cagr / max_dd if max_dd > 0 else 0.0}
