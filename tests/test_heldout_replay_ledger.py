"""Held-out audit of whole replays through the loop: the ledger a reviewer checks.

For every fill: the order was sent no later than the close of the bar before the bar it
filled on (no lookahead), the price is that bar's open or worse (spread and slippage
against the trader, never a close or a mid), and the taker fee was charged.  For every
equity row: cash + each position at its instrument's last close (an instrument with no
bar for a while keeps its last mark).  The final equity is cash + positions at the last
marks, and an order decided on the last bar never fills.
"""

from __future__ import annotations

import bisect
import json
import random
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argus_test_helpers import ROOT, demo_toml

from argus_core.builtins.example_strategies import ExampleSettings, MovingAverageCross
from argus_core.builtins.replay_venue import read_bars_csv
from argus_core.config import load_config, parse_config
from argus_core.errors import DataError
from argus_core.interfaces import Strategy, StrategyContext
from argus_core.ledger import Ledger
from argus_core.models import (
    Bar,
    BookDelta,
    Intent,
    MarketEvent,
    OrderBook,
    OrderType,
    Side,
    TimeInForce,
    Trade,
)
from argus_core.runner import Runner
from argus_core.serde import dump_event

ETH = ROOT.parent / "shared" / "data" / "crypto" / "kraken_ETHUSD_60.csv"
START_CASH = Decimal(100_000)
TAKER = Decimal("0.004")  # the replay venue's default 40 bps


def _audit(run_dir: Path, bars: dict[str, list[Bar]]) -> dict[str, Any]:
    """Check every fill and equity row of ``run_dir`` against the replayed ``bars``."""
    with Ledger.in_dir(run_dir) as ledger:
        fills = ledger.query("select * from fills order by ts_ns, fill_id")
        orders = {o["client_order_id"]: o for o in ledger.query("select * from orders")}
        equity = ledger.query("select * from equity order by ts_ns")
    closes = {iid: [b.ts_ns for b in series] for iid, series in bars.items()}
    by_ts = {iid: {b.ts_ns: b for b in series} for iid, series in bars.items()}
    for f in fills:
        iid, px = f["instrument_id"], Decimal(f["price"])
        bar = by_ts[iid][f["ts_ns"]]  # fills happen on a bar of their own instrument
        k = closes[iid].index(f["ts_ns"])
        assert k > 0 and orders[f["client_order_id"]]["ts_ns"] <= closes[iid][k - 1], f
        open_ = Decimal(repr(bar.open))
        assert (px >= open_) if f["side"] == "buy" else (px <= open_), (f, bar)
        fee = (px * Decimal(f["quantity"]) * TAKER).quantize(Decimal("1e-8"))
        assert f["liquidity"] == "taker" and Decimal(f["fee"]) == fee > 0, f
    # Replay the fills against the equity rows.
    cash, qty = START_CASH, dict.fromkeys(bars, Decimal(0))
    i = held_past_data = 0
    for row in equity:
        while i < len(fills) and fills[i]["ts_ns"] <= row["ts_ns"]:
            f = fills[i]
            signed = Decimal(f["quantity"]) * (1 if f["side"] == "buy" else -1)
            qty[f["instrument_id"]] += signed
            cash -= signed * Decimal(f["price"]) + Decimal(f["fee"])
            i += 1
        marked = cash
        for iid, q in qty.items():
            if q:
                k = bisect.bisect_right(closes[iid], row["ts_ns"]) - 1  # its last bar
                marked += q * Decimal(repr(bars[iid][k].close))
                held_past_data += closes[iid][k] < row["ts_ns"]
        assert abs(Decimal(row["cash"]) - cash) < Decimal("1e-6"), row
        assert abs(Decimal(row["equity"]) - marked) < Decimal("1e-6"), (row, marked)
    assert i == len(fills)
    return {"fills": fills, "orders": orders, "equity": equity, "qty": qty, "cash": cash,
            "held_past_data": held_past_data}


@pytest.mark.skipif(not ETH.exists(), reason="../shared/data absent")
def test_held_out_eth_bars_replay_honestly(tmp_path: Path) -> None:
    """Kraken ETH/USD 2019 Q1 (gappy hourly bars, three-to-five-decimal prices)."""
    config = tmp_path / "eth.toml"
    config.write_text(demo_toml(ETH, start="2019-01-01", end="2019-04-01"))
    Runner(load_config(config), tmp_path / "run").run_sync()
    bars = read_bars_csv(ETH, "replay:BTC/USD", 3600, 1_546_300_800, 1_554_076_800)
    got = _audit(tmp_path / "run", {"replay:BTC/USD": bars})
    assert len(got["fills"]) > 50
    last = got["equity"][-1]
    assert last["ts_ns"] == bars[-1].ts_ns
    # An order decided on the last bar has no bar to fill on: it stays working, unfilled.
    for o in got["orders"].values():
        if o["ts_ns"] == bars[-1].ts_ns:
            assert (o["status"], o["filled_quantity"]) == ("open", "0")


