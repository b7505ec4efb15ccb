"""Red team r40, fills: a trade stamped far ahead of this machine's clock.

The core leaves out market events stamped over 5 minutes ahead of the local clock, but a
fill is real money and is never dropped.  A trade whose ``match_time`` was years ahead
(damage, or milliseconds read as seconds) was booked at that time, and the trades poll
then asked ``GET /data/trades?after=`` from that time on (its overlap follows the newest
match seen): with the user channel off or down, every later fill went unbooked.  Now the
fill is booked, stamped no later than this machine's clock plus
``FILL_AHEAD_ALLOWANCE_S``, said once in the log, and the poll's window follows the
stamp it was booked at.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from argus_testkit.engine import EngineHarness, Harnesses, expect
from argus_venue_polymarket import tracking
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.schemas import ClobTrade
from argus_venue_polymarket.testing import LocalClob, make_book
from argus_venue_polymarket.venue import PolymarketVenue

from argus_core.models import Instrument, OrderStatus, Side, TimeInForce
from argus_core.secrets import Secret

TOKEN = "1234"
IID = f"polymarket:{TOKEN}"
API_KEY, API_PASSPHRASE = "key-1", "pass"
API_SECRET = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
INSTRUMENT = Instrument("polymarket", TOKEN, kind="binary", tick_size="0.01",
                        lot_size="0.01", min_size="5",
                        meta={"neg_risk": True, "fee_rate": "0.05", "fee_exponent": "1",
                              "fee_taker_only": True})
TEN_YEARS_S = 10 * 365 * 86_400
SMALL_ALLOWANCE_S = 60  # what "stamped no later than the clock plus a small allowance" allows


@pytest.fixture(autouse=True)
def _keys(pm_keys: Callable[[str, str, str], None]) -> None:
    pm_keys(API_KEY, API_SECRET, API_PASSPHRASE)


@pytest.fixture
def clob() -> Iterator[tuple[SnapshotServer, LocalClob]]:
    books = [make_book(TOKEN, "0xcond-a", [("0.60", "150")], [("0.64", "40")])]
    local = LocalClob({b["asset_id"]: b for b in books}, api_key=API_KEY,
                      api_secret=API_SECRET, api_passphrase=API_PASSPHRASE)
    srv = SnapshotServer([], books, clob=local).start()
    try:
        yield srv, local
    finally:
        srv.stop()


@pytest.fixture
async def harness(clob: tuple[SnapshotServer, LocalClob], tmp_path: Path
                  ) -> AsyncIterator[Callable[..., Any]]:
    pool = Harnesses(tmp_path / "run")

    async def make() -> EngineHarness:
        settings = PolymarketSettings(
            clob_url=clob[0].url, private_key=Secret("$env:PM_TEST_KEY"),
            api_key=Secret("$env:PM_K"), api_secret=Secret("$env:PM_S"),
            api_passphrase=Secret("$env:PM_P"), user_channel=False,  # the poll's path
            request_timeout_s=2.0, order_settle_s=2.0, order_lookup_interval_s=0.05,
            trades_poll_s=0.05, heartbeat_interval_s=0.1, order_give_up_s=5.0)
        venue = PolymarketVenue(settings)
        venue._instruments[IID] = INSTRUMENT
        return await pool.start(venue, INSTRUMENT, D("0.64"))

    yield make
    await pool.close()


async def test_a_fill_stamped_years_ahead_is_booked_at_this_clock_and_later_ones_follow(
        clob: tuple[SnapshotServer, LocalClob], harness: Callable[..., Any],
        caplog: pytest.LogCaptureFixture) -> None:
    _, local = clob
    h = await harness()
    coid = h.order(1, Side.SELL, "10", "0.70", tif=TimeInForce.GTC)  # rests
    await h.settle()
    await expect(lambda: h.status(coid)[0] is OrderStatus.OPEN, 5)
    row = h.ledger.order_row(coid)
    assert row is not None
    vid = str(row["venue_order_id"])

    real_trade, ahead = local._trade, [str(int(time.time()) + TEN_YEARS_S)]

    def stamped_ahead(*args: Any, **kwargs: Any) -> dict[str, Any]:
        trade = real_trade(*args, **kwargs)
        if ahead:  # the first trade only
            trade["match_time"] = trade["last_update"] = ahead.pop()
        return trade

    local._trade = stamped_ahead  # type: ignore[method-assign]
    caplog.set_level(logging.WARNING, logger="argus_venue_polymarket")
    local.fill_resting(vid, "4")
    await expect(lambda: h.status(coid) == (OrderStatus.PARTIALLY_FILLED, D(4)), 5)
    limit = time.time_ns() + SMALL_ALLOWANCE_S * 10**9
    (fill,) = h.fills()
    assert fill["ts_ns"] <= limit, "booked at the venue's stamp, years ahead"

    # a later fill, stamped now, is still found by the poll
    local.fill_resting(vid, "3")
    await expect(lambda: h.status(coid) == (OrderStatus.PARTIALLY_FILLED, D(7)), 5)
    await h.settle()
    assert len(h.fills()) == 2
    said = [r for r in caplog.records if "ahead of this machine's clock" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in caplog.records]


def test_the_stamp_of_a_trade_is_never_past_the_clock_plus_the_allowance() -> None:
    assert 0 < tracking.FILL_AHEAD_ALLOWANCE_S <= SMALL_ALLOWANCE_S
    raw = {"id": "t1", "asset_id": TOKEN, "side": "BUY", "size": "1", "price": "0.5",
           "status": "MATCHED", "taker_order_id": "0xabc", "trader_side": "TAKER",
           "owner": API_KEY, "maker_orders": []}
    now_s = 1_800_000_000
    allowed = now_s + tracking.FILL_AHEAD_ALLOWANCE_S
    for match_time, want in ((now_s - 30, now_s - 30),  # the past: as stamped
                             (allowed, allowed),  # within the allowance: as stamped
                             (allowed + 1, allowed),
                             (now_s + TEN_YEARS_S, allowed)):  # years ahead: the clock's
        trade = ClobTrade.parse(dict(raw, match_time=str(match_time)))
        assert tracking.match_stamp_s(trade, now_s + 0.9) == want, match_time
    assert tracking.match_stamp_s(ClobTrade.parse(raw), now_s) == 0  # none: left to the caller
