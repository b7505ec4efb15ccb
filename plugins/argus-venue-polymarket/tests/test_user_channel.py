"""The websocket user channel through the core's ExecutionEngine in live mode over a real
ledger, against the local CLOB's ``/ws/user`` (auth checked, this account's ``trade`` and
``order`` events) and its ``GET /data/trades``.

The trades poll is set slow (``trades_poll_s`` 30 s, ``trades_reconcile_s`` 60 s) so a fill
booked within a test's seconds came over the socket, or from a poll something asked for
(a (re)connect, a frame that could not be read).  Every scenario ends with each match
booked once and position and cash equal to what the CLOB's trades say: a maker fill over
the socket before the poll would; a fill on both paths; a disconnect during which a fill
happened (booked by the poll after the reconnect); a repeated, a malformed and a garbled
frame; FAILED after MINED (busted once); a key the channel refuses (a clear error, the
poll carries on); a restart mid-stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from argus_testkit.engine import CASH, EngineHarness, Harnesses, Killed, expect
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.testing import LocalClob, make_book
from argus_venue_polymarket.user_channel import UserChannel
from argus_venue_polymarket.venue import PolymarketVenue

from argus_core.models import Instrument, OrderStatus, Side, TimeInForce
from argus_core.secrets import Secret

TOKEN = "1234"
COND = "0xcond-a"
IID = f"polymarket:{TOKEN}"
API_KEY, API_PASSPHRASE = "key-1", "phrase-7f3e9c"
API_SECRET = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
META = {"neg_risk": True, "fee_rate": "0.05", "fee_exponent": "1", "fee_taker_only": True,
        "condition_id": COND}
INSTRUMENT = Instrument("polymarket", TOKEN, kind="binary", tick_size="0.01",
                        lot_size="0.01", min_size="5", meta=META)


def assert_matches_venue(h: EngineHarness, clob: LocalClob) -> None:
    """Each of our matches booked once (a busted fill and its offset count as none), and
    position and cash equal to the CLOB's trades (fees by the market's schedule)."""
    schedule = h.venue.fee_schedule(IID)
    pos, cash, vids = D(0), CASH, set()
    for t in clob.trades:
        if t["status"] == "FAILED":
            continue  # it did not happen
        legs = []
        if t["trader_side"] == "TAKER" and t["owner"] == API_KEY:
            legs.append((t["taker_order_id"], t["side"], D(t["size"]), D(t["price"]), False))
        legs += [(m["order_id"], m["side"], D(m["matched_amount"]), D(m["price"]), True)
                 for m in t["maker_orders"] if m["owner"] == API_KEY]
        for vid, side, qty, price, maker in legs:
            sign = 1 if side == "BUY" else -1
            pos += sign * qty
            cash -= sign * qty * price + schedule.fee(price, qty, maker=maker)
            vids.add(vid)
    every = h.fills()
    ids = {f["fill_id"] for f in every}
    booked = [f for f in every if not f["fill_id"].endswith(":bust")
              and f"{f['fill_id']}:bust" not in ids]
    assert len({f["fill_id"] for f in booked}) == len(booked)
    assert {f["fill_id"].rpartition(":")[2] if not f["fill_id"].endswith(":0")
            else f["fill_id"][:-2] for f in booked} == vids
    held = h.account.positions.get(IID)
    assert (held.quantity if held is not None else D(0)) == pos
    assert h.account.cash == cash


@pytest.fixture(autouse=True)
def _keys(pm_keys: Callable[[str, str, str], None]) -> None:
    pm_keys(API_KEY, API_SECRET, API_PASSPHRASE)


@pytest.fixture
def clob() -> Iterator[tuple[SnapshotServer, LocalClob]]:
    """A local CLOB with its user channel: asks 40 @ 0.64 and 100 @ 0.66, bids 150 @ 0.60."""
    books = [make_book(TOKEN, COND, [("0.60", "150")], [("0.64", "40"), ("0.66", "100")])]
    local = LocalClob({b["asset_id"]: b for b in books}, api_key=API_KEY,
                      api_secret=API_SECRET, api_passphrase=API_PASSPHRASE)
    srv = SnapshotServer([], books, ws_port=0, clob=local).start()
    try:
        yield srv, local
    finally:
        local.user_down = False
        srv.stop()


@pytest.fixture
async def harness(clob: tuple[SnapshotServer, LocalClob], tmp_path: Path
                  ) -> AsyncIterator[Callable[..., Any]]:
    """``await harness(**settings)``: an engine on a Polymarket venue of the local CLOB,
    following its user channel (derived from ``ws_url``)."""
    pool = Harnesses(tmp_path / "run")

    async def make(**overrides: Any) -> EngineHarness:
        timings: dict[str, Any] = {
            "request_timeout_s": 2.0, "order_settle_s": 2.0, "order_lookup_interval_s": 0.05,
            "trades_poll_s": 30.0, "trades_reconcile_s": 60.0, "heartbeat_interval_s": 0.1,
            "order_give_up_s": 5.0, "reconnect_min_s": 0.05, "reconnect_max_s": 0.2}
        settings = PolymarketSettings(
            clob_url=clob[0].url, ws_url=clob[0].ws_url, private_key=Secret("$env:PM_TEST_KEY"),
            api_key=Secret("$env:PM_K"), api_secret=Secret("$env:PM_S"),
            api_passphrase=Secret("$env:PM_P"), **(timings | overrides))
        venue = PolymarketVenue(settings)
        venue._instruments[IID] = INSTRUMENT
        return await pool.start(venue, INSTRUMENT, D("0.64"))

    yield make
    await pool.close()



def channel(h: EngineHarness) -> UserChannel:
    got = h.venue.execution.channel  # type: ignore[attr-defined]
    assert got is not None
    return got  # type: ignore[no-any-return]


async def subscribed(h: EngineHarness, local: LocalClob) -> None:
    """Wait for the venue's user channel to be subscribed at the CLOB."""
    await expect(lambda: h.venue.execution.channel is not None  # type: ignore[attr-defined]
                and channel(h).up and local.user_sockets == 1)


