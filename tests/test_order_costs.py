"""Every order row records what transaction-cost analysis measures its fills against:
the decision's reason and price, and the market when it was sent (mid and spread of a
live book, else the last bar's close)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from argus_test_helpers import BUNDLED_BARS, demo_toml

from argus_core.config import load_config
from argus_core.interfaces import Strategy, StrategyContext
from argus_core.ledger import Ledger
from argus_core.models import Bar, BookStatus, Intent, MarketEvent, OrderBook, Side
from argus_core.runner import Runner

IID = "kraken:XBT/USD"


def _bars() -> dict[int, tuple[Decimal, Decimal]]:
    """The bundled bars' (open, close) by close time in ns, read independently of the
    replay (Kraken's OHLCVT export: open time, open, high, low, close, volume, count;
    hourly bars are known at their close, an hour after they open)."""
    with BUNDLED_BARS.open() as fh:
        return {(int(row[0]) + 3600) * 10**9: (Decimal(row[1]), Decimal(row[4]))
                for row in csv.reader(fh)}


def _config(tmp_path: Path, strategies: str = '["ma_cross"]') -> Path:
    cfg = tmp_path / "run.toml"
    cfg.write_text(demo_toml(BUNDLED_BARS, end="2022-03-01").replace(
        'strategies = ["ma_cross"]', f"strategies = {strategies}"))
    return cfg


def test_each_order_records_its_reason_and_the_close_it_was_decided_and_sent_at(
        tmp_path: Path) -> None:
    Runner(load_config(_config(tmp_path)), tmp_path / "run").run_sync()
    bars = _bars()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        orders = ledger.query("select * from orders order by ts_ns")
        fills = {r["client_order_id"]: r for r in ledger.query("select * from fills")}
    assert len(orders) >= 4
    for row in orders:
        assert row["reason"] in {"fast SMA crossed above slow", "fast SMA crossed below slow"}
        assert Decimal(row["arrival_price"]) == bars[row["ts_ns"]][1]
        assert row["decision_price"] == row["arrival_price"]  # no price of its own
        assert row["arrival_spread"] is None  # bars have no spread
        # The fill comes later (next bar, slippage): it is not the decision price.
        assert Decimal(fills[row["client_order_id"]]["price"]) != Decimal(row["arrival_price"])


class DecidesAtItsOwnPrice(Strategy):
    """Buys once, naming the price its signal used (a bar's open, not the close)."""

    name = "own"

    def __init__(self) -> None:
        self.done = False

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if type(event) is not Bar or self.done:
            return ()
        self.done = True
        return (Intent(self.name, event.instrument_id, Side.BUY, quantity=Decimal("0.01"),
                       reason="opened on the open", decision_price=event.open),)


def test_a_strategys_decision_price_is_stored_exactly(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, "[]"))
    Runner(cfg, tmp_path / "run", strategies={"own": DecidesAtItsOwnPrice()},
           max_events=5).run_sync()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        (row,) = ledger.query("select * from orders")
    open_, close = _bars()[row["ts_ns"]]
    assert row["reason"] == "opened on the open"
    assert Decimal(row["decision_price"]) == open_ != close == Decimal(row["arrival_price"])


def test_arrival_is_the_live_books_mid_and_spread_else_the_last_close(tmp_path: Path) -> None:
    runner = Runner(load_config(_config(tmp_path, "[]")), tmp_path / "run")
    market, engine = runner.market, runner.engine
    market.apply(Bar(IID, 10**9, 100.0, 101.0, 99.0, 100.5, 3.0))
    assert engine._arrival(IID) == (Decimal("100.5"), None)
    market.apply(OrderBook(IID, 2 * 10**9, bids=((99.5, 1.0),), asks=((100.25, 2.0),)))
    assert engine._arrival(IID) == (Decimal("99.875"), Decimal("0.75"))
    # A one-sided book has no mid: the last close stands in, spread unknown.
    market.apply(OrderBook(IID, 3 * 10**9, bids=((99.5, 1.0),), asks=()))
    assert engine._arrival(IID) == (Decimal("100.5"), None)
    # An untradeable book (failed checksum) is not a market to measure against.
    market.apply(OrderBook(IID, 4 * 10**9, bids=((99.5, 1.0),), asks=((100.25, 2.0),)))
    market.apply(BookStatus(IID, 5 * 10**9, live=False, reason="checksum mismatch"))
    assert engine._arrival(IID) == (Decimal("100.5"), None)
    assert engine._arrival("kraken:ETH/USD") == (None, None)
    runner.ledger.close()


def test_a_post_only_order_never_reaches_a_live_venue_that_cannot_hold_it(
        tmp_path: Path) -> None:
    from argus_core.models import OrderType, TimeInForce

    runner = Runner(load_config(_config(tmp_path, "[]")), tmp_path / "run")
    engine = runner.engine
    assert not runner.asm.venue.supports_post_only
    runner.market.apply(Bar(IID, 10**9, 100.0, 101.0, 99.0, 100.5, 3.0))
    engine.live = True  # as in a live run on this venue
    runner.ledger.begin()
    engine.submit([Intent("s", IID, Side.BUY, quantity=Decimal(1), limit_price=Decimal(99),
                          order_type=OrderType.LIMIT, time_in_force=TimeInForce.POST_ONLY)],
                  10**9, "s")
    runner.ledger.commit()
    assert runner.ledger.query("select * from orders") == []
    (event,) = runner.ledger.query("select * from risk_events")
    assert (event["check_name"], event["action"]) == ("venue", "veto")
    assert "post-only" in event["reason"]
    runner.ledger.close()
