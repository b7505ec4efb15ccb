"""Performance metrics computed from a run's ledger (the core's "truth benchmarks").

Everything here is derived from committed ledger rows — equity marks and
fills — so no strategy (and no AI) can edit the numbers it is judged by.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import numpy as np

from argus_core.ledger import Ledger

YEAR_S = 365.25 * 86_400


def equity_series(ledger: Ledger) -> tuple[np.ndarray, np.ndarray]:
    """``(ts_ns int64, equity float64)`` in time order."""
    rows = ledger.conn.execute("select ts_ns, equity from equity order by ts_ns").fetchall()
    ts = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    eq = np.fromiter((float(r[1]) for r in rows), dtype=np.float64, count=len(rows))
    return ts, eq


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Fractional drawdown from the running peak at each point (0 at new highs)."""
    if len(equity) == 0:
        return equity
    peak = np.maximum.accumulate(equity)
    return np.where(peak > 0, (peak - equity) / peak, 0.0)


def round_trips(fills: list[dict[str, Any]],
                baskets: dict[str, str | None] | None = None) -> list[dict[str, Any]]:
    """Round trips per instrument: from flat back to flat, P&L net of every fee paid.

    ``baskets`` (client order id -> basket id) tags each trip with the basket of the
    order that opened it, so :func:`plays` can join the legs of one basket.
    """
    baskets = baskets or {}
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


def compute_metrics(ledger: Ledger, starting_cash: Decimal) -> dict[str, Any]:
    """Sharpe, drawdown, win rate, fees, turnover and friends for one run."""
    ts, eq = equity_series(ledger)
    fills = ledger.fills()
    trips = plays(round_trips(fills, basket_map(ledger)))
    pnls = np.array([float(t["pnl"]) for t in trips], dtype=np.float64)
    fees = sum((Decimal(f["fee"]) for f in fills), Decimal(0))
    traded = sum((Decimal(f["price"]) * Decimal(f["quantity"]) for f in fills), Decimal(0))
    out: dict[str, Any] = {
        "n_fills": len(fills), "n_trades": len(trips), "fees": float(fees),
        "turnover": float(traded / starting_cash) if starting_cash else 0.0,
        "win_rate": float(np.mean(pnls > 0)) if len(pnls) else 0.0,
        "expectancy": float(np.mean(pnls)) if len(pnls) else 0.0,
        "total_pnl": float(eq[-1] - float(starting_cash)) if len(eq) else 0.0,
        "total_return": float(eq[-1] / float(starting_cash) - 1) if len(eq) else 0.0,
        "max_drawdown": float(drawdown(eq).max()) if len(eq) else 0.0,
    }
    returns = np.diff(eq) / eq[:-1] if len(eq) > 1 else np.empty(0)
    out.update(return_stats(returns, ts))
    return out


def return_stats(returns: np.ndarray, ts_ns: np.ndarray) -> dict[str, float]:
    """Per-observation and annualised Sharpe, skew and (non-excess) kurtosis of returns."""
    if len(returns) < 2 or float(np.std(returns)) == 0.0:
        return {"sharpe": 0.0, "sharpe_per_obs": 0.0, "skew": 0.0, "kurtosis": 3.0,
                "n_obs": float(len(returns))}
    mu, sd = float(np.mean(returns)), float(np.std(returns, ddof=1))
    step_s = float(np.median(np.diff(ts_ns))) / 1e9 if len(ts_ns) > 1 else 86_400.0
    periods = YEAR_S / step_s if step_s > 0 else 252.0
    z = (returns - mu) / float(np.std(returns))
    return {"sharpe_per_obs": mu / sd, "sharpe": mu / sd * float(np.sqrt(periods)),
            "skew": float(np.mean(z**3)), "kurtosis": float(np.mean(z**4)),
            "n_obs": float(len(returns))}
