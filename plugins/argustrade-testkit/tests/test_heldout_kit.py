"""Held-out red team of the plugin kit (``argus_testkit`` and the template), as a new
plugin author and as an adversary.

Found and fixed (each test below failed before):

* ``EngineHarness.order`` could not send a reduce-only order (a venue test had to call
  ``engine._route`` itself); an order the engine refused (vetoed, sized 0) was
  ``ValueError: not enough values to unpack``, with no word of the risk event that
  said why;
* the venue conformance suite passed a venue that, after a request that never reached
  the exchange, re-sent it and then raised ``VenueError`` anyway: the core reads
  ``VenueError`` as "the venue did not act" and marks the order REJECTED while it
  works (and fills) at the exchange;
* ``register_plugin`` / ``extra_plugins`` took a plugin whose hook functions lack
  ``@hookimpl`` and silently registered nothing (the author's first test then fails far
  away: "no strategy named ..."), and one module registered under two names was
  pluggy's bare ``ValueError`` with a dump of every loaded plugin;
* ``FakeClock.advance`` / ``sleep`` took NaN (the clock became NaN for good, every
  deadline silently never or always due) and ``inf``.

Held (no change needed): a hook with a wrong signature, a hook that raises, a name
registered twice and a name taken by a builtin are each a ``PluginError`` naming the
plugin (the core's host); the template installed with ``pip install -e ".[test]"`` in a
fresh environment lists ``mine``, backtests ``breakout.toml`` and passes its tests.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path

import pytest
from argus_testkit import (
    FakeClock,
    FakeExchange,
    FakeLiveVenue,
    FakeVenueHarness,
    VenueConformance,
    extra_plugins,
)
from argus_testkit.engine import EngineHarness

from argus_core import Intent, MarketEvent, Strategy, StrategyContext, hookimpl, runtime
from argus_core.config import parse_config
from argus_core.errors import PluginError, VenueError
from argus_core.models import Fill, Order, OrderStatus, Side
from argus_core.plugins import PluginHost


class _Quiet(Strategy):
    name = "quiet"

    def __init__(self, settings: object) -> None:
        self.settings = settings

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> list[Intent]:
        return []


def _plugin(**functions: Callable[..., object]) -> types.ModuleType:
    module = types.ModuleType("test_plugin")
    for name, function in functions.items():
        setattr(module, name, function)
    return module


# -- EngineHarness ----------------------------------------------------------------------

async def _harness(tmp_path: Path) -> tuple[EngineHarness, FakeLiveVenue]:
    exchange = FakeExchange()
    venue = FakeLiveVenue(exchange=exchange)
    await venue.instruments()
    h = EngineHarness(tmp_path / "run", venue, exchange.instruments[0], D(100))
    await h.start()
    return h, venue


async def test_engine_harness_sends_a_reduce_only_order(tmp_path: Path) -> None:
    """Before: ``order()`` had no ``reduce_only``; a test had to build the Intent and call
    ``engine._route`` itself.  Now the flag reaches the venue's order."""
    h, venue = await _harness(tmp_path)
    try:
        buy = h.order(1, Side.BUY, "2")
        await h.settle()
        assert h.status(buy) == (OrderStatus.FILLED, D(2))
        exit_ = h.order(2, Side.SELL, "2", reduce_only=True)
        await h.settle()
        assert h.status(exit_) == (OrderStatus.FILLED, D(2))
        sent = {o.client_order_id: o for o in venue.submitted}
        assert sent[exit_].reduce_only and not sent[buy].reduce_only
    finally:
        await h.close()


async def test_engine_harness_names_the_risk_event_of_an_order_it_could_not_send(
        tmp_path: Path) -> None:
    """Before: an intent the engine refused was ``ValueError: not enough values to
    unpack (expected 1, got 0)``.  Now an AssertionError quotes the risk event."""
    h, _ = await _harness(tmp_path)
    try:
        with pytest.raises(AssertionError, match=r"sent no order.*sizing.*below one lot"):
            h.order(1, Side.BUY, "0.0000000000001")
    finally:
        await h.close()


# -- the conformance suite ------------------------------------------------------------

class _RefusesAfterResending(FakeLiveVenue):
    """Re-sends a request the exchange never saw, then reports it refused anyway."""

    async def submit(self, order: Order) -> list[Fill]:
        resent = self.resent
        fills = await super().submit(order)
        if self.resent > resent:
            raise VenueError(f"{order.client_order_id}: gateway error")
        return fills


class _BadHarness(FakeVenueHarness):
    def make_venue(self) -> FakeLiveVenue:
        return _RefusesAfterResending(exchange=self.exchange)


async def test_conformance_fails_a_venue_that_refuses_an_order_it_placed() -> None:
    """Before: ``VenueError`` after a lost request passed whenever the exchange held at
    most one order, so an order placed and reported refused passed the suite."""
    harness = _BadHarness()
    suite = VenueConformance()
    with pytest.raises(AssertionError, match=r"VenueError.*exchange holds 1"):
        await suite.test_a_request_that_never_arrived_is_sent_once_more(harness)


# -- test plugins ---------------------------------------------------------------------

def test_register_plugin_refuses_a_plugin_with_no_hooks(
        register_plugin: Callable[[object, str], None]) -> None:
    """Before: a hook function without ``@hookimpl`` was ignored and nothing was
    registered, with no error."""
    def register_strategies(register: Callable[..., None]) -> None:
        register("quiet", _Quiet)

    with pytest.raises(PluginError, match=r"plugin 'mine'.*register_strategies.*no @hookimpl"):
        register_plugin(_plugin(register_strategies=register_strategies), "mine")


def test_extra_plugins_refuses_one_module_under_two_names(tmp_path: Path) -> None:
    """Before: pluggy's ``ValueError: Plugin already registered under a different
    name`` with a dump of every loaded plugin."""
    @hookimpl
    def register_strategies(register: Callable[..., None]) -> None:
        register("quiet", _Quiet)

    module = _plugin(register_strategies=register_strategies)
    config = parse_config({"argus": {"plugins": []}}, tmp_path / "config.toml")
    with (pytest.raises(PluginError, match=r"plugin 'b'.*already registered as 'a'"),
          extra_plugins({"a": module, "b": module})):
        runtime.load_host(config)


def test_register_plugin_refuses_one_module_under_two_names(
        argus_host: PluginHost, register_plugin: Callable[[object, str], None]) -> None:
    """Before: the same bare ``ValueError`` from pluggy."""
    @hookimpl
    def register_strategies(register: Callable[..., None]) -> None:
        register("quiet", _Quiet)

    module = _plugin(register_strategies=register_strategies)
    register_plugin(module, "a")
    with pytest.raises(PluginError, match=r"plugin 'b'.*already registered as 'a'"):
        register_plugin(module, "b")
    assert argus_host.get("strategy", "quiet").plugin == "a"


# -- FakeClock --------------------------------------------------------------------------

@pytest.mark.parametrize("seconds", [math.nan, math.inf, -1.0])
async def test_fake_clock_refuses_a_step_that_is_not_a_finite_forward_move(
        seconds: float) -> None:
    """Before: NaN (and inf) were accepted: the clock read NaN from then on."""
    clock = FakeClock()
    with pytest.raises(ValueError, match="FakeClock"):
        clock.advance(seconds)
    with pytest.raises(ValueError, match="FakeClock"):
        await clock.sleep(seconds if seconds >= 0 or math.isnan(seconds) else math.nan)
    assert clock.time() == FakeClock().time()
