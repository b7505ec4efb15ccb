"""Held-out fault audit of the fill side, through the core's ExecutionEngine in live mode
over a real ledger, against the local CLOB (signed posts, matching, ``GET /data/trades``).

Each scenario ends with every match booked exactly once (the post answer's ``<order
hash>:0`` and the trades feed's ``<trade id>:<order hash>`` never both), the account's
position and cash equal to what the CLOB's trades say, and a clear record of anything odd.
Scenarios: a taker match reported by the post answer and again by every trades poll; a
match listed by the trades feed before the post's answer arrives; a trade of an order this
run never placed (a person on the same account); a partial fill whose rest fills while
the cancel's answer is lost; a match listed after the order was marked cancelled; the
process killed after a fill arrived and before it was committed; a booked trade that
ends FAILED on chain (busted: offset once, also across a restart and a kill before the
bust's commit), MINED / CONFIRMED / RETRYING changing nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from argus_testkit.engine import CASH, EngineHarness, Harnesses, Killed, expect
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.testing import Fault, LocalClob, make_book
from argus_venue_polymarket.venue import PolymarketVenue

from argus_core.models import (
    Instrument,
    OrderStatus,
    Side,
    TimeInForce,
)
from argus_core.secrets import Secret

TOKEN = "1234"
IID = f"polymarket:{TOKEN}"
API_KEY, API_PASSPHRASE = "key-1", "pass"
API_SECRET = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
META = {"neg_risk": True, "fee_rate": "0.05", "fee_exponent": "1", "fee_taker_only": True}
INSTRUMENT = Instrument("polymarket", TOKEN, kind="binary", tick_size="0.01",
                        lot_size="0.01", min_size="5", meta=META)


def venue_truth(clob: LocalClob, venue: PolymarketVenue) -> tuple[D, D, set[str]]:
    """(position, cash, fill ids) from the CLOB's trades of our account: our taker orders
    and our maker orders in others' trades (fees by the market's schedule: the CLOB's
    trades carry ``fee_rate_bps`` only)."""
    schedule = venue.fee_schedule(IID)
    pos, cash, ids = D(0), CASH, set()
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
            ids.add(vid)
    return pos, cash, ids


def assert_matches_venue(h: EngineHarness, clob: LocalClob) -> None:
    pos, cash, vids = venue_truth(clob, h.venue)  # type: ignore[arg-type]
    every = h.fills()
    ids = {f["fill_id"] for f in every}
    booked = [f for f in every if not f["fill_id"].endswith(":bust")
              and f"{f['fill_id']}:bust" not in ids]  # a busted fill and its offset: none
    assert len({f["fill_id"] for f in booked}) == len(booked)
    assert {f["fill_id"].rpartition(":")[2] if not f["fill_id"].endswith(":0")
            else f["fill_id"][:-2] for f in booked} == vids
    assert h.account.positions[IID].quantity == pos
    assert h.account.cash == cash


@pytest.fixture(autouse=True)
def _keys(pm_keys: Callable[[str, str, str], None]) -> None:
    pm_keys(API_KEY, API_SECRET, API_PASSPHRASE)


@pytest.fixture
def clob() -> Iterator[tuple[SnapshotServer, LocalClob]]:
    """A local CLOB: asks 40 @ 0.64 and 100 @ 0.66, bids 150 @ 0.60."""
    books = [make_book(TOKEN, "0xcond-a", [("0.60", "150")],
                       [("0.64", "40"), ("0.66", "100")])]
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
    """``await harness(**settings)``: an engine on a Polymarket venue of the local CLOB."""
    pool = Harnesses(tmp_path / "run")

    async def make(**overrides: Any) -> EngineHarness:
        timings: dict[str, Any] = {"request_timeout_s": 2.0, "order_settle_s": 2.0,
                                   "order_lookup_interval_s": 0.05, "trades_poll_s": 0.05,
                                   "heartbeat_interval_s": 0.1, "order_give_up_s": 5.0}
        settings = PolymarketSettings(
            clob_url=clob[0].url, private_key=Secret("$env:PM_TEST_KEY"),
            api_key=Secret("$env:PM_K"), api_secret=Secret("$env:PM_S"),
            api_passphrase=Secret("$env:PM_P"), user_channel=False,  # the poll's path
            **(timings | overrides))
        venue = PolymarketVenue(settings)
        venue._instruments[IID] = INSTRUMENT
        return await pool.start(venue, INSTRUMENT, D("0.64"))

    yield make
    await pool.close()



def vid_of(h: EngineHarness, coid: str) -> str:
    row = h.ledger.order_row(coid)
    assert row is not None and row["venue_order_id"]
    return str(row["venue_order_id"])


async def test_a_taker_match_in_the_answer_and_in_every_trades_poll_is_booked_once(
        clob, harness):
    _, local = clob
    h = await harness()
    coid = h.order(1, Side.BUY, "60", "0.66")  # FAK: 40 @ 0.64 and 20 @ 0.66
    await expect(lambda: h.status(coid) == (OrderStatus.FILLED, D(60)))
    await h.settle()
    await asyncio.sleep(0.3)  # several trades polls re-read the match
    assert [f["fill_id"] for f in h.fills()] == [f"{vid_of(h, coid)}:0"]
    assert_matches_venue(h, local)


async def test_a_match_listed_before_the_posts_answer_is_booked_once(clob, harness):
    _, local = clob
    local.hold_posts = True  # executed at once; the answer waits
    h = await harness()
    coid = h.order(1, Side.BUY, "30", "0.64")
    await expect(lambda: bool(local.trades))
    await asyncio.sleep(0.3)  # trades polls see the match of an order still in flight
    assert h.fills() == []
    local.release_all()
    await expect(lambda: h.status(coid) == (OrderStatus.FILLED, D(30)))
    await h.settle()
    await asyncio.sleep(0.3)
    assert len(h.fills()) == 1
    assert_matches_venue(h, local)


async def test_a_trade_of_an_order_this_run_never_placed_is_said_once(clob, harness, caplog):
    _, local = clob
    caplog.set_level(logging.WARNING)
    h = await harness()
    local.trades.append(local._trade("trade-manual", "0x" + "ee" * 32, TOKEN, "BUY", D(5),
                                     D("0.64"), "TAKER", owner=API_KEY, makers=[]))
    await expect(lambda: bool(h.events("unknown_fill")))
    await asyncio.sleep(0.3)  # more polls read it again: said once
    (event,) = h.events("unknown_fill")
    assert "trade-manual" in event["reason"] and "unknown order" in event["reason"]
    assert h.fills() == [] and IID not in h.account.positions


async def test_rest_fills_while_the_cancel_answer_is_lost(clob, harness):
    _, local = clob
    h = await harness()
    coid = h.order(1, Side.BUY, "50", "0.64", TimeInForce.GTC)  # 40 at once, 10 rest
    await expect(lambda: h.status(coid) == (OrderStatus.PARTIALLY_FILLED, D(40)))
    await h.settle()
    local.fill_resting(vid_of(h, coid), "10")
    local.read_faults.setdefault("DELETE /order", deque()).append(("status", 503))
    await h.cancel(coid)
    (failed,) = h.events("cancel_failed")
    assert coid in failed["reason"] and "MATCHED" in failed["reason"]
    await expect(lambda: h.status(coid) == (OrderStatus.FILLED, D(50)))
    assert_matches_venue(h, local)


async def test_a_cancel_answered_503_without_acting_is_sent_again_not_failed(clob, harness):
    """The DELETE is answered 503 and the CLOB did not act: the venue sends it again (it
    is idempotent) and the order ends cancelled; no ``cancel_failed``, nothing left live
    at the CLOB (before: ``cancel_failed`` and the order LIVE there)."""
    _, local = clob
    h = await harness()
    coid = h.order(1, Side.BUY, "20", "0.60", TimeInForce.GTC)  # rests
    await expect(lambda: h.status(coid)[0] is OrderStatus.OPEN)
    await h.settle()
    local.read_faults.setdefault("DELETE /order", deque()).append(("status", 503))
    await h.cancel(coid)
    await expect(lambda: h.status(coid)[0] is OrderStatus.CANCELLED)
    assert h.events("cancel_failed") == [] and local.count("DELETE", "/order") == 2
    assert local.orders[vid_of(h, coid)]["status"] == "CANCELED" and h.fills() == []


async def test_a_match_listed_after_the_order_was_marked_cancelled_is_booked(clob, harness):
    _, local = clob
    h = await harness()
    coid = h.order(1, Side.BUY, "20", "0.60", TimeInForce.GTC)  # rests
    await expect(lambda: h.status(coid)[0] is OrderStatus.OPEN)
    await h.settle()
    vid = vid_of(h, coid)
    await h.cancel(coid)
    await expect(lambda: h.status(coid)[0] is OrderStatus.CANCELLED)
    # A maker match made just before the cancel, listed only now.
    local.fill_resting(vid, "7")
    await expect(lambda: len(h.fills()) == 1)
    assert h.status(coid) == (OrderStatus.CANCELLED, D(7))
    assert_matches_venue(h, local)


async def test_killed_after_the_fill_arrived_before_the_commit_books_it_once_on_restart(
        clob, harness):
    _, local = clob
    first = await harness()
    first.kill_before_commit = True
    coid = first.order(1, Side.BUY, "60", "0.66")
    assert first.consumer is not None
    with pytest.raises(Killed):
        async with asyncio.timeout(10):
            await first.consumer
    await first.settle()
    assert first.fills() == []
    await first.close()

    second = await harness()
    await expect(lambda: second.status(coid) == (OrderStatus.FILLED, D(60)))
    await asyncio.sleep(0.3)  # more trades polls re-read the match
    assert len(second.fills()) == 1
    assert_matches_venue(second, local)


async def test_a_maker_trade_that_fails_on_chain_is_busted_once_the_others_stand(
        clob, harness, caplog):
    _, local = clob
    caplog.set_level(logging.WARNING)
    h = await harness()
    coid = h.order(1, Side.BUY, "20", "0.60", TimeInForce.GTC)  # rests
    await expect(lambda: h.status(coid)[0] is OrderStatus.OPEN)
    await h.settle()
    vid = vid_of(h, coid)
    kept = local.fill_resting(vid, "5")
    failed = local.fill_resting(vid, "7")
    await expect(lambda: h.status(coid) == (OrderStatus.PARTIALLY_FILLED, D(12)))
    for status in ("MINED", "CONFIRMED"):
        local.set_trade_status(kept, status)
    local.set_trade_status(failed, "RETRYING")
    await asyncio.sleep(0.3)  # polls read them: nothing changes, RETRYING is said once
    assert len(h.fills()) == 2 and h.corrections() == []
    assert caplog.text.count(f"trade {failed} is RETRYING") == 1
    local.set_trade_status(failed, "FAILED")
    await expect(lambda: bool(h.corrections()))
    await asyncio.sleep(0.3)  # more polls read the FAILED trade again
    (bust,) = h.corrections()
    assert (bust["fill_id"], bust["kind"]) == (f"{failed}:{vid}", "bust")
    assert "FAILED on chain" in bust["reason"]
    assert len(h.fills()) == 3 and len(h.events("bust")) == 1
    assert h.status(coid) == (OrderStatus.PARTIALLY_FILLED, D(5))
    assert_matches_venue(h, local)


async def test_a_taker_match_of_the_post_answer_that_fails_cancels_its_order(clob, harness):
    _, local = clob
    h = await harness()
    coid = h.order(1, Side.BUY, "30", "0.64")  # FAK: 30 @ 0.64, one trade
    await expect(lambda: h.status(coid) == (OrderStatus.FILLED, D(30)))
    await h.settle()
    (trade,) = local.trades
    local.set_trade_status(trade["id"], "FAILED")
    await expect(lambda: bool(h.corrections()))
    await asyncio.sleep(0.3)
    assert [c["fill_id"] for c in h.corrections()] == [f"{vid_of(h, coid)}:0"]
    assert h.status(coid) == (OrderStatus.CANCELLED, D(0))
    row = h.ledger.order_row(coid)
    assert row is not None and "FAILED on chain" in row["status_reason"]
    assert h.account.positions[IID].quantity == 0 and h.account.cash == CASH
    assert_matches_venue(h, local)


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "after-a-restart"])
async def test_one_failed_trade_of_a_post_answers_sweep_is_busted_alone(clob, harness,
                                                                        restart):
    """A FAK sweeps two levels (40 @ 0.64, 20 @ 0.66) and the venue settles them as two
    trades; the post answer reports one fill, ``<hash>:0``, of 60.  The 0.66 trade ends
    FAILED on chain.  Before: that part could not be told apart (an error saying "check
    the position"; the ledger kept 60).  Now that trade's part is offset (20 @ 0.66, its
    fee refunded): the ledger holds what happened, 40 @ 0.64, once, also when the
    FAILED trade is first read after a restart (the answer's trade list is gone then)."""
    _, local = clob
    local.split_taker_trades = True
    h = await harness()
    coid = h.order(1, Side.BUY, "60", "0.66")  # FAK
    await expect(lambda: h.status(coid) == (OrderStatus.FILLED, D(60)))
    await h.settle()
    assert [D(t["size"]) for t in local.trades] == [D(40), D(20)]
    vid = vid_of(h, coid)
    if restart:
        await h.close()
        h = await harness()
    local.set_trade_status(local.trades[1]["id"], "FAILED")
    await expect(lambda: any(c["kind"] == "bust" for c in h.corrections()))
    await asyncio.sleep(0.3)  # more polls read the FAILED trade again
    # the sweep's fee corrected to the venue's per-trade fees (once), and the part busted
    fixes = [c for c in h.corrections() if c["kind"] == "fee"]
    (bust,) = [c for c in h.corrections() if c["kind"] != "fee"]
    assert (bust["fill_id"], bust["kind"], bust["old_value"]) == (f"{vid}:0", "bust", "20")
    assert [(c["fill_id"], D(c["new_value"])) for c in fixes] == [(f"{vid}:0", D("0.6852"))]
    offset = {f["fill_id"]: f for f in h.fills()}[f"{vid}:0:bust:{local.trades[1]['id']}"]
    assert (offset["side"], D(offset["price"]), D(offset["quantity"])) == ("sell", D("0.66"),
                                                                          D(20))
    assert h.status(coid) == (OrderStatus.CANCELLED, D(40))
    assert h.account.positions[IID].quantity == D(40)
    fee = h.venue.fee_schedule(IID).fee(D("0.66"), D(20), maker=False)
    assert D(offset["fee"]) == -fee  # that trade's own fee, refunded
    pos, cash, _ = venue_truth(local, h.venue)  # type: ignore[arg-type]
    assert h.account.positions[IID].quantity == pos
    # The answer's fill was booked at the sweep's average price with the fee of 60 at it;
    # its fee was corrected to the venue's per-trade fees (the curve is not linear in the
    # price): the cash is the venue's, but for the average price's last digit (1e-28).
    assert abs(h.account.cash - cash) < D("1e-20")


async def test_a_bust_killed_before_its_commit_is_made_once_after_a_restart(clob, harness):
    _, local = clob
    first = await harness()
    coid = first.order(1, Side.BUY, "20", "0.60", TimeInForce.GTC)  # rests
    await expect(lambda: first.status(coid)[0] is OrderStatus.OPEN)
    await first.settle()
    failed = local.fill_resting(vid_of(first, coid), "7")
    await expect(lambda: len(first.fills()) == 1)
    first.kill_before_commit = True
    local.set_trade_status(failed, "FAILED")
    assert first.consumer is not None
    with pytest.raises(Killed, match="correcting"):
        async with asyncio.timeout(10):
            await first.consumer
    assert first.corrections() == [] and len(first.fills()) == 1
    await first.close()

    second = await harness()
    await expect(lambda: bool(second.corrections()))
    await asyncio.sleep(0.3)  # more polls read the FAILED trade again
    assert len(second.corrections()) == 1 and len(second.fills()) == 2
    assert second.status(coid) == (OrderStatus.OPEN, D(0))
    assert second.account.positions[IID].quantity == 0 and second.account.cash == CASH
    await second.close()

    third = await harness()  # the trade is still listed FAILED: nothing more
    await asyncio.sleep(0.4)
    assert len(third.corrections()) == 1 and len(third.fills()) == 2
    assert third.account.cash == CASH
    assert_matches_venue(third, local)


# -- a red team of the venue's answers (each failed before its fix) -----------------------------
async def test_a_matched_answer_at_a_price_the_order_cannot_have_is_asked_about(clob, harness):
    """BUY 60 FAK at 0.66 answered matched with 100 cash for 1 share: a fill at 100 on a
    binary contract was booked.  Now the answer is malformed, the venue is asked, and
    what it holds is booked."""
    _, local = clob
    local.faults.append(Fault(patch=(("makingAmount", "100"), ("takingAmount", "1"))))
    h = await harness()
    coid = h.order(1, Side.BUY, "60", "0.66")
    await expect(lambda: h.status(coid)[0] is OrderStatus.FILLED, 10)
    await h.settle()
    assert all(D(f["price"]) <= D("0.66") for f in h.fills())
    assert_matches_venue(h, local)


async def test_a_refusal_that_says_it_matched_is_asked_about_not_rejected(clob, harness):
    """``success: false`` beside ``status: matched`` and its amounts: the order was
    REJECTED and its fill lost for good (the trades feed skipped it as reported by the
    answer).  Now the answer is malformed and the venue is asked: the fill is booked."""
    _, local = clob
    local.faults.append(Fault(patch=(("success", False), ("errorMsg", ""))))
    h = await harness()
    coid = h.order(1, Side.BUY, "60", "0.66")
    await expect(lambda: h.status(coid)[0] is OrderStatus.FILLED, 10)
    await h.settle()
    assert local.trades
    assert_matches_venue(h, local)


def _extra_trade(local: LocalClob, item: dict[str, Any]) -> list[int]:
    """Serve ``item`` first in every ``GET /data/trades`` page; returns a list that grows
    by one per page served."""
    real, served = local._trades, []

    def trades(query: Any) -> Any:
        out = real(query)
        served.append(1)
        out["data"] = [{"match_time": str(int(time.time()))} | item, *out["data"]]
        return out

    local._trades = trades  # type: ignore[method-assign]
    return served


@pytest.mark.parametrize("bad", [{"maker_orders": 5}, {"match_time": "\u00b2"},
                                 {"size": "1e26"}], ids=["makers-number", "time-digit",
                                                         "size-1e26"])
async def test_a_malformed_trade_is_skipped_and_the_others_are_booked(clob, harness, bad):
    """One trade item of the wrong shape threw the whole page away every poll (a number
    for ``maker_orders``), or killed the polling task for the rest of the run, silently
    (a size of 1e26 overflowed the fee's rounding): no later fill was booked."""
    _, local = clob
    h = await harness()
    coid = h.order(1, Side.SELL, "10", "0.70", tif=TimeInForce.GTC)  # rests
    await h.settle()
    await expect(lambda: h.status(coid)[0] is OrderStatus.OPEN, 5)
    item = {"id": "bad-1", "asset_id": TOKEN, "side": "BUY", "size": "1", "price": "0.5",
            "status": "MATCHED", "taker_order_id": vid_of(h, coid), "trader_side": "TAKER",
            "owner": API_KEY, "maker_orders": []} | bad
    served = _extra_trade(local, item)
    await expect(lambda: len(served) >= 2, 5)
    local.fill_resting(vid_of(h, coid), "4")
    await expect(lambda: h.status(coid) == (OrderStatus.PARTIALLY_FILLED, D(4)), 5)
    await h.settle()
    assert len(h.fills()) == 1


async def test_an_unreadable_expiration_of_an_ended_order_only_words_its_reason(
        clob, harness):
    """``expiration: "1.7e9"`` on an order the venue ended raised out of the polling task:
    the order never ended and no later fill was booked."""
    _, local = clob
    h = await harness()
    gone = h.order(1, Side.BUY, "10", "0.50", tif=TimeInForce.GTC)
    other = h.order(2, Side.SELL, "10", "0.70", tif=TimeInForce.GTC)
    await h.settle()
    await expect(lambda: h.status(gone)[0] is OrderStatus.OPEN
                and h.status(other)[0] is OrderStatus.OPEN, 5)
    with local._lock:
        local.orders[vid_of(h, gone)] |= {"status": "CANCELED", "expiration": "1.7e9"}
    await expect(lambda: h.status(gone)[0] is OrderStatus.CANCELLED, 5)
    local.fill_resting(vid_of(h, other), "4")
    await expect(lambda: h.status(other) == (OrderStatus.PARTIALLY_FILLED, D(4)), 5)
