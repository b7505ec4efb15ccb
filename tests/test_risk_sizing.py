"""Risk engine and sizers: formulas by hand, states, and no way round the checks."""

from __future__ import annotations

import math
import types
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest

from argus_core.builtins.risk_checks import PerPlayCap, RiskSettings
from argus_core.builtins.sizers import (
    Kelly,
    SizingSettings,
    contracts_from_budget,
    kelly_binary,
    kelly_continuous,
    vol_target_scale,
)
from argus_core.config import parse_config
from argus_core.errors import ConfigError, DataError
from argus_core.hookspecs import hookimpl
from argus_core.interfaces import RiskContext, Strategy, Venue
from argus_core.ledger import Ledger
from argus_core.models import (
    Bar,
    Fill,
    Forecast,
    Instrument,
    Intent,
    MarketEvent,
    Order,
    Portfolio,
    RiskAction,
    Side,
)
from argus_core.risk import RiskEngine, TradingState


def test_kelly_formulas_match_hand_computation() -> None:
    assert kelly_binary(0.6, 0.5) == pytest.approx(0.2)  # (0.6 - 0.5) / (1 - 0.5)
    assert kelly_binary(0.3, 0.5) == 0.0
    assert kelly_continuous(0.08, 0.2, fraction=0.5) == pytest.approx(1.0)  # .5*.08/.04
    assert vol_target_scale(0.4, 0.1) == pytest.approx(0.25)
    assert contracts_from_budget(Decimal("1000"), Decimal("330")) == 3
    assert contracts_from_budget(Decimal("329"), Decimal("330")) == 0
    with pytest.raises(DataError):
        kelly_binary(0.5, 1.0)


def test_kelly_sizer_applies_fraction_confidence_and_cap() -> None:
    pf = Portfolio("10000")
    sizer = Kelly(SizingSettings(kelly_fraction=0.5, max_fraction=0.5))
    intent = Intent("s", "v:x", Side.BUY, forecast=Forecast(p_win=0.7, confidence=0.5))
    # f* = (0.7-0.4)/(1-0.4) = 0.5; x0.5 kelly x0.5 confidence = 0.125 of equity
    assert sizer.size(intent, Decimal("0.4"), pf, None) == pytest.approx(Decimal("3125"))
    capped = Kelly(SizingSettings(kelly_fraction=1.0, max_fraction=0.1))
    assert capped.size(intent, Decimal("0.4"), pf, None) == pytest.approx(Decimal("2500"))


def test_per_play_cap_shrinks_to_seven_percent_of_equity() -> None:
    check = PerPlayCap(RiskSettings())
    d = check.check(Intent("s", "v:x", Side.BUY), Decimal(100), Decimal(10), Portfolio("10000"),
                    RiskContext())
    assert d.action is RiskAction.SHRINK and d.quantity == Decimal(70)


def test_halted_denies_everything_and_reducing_only_reduces() -> None:
    engine = RiskEngine([])
    pf = Portfolio("1000", {"v:x": __import__("argus_core.models").models.Position("v:x", "5")})
    engine.ctx.trading_state = TradingState.REDUCING.value
    assert not engine.evaluate(Intent("s", "v:x", Side.BUY), Decimal(1), Decimal(1), pf).allowed
    assert engine.evaluate(Intent("s", "v:x", Side.SELL), Decimal(1), Decimal(1), pf).allowed
    engine.ctx.trading_state = TradingState.HALTED.value
    v = engine.evaluate(Intent("s", "v:x", Side.SELL), Decimal(1), Decimal(1), pf)
    assert not v.allowed and "argus resume" in v.decisions[0].reason


class CountingVenue(Venue):
    """A live-capable venue that counts every order it is sent."""

    name = "counting"
    supports_live_orders = True
    submitted: ClassVar[list[Order]] = []

    def __init__(self, settings: object) -> None:
        CountingVenue.submitted = []

    async def instruments(self) -> Sequence[Instrument]:
        return [Instrument("counting", "X/USD")]

    async def stream(self) -> AsyncIterator[MarketEvent]:
        for i in range(5):
            yield Bar("counting:X/USD", (i + 1) * 10**9, 100.0, 101.0, 99.0, 100.0, 10.0)

    async def submit(self, order: Order) -> list[Fill]:
        CountingVenue.submitted.append(order)
        return []


