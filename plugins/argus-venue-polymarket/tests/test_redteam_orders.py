"""Red-team round on the order path: what the venue answers a re-sent order it already
holds, through :class:`PolymarketExecution` against the local CLOB.

The real CLOB refuses a post of an order it holds already (same signed order, same hash)
with ``INVALID_ORDER_DUPLICATED`` ("order ... is invalid. Duplicated. Same order has
already been placed, can't be placed again"; docs "Error codes").  The local CLOB does
the same.  Such a refusal is proof the venue *has* the order, never a rejection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import attrs
import pytest
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.execution import PolymarketExecution
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.schemas import ClobTrade
from argus_venue_polymarket.testing import Fault, LocalClob, make_book

from argus_core.errors import OrderUnknown
from argus_core.models import (
    Fill,
    FillCorrection,
    Instrument,
    KnownOrder,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    VenueResume,
)
from argus_core.secrets import Secret

TOKEN = "1234"
IID = f"polymarket:{TOKEN}"
API_KEY, API_PASSPHRASE = "key-1", "pass"
API_SECRET = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


@pytest.fixture(autouse=True)
def _keys(pm_keys: Callable[[str, str, str], None]) -> None:
    pm_keys(API_KEY, API_SECRET, API_PASSPHRASE)


@pytest.fixture
def clob() -> Iterator[tuple[SnapshotServer, LocalClob]]:
    """A local CLOB: bids 150 @ 0.60, asks 40 @ 0.64 and 100 @ 0.66 (tick 0.01)."""
    books = [make_book(TOKEN, "0xcond-a", [("0.60", "150")],
                       [("0.64", "40"), ("0.66", "100")])]
    local = LocalClob({b["asset_id"]: b for b in books}, api_key=API_KEY,
                      api_secret=API_SECRET, api_passphrase=API_PASSPHRASE)
    srv = SnapshotServer([], books, clob=local).start()
    try:
        yield srv, local
    finally:
        srv.stop()


def _exec(url: str, **overrides: Any) -> PolymarketExecution:
    timings: dict[str, Any] = {"request_timeout_s": 2.0, "order_settle_s": 0.3,
                               "order_lookup_interval_s": 0.05, "heartbeat_interval_s": 0.1,
                               "order_max_attempts": 3}
    settings = PolymarketSettings(
        clob_url=url, private_key=Secret("$env:PM_TEST_KEY"), api_key=Secret("$env:PM_K"),
        api_secret=Secret("$env:PM_S"), api_passphrase=Secret("$env:PM_P"),
        user_channel=False, **(timings | overrides))
    meta = {"neg_risk": True, "fee_rate": "0.05", "fee_exponent": "1", "fee_taker_only": True}
    inst = Instrument("polymarket", TOKEN, kind="binary", tick_size="0.01",
                      lot_size="0.01", min_size="5", meta=meta)
    return PolymarketExecution(settings, {IID: inst}.get)


def _order(cid: str, qty: str, px: str, tif: TimeInForce, side: Side = Side.BUY) -> Order:
    return Order(cid, "polymarket", IID, side, qty, px, OrderType.LIMIT, tif)


def _updates(ex: PolymarketExecution) -> list[OrderUpdate]:
    return [u for u in ex._reports if isinstance(u, OrderUpdate)]


async def test_a_resent_order_the_venue_calls_duplicated_is_never_rejected(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """The venue rests the GTC order and a gateway answers 502; the read endpoints list
    it only later (past ``order_settle_s``), so the look-ups find nothing and the same
    signed order is sent again.  The venue refuses that post ``Duplicated``.  Before: the
    refusal was read as a rejection (REJECTED, final) while the order rested at the venue,
    unwatched.  Now the refusal proves the venue holds it: never REJECTED, the post is
    ``OrderUnknown`` and ``executions()`` keeps looking for it by hash until it shows."""
    srv, local = clob
    local.visible_after_s = 3600.0
    local.faults.append(Fault(status=502))
    ex = _exec(srv.url)
    with pytest.raises(OrderUnknown, match=r"(?i)duplicat"):
        await ex.submit(_order("gtc", "20", "0.60", TimeInForce.GTC))
    (vid,) = local.accepted
    assert local.accepted[vid] == 1 and local.duplicates[vid] == 1
    assert len(local.attempts) == 2  # no third post of an order the venue said it holds
    assert OrderStatus.REJECTED not in {u.status for u in _updates(ex)}
    assert "gtc" in ex.unknown
    local.visible_after_s = 0.0  # the venue lists it now: the look-up adopts it
    ex._reports.clear()
    await ex.poll_unknown()
    assert [(u.status, u.venue_order_id) for u in _updates(ex)] == [(OrderStatus.OPEN, vid)]
    assert ex.watched == {"gtc": vid} and local.orders[vid]["status"] == "LIVE"
    await ex.close()


async def test_a_resent_fok_the_venue_calls_duplicated_books_its_fill_once(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """The FOK executes; its answer is lost (502) and the order is listed only after
    ``order_settle_s``.  The re-send is refused ``Duplicated``.  Before: REJECTED, and the
    fill it took was never booked to it.  Now ``OrderUnknown``, then the look-up finds the
    order and its trade once the venue lists them: the fill once, never REJECTED."""
    srv, local = clob
    local.visible_after_s = 3600.0
    local.faults.append(Fault(status=502))
    ex = _exec(srv.url)
    with pytest.raises(OrderUnknown):
        await ex.submit(_order("fok", "30", "0.64", TimeInForce.FOK))
    (vid,) = local.accepted
    assert local.accepted[vid] == 1 and local.duplicates[vid] == 1
    local.visible_after_s = 0.0
    await ex.poll_unknown()
    fills = [f for f in ex._reports if not isinstance(f, OrderUpdate)]
    assert [(f.quantity, f.price) for f in fills] == [(Decimal(30), Decimal("0.64"))]
    assert OrderStatus.REJECTED not in {u.status for u in _updates(ex)}
    await ex.close()


async def test_a_sweeps_answer_fill_ends_with_the_venues_per_trade_fee(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """A FAK sweeps 40 @ 0.64 and 20 @ 0.66, settled as two trades.  The answer's one
    fill (60 @ 0.64666...) carries the fee of 60 shares at the average price, 0.68546;
    the venue charges each trade at its own price: 40 x 0.05 x 0.64 x 0.36 + 20 x 0.05 x
    0.66 x 0.34 = 0.68520.  The ledger's cash stays 0.00026 short of the venue's."""
    srv, local = clob
    local.split_taker_trades = True
    ex = _exec(srv.url)
    fills = await ex.submit(_order("fak", "60", "0.66", TimeInForce.IOC))
    items = [*fills, *await ex.poll_trades(0), *await ex.poll_trades(0)]
    venue_fee = sum((Decimal(t["size"]) * Decimal("0.05") * Decimal(t["price"])
                     * (1 - Decimal(t["price"])) for t in local.trades), Decimal(0))
    fees = {f.fill_id: f.fee for f in fills}
    for item in items:
        fee = getattr(item, "fee", None)
        if fee is not None and getattr(item, "bust", False) is False:
            fees[item.fill_id] = fee  # a fee correction replaces the booked fee
    assert sum(fees.values(), Decimal(0)) == venue_fee.quantize(Decimal("0.00001"))
    await ex.close()


# --- a sweep's per-trade fee: failed trades, duplicates, restarts, early trades -----------


def _trade_fee(t: dict[str, Any]) -> Decimal:
    """The venue's fee of one trade of the local CLOB (0.05 x p(1-p) a share, floored)."""
    price = Decimal(t["price"])
    return (Decimal(t["size"]) * Decimal("0.05") * price * (1 - price)).quantize(
        Decimal("0.00001"), rounding="ROUND_DOWN")


