"""``ml_near_expiry`` on constructed books: it buys a high-priced binary near resolution
when p_win beats ask + fee by the threshold, and not when the fee eats the edge, the
price is outside the band, the resolution is too far or past, or the model is gated."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from argus_ml.config import MLSettings
from argus_ml.near_expiry import MLNearExpiry

from argus_core import (
    FeeSchedule,
    Forecast,
    Forecaster,
    Instrument,
    Intent,
    MarketState,
    OrderBook,
    OrderType,
    Portfolio,
    StrategyContext,
    TimeInForce,
)

SETTLES = 10_000 * 10**9
IID = "pm:WILL-IT-YES"


class Fixed(Forecaster):
    """p_win = ``p`` for every instrument; an ``allows`` gate like the ml forecaster's."""

    name = "fixed"

    def __init__(self, p: float, modes: tuple[str, ...] = ("replay", "paper", "live"),
                 confidence: float = 1.0) -> None:
        self.p, self.modes, self.conf = p, modes, confidence

    def forecast(self, instrument_id: str, market: MarketState, ts_ns: int
                 ) -> Forecast | None:
        return Forecast(p_win=self.p, confidence=self.conf)

    def allows(self, mode: str) -> bool:
        return mode in self.modes


def _run(ask: float, p: float, *, left_s: float, fee_bps: int = 0, mode: str = "replay",
         modes: tuple[str, ...] = ("replay", "paper", "live"), kind: str = "binary",
         depth: float = 10_000.0, **settings: float) -> list[Intent]:
    fees = FeeSchedule(taker_bps=Decimal(fee_bps))
    market = MarketState(fees=lambda _iid: fees)
    market.add_instruments([Instrument("pm", "WILL-IT-YES", kind, Decimal("0.001"),
                                       Decimal(1), Decimal(1), meta={"settles_ns": SETTLES})])
    market.forecasters = {"ml": Fixed(p, modes)}
    ts = SETTLES - int(left_s * 1e9)
    book = OrderBook(IID, ts, np.array([[ask - 0.01, depth]]), np.array([[ask, depth]]))
    market.apply(book)
    ctx = StrategyContext(ts, Portfolio(Decimal(10_000)), market, None, mode)
    return list(MLNearExpiry(MLSettings(**settings)).on_event(book, ctx))  # type: ignore[arg-type]


def test_buys_when_p_beats_ask_plus_fee_by_the_threshold() -> None:
    # ask 0.90, fee 1% of price -> cost 0.909; p 0.95 -> edge 0.041 > 0.01
    [intent] = _run(0.90, 0.95, left_s=1800, fee_bps=100)
    assert intent.order_type is OrderType.LIMIT and intent.time_in_force is TimeInForce.FOK
    assert intent.limit_price == Decimal("0.9")
    # Kelly (0.95 - 0.909) / (1 - 0.909) = 0.4505..., x 0.25 = 0.1126 -> capped at 0.05:
    # 10,000 x 0.05 / 0.909 = 550.05 -> 550 whole contracts
    assert intent.quantity == Decimal(550)


def test_no_trade_when_the_fee_eats_the_edge() -> None:
    # p 0.93 vs ask 0.91: 0.02 edge before fees; a 2% fee (0.0182) leaves 0.0018 < 0.01
    assert _run(0.91, 0.93, left_s=1800, fee_bps=200) == []
    assert len(_run(0.91, 0.93, left_s=1800, fee_bps=0)) == 1  # without the fee it would


def test_no_trade_outside_the_price_band_or_the_time_window() -> None:
    assert _run(0.80, 0.99, left_s=1800) == []  # below min_price 0.85
    assert _run(0.96, 0.999, left_s=1800) == []  # above max_price 0.95
    assert _run(0.90, 0.99, left_s=7200) == []  # more than an hour before resolution
    assert _run(0.90, 0.99, left_s=-1) == []  # after the scheduled resolution
    assert len(_run(0.90, 0.99, left_s=7200, expiry_window_s=7200.0)) == 1
    assert _run(0.90, 0.99, left_s=1800, kind="spot") == []


def test_no_trade_when_the_model_is_gated_for_the_runs_mode() -> None:
    assert len(_run(0.90, 0.99, left_s=60, mode="paper", modes=("replay", "paper"))) == 1
    assert _run(0.90, 0.99, left_s=60, mode="live", modes=("replay", "paper")) == []
    assert _run(0.90, 0.99, left_s=60, mode="replay", modes=()) == []


def test_size_is_held_to_the_depth_at_the_ask() -> None:
    [intent] = _run(0.90, 0.99, left_s=60, depth=37.0)
    assert intent.quantity == Decimal(37)
