"""Fee schedules reach scanners and sizers through core types: ``FeeSchedule.unit_fee``
(derived from ``fee``), ``MarketState.fee_schedule`` (bound by the runner to what fills
pay) and the ``fees`` keyword a sizer may declare."""

from __future__ import annotations

import sys
import types
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
from argus_test_helpers import BUNDLED_BARS, demo_toml

from argus_core import FeeSchedule, Forecast, Instrument, Intent, Portfolio, Side, Sizer, hookimpl
from argus_core.builtins.sizers import Kelly, SizingSettings
from argus_core.config import load_config
from argus_core.market_state import MarketState
from argus_core.runner import Runner

D = Decimal


@attrs.frozen
class PerShareCurve(FeeSchedule):
    """A price-dependent fee that overrides only ``fee`` (as a venue's subclass does):
    ``rate * p(1-p)`` per unit, each fill floored to 0.00001."""

    rate: Decimal = Decimal(0)

    def fee(self, price: Decimal, quantity: Decimal, *, maker: bool) -> Decimal:
        """Fee of one fill."""
        curve = (quantity * self.rate * price * (1 - price)).quantize(D("0.00001"),
                                                                      rounding=ROUND_DOWN)
        return curve + super().fee(price, quantity, maker=maker)


def test_unit_fee_is_the_per_unit_part_of_fee() -> None:
    flat = FeeSchedule(maker_bps=D(2), taker_bps=D(10), fixed_per_fill=D(1), per_unit=D("0.5"))
    # 100 x 10 bps = 0.1, plus 0.5 per unit; the fixed 1 per fill is not per unit
    assert flat.unit_fee(D(100)) == D("0.6")
    assert flat.unit_fee(D(100), maker=True) == D("0.52")
    assert FeeSchedule().unit_fee(D("0.5")) == 0


def test_a_subclass_overriding_only_fee_gets_its_unit_fee_right() -> None:
    curve = PerShareCurve(rate=D("0.05"), fixed_per_fill=D("0.02"))
    # 0.05 x 0.3 x 0.7 = 0.0105 per share; the per-fill floor and fixed fee drop out
    assert curve.unit_fee(D("0.3")) == D("0.0105")
    assert curve.fee(D("0.3"), D(3), maker=False) == D("0.0315") + D("0.02")


def test_market_state_gives_the_bound_schedule_or_none() -> None:
    assert MarketState().fee_schedule("v:x") == FeeSchedule()
    curve = PerShareCurve(rate=D("0.05"))
    market = MarketState(fees=lambda iid: curve if iid == "v:x" else FeeSchedule())
    assert market.fee_schedule("v:x") is curve
    assert market.fee_schedule("v:y") == FeeSchedule()


def test_kelly_bets_on_price_plus_fee() -> None:
    pf = Portfolio("10000")
    sizer = Kelly(SizingSettings(kelly_fraction=0.5, max_fraction=0.5))
    intent = Intent("s", "v:x", Side.BUY, forecast=Forecast(p_win=0.7, confidence=0.5))
    # no fee: f* = (0.7 - 0.4) / 0.6 = 0.5 -> x0.5 x0.5 = 0.125 of 10000 at 0.4 = 3125
    assert sizer.size(intent, D("0.4"), pf, None) == pytest.approx(D("3125"))
    # 0.1 per unit: cost 0.5, f* = (0.7 - 0.5) / 0.5 = 0.4 -> 0.1 of equity = 1000 staked,
    # 2000 contracts at 0.5 each with the fee (2500 before 2026-12-07: 1250 staked, the
    # fee left out of the count)
    assert sizer.size(intent, D("0.4"), pf, None, fees=FeeSchedule(per_unit=D("0.1"))) == \
        pytest.approx(D("2000"))
    # a fee that eats the whole payout: no bet
    assert sizer.size(intent, D("0.4"), pf, None, fees=FeeSchedule(per_unit=D("0.6"))) == 0


class RecordingSizer(Sizer):
    """Declares ``fees``: records every schedule it is handed, sizes a fixed 0.01."""

    name = "recording"
    seen: ClassVar[list[FeeSchedule | None]] = []

    def size(self, intent: Intent, price: Decimal, portfolio: Portfolio,
             instrument: Instrument | None, fees: FeeSchedule | None = None) -> Decimal:
        """0.01 units, after noting ``fees``."""
        RecordingSizer.seen.append(fees)
        return D("0.01")


class LegacySizer(Sizer):
    """A sizer written before fees reached sizers: four arguments only."""

    name = "legacy"
    calls = 0

    def size(self, intent: Intent, price: Decimal, portfolio: Portfolio,  # type: ignore[override]
             instrument: Instrument | None) -> Decimal:
        """0.01 units."""
        LegacySizer.calls += 1
        return D("0.01")


@pytest.fixture
def sizer_plugin(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    from argus_core import plugins

    module = types.ModuleType("argus_test_fee_sizers")

    def register_sizers(register: Any) -> None:
        register("recording", lambda settings: RecordingSizer())
        register("legacy", lambda settings: LegacySizer())

    module.register_sizers = hookimpl(register_sizers)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "argus_test_fee_sizers", module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS,
                                              ("fee_sizers", "argus_test_fee_sizers")))
    RecordingSizer.seen = []
    LegacySizer.calls = 0
    return module


def _config(tmp_path: Path, sizer: str) -> Any:
    text = demo_toml(BUNDLED_BARS, start="2022-06-01", end="2022-07-01").replace(
        'sizer = "fixed_fraction"', f'sizer = "{sizer}"').replace(
        '[paper]\n', '[paper]\ntaker_bps = "7"\n')
    path = tmp_path / "c.toml"
    path.write_text(text)
    return load_config(path)


def test_the_runner_hands_sizers_and_scanners_the_schedule_fills_pay(
        tmp_path: Path, sizer_plugin: types.ModuleType) -> None:
    runner = Runner(_config(tmp_path, "recording"), tmp_path / "run")
    iid = "kraken:XBT/USD"
    # what the paper broker charges: the venue's schedule with the [paper] override
    assert runner.market.fee_schedule(iid) == runner.broker.fees(iid)
    assert runner.market.fee_schedule(iid).taker_bps == D(7)
    summary = runner.run_sync()
    assert summary.orders > 0 and RecordingSizer.seen
    assert all(f is not None and f.taker_bps == D(7) for f in RecordingSizer.seen)


def test_a_sizer_without_the_fees_parameter_is_called_as_before(
        tmp_path: Path, sizer_plugin: types.ModuleType) -> None:
    summary = Runner(_config(tmp_path, "legacy"), tmp_path / "run").run_sync()
    assert summary.orders > 0 and LegacySizer.calls > 0  # (exits carry their quantity)