class Greedy(Strategy):
    """Buys far too much on every bar."""

    name = "greedy"

    def on_event(self, event, ctx):  # type: ignore[no-untyped-def]
        return [Intent("greedy", event.instrument_id, Side.BUY, quantity="1000000")]

    def get_state(self):  # type: ignore[no-untyped-def]
        return {}

    def set_state(self, state):  # type: ignore[no-untyped-def]
        pass


def _live_config(tmp_path: Path, checks: list[str]) -> object:
    return parse_config({"argus": {"plugins": [], "mode": "live"},
                         "run": {"venue": "counting", "strategies": ["greedy"],
                                 "risk_checks": checks}}, tmp_path / "c.toml")


def _runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checks: list[str]):  # type: ignore[no-untyped-def]
    from argus_core import plugins
    from argus_core.runner import Runner

    module = types.ModuleType("argus_test_counting")
    module.register_venues = hookimpl(lambda register: register("counting", CountingVenue))  # type: ignore[attr-defined]
    module.register_strategies = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("greedy", lambda s: Greedy()))
    monkeypatch.setitem(__import__("sys").modules, "argus_test_counting", module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS,
                                              ("counting", "argus_test_counting")))
    return Runner(_live_config(tmp_path, checks), tmp_path / "run", live_confirmed=True)  # type: ignore[arg-type]


def test_live_needs_explicit_confirmation(tmp_path: Path) -> None:
    from argus_core.runner import Runner

    with pytest.raises(ConfigError, match="--live"):
        Runner(_live_config(tmp_path, []), tmp_path / "run")  # type: ignore[arg-type]


def test_denied_intents_never_reach_the_venue(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _runner(tmp_path, monkeypatch, ["per_play_cap"])
    runner.set_trading_state(TradingState.HALTED, "test halt", by_person=True)
    runner.run_sync()
    assert CountingVenue.submitted == []
    with Ledger.in_dir(tmp_path / "run") as ledger:
        rows = ledger.query("select check_name, action, reason from risk_events "
                            "where check_name = 'trading_state'")
        assert len(rows) == 5 and all(r["action"] == "veto" for r in rows)
        assert all("HALTED" in r["reason"] for r in rows)
        assert ledger.query("select count(*) as n from orders")[0]["n"] == 0


def test_allowed_live_orders_are_persisted_before_they_are_sent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = _runner(tmp_path, monkeypatch, ["per_play_cap"])
    runner.run_sync()
    assert len(CountingVenue.submitted) == 5
    # per-play cap: 7% of 100,000 equity at price 100 -> 70 units
    assert all(o.quantity == Decimal("70") for o in CountingVenue.submitted)
    with Ledger.in_dir(tmp_path / "run") as ledger:
        ids = {r["client_order_id"] for r in ledger.query("select * from orders")}
        assert ids == {o.client_order_id for o in CountingVenue.submitted}
        assert ledger.query("select count(*) as n from risk_events where action = 'shrink'"
                            )[0]["n"] == 5


def test_kelly_on_an_underflowing_sigma_is_capped_not_an_error() -> None:
    """sigma**2 underflows to 0 below ~1e-154 (a ZeroDivisionError out of the loop); an
    unbounded leverage times confidence 0 was NaN. Capped at max_fraction / no bet."""
    from argus_core.builtins.sizers import Kelly, SizingSettings, kelly_continuous
    from argus_core.models import Forecast

    assert kelly_continuous(0.01, 1e-200) == math.inf
    assert kelly_continuous(-0.01, 1e-200) == -math.inf and kelly_continuous(0.0, 1e-200) == 0
    kelly = Kelly(SizingSettings(max_fraction=0.25))
    for confidence, want in ((0.5, 0.25), (0.0, 0.0)):
        intent = Intent("s", "x:Y/Z", Side.BUY, forecast=Forecast(
            mu=0.01, sigma=1e-200, confidence=confidence))
        assert kelly.fraction(intent, Decimal(100)) == want
    huge = Intent("s", "x:Y/Z", Side.BUY, forecast=Forecast(mu=1e300, sigma=1e-10,
                                                            confidence=0.0))
    assert kelly.fraction(huge, Decimal(100)) == 0.0  # inf * 0 was NaN


def test_risk_reasons_print_absurd_notionals_short() -> None:
    from argus_core.builtins.risk_checks import _money

    assert _money(Decimal("1234.5678")) == "1234.57"
    assert _money(Decimal("1E+999999")) == "1.000000E+999999"
