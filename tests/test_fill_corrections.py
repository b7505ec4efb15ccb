"""Fill corrections (``FillCorrection``): a venue's final fee for a fill it reported, and a
trade that did not happen (a bust), through the core's ExecutionEngine in live mode over a
real ledger (``argus_testkit.engine.EngineHarness``: the executions stream consumed as the
Runner consumes it, kill-before-commit, a restart on the same directory).

Each scenario checks the fills table, the ``fill_corrections`` audit rows, the order's
filled quantity and status, and that the account (cash, position, fees, the slot's book)
is what the corrected fills say, also after a restart; a repeat changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

import pytest
from argus_testkit.engine import CASH, EngineHarness, Killed

from argus_core import (
    Bar,
    DataError,
    Fill,
    FillCorrection,
    Instrument,
    Intent,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    Venue,
    bust_id,
    busted_by,
)
from argus_core.models import MarketEvent

INST = Instrument("scripted", "X", kind="binary", tick_size="0.01", lot_size="1")
IID = INST.id


class ScriptedVenue(Venue):
    """A live venue whose executions are what the test puts in ``feed``."""

    name = "scripted"

    def __init__(self) -> None:
        self.feed: asyncio.Queue[Fill | OrderUpdate | FillCorrection] = asyncio.Queue()

    async def instruments(self) -> list[Instrument]:
        return [INST]

    async def stream(self) -> AsyncIterator[MarketEvent]:
        return
        yield  # pragma: no cover

    async def submit(self, order: Order) -> list[Fill]:
        return []  # acknowledged; fills come through executions()

    async def executions(self) -> AsyncIterator[Fill | OrderUpdate | FillCorrection]:
        while True:
            yield await self.feed.get()


def fill(fid: str, coid: str, qty: str, price: str = "0.40", fee: str = "0.10",
         side: Side = Side.BUY, ts: int = 10) -> Fill:
    return Fill(fid, coid, "scripted", IID, side, D(price), D(qty), D(fee), Liquidity.TAKER, ts)


async def start(run_dir: Path) -> EngineHarness:
    h = EngineHarness(run_dir, ScriptedVenue(), INST, D("0.40"))
    await h.start()
    return h


async def feed(h: EngineHarness, *items: Fill | OrderUpdate | FillCorrection) -> None:
    """Hand ``items`` to the engine and wait until it has applied (committed) them all."""
    venue = h.venue
    assert isinstance(venue, ScriptedVenue)
    for item in items:
        venue.feed.put_nowait(item)
    async with asyncio.timeout(5):
        while not venue.feed.empty():
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.02)  # the last item's transaction


def truth(h: EngineHarness) -> tuple[D, D, D]:
    """(position, cash, fees) from the ledger's fills as they stand (rebuilt by hand)."""
    pos, cash, fees = D(0), CASH, D(0)
    for row in h.fills():
        sign = 1 if row["side"] == "buy" else -1
        pos += sign * D(row["quantity"])
        cash -= sign * D(row["price"]) * D(row["quantity"]) + D(row["fee"])
        fees += D(row["fee"])
    return pos, cash, fees


def assert_account_is_the_ledger(h: EngineHarness) -> None:
    pos, cash, fees = truth(h)
    assert h.account.positions[IID].quantity == pos
    assert h.account.cash == cash and h.account.fees_paid == fees


@pytest.fixture
async def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


def test_a_correction_gives_exactly_one_of_fee_or_bust() -> None:
    with pytest.raises(DataError, match="exactly one"):
        FillCorrection("f", 1)
    with pytest.raises(DataError, match="exactly one"):
        FillCorrection("f", 1, fee=D("0.1"), bust=True)
    assert FillCorrection("f", 1, fee="0.03").fee == D("0.03")  # type: ignore[arg-type]
    for partial in ({"quantity": D(1), "price": D("0.4")},  # no part named
                    {"part": "t", "price": D("0.4")},  # no quantity
                    {"part": "t", "quantity": D(1)},  # no price
                    {"part": "t", "quantity": D(1), "price": D("0.4"), "bust": False,
                     "fee": D("0.01")}):  # a fee correction of a part: not a thing
        with pytest.raises(DataError, match="a part's bust"):
            FillCorrection("f", 1, bust=partial.pop("bust", True), **partial)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="quantity"):
        FillCorrection("f", 1, bust=True, part="t", quantity=D(0), price=D("0.4"))


