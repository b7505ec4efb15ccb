"""Session 39's core red team: Decimal rounding past the default 28-digit context.

``Decimal.quantize`` raises InvalidOperation (it does not round) when the result needs
more digits than the context's precision, so a rounding step at 1e-12 or 1e-8 of a large
enough number killed what called it: a flatten's fill shared between two books (the kill
switch's own order) at 1e16 units, the per-play cap's shrink at 1e20 units.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from argus_core.account import book_shares
from argus_core.builtins.risk_checks import PerPlayCap, RiskSettings
from argus_core.interfaces import RiskContext
from argus_core.models import Fill, Intent, Liquidity, Portfolio, Side


def test_a_flatten_shared_between_books_past_28_digits_is_booked() -> None:
    fill = Fill("f1", "o1", "v", "v:X", Side.SELL, Decimal("0.5"), Decimal("3e16"),
                Decimal("7"), Liquidity.TAKER, 1)
    shares = book_shares(fill, "flatten", {"a": Decimal("2e16"), "b": Decimal("1e16")}, {})
    assert {name: part.quantity for name, part in shares} == {
        "a": Decimal("2e16"), "b": Decimal("1e16")}
    assert sum(part.fee for _, part in shares) == Decimal(7)


def test_the_per_play_cap_shrinks_an_order_past_28_digits() -> None:
    check = PerPlayCap(RiskSettings(per_play_fraction=Decimal("0.5")))
    portfolio = Portfolio(Decimal("1e13"), {}, {}, Decimal(0))
    intent = Intent("s", "v:X", Side.BUY, Decimal("1e30"))
    decision = check.check(intent, Decimal("1e30"), Decimal("1e-8"), portfolio,
                           RiskContext())
    assert decision.quantity == Decimal("5e20")


def test_a_paper_fee_past_28_digits_is_charged() -> None:
    """A fee of 1e21 (1e5 units at the 1e18 price cap, 1% taker) rounded at 1e-8 needs 30
    digits: the paper fill died on quantize, after the order was committed."""
    from argus_core.config import PaperSection
    from argus_core.interfaces import FeeSchedule
    from argus_core.market_state import MarketState
    from argus_core.models import Bar, Instrument, Order, OrderType, TimeInForce
    from argus_core.paper import PaperBroker

    market = MarketState()
    market.add_instruments([Instrument("v", "X/USD", tick_size="1", lot_size="1")])
    broker = PaperBroker(market, lambda _i: FeeSchedule(Decimal(100), Decimal(100)),
                         PaperSection(bar_spread_bps=Decimal(0), latency_ms=0))
    market.apply(Bar("v:X/USD", 1, 1e18, 1e18, 1e18, 1e18, 1e9))
    order = Order("o1", "v", "v:X/USD", Side.BUY, Decimal("1e5"), None, OrderType.MARKET,
                  TimeInForce.IOC, "s", 1)
    broker.submit(order, 1)
    bar = Bar("v:X/USD", 2, 1e18, 1e18, 1e18, 1e18, 1e9)
    market.apply(bar)
    fills = broker.on_event(bar)
    assert [f.fee for f in fills] == [Decimal("1e21")]


def test_the_run_summary_groups_thousands_in_every_count(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Events and money had separators, the order, fill and play counts none."""
    import types

    from argus_core.cli import _print_summary

    summary = types.SimpleNamespace(
        run_id="r", run_dir="/tmp/r", mode="replay", events=70_253, resumed_from=0,
        orders=2_273, fills=12_345, fees=Decimal("1234.5"), starting_equity=Decimal(100_000),
        final_equity=Decimal(37_453), total_return=-0.63, trading_state="RUNNING",
        elapsed_s=0.5)
    _print_summary(summary, {"sharpe": 0.1, "obs_per_year": 8760.0, "max_drawdown": 0.7,
                             "n_trades": 1_136, "win_rate": 0.3})
    out = capsys.readouterr().out
    assert "2,273 / 12,345" in out and "1,136 / 30.0%" in out
