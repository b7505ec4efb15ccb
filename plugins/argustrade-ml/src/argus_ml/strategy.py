"""``ml_updown``: buys the up or the down contract of each binary up/down window with the
forecaster's P(up) (``[plugins.ml] forecaster``, the ``ml`` forecaster by default).

Rules:

1. On every bar of the underlying the forecaster is asked (it keeps its features and
   drift monitoring current, and records a shadow model's forecasts).
2. When a window opens (the books of both contracts, ``Instrument.meta`` ``outcome``
   "up"/"down", ``pair``, ``opens_ns``; the ``updown_replay`` venue lists them), the
   forecaster gives ``p`` for each contract through :func:`~argus_ml.forecaster.gated_forecast`:
   a shadow model, or a paper model in a live run, gives nothing to trade on.
3. Cost of a contract = its best ask plus the venue's fee on it
   (``market.fee_schedule(id).unit_fee(ask)``).  The side with the larger edge
   ``p - cost`` is bought if that edge exceeds ``edge_threshold``.
4. Stake = binary Kelly ``(p - cost) / (1 - cost)`` x ``kelly_fraction`` x the
   forecast's ``confidence`` (shrinkage), capped at ``max_fraction`` of the strategy's
   equity; contracts = stake / cost, floored to the lot, at most the depth shown at the
   ask.  The order is a LIMIT at the ask, fill-or-kill: all of it at that price or none.
5. The contract settles at 1 or 0 when the window resolves (the venue's
   ``Settlement``; the core books it as a settlement fill), so the P&L of a bet is
   ``contracts x (payoff - ask) - fee``.
6. Circuit breaker: after ``max_consecutive_losses`` losing bets in a row no new bet
   opens (counted, with the skipped windows, in the strategy's state).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import ROUND_DOWN, Decimal
from typing import Any

from argus_core import (
    Bar,
    Forecast,
    Instrument,
    Intent,
    MarketEvent,
    OrderBook,
    OrderType,
    Settlement,
    Side,
    Strategy,
    StrategyContext,
    TimeInForce,
)
from argus_ml.config import MLSettings
from argus_ml.forecaster import find_forecaster, gated_forecast
from argus_ml.market import kelly_fraction

log = logging.getLogger(__name__)


def contract_cost(ctx: StrategyContext, instrument_id: str) -> tuple[float, float, float]:
    """``(ask, all-in cost per contract, contracts shown at the ask)`` of a binary's
    book; cost 0 when there is no ask."""
    book = ctx.market.books.get(instrument_id)
    ask = book.best_ask() if book is not None else None
    if book is None or ask is None:
        return 0.0, 0.0, 0.0
    fee = ctx.market.fee_schedule(instrument_id).unit_fee(Decimal(repr(ask)))
    return ask, ask + float(fee), float(book.asks.get(ask, 0.0))


def contracts_for(ctx: StrategyContext, inst: Instrument | None, fraction: float,
                  cost: float, shown: float) -> Decimal:
    """``fraction`` of the strategy's equity in contracts costing ``cost`` each, floored
    to the lot and to the depth shown."""
    lot = inst.lot_size if inst is not None else Decimal(1)
    qty = ctx.portfolio.equity * Decimal(repr(fraction)) / Decimal(repr(cost))
    qty = min(qty, Decimal(repr(shown)))
    return (qty / lot).to_integral_value(rounding=ROUND_DOWN) * lot


class MLUpDown(Strategy):
    """Binary up/down bets on the forecaster's P(up), sized by capped, confidence-shrunk
    binary Kelly (module docstring: every rule)."""

    name = "ml_updown"

    def __init__(self, settings: MLSettings | None) -> None:
        self.s = settings or MLSettings()
        self.last_opening = -1  # opens_ns of the newest window decided (they open in order)
        self.bets: dict[str, str] = {}  # contract -> "sent" | "held" (until it settles)
        self.losses = 0
        self.stats = {"windows": 0, "no_forecast": 0, "gated": 0, "no_edge": 0, "bets": 0,
                      "up_bets": 0, "down_bets": 0, "wins": 0, "losses": 0, "unfilled": 0,
                      "breaker_skips": 0}
        self.forecaster: Any = None  # found on the first event (ctx.market.forecasters)
        self._forecaster_state: dict[str, Any] | None = None  # restored before it was found

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        """A bar feeds the forecaster and confirms fills; a settlement scores a bet; the
        books of a new window may open one."""
        forecaster = self.forecaster
        if forecaster is None:
            forecaster = self.forecaster = find_forecaster(ctx, self.s.forecaster, self.name)
            if self._forecaster_state is not None and hasattr(forecaster, "set_state"):
                forecaster.set_state(self._forecaster_state)
        kind = type(event)
        if kind is Bar:
            assert isinstance(event, Bar)
            forecaster.forecast(event.instrument_id, ctx.market, ctx.ts_ns)
            self._confirm_fills(ctx)
            return []
        if kind is Settlement:
            assert isinstance(event, Settlement)
            self._settled(event)
            return []
        if kind is not OrderBook:
            return []
        assert isinstance(event, OrderBook)
        inst = ctx.market.instruments.get(event.instrument_id)
        meta = inst.meta if inst is not None else {}
        if "outcome" not in meta or "pair" not in meta or "opens_ns" not in meta:
            return []  # not an up/down window's contract (without opens_ns: a KeyError)
        opens_ns = int(meta["opens_ns"])
        if opens_ns != event.ts_ns or opens_ns <= self.last_opening or \
                meta["pair"] not in ctx.market.books:
            return []  # not an opening, decided already, or the other side not quoted yet
        self.last_opening = opens_ns
        self.stats["windows"] += 1
        return self._decide(ctx, forecaster, [event.instrument_id, str(meta["pair"])])

    def _decide(self, ctx: StrategyContext, forecaster: Any,
                contracts: list[str]) -> list[Intent]:
        best: tuple[float, str, float, float, float, Forecast] | None = None
        for iid in sorted(contracts):
            fc, why = gated_forecast(forecaster, iid, ctx)
            if fc is None or fc.p_win is None:
                self.stats["gated" if why != "no forecast" else "no_forecast"] += 1
                return []
            ask, cost, shown = contract_cost(ctx, iid)
            if ask <= 0 or not 0.0 < cost < 1.0:
                continue
            edge = fc.p_win - cost
            if best is None or edge > best[0]:
                best = (edge, iid, ask, cost, shown, fc)
        if best is None or best[0] <= self.s.edge_threshold:
            self.stats["no_edge"] += 1
            return []
        if self.losses >= self.s.max_consecutive_losses:
            self.stats["breaker_skips"] += 1
            return []
        edge, iid, ask, cost, shown, fc = best
        assert fc.p_win is not None
        f = min(kelly_fraction(fc.p_win, cost) * self.s.kelly_fraction * fc.confidence,
                self.s.max_fraction)
        inst = ctx.market.instruments.get(iid)
        qty = contracts_for(ctx, inst, f, cost, shown)
        if qty <= 0 or (inst is not None and qty < inst.min_size):
            self.stats["no_edge"] += 1
            return []
        self.bets[iid] = "sent"
        self.stats["bets"] += 1
        outcome = str(inst.meta.get("outcome", "")) if inst is not None else ""
        self.stats["up_bets" if outcome == "up" else "down_bets"] += 1
        return [Intent(self.name, iid, Side.BUY, quantity=qty, limit_price=Decimal(repr(ask)),
                       order_type=OrderType.LIMIT, time_in_force=TimeInForce.FOK,
                       forecast=Forecast(p_win=fc.p_win, payoff=(1.0 - cost) / cost,
                                         confidence=fc.confidence),
                       decision_price=Decimal(repr(ask)),
                       reason=f"{outcome}: p {fc.p_win:.3f} vs cost {cost:.4f} (edge "
                              f"{edge:.4f}), confidence {fc.confidence:.2f}")]

    def _confirm_fills(self, ctx: StrategyContext) -> None:
        """A sent bet is held once the portfolio shows it; an unfilled FOK is dropped."""
        for iid, state in list(self.bets.items()):
            if state != "sent":
                continue
            if ctx.portfolio.position(iid).quantity > 0:
                self.bets[iid] = "held"
            else:
                del self.bets[iid]
                self.stats["unfilled"] += 1

    def _settled(self, event: Settlement) -> None:
        state = self.bets.pop(event.instrument_id, None)
        if state is None or event.price is None:
            return  # no bet, or voided: returned at cost, neither a win nor a loss
        if event.price >= 1:
            self.stats["wins"] += 1
            self.losses = 0
        else:
            self.stats["losses"] += 1
            self.losses += 1

    def get_state(self) -> dict[str, Any]:
        """Decided windows, open bets, the loss streak, counters, and the forecaster's
        state (its feature windows and drift EMAs) when it has one."""
        fc_state = (self.forecaster.get_state() if hasattr(self.forecaster, "get_state")
                    else self._forecaster_state)
        return {"last_opening": self.last_opening, "bets": dict(self.bets),
                "losses": self.losses, "stats": dict(self.stats), "forecaster": fc_state}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`."""
        self.last_opening = int(state.get("last_opening", -1))
        self.bets = {str(k): str(v) for k, v in state.get("bets", {}).items()}
        self.losses = int(state.get("losses", 0))
        self.stats.update(state.get("stats", {}))
        self._forecaster_state = state.get("forecaster")
        if self.forecaster is not None and self._forecaster_state is not None and \
                hasattr(self.forecaster, "set_state"):
            self.forecaster.set_state(self._forecaster_state)