async def test_a_bust_of_one_trade_of_a_fill_offsets_that_trade_only(run_dir: Path) -> None:
    """A taker order matched two trades and the venue reported them as one fill (a
    Polymarket post answer's ``<hash>:0``: 10 @ 0.43, 4 @ 0.40 + 6 @ 0.45); the 6 @ 0.45
    trade FAILED on chain.  Before: it could not be offset (the position stayed 10, a
    person told to check).  Now ``<fill>:bust:<trade>`` sells back 6 @ 0.45, its own fee
    refunded: what happened is 4 @ 0.40.  Once only, also after a restart; the order,
    no longer filled, ends CANCELLED."""
    h = await start(run_dir)
    coid = h.order(1, Side.BUY, "10", "0.45", TimeInForce.FOK)
    await h.settle()
    await feed(h, fill("0xh:0", coid, "10", "0.43", fee="0.20"))
    part = FillCorrection("0xh:0", 30, "trade t2 FAILED on chain", bust=True, part="t2",
                          quantity=D(6), price=D("0.45"), fee=D("0.12"))
    await feed(h, part)
    rows = {r["fill_id"]: r for r in h.fills()}
    offset = rows["0xh:0:bust:t2"]
    assert (offset["side"], D(offset["price"]), D(offset["quantity"]), D(offset["fee"])) == (
        "sell", D("0.45"), D(6), D("-0.12"))
    assert h.account.positions[IID].quantity == D(4)
    assert h.account.cash == CASH - D("4.30") - D("0.20") + D("2.70") + D("0.12")
    assert h.status(coid) == (OrderStatus.CANCELLED, D(4))
    (event,) = h.events("bust")
    assert "part t2" in event["reason"] and "0xh:0:bust:t2" in event["reason"]
    (audit,) = h.corrections()
    assert (audit["kind"], audit["old_value"], audit["new_value"]) == ("bust", "6", "0")
    await feed(h, part)  # polled again: nothing more
    assert len(h.fills()) == 2 and len(h.corrections()) == 1
    assert_account_is_the_ledger(h)
    await h.close()

    again = await start(run_dir)
    await feed(again, part)
    assert len(again.fills()) == 2 and again.account.positions[IID].quantity == D(4)
    # a part's fee refund never exceeds the fill's fee
    await feed(again, FillCorrection("0xh:0", 31, "t3 FAILED", bust=True, part="t3",
                                     quantity=D(1), price=D("0.40"), fee=D("5")))
    assert D({r["fill_id"]: r for r in again.fills()}["0xh:0:bust:t3"]["fee"]) == D("-0.20")
    assert_account_is_the_ledger(again)
    await again.close()


async def test_a_final_fee_is_written_on_the_fill_and_moves_the_cash_once(run_dir: Path
                                                                          ) -> None:
    h = await start(run_dir)
    coid = h.order(1, Side.BUY, "5", "0.40", TimeInForce.GTC)
    await h.settle()
    await feed(h, fill("f1", coid, "5", fee="0.10"))
    assert h.account.cash == CASH - D("2.10")
    book = h.account.books["s"]
    book_cash = book.cash

    await feed(h, FillCorrection("f1", 20, "venue's fee_cost", fee=D("0.03")))
    (row,) = h.fills()
    assert D(row["fee"]) == D("0.03")  # every reader sees the final fee
    assert h.account.cash == CASH - D("2.03") and h.account.fees_paid == D("0.03")
    assert book.cash == book_cash + D("0.07") and book.fees_paid == D("0.03")
    (audit,) = h.corrections()
    assert (audit["fill_id"], audit["kind"], audit["old_value"], audit["new_value"],
            audit["reason"], audit["ts_ns"]) == ("f1", "fee", "0.10", "0.03",
                                                 "venue's fee_cost", 20)

    await feed(h, FillCorrection("f1", 21, "again after a reconnect", fee=D("0.03")))
    assert len(h.corrections()) == 1 and h.account.cash == CASH - D("2.03")

    await feed(h, FillCorrection("f1", 22, "a later rebate", fee=D("-0.01")))
    assert [(c["old_value"], c["new_value"]) for c in h.corrections()] == [
        ("0.10", "0.03"), ("0.03", "-0.01")]
    assert h.account.cash == CASH - D("1.99")
    assert_account_is_the_ledger(h)
    assert h.status(coid) == (OrderStatus.FILLED, D(5))
    await h.close()

    again = await start(run_dir)  # a restart: the account from the ledger's fills
    assert again.account.cash == CASH - D("1.99")
    await feed(again, FillCorrection("f1", 23, "said again", fee=D("-0.01")))
    assert len(again.corrections()) == 2
    assert again.ledger.venue_resume("scripted").fill_fees == {"f1": D("-0.01")}
    assert_account_is_the_ledger(again)
    await again.close()