def _walks(seed: int = 7, n: int = 400) -> list[Bar]:
    """Two hourly random walks; A has no bar for 30 hours in the middle, B goes on."""
    rng = random.Random(seed)
    px = {"replay:A/USD": 100.0, "replay:B/USD": 50.0}
    out = []
    for t in range(n):
        ts = (1_600_000_000 + 3600 * (t + 1)) * 10**9
        for iid in px:
            o = px[iid]
            c = round(o * (1 + rng.gauss(0, 0.015)), 2)
            px[iid] = c
            if iid == "replay:A/USD" and 200 <= t < 230:
                continue  # A's gap: nothing traded
            out.append(Bar(iid, ts, o, round(max(o, c) * 1.003, 2), round(min(o, c) * 0.997, 2),
                           c, round(rng.uniform(20, 60), 3)))
    return out


def _recording(tmp_path: Path, events: Sequence[MarketEvent]) -> Path:
    path = tmp_path / "bars.ndjson"
    path.write_text("".join(json.dumps(dump_event(e)) + "\n" for e in events))
    return path


def _config(tmp_path: Path, recording: Path) -> Any:
    return parse_config({
        "argus": {"plugins": [], "mode": "replay", "seed": 1},
        "run": {"venue": "replay", "strategies": [], "sizer": "fixed_fraction",
                "starting_cash": str(START_CASH), "checkpoint_every_events": 100},
        "paper": {"slippage_bps": "1", "bar_spread_bps": "2", "bar_depth_fraction": 0.5},
        "plugins": {"replay": {"ndjson": str(recording), "tick_size": "0.01",
                               "lot_size": "0.0001"},
                    "sizing": {"fraction": "0.2"},
                    "risk": {"max_consecutive_losses": 1000, "per_play_fraction": "0.3",
                             "max_drawdown_fraction": "0.9", "daily_loss_fraction": "0.9",
                             "max_orders_per_minute": 1000}},
    }, tmp_path / "c.toml")


def test_two_instruments_one_with_a_gap_keep_their_last_marks(tmp_path: Path) -> None:
    events = _walks()
    slots: dict[str, Strategy] = {
        f"ma_{k}": MovingAverageCross(ExampleSettings(3, 8, f"replay:{k}/USD"))
        for k in "AB"}
    Runner(_config(tmp_path, _recording(tmp_path, events)), tmp_path / "run",
           strategies=slots).run_sync()
    bars = {iid: [b for b in events if b.instrument_id == iid]
            for iid in ("replay:A/USD", "replay:B/USD")}
    got = _audit(tmp_path / "run", bars)
    assert {f["instrument_id"] for f in got["fills"]} == set(bars)
    # Rows where A was held with no bar of its own (its gap): valued at A's last close.
    assert got["held_past_data"] >= 10


class _CrossTimeframe(Strategy):
    """Buys A (hourly bars) once, on B's quarter-past bar (15-minute bars)."""

    name = "cross"

    def __init__(self) -> None:
        self.sent_ns: int | None = None

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if type(event) is not Bar or event.instrument_id != "replay:B/USD" or \
                self.sent_ns is not None or ctx.ts_ns % (3600 * 10**9) != 900 * 10**9 or \
                "replay:A/USD" not in ctx.market.bars:
            return ()
        self.sent_ns = ctx.ts_ns
        return (Intent(self.name, "replay:A/USD", Side.BUY, quantity=Decimal(1),
                       order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC),)


def test_an_order_decided_mid_bar_fills_at_a_bar_that_opened_after_it(tmp_path: Path) -> None:
    """A at 1:00-2:00 opens at 100 and closes at 130; at 1:15 the strategy (seeing B)
    buys A: it must pay the 2:00 open (130), not 1:00's 100."""
    t0 = 1_600_002_000 - 1_600_002_000 % 3600  # on the hour
    ns = 10**9
    events: list[MarketEvent] = []
    a_open = 100.0
    for q in range(1, 17):  # four hours of 15-minute B bars, hourly A bars
        ts = (t0 + 900 * q) * ns
        events.append(Bar("replay:B/USD", ts, 50.0, 50.5, 49.5, 50.0, 10.0))
        if q % 4 == 0:
            close = a_open + 30.0
            events.append(Bar("replay:A/USD", ts, a_open, close, a_open, close, 10.0))
            a_open = close
    strategy = _CrossTimeframe()
    Runner(_config(tmp_path, _recording(tmp_path, events)), tmp_path / "run",
           strategies={"cross": strategy}).run_sync()
    bars = {iid: [b for b in events if isinstance(b, Bar) and b.instrument_id == iid]
            for iid in ("replay:A/USD", "replay:B/USD")}
    got = _audit(tmp_path / "run", bars)
    assert strategy.sent_ns == (t0 + 3600 + 900) * ns  # 1:15, A's first bar closed at 1:00
    (fill,) = got["fills"]
    assert fill["ts_ns"] == (t0 + 3 * 3600) * ns  # the bar 2:00-3:00
    assert Decimal(fill["price"]) >= Decimal("130.0")  # its open, plus spread and slippage