def vid_of(h: EngineHarness, coid: str) -> str:
    row = h.ledger.order_row(coid)
    assert row is not None and row["venue_order_id"]
    return str(row["venue_order_id"])


def trade_polls(local: LocalClob) -> int:
    return local.count("GET", "/data/trades")


async def resting(h: EngineHarness, local: LocalClob, qty: str = "20") -> tuple[str, str]:
    """A GTC buy at 0.60 (below the asks: it rests), acknowledged, the channel subscribed;
    (client order id, venue order id)."""
    await subscribed(h, local)
    coid = h.order(1, Side.BUY, qty, "0.60", TimeInForce.GTC)
    await expect(lambda: h.status(coid)[0] is OrderStatus.OPEN)
    await h.settle()
    return coid, vid_of(h, coid)


async def test_a_maker_fill_arrives_over_the_socket_before_the_poll_would(clob, harness):
    _, local = clob
    h = await harness()
    coid, vid = await resting(h, local)
    assert local.user_subscriptions == [{"markets": [], "type": "user"}]
    polls = trade_polls(local)
    tid = local.fill_resting(vid, "7")
    await expect(lambda: len(h.fills()) == 1, timeout_s=5)
    assert trade_polls(local) == polls  # the socket's, not a poll's (next one in 60 s)
    (fill,) = h.fills()
    assert (fill["fill_id"], fill["liquidity"], D(fill["quantity"])) == (f"{tid}:{vid}",
                                                                         "maker", D(7))
    assert h.status(coid) == (OrderStatus.PARTIALLY_FILLED, D(7))
    assert channel(h).stats["malformed"] == 0 and local.user_refused == 0
    assert_matches_venue(h, local)


async def test_a_fill_seen_on_the_socket_and_by_the_poll_is_booked_once(clob, harness):
    _, local = clob
    h = await harness()
    _coid, vid = await resting(h, local)
    tid = local.fill_resting(vid, "7")
    await expect(lambda: len(h.fills()) == 1, timeout_s=5)
    local.set_trade_status(tid, "MINED")  # over the socket again, same trade
    polls = trade_polls(local)
    h.venue.execution.reconcile_soon()  # type: ignore[attr-defined]
    await expect(lambda: trade_polls(local) > polls)  # the poll lists the same trade
    await h.settle()
    await asyncio.sleep(0.2)
    assert [f["fill_id"] for f in h.fills()] == [f"{tid}:{vid}"]
    assert_matches_venue(h, local)