async def test_a_bust_is_offset_and_its_fok_order_ends_cancelled(run_dir: Path) -> None:
    h = await start(run_dir)
    coid = h.order(1, Side.BUY, "5", "0.40", TimeInForce.FOK)
    await h.settle()
    await feed(h, fill("t1:0xa", coid, "5", fee="0.10"))
    assert h.status(coid) == (OrderStatus.FILLED, D(5))

    await feed(h, FillCorrection("t1:0xa", 30, "trade FAILED on chain", bust=True))
    rows = {r["fill_id"]: r for r in h.fills()}
    offset = rows["t1:0xa:bust"]
    assert (offset["client_order_id"], offset["side"], D(offset["price"]),
            D(offset["quantity"]), D(offset["fee"]), offset["ts_ns"]) == (
        coid, "sell", D("0.40"), D(5), D("-0.10"), 30)
    assert h.account.positions[IID].quantity == 0
    assert h.account.cash == CASH and h.account.fees_paid == 0
    book = h.account.books["s"]  # the slot's book took the offset too (it started at 0)
    assert book.positions[IID].quantity == 0 and book.cash == 0 and book.fees_paid == 0
    status, filled = h.status(coid)
    assert (status, filled) == (OrderStatus.CANCELLED, D(0))
    row = h.ledger.order_row(coid)
    assert row is not None and "busted: trade FAILED on chain" in row["status_reason"]
    (event,) = h.events("bust")
    assert "t1:0xa" in event["reason"] and "trade FAILED on chain" in event["reason"]
    assert event["strategy"] == "s"
    (audit,) = h.corrections()
    assert (audit["kind"], audit["old_value"], audit["new_value"]) == ("bust", "5", "0")

    await feed(h, FillCorrection("t1:0xa", 31, "FAILED, polled again", bust=True),
               FillCorrection("t1:0xa", 32, "a fee after the bust", fee=D("0.02")))
    assert len(h.fills()) == 2 and len(h.corrections()) == 1 and len(h.events("bust")) == 1
    assert h.account.cash == CASH
    await h.close()

    again = await start(run_dir)
    await feed(again, FillCorrection("t1:0xa", 33, "FAILED, after the restart", bust=True))
    assert len(again.fills()) == 2 and len(again.corrections()) == 1
    assert again.account.positions[IID].quantity == 0 and again.account.cash == CASH
    assert again.status(coid) == (OrderStatus.CANCELLED, D(0))
    await again.close()


async def test_a_bust_of_part_of_a_working_order_nets_out_of_its_filled_quantity(
        run_dir: Path) -> None:
    h = await start(run_dir)
    coid = h.order(1, Side.BUY, "10", "0.40", TimeInForce.GTC)
    await h.settle()
    await feed(h, OrderUpdate(coid, OrderStatus.OPEN, 5, "v1"), fill("a", coid, "4"))
    assert h.status(coid) == (OrderStatus.PARTIALLY_FILLED, D(4))
    await feed(h, FillCorrection("a", 11, "failed", bust=True))
    assert h.status(coid) == (OrderStatus.OPEN, D(0))  # it still works at the venue
    await feed(h, fill("b", coid, "3", ts=12))
    assert h.status(coid) == (OrderStatus.PARTIALLY_FILLED, D(3))
    await feed(h, fill("c", coid, "7", ts=13))
    assert h.status(coid) == (OrderStatus.FILLED, D(10))
    assert h.account.positions[IID].quantity == D(10)
    assert_account_is_the_ledger(h)
    await h.close()


async def test_a_bust_after_the_position_was_traded_keeps_cash_and_quantity_true(
        run_dir: Path) -> None:
    """Bought 5 @ 0.40 (busted later), sold 5 @ 0.50: what happened is a short 5 @ 0.50."""
    h = await start(run_dir)
    buy = h.order(1, Side.BUY, "5", "0.40", TimeInForce.GTC)
    sell = h.order(2, Side.SELL, "5", "0.50", TimeInForce.GTC)
    await h.settle()
    await feed(h, fill("b", buy, "5"), fill("s", sell, "5", "0.50", "0.05", Side.SELL, 11))
    assert h.account.positions[IID].quantity == 0
    await feed(h, FillCorrection("b", 12, "failed", bust=True))
    assert h.account.positions[IID].quantity == D(-5)
    assert h.account.cash == CASH + D("2.50") - D("0.05")
    assert h.status(buy) == (OrderStatus.CANCELLED, D(0))
    assert h.status(sell) == (OrderStatus.FILLED, D(5))
    assert_account_is_the_ledger(h)
    await h.close()