def _bad_bar_run(tmp_path: Path) -> tuple[Path, int]:
    """An hourly CSV whose 251st row is a bad tick (high under low); trades before it."""
    rng = random.Random(3)
    rows, px = [], 100.0
    for t in range(300):
        c = round(px * (1 + rng.gauss(0, 0.02)), 2)
        rows.append(f"{1_600_000_000 + 3600 * t},{px},{max(px, c) + 0.5},{min(px, c) - 0.5},"
                    f"{c},{rng.uniform(20, 60):.3f},5")
        px = c
    bad_open_s = 1_600_000_000 + 3600 * 250
    rows[250] = f"{bad_open_s},150,140,160,150,1,1"
    path = tmp_path / "bars.csv"
    path.write_text("\n".join(rows) + "\n")
    replay = {"bars_csv": str(path), "tick_size": "0.01", "lot_size": "0.0001"}
    runner = Runner(parse_config({
        "argus": {"plugins": [], "mode": "replay", "seed": 1},
        "run": {"venue": "replay", "strategies": ["ma_cross"], "sizer": "fixed_fraction",
                "starting_cash": str(START_CASH), "checkpoint_every_events": 100},
        "paper": {"slippage_bps": "1"},
        "plugins": {"replay": replay, "example": {"fast": 3, "slow": 8},
                    "risk": {"max_consecutive_losses": 1000, "max_drawdown_fraction": "0.9",
                             "daily_loss_fraction": "0.9", "max_orders_per_minute": 1000}},
    }, tmp_path / "c.toml"), tmp_path / "run")
    with pytest.raises(DataError, match=r"bars\.csv:251: .*high/low do not bound"):
        runner.run_sync()
    return tmp_path / "run", (bad_open_s + 3600) * 10**9


def test_a_bad_tick_mid_file_stops_the_replay_keeping_what_was_committed(
        tmp_path: Path) -> None:
    """The data refuses the bar, so no mark or fill ever sees it; everything before it
    (fills, equity rows, the last checkpoint) stays in the ledger."""
    run_dir, bad_ts = _bad_bar_run(tmp_path)
    with Ledger.in_dir(run_dir) as ledger:
        fills = ledger.query("select ts_ns from fills")
        equity = ledger.query("select ts_ns from equity order by ts_ns")
        checkpoint = ledger.load_checkpoint("runner")
    assert len(fills) > 5 and all(f["ts_ns"] < bad_ts for f in fills)
    assert equity and equity[-1]["ts_ns"] < bad_ts and len(equity) >= 200
    assert checkpoint is not None and checkpoint[1] < bad_ts


def test_a_run_stopped_by_bad_data_is_not_recorded_as_finished(tmp_path: Path) -> None:
    run_dir, _ = _bad_bar_run(tmp_path)
    with Ledger.in_dir(run_dir) as ledger:
        (run,) = ledger.query("select status from runs")
    assert run["status"] != "finished"


class _BuyOnce(Strategy):
    """Buys 290 units (29% of the cash) at the first book it sees."""

    name = "buy_once"

    def __init__(self) -> None:
        self.done = False

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if self.done or type(event) is not OrderBook:
            return ()
        self.done = True
        return (Intent(self.name, event.instrument_id, Side.BUY, quantity=Decimal(290),
                       order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC),)


def test_a_print_outside_the_book_does_not_trip_the_drawdown_kill(tmp_path: Path) -> None:
    iid = "replay:BTC/USD"
    events: list[MarketEvent] = [
        OrderBook(iid, 1 * 10**9, [[99.0, 500.0]], [[101.0, 500.0]]),
        Trade(iid, 2 * 10**9, "0.5", "0.01", Side.SELL),  # no level of the book shows it
        BookDelta(iid, 3 * 10**9, Side.BUY, "99.5", "1"),
    ]
    config = parse_config({
        "argus": {"plugins": [], "mode": "replay", "seed": 1},
        "run": {"venue": "replay", "strategies": [], "sizer": "fixed_fraction",
                "starting_cash": str(START_CASH), "stale_after_s": 0},
        "plugins": {"replay": {"ndjson": str(_recording(tmp_path, events)),
                               "tick_size": "0.01", "lot_size": "0.0001"},
                    "risk": {"per_play_fraction": "0.3", "max_drawdown_fraction": "0.2",
                             "daily_loss_fraction": "0.9"}},
    }, tmp_path / "c.toml")
    Runner(config, tmp_path / "run", strategies={"buy_once": _BuyOnce()}).run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        fills = ledger.query("select side, price, quantity from fills")
        kills = ledger.query("select * from risk_events where check_name = 'max_drawdown'")
    assert fills[0] == {"side": "buy", "price": "101.0", "quantity": "290"}
    assert kills == [] and len(fills) == 1  # no halt, no flattening sale
