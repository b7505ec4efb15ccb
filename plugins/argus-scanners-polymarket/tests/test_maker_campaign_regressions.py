"""Deterministic regressions shrunk from the ``pm_maker`` campaigns' failing seeds (the
strategy on its own, or one constructed path through the real ``Runner``)."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

from argus_scanners_polymarket.config import MakerStrategySettings, PmScannersSettings
from argus_scanners_polymarket.maker_strategy import MakerStrategy

from argus_core import (
    CancelIntent,
    Intent,
    MarketState,
    OrderBook,
    Portfolio,
    Position,
    Side,
    StrategyContext,
)

sys.path.insert(0, str(Path(__file__).parent))
import maker_campaign as mc

D = Decimal
S = 10**9


def _market(t: float, bids: list[tuple[float, float]], asks: list[tuple[float, float]]
            ) -> tuple[MarketState, OrderBook]:
    market = MarketState()
    market.add_instruments([mc.INST])
    book = OrderBook(mc.IID, mc.T0 + int(t * S), bids, asks)
    market.apply(book)
    return market, book


def _ctx(market: MarketState, t: float, held: int, state: str) -> StrategyContext:
    portfolio = Portfolio(D(1000), {mc.IID: Position(mc.IID, D(held))})
    return StrategyContext(mc.T0 + int(t * S), portfolio, market, mode="paper",
                           trading_state=state)


def test_a_reset_does_not_hold_back_a_side_it_had_nothing_to_cancel() -> None:
    """Paper seed 73, shrunk: short 7 (shorts allowed, ``min_requote_s`` 1.5), restored
    while HALTED with only the exit bid believed: the reset cancels and re-posts the bid.
    0.8 s later trading is ACTIVE again and the ask is wanted: it goes out at once, as in
    the uninterrupted run -- there was no ask to cancel, so there is no churn to pace.
    (Before: the reset stamped both sides as changed, and the ask waited until 1.5 s
    after the reset.)"""
    s = PmScannersSettings(pm_maker=MakerStrategySettings(
        allow_short=True, min_requote_s=1.5, cancel_ofi=1.0))
    strategy = MakerStrategy(s)
    strategy.set_state({"tokens": {mc.IID: {
        "position": "-7", "bid": {"price": "0.13", "quantity": "7",
                                  "posted_ns": mc.T0 + int(33.5 * S), "filled": "0"},
        "ask": None, "changed_ns": {"bid": mc.T0 + int(33.5 * S), "ask": None}}}})
    market, book = _market(34.5, [(0.14, 100), (0.12, 60)], [(0.19, 100), (0.21, 90)])
    out = strategy.on_event(book, _ctx(market, 34.5, -7, "halted"))
    assert [(type(x).__name__, x.side) for x in out] == [("CancelIntent", None),
                                                         ("Intent", Side.BUY)]
    assert isinstance(out[0], CancelIntent) and "trading is halted" in out[0].reason
    market, book = _market(35.3, [(0.14, 100), (0.12, 60)], [(0.19, 100), (0.21, 90)])
    out = strategy.on_event(book, _ctx(market, 35.3, -7, "active"))
    posted = [(x.side, x.limit_price) for x in out if isinstance(x, Intent)]
    assert (Side.SELL, D("0.18")) in posted, out
    assert not [x for x in out if isinstance(x, CancelIntent)]  # the exit bid keeps resting
