"""VRP put-credit-spread candidates of a posted put chain, chosen by the VRP strategy.

The choice is the strategy's own (``argus-strategy-vrp``), not a copy: the expiry is the
quoted one closest to ``target_dte`` within ``[min_dte, max_dte]`` (the strategy's rule),
and the short strike is what :meth:`VrpPutSpread._pick_short` picks from that expiry's
puts: by |delta| at the strike's own implied vol (``selection = "delta"``) or by
probability of profit (``"pop"``: Heston Monte Carlo through the ``heston`` pricer,
lognormal without one); the long strike is ``width`` below.

Posted prices are **per share** (as quoted); the VRP venue quotes per contract, so they
are multiplied by the contract multiplier (100) before the strategy sees them, and
credits and losses come back per contract, in dollars, as the strategy computes them.
Every other out-of-the-money short strike with a quoted long leg is listed too, with
its credit, max loss, implied vol, |delta| and lognormal probability of profit.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
from argus_strategy_vrp.config import VrpSettings
from argus_strategy_vrp.constants import MULTIPLIER
from argus_strategy_vrp.instruments import PutContract
from argus_strategy_vrp.pricing import bs_put_delta, lognormal_pop
from argus_strategy_vrp.strategy import VrpPutSpread
from numpy.typing import NDArray

from argus_core import ConfigError, DataError, MarketState, Portfolio, Pricer, StrategyContext

#: ``[plugins.vrp]`` fields a request may set (the strategy's selection rules).
SETTINGS_FIELDS = ("selection", "short_delta", "target_pop", "width", "target_dte", "min_dte",
                   "max_dte", "min_credit", "max_rel_spread", "min_vrp", "risk_budget",
                   "max_risk_per_play", "max_contracts", "rate", "heston_kappa",
                   "heston_sigma", "heston_rho", "heston_paths")


@attrs.frozen
class PutQuote:
    """One posted put: expiry, strike, bid and ask per share, displayed sizes."""

    expiry: dt.date
    strike: float
    bid: float
    ask: float
    bid_size: float = 1.0
    ask_size: float = 1.0


class QuoteBook:
    """A one-level book of a posted quote, priced per contract, answering what the
    strategy asks of a book."""

    def __init__(self, quote: PutQuote) -> None:
        self.quote = quote

    def best_bid(self) -> float | None:
        """Best bid per contract, None when there is none."""
        return self.quote.bid * MULTIPLIER if self.quote.bid > 0 else None

    def best_ask(self) -> float | None:
        """Best ask per contract, None when there is none."""
        return self.quote.ask * MULTIPLIER if self.quote.ask > 0 else None

    def bid_levels(self) -> NDArray[np.float64]:
        """``[[price, size]]`` of the bid."""
        return np.array([[self.quote.bid * MULTIPLIER, self.quote.bid_size]])

    def ask_levels(self) -> NDArray[np.float64]:
        """``[[price, size]]`` of the ask."""
        return np.array([[self.quote.ask * MULTIPLIER, self.quote.ask_size]])


def settings_of(overrides: Mapping[str, Any]) -> VrpSettings:
    """The strategy's settings with the request's overrides, validated by the plugin."""
    unknown = sorted(set(overrides) - set(SETTINGS_FIELDS))
    if unknown:
        raise ConfigError(f"settings: unknown key(s) {', '.join(unknown)} (allowed: "
                          f"{', '.join(SETTINGS_FIELDS)})")
    try:
        return VrpSettings(**overrides)
    except (TypeError, ValueError, ConfigError) as exc:
        raise ConfigError(f"settings: {exc}") from None


def candidates(underlying: str, spot: float, as_of: dt.date, quotes: Sequence[PutQuote],
               settings: VrpSettings, *, realised_vol: float | None = None,
               equity: float | None = None, pricers: Mapping[str, Pricer] | None = None
               ) -> dict[str, Any]:
    """The expiry, the strategy's pick and every candidate spread of a posted chain."""
    if not spot > 0:
        raise DataError("spot must be > 0")
    s = settings
    by_dte: dict[int, list[tuple[PutContract, QuoteBook]]] = {}
    for q in quotes:
        dte = (q.expiry - as_of).days
        if s.min_dte <= dte <= s.max_dte:
            by_dte.setdefault(dte, []).append(
                (PutContract(underlying, q.expiry, float(q.strike)), QuoteBook(q)))
    if not by_dte:
        return {"expiry": None, "selected": None, "candidates": [],
                "reason": f"no quoted expiry between {s.min_dte} and {s.max_dte} days"}
    dte = min(by_dte, key=lambda d: (abs(d - s.target_dte), d))
    strikes = sorted(by_dte[dte], key=lambda x: x[0].strike)
    t = dte / 365.0
    strategy = VrpPutSpread(s)
    atm = min(strikes, key=lambda x: abs(x[0].strike - spot))
    atm_iv = strategy._iv(atm, spot, t)
    out: dict[str, Any] = {"expiry": strikes[0][0].expiry.isoformat(), "dte": dte,
                           "atm_strike": atm[0].strike, "atm_iv": atm_iv, "selection":
                           s.selection, "selected": None}
    if realised_vol is not None and atm_iv is not None:
        out["vrp"] = atm_iv - realised_vol
        out["vrp_ok"] = atm_iv - realised_vol >= s.min_vrp
    by_strike = {c.strike: (c, b) for c, b in strikes}
    rows: list[dict[str, Any]] = []
    for c, book in strikes:
        long = by_strike.get(c.strike - s.width)
        if not (c.strike < spot and c.strike - s.width > 0) or long is None:
            continue
        bid, ask = book.best_bid(), long[1].best_ask()
        iv = strategy._iv((c, book), spot, t)
        if bid is None or ask is None or iv is None:
            continue
        credit = bid - ask
        rows.append({
            "short_strike": c.strike, "long_strike": long[0].strike,
            "short_instrument": c.symbol, "long_instrument": long[0].symbol,
            "credit": credit, "max_loss": s.width * MULTIPLIER - credit, "short_iv": iv,
            "short_abs_delta": abs(float(bs_put_delta(spot, c.strike, t, s.rate, iv))),
            "pop_lognormal": lognormal_pop(spot, c.strike - credit / MULTIPLIER, t, iv,
                                           s.rate) if credit > 0 else None,
            "credit_ok": credit >= s.min_credit})
    out["candidates"] = rows
    if atm_iv is None:
        out["reason"] = "cannot invert the ATM implied vol"
        return out
    ctx = StrategyContext(0, Portfolio(cash=equity or 0), MarketState(), pricers or {})
    pick = strategy._pick_short(strikes, spot, t, ctx, atm_iv)
    if pick is None:
        out["reason"] = "no short strike meets the selection rule"
        return out
    short_c, short_book, score = pick
    chosen = next((r for r in rows if r["short_strike"] == short_c.strike), None)
    if chosen is None:
        out["reason"] = f"selected short {short_c.strike:g} has no long leg quoted"
        return out
    bid = short_book.best_bid() or 0.0
    ask = short_book.best_ask() or bid
    mid = 0.5 * (bid + ask)
    selected = {**chosen, "score": score,
                "liquid": mid > 0 and (ask - bid) / mid <= s.max_rel_spread}
    max_loss = float(chosen["max_loss"])
    if equity is not None and max_loss > 0:
        budget = min(s.risk_budget * equity, s.max_risk_per_play)
        long_book = by_strike[float(chosen["long_strike"])][1]
        selected["contracts"] = max(min(
            math.floor(budget / max_loss), s.max_contracts,
            int(short_book.bid_levels()[0, 1]), int(long_book.ask_levels()[0, 1])), 0)
    out["selected"] = selected
    return out
