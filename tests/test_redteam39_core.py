"""Session 39's core red team: Decimal rounding past the default 28-digit context.

``Decimal.quantize`` raises InvalidOperation (it does not round) when the result needs
more digits than the context's precision, so a rounding step at 1e-12 or 1e-8 of a large
enough number killed what called it: a flatten's fill shared between two books (the kill
switch's own order) at 1e16 units, the per-play cap's shrink at 1e20 units.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

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


def test_the_run_context_shows_a_loop_that_stopped_taking_events(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A loop held in an ``await`` (its event loop free, its heartbeat fine) while the
    market keeps coming: the run's context shows events waiting and no take since
    (``events_waiting``, ``taken_mono_ns``), which the monitor reads as stuck; before,
    nothing outside the runner could see it until its 10,000-deep queue was full."""
    import asyncio
    import sys
    import time
    import types
    from collections.abc import AsyncIterator

    from argus_core import plugins
    from argus_core.config import parse_config
    from argus_core.hookspecs import hookimpl
    from argus_core.interfaces import Venue
    from argus_core.models import Bar, Instrument, MarketEvent
    from argus_core.runner import Runner

    class Ticking(Venue):
        """A bar every 10 ms."""

        name = "tick"

        def __init__(self, settings: object) -> None:
            pass

        async def instruments(self) -> list[Instrument]:
            return [Instrument("tick", "X/USD")]

        async def stream(self) -> AsyncIterator[MarketEvent]:
            for i in range(1, 400):
                yield Bar("tick:X/USD", i * 10**9, 100.0, 101.0, 99.0, 100.0, 10.0)
                await asyncio.sleep(0.01)

    module = types.ModuleType("argus_test_ticking")
    module.register_venues = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("tick", Ticking))
    monkeypatch.setitem(sys.modules, "argus_test_ticking", module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS, ("tick", "argus_test_ticking")))
    config = parse_config({"argus": {"plugins": [], "mode": "paper"},
                           "run": {"venue": "tick", "strategies": [], "risk_checks": []}},
                          tmp_path / "c.toml")
    runner = Runner(config, tmp_path / "run")
    after = runner._after

    def held_at_five(seq: int) -> bool:  # the loop awaits "for ever" after event 5
        if seq == 5:
            runner._pause_s = 3600.0
            return True
        return after(seq)

    monkeypatch.setattr(runner, "_after", held_at_five)

    async def main() -> tuple[int, float]:
        task = asyncio.create_task(runner.run())
        await asyncio.sleep(1.0)
        ctx = runner.ctx
        assert ctx.events_waiting is not None and ctx.taken_mono_ns
        seen = ctx.events_waiting(), (time.monotonic_ns() - ctx.taken_mono_ns) / 1e9
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return seen

    waiting, since_s = asyncio.run(main())
    assert waiting > 20 and since_s > 0.5, (waiting, since_s)