async def test_a_fill_while_disconnected_is_booked_once_by_the_poll_after_the_reconnect(
        clob, harness, caplog):
    _, local = clob
    caplog.set_level(logging.WARNING)
    h = await harness()
    coid, vid = await resting(h, local)
    local.user_down = True  # reconnects are refused (503) ...
    assert local.drop_user_sockets() == 1  # ... and the socket drops
    await expect(lambda: not channel(h).up)
    tid = local.fill_resting(vid, "7")  # nobody to tell
    await asyncio.sleep(0.3)
    assert h.fills() == []  # the poll runs every 30 s while down: not yet
    polls = trade_polls(local)
    local.user_down = False
    await expect(lambda: len(h.fills()) == 1)
    assert trade_polls(local) > polls  # the reconnect's poll found it
    assert channel(h).stats["connects"] == 2
    local.set_trade_status(tid, "CONFIRMED")  # over the new socket: nothing new
    h.venue.execution.reconcile_soon()  # type: ignore[attr-defined]
    await expect(lambda: trade_polls(local) > polls + 1)
    await h.settle()
    assert [f["fill_id"] for f in h.fills()] == [f"{tid}:{vid}"]
    assert h.status(coid) == (OrderStatus.PARTIALLY_FILLED, D(7))
    assert "user channel cannot connect" in caplog.text
    assert_matches_venue(h, local)


async def test_a_repeated_frame_is_booked_once(clob, harness):
    _, local = clob
    h = await harness()
    _coid, vid = await resting(h, local)
    events = channel(h).stats["events"]
    local.user_faults.append("repeat")
    local.fill_resting(vid, "7")  # the trade event twice, then the order's UPDATE
    await expect(lambda: channel(h).stats["events"] >= events + 3)
    await h.settle()
    assert len(h.fills()) == 1
    assert_matches_venue(h, local)


async def test_a_malformed_frame_is_logged_and_skipped_and_the_socket_kept(
        clob, harness, caplog):
    _, local = clob
    caplog.set_level(logging.WARNING)
    h = await harness()
    coid, vid = await resting(h, local)
    local.user_faults.append("malformed")  # a frame that is not JSON, then the event
    local.fill_resting(vid, "7")
    await expect(lambda: len(h.fills()) == 1)
    assert channel(h).stats["malformed"] == 1
    assert "malformed user channel frame" in caplog.text
    local.fill_resting(vid, "3")  # the same socket carries on
    await expect(lambda: h.status(coid) == (OrderStatus.PARTIALLY_FILLED, D(10)))
    assert channel(h).stats["connects"] == 1 and local.user_sockets == 1
    assert_matches_venue(h, local)


async def test_a_garbled_trade_frame_is_skipped_and_its_fill_comes_from_the_poll_it_asks_for(
        clob, harness):
    _, local = clob
    h = await harness()
    _coid, vid = await resting(h, local)
    polls = trade_polls(local)
    local.user_faults.append("garbled")  # the trade event cut short: unreadable
    tid = local.fill_resting(vid, "7")
    await expect(lambda: len(h.fills()) == 1)
    assert trade_polls(local) > polls
    assert [f["fill_id"] for f in h.fills()] == [f"{tid}:{vid}"]
    assert channel(h).stats["malformed"] == 1 and channel(h).stats["connects"] == 1
    assert_matches_venue(h, local)


async def test_a_dropped_trade_frame_is_found_by_the_poll_the_order_update_asks_for(
        clob, harness):
    _, local = clob
    h = await harness()
    _coid, vid = await resting(h, local)
    local.user_faults.append("drop")  # the trade event never sent; its UPDATE is
    tid = local.fill_resting(vid, "7")
    await expect(lambda: len(h.fills()) == 1)
    assert [f["fill_id"] for f in h.fills()] == [f"{tid}:{vid}"]
    assert_matches_venue(h, local)