def _corrections(items: Any) -> list[FillCorrection]:
    return [c for c in items if isinstance(c, FillCorrection)]


def _fees_charged(fills: list[Fill], items: Any) -> Decimal:
    """Fees the ledger ends up charging, as the core applies corrections: a fee correction
    replaces the fill's fee; a part's bust refunds ``min(its fee, the fill's fee)`` then."""
    fee = {f.fill_id: f.fee for f in fills}
    refunded, parts = Decimal(0), set()
    for c in _corrections(items):
        if c.bust and c.part and (c.fill_id, c.part) not in parts:
            parts.add((c.fill_id, c.part))
            refunded += min(c.fee or Decimal(0), fee[c.fill_id])
        elif not c.bust:
            assert c.fee is not None
            fee[c.fill_id] = c.fee
    return sum(fee.values(), Decimal(0)) - refunded


@pytest.mark.parametrize("failed_first", [False, True])
async def test_a_sweeps_failed_trade_refunds_its_own_fee_after_the_per_trade_correction(
        clob: tuple[SnapshotServer, LocalClob], failed_first: bool) -> None:
    """The sweep's 20 @ 0.66 trade ends FAILED on chain: read after both trades were read
    matched (the fee corrected first), or already FAILED at the first read (the correction
    comes before that part's bust).  Either way the ledger charges exactly the standing
    trade's fee (40 @ 0.64: 0.4608), one correction, one bust.  Before: the fill kept the
    average price's fee, 0.68546, less the failed trade's 0.2244: 0.46106."""
    srv, local = clob
    local.split_taker_trades = True
    ex = _exec(srv.url)
    fills = await ex.submit(_order("fak", "60", "0.66", TimeInForce.IOC))
    items = list(ex._reports)
    if not failed_first:
        items += await ex.poll_trades(0)
    local.trades[1]["status"] = "FAILED"
    items += [*await ex.poll_trades(0), *await ex.poll_trades(0)]
    assert [c.bust for c in _corrections(items)] == [False, True]
    assert _fees_charged(fills, items) == _trade_fee(local.trades[0]) == Decimal("0.4608")
    await ex.close()