async def test_a_busted_basket_leg_has_the_other_leg_unwound(run_dir: Path) -> None:
    """An arbitrage whose one leg's trade failed holds a naked leg: it is evened out."""
    h = await start(run_dir)
    other = Instrument("scripted", "Y", kind="binary", tick_size="0.01", lot_size="1")
    h.market.add_instruments([other])
    h.market.bars[other.id] = Bar(other.id, 1, 0.5, 0.5, 0.5, 0.5, 1.0)
    legs = [Intent("s", i, Side.BUY, quantity=D(5), limit_price=D(p),
                   order_type=OrderType.LIMIT, time_in_force=TimeInForce.FOK, basket_id="b1")
            for i, p in ((IID, "0.40"), (other.id, "0.50"))]
    with h.between_events():
        x, y = (o.client_order_id for o in h.engine._route(legs, 1))
    await h.settle()
    await feed(h, fill("fx", x, "5"), Fill("fy", y, "scripted", other.id, Side.BUY, D("0.50"),
                                           D(5), D(0), Liquidity.TAKER, 10))
    assert h.ledger.query("select * from orders where reduce_only = 1") == []
    await feed(h, FillCorrection("fx", 20, "failed", bust=True))
    await h.settle()
    assert h.status(x) == (OrderStatus.CANCELLED, D(0))
    (unwind,) = h.ledger.query("select * from orders where reduce_only = 1")
    assert (unwind["instrument_id"], unwind["side"], D(unwind["quantity"]),
            unwind["basket_id"]) == (other.id, "sell", D(5), "b1")
    assert h.events("unwind")
    await h.close()


async def test_a_correction_of_a_fill_the_ledger_does_not_have_is_said_once(run_dir: Path
                                                                            ) -> None:
    h = await start(run_dir)
    await feed(h, FillCorrection("ghost", 5, "FAILED", bust=True),
               FillCorrection("ghost", 6, "FAILED", bust=True),
               FillCorrection("ghost-2", 7, "fee_cost", fee=D("0.01")))
    assert h.fills() == [] and h.corrections() == []
    events = h.events("unknown_correction")
    assert len(events) == 2 and "ghost" in events[0]["reason"]
    assert "nothing booked" in events[0]["reason"]
    assert h.account.cash == CASH
    await h.close()


async def test_killed_before_a_correction_committed_it_is_applied_once_on_restart(
        run_dir: Path) -> None:
    first = await start(run_dir)
    coid = first.order(1, Side.BUY, "5", "0.40", TimeInForce.GTC)
    await first.settle()
    await feed(first, fill("f", coid, "5", fee="0.10"), fill("g", coid, "1", ts=11))
    first.kill_before_commit = True
    await feed(first, FillCorrection("f", 20, "fee_cost", fee=D("0.02")))
    assert first.consumer is not None
    with pytest.raises(Killed):
        async with asyncio.timeout(5):
            await first.consumer
    await first.close()

    second = await start(run_dir)
    assert second.corrections() == [] and {D(r["fee"]) for r in second.fills()} == {D("0.10")}
    await feed(second, FillCorrection("f", 20, "fee_cost", fee=D("0.02")),
               FillCorrection("g", 21, "failed", bust=True))
    second.kill_before_commit = True
    await feed(second, FillCorrection("g", 22, "failed again", bust=True))
    await second.close()

    third = await start(run_dir)
    assert [c["kind"] for c in third.corrections()] == ["fee", "bust"]
    assert third.account.cash == CASH - D("2.00") - D("0.02")
    assert third.status(coid) == (OrderStatus.FILLED, D(5))
    assert_account_is_the_ledger(third)
    await third.close()


async def test_a_restarted_venue_learns_fees_as_they_stand_and_looks_before_a_bust(
        run_dir: Path) -> None:
    h = await start(run_dir)
    coid = h.order(1, Side.BUY, "5", "0.40", TimeInForce.GTC)
    await h.settle()
    await feed(h, fill("f", coid, "5", ts=10), FillCorrection("f", 99, "failed", bust=True))
    resume = h.ledger.venue_resume("scripted")
    assert resume.newest_fill_ts_ns == 10 and set(resume.fill_ids) == {"f", "f:bust"}
    assert resume.fill_fees == {"f": D("0.10"), "f:bust": D("-0.10")}
    await h.close()


@pytest.mark.parametrize(("fill_id", "part"), [
    ("T-1", ""), ("T-1", "trade-9"), ("0xabc:0", "5d1e-77"), ("a:bust", ""),
    ("x:y", "p:q"),
])
def test_a_bust_offset_names_the_fill_it_takes_back(fill_id: str, part: str) -> None:
    """One convention for a bust's offset id, made and read by the core's two helpers
    (the ledger, the metrics, the tearsheet and the portfolio's TCA each parsed it)."""
    assert busted_by(bust_id(fill_id, part)) == (fill_id, part)
    assert busted_by("T-1") is None and busted_by("0xabc:0") is None
    assert busted_by("T-1:bust:") is None  # no part named
