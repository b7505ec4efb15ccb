"""Replays trade under the data's own era's tick and lot, not today's exchange rules.

Kraken quoted BTC/USD to 1e-5 in 2013 (a bar opened at 162.9811); today's tick is 0.1.
Rounding a 2013 fill onto 0.1 against the trader costs up to 8 bps a fill, a cost that
never existed.  The replay venue infers the tick from the replayed prices' decimals
(and the lot from the volumes'), unless ``[plugins.replay] tick_size / lot_size`` say.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from argus_test_helpers import BUNDLED_BARS

from argus_core.builtins.replay_venue import (
    ReplaySettings,
    ReplayVenue,
    decimals,
    era_step,
    read_bars_csv,
)
from argus_core.config import load_config
from argus_core.ledger import Ledger
from argus_core.models import Instrument, Side
from argus_core.paper import _tick_round
from argus_core.runner import Runner

# 2013-like hourly bars: four-decimal prices, volumes to the satoshi.
BARS_2013 = """\
1382256000,161.2,161.9,161.0,161.5,1.25,3
1382259600,161.5,162.9811,161.5,162.9811,0.05,1
1382263200,162.9811,163.4,162.5,163.1234,2.5,4
1382266800,163.1234,163.5,162.8,163.2,0.12345678,2
"""


def _toml(bars: Path, *, extra_replay: str = "", slippage_bps: str = "0",
          start: str = "2013-10-06", end: str = "2014-01-01") -> str:
    return f"""
[argus]
plugins = []
mode = "replay"

[run]
venue = "replay"
strategies = ["ma_cross"]
sizer = "fixed_fraction"
checkpoint_every_events = 500

[paper]
slippage_bps = "{slippage_bps}"
bar_spread_bps = "0"

[plugins.replay]
bars_csv = "{bars}"
start = "{start}"
end = "{end}"
{extra_replay}

[plugins.example]
fast = 5
slow = 20

[plugins.risk]
max_consecutive_losses = 1000
max_drawdown_fraction = "0.9"
daily_loss_fraction = "0.9"
max_orders_per_minute = 1000
"""


def test_decimals_as_written() -> None:
    assert [decimals(v) for v in (162.9811, 122.0, 29000.5, 16541.8, 1e-05, 0.00012, 3.0)] == \
        [4, 0, 1, 1, 5, 5, 0]
    assert era_step(iter([161.2, 162.9811, 163.5])) == Decimal("0.0001")
    assert era_step(iter([0.1 + 0.2])) == Decimal("1e-8")  # float noise is capped


async def test_the_venue_serves_the_eras_tick_and_lot(tmp_path: Path) -> None:
    csv = tmp_path / "bars2013.csv"
    csv.write_text(BARS_2013)
    (inst,) = await ReplayVenue(ReplaySettings(bars_csv=csv)).instruments()
    assert (inst.tick_size, inst.lot_size) == (Decimal("0.0001"), Decimal("1e-8"))
    # Configured rules win over the data.
    (inst,) = await ReplayVenue(ReplaySettings(bars_csv=csv, tick_size=Decimal("0.1"),
                                               lot_size=Decimal("0.001"))).instruments()
    assert (inst.tick_size, inst.lot_size) == (Decimal("0.1"), Decimal("0.001"))
    # The bundled bars' recent era quotes to 0.1: the demo trades as before.
    (inst,) = await ReplayVenue(ReplaySettings(bars_csv=BUNDLED_BARS, start="2021-01-01")
                                ).instruments()
    assert inst.tick_size == Decimal("0.1")
    (inst,) = await ReplayVenue(ReplaySettings(bars_csv=BUNDLED_BARS, start="2013-10-06",
                                               end="2014-01-01")).instruments()
    assert inst.tick_size == Decimal("0.00001")


def test_2013_fills_keep_the_bars_own_prices(tmp_path: Path) -> None:
    """No spread, no slippage: every fill is at its bar's open, to the 2013 tick.  With
    today's 0.1 tick forced, the same fills move against the trader (162.9811 -> 163.0)."""
    era = tmp_path / "era.toml"
    era.write_text(_toml(BUNDLED_BARS))
    Runner(load_config(era), tmp_path / "era").run_sync()
    bars = {b.ts_ns: b for b in read_bars_csv(BUNDLED_BARS, "replay:BTC/USD", 3600)}
    with Ledger.in_dir(tmp_path / "era") as ledger:
        fills = ledger.fills()
    assert len(fills) >= 10
    for f in fills:
        assert Decimal(f["price"]) == Decimal(repr(bars[f["ts_ns"]].open)), f

    today = tmp_path / "today.toml"
    today.write_text(_toml(BUNDLED_BARS, extra_replay='tick_size = "0.1"'))
    Runner(load_config(today), tmp_path / "today").run_sync()
    with Ledger.in_dir(tmp_path / "today") as ledger:
        forced = ledger.fills()
    worse = 0
    for f in forced:
        px, open_ = Decimal(f["price"]), Decimal(repr(bars[f["ts_ns"]].open))
        assert (px >= open_) if f["side"] == "buy" else (px <= open_)
        worse += px != open_
    assert worse > 0  # the anachronism the era tick removes


def test_slipped_2013_fills_round_one_era_tick_at_most(tmp_path: Path) -> None:
    cfg = tmp_path / "slip.toml"
    cfg.write_text(_toml(BUNDLED_BARS, slippage_bps="1"))
    Runner(load_config(cfg), tmp_path / "slip").run_sync()
    bars = {b.ts_ns: b for b in read_bars_csv(BUNDLED_BARS, "replay:BTC/USD", 3600)}
    with Ledger.in_dir(tmp_path / "slip") as ledger:
        fills = ledger.fills()
    assert fills
    tick = Decimal("0.00001")
    for f in fills:
        open_ = Decimal(repr(bars[f["ts_ns"]].open))
        slipped = open_ * (Decimal("1.0001") if f["side"] == "buy" else Decimal("0.9999"))
        assert abs(Decimal(f["price"]) - slipped) < tick
        assert Decimal(f["price"]) % tick == 0


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_float_noise_never_costs_a_tick(side: Side) -> None:
    inst = Instrument("v", "X/USD", tick_size="0.0001")
    on_tick = Decimal(repr(162.9811 * (1.0 + 0.0)))
    assert _tick_round(on_tick, side, inst) == Decimal("162.9811")
    noisy = Decimal("162.98110000000001")  # a float product that should be 162.9811
    assert _tick_round(noisy, side, inst) == Decimal("162.9811")
    between = Decimal("162.98115")
    assert _tick_round(between, side, inst) == (Decimal("162.9812") if side is Side.BUY
                                                else Decimal("162.9811"))