async def test_a_sweeps_repeated_trades_correct_its_fee_once(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """The sweep's trades are read again and again (every poll re-reads a minute; the user
    channel repeats frames): one fee correction, to the venue's 0.6852.  A single-level
    fill before it (30 @ 0.64) gets none: its fee is the venue's already."""
    srv, local = clob
    local.split_taker_trades = True
    ex = _exec(srv.url)
    single = await ex.submit(_order("one", "30", "0.64", TimeInForce.IOC))
    assert [(f.quantity, f.price, f.fee) for f in single] == [
        (Decimal(30), Decimal("0.64"), _trade_fee(local.trades[0]))]
    fills = await ex.submit(_order("fak", "40", "0.66", TimeInForce.IOC))  # 10 @ .64, 30 @ .66
    items = list(ex._reports)
    for _ in range(3):
        items += await ex.poll_trades(0)
    trades = [ClobTrade.parse(t) for t in local.trades]
    items += ex._book_trades([*trades, *trades])[0]  # the user channel's repeats
    (fix,) = _corrections(items)
    assert fix.fill_id == fills[0].fill_id and not fix.bust
    assert fix.fee == _trade_fee(local.trades[1]) + _trade_fee(local.trades[2]) != fills[0].fee
    await ex.close()


async def test_a_sweeps_trades_read_before_its_answer_correct_its_fee_at_the_answer(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """The venue executes the sweep and lists its trades before the post's answer arrives
    (they wait: the answer books them); the answer then books the fill and its fee
    correction at once, no later read needed."""
    srv, local = clob
    local.split_taker_trades = True
    local.hold_posts = True
    ex = _exec(srv.url)
    sending = asyncio.ensure_future(ex.submit(_order("fak", "60", "0.66", TimeInForce.IOC)))
    assert await asyncio.to_thread(local.post_received.wait, 30)
    assert await ex.poll_trades(0) == []  # held: the answer books them
    local.release_all()
    fills = await sending
    fixes = _corrections(ex._reports)
    assert [(c.fill_id, c.fee) for c in fixes] == [
        (fills[0].fill_id, sum(map(_trade_fee, local.trades), Decimal(0)))]
    assert _corrections(await ex.poll_trades(0)) == []
    await ex.close()


def _resume(ex: PolymarketExecution, order: Order, fill: Fill) -> None:
    vid = fill.fill_id.partition(":")[0]
    ex.resume(VenueResume((KnownOrder(attrs.evolve(order, status=OrderStatus.FILLED), vid,
                                      fill.quantity),),
                          {fill.fill_id: order.client_order_id}, fill.ts_ns,
                          {fill.fill_id: fill.fee}))


async def test_a_sweeps_fee_is_corrected_after_a_restart_from_the_trades_feed(
        clob: tuple[SnapshotServer, LocalClob]) -> None:
    """The process stops between the FAK's answer and its trades: the answer's trade list
    is gone.  The restarted one knows the fill (the ledger's fee, the FAK's filled
    quantity): the trades feed's taker trades of the order adding up to it are all of
    the answer's, so the fee is corrected to theirs, once."""
    srv, local = clob
    local.split_taker_trades = True
    order = _order("fak", "60", "0.66", TimeInForce.IOC)
    ex = _exec(srv.url)
    (fill,) = await ex.submit(order)
    await ex.close()
    again = _exec(srv.url)
    _resume(again, order, fill)
    items = [*await again.poll_trades(0), *await again.poll_trades(0)]
    assert [(c.fill_id, c.fee) for c in _corrections(items)] == [
        (fill.fill_id, sum(map(_trade_fee, local.trades), Decimal(0)))]
    await again.close()


async def test_a_resting_orders_sweep_keeps_its_fee_after_a_restart_and_says_so(
        clob: tuple[SnapshotServer, LocalClob], caplog: pytest.LogCaptureFixture) -> None:
    """A GTC order sweeps two levels and rests; after a restart its later maker fills
    count in its filled quantity, so its taker trades cannot be known complete: its fee
    stays as booked (no correction from a part of the trades) and a log line says so."""
    srv, local = clob
    local.split_taker_trades = True
    order = _order("gtc", "150", "0.66", TimeInForce.GTC)
    ex = _exec(srv.url)
    (fill,) = await ex.submit(order)
    await ex.close()
    again = _exec(srv.url)
    _resume(again, order, fill)
    with caplog.at_level(logging.WARNING, "argus_venue_polymarket"):
        items = [*await again.poll_trades(0), *await again.poll_trades(0)]
    assert _corrections(items) == []
    said = [r.getMessage() for r in caplog.records if "stays as booked" in r.getMessage()]
    assert len(said) == 1 and fill.fill_id in said[0]
    await again.close()