async def test_failed_after_mined_over_the_socket_is_busted_once(clob, harness):
    _, local = clob
    h = await harness()
    coid, vid = await resting(h, local)
    kept = local.fill_resting(vid, "5")
    failed = local.fill_resting(vid, "7")
    await expect(lambda: h.status(coid) == (OrderStatus.PARTIALLY_FILLED, D(12)))
    local.set_trade_status(kept, "MINED")
    local.set_trade_status(failed, "MINED")
    await asyncio.sleep(0.2)
    assert h.corrections() == []
    polls = trade_polls(local)
    local.set_trade_status(failed, "FAILED")
    await expect(lambda: bool(h.corrections()), timeout_s=5)
    assert trade_polls(local) == polls  # the socket said it
    h.venue.execution.reconcile_soon()  # type: ignore[attr-defined]  # the poll says it again
    await expect(lambda: trade_polls(local) > polls)
    local.set_trade_status(failed, "FAILED")  # and the socket once more
    await h.settle()
    await asyncio.sleep(0.2)
    (bust,) = h.corrections()
    assert (bust["fill_id"], bust["kind"]) == (f"{failed}:{vid}", "bust")
    assert len(h.events("bust")) == 1 and len(h.fills()) == 3
    assert h.status(coid) == (OrderStatus.PARTIALLY_FILLED, D(5))
    assert_matches_venue(h, local)


async def test_a_key_the_channel_refuses_is_a_clear_error_and_the_poll_carries_on(
        clob, harness, caplog):
    _, local = clob
    caplog.set_level(logging.INFO)
    local.ws_auth = ("another-key", API_SECRET, API_PASSPHRASE)  # ours: wrong for the socket
    h = await harness(trades_poll_s=0.05)
    await expect(lambda: local.user_refused >= 3)
    # between a reconnect's handshake and the venue's refusal the socket is open for a
    # moment: wait for a moment between two attempts rather than read it at any instant
    await expect(lambda: not channel(h).up and local.user_sockets == 0)
    coid = h.order(1, Side.BUY, "20", "0.60", TimeInForce.GTC)
    await expect(lambda: h.status(coid)[0] is OrderStatus.OPEN)
    tid = local.fill_resting(vid_of(h, coid), "7")
    await expect(lambda: len(h.fills()) == 1)  # from the poll, every trades_poll_s
    assert h.fills()[0]["fill_id"] == f"{tid}:{vid_of(h, coid)}"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]  # said once, not per retry
    message = errors[0].getMessage()
    assert "refused our API credentials" in message and "INVALID AUTH" in message
    assert "api_key / api_secret / api_passphrase" in message
    assert API_SECRET not in caplog.text and API_PASSPHRASE not in caplog.text
    assert_matches_venue(h, local)


async def test_a_restart_mid_stream_books_each_fill_once(clob, harness):
    _, local = clob
    first = await harness()
    coid, vid = await resting(first, local)
    one = local.fill_resting(vid, "5")
    await expect(lambda: len(first.fills()) == 1)
    first.kill_before_commit = True
    two = local.fill_resting(vid, "7")  # over the socket; the process dies before the commit
    assert first.consumer is not None
    with pytest.raises(Killed):
        async with asyncio.timeout(10):
            await first.consumer
    assert len(first.fills()) == 1
    await first.close()

    second = await harness()
    await expect(lambda: len(second.fills()) == 2)  # the first poll of the new process
    await subscribed(second, local)
    for tid in (one, two):
        local.set_trade_status(tid, "MINED")  # both over the new socket
    three = local.fill_resting(vid, "3")
    await expect(lambda: len(second.fills()) == 3)
    await second.settle()
    await asyncio.sleep(0.2)
    assert sorted(f["fill_id"] for f in second.fills()) == sorted(
        f"{t}:{vid}" for t in (one, two, three))
    assert second.status(coid) == (OrderStatus.PARTIALLY_FILLED, D(15))
    assert_matches_venue(second, local)


async def test_a_cancellation_event_ends_the_order_after_its_fills(clob, harness):
    _, local = clob
    h = await harness()
    coid, vid = await resting(h, local)
    local.fill_resting(vid, "7")
    await expect(lambda: len(h.fills()) == 1)
    with local._lock:  # the venue cancels it (a person on the website, say)
        local._cancel(vid)
    await expect(lambda: h.status(coid)[0] is OrderStatus.CANCELLED, timeout_s=5)
    assert h.status(coid) == (OrderStatus.CANCELLED, D(7))
    row = h.ledger.order_row(coid)
    assert row is not None and "cancelled at the venue; 7 of 20 matched" in row["status_reason"]
    assert_matches_venue(h, local)
