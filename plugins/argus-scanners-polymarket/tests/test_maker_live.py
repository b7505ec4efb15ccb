"""``pm_maker`` live, through the real core ``Runner`` and the Polymarket venue, against the
venue plugin's local exchange (``SnapshotServer`` + ``LocalClob``: Gamma, CLOB REST and
the market websocket on 127.0.0.1; signed orders matched against the books).

The first quote's post is executed by the exchange and its answer lost (the connection
reset mid-answer); a maker fill takes part of it; the market websocket then drops: the
book goes stale, the strategy cancels its quote, and after the reconnect's snapshot
posts a new one, which is partly filled too.  The exchange's record and the ledger must
agree: each order acted on once and booked once, each maker fill booked once, the
cancelled order ended with its partial fill, one working quote at the end.  Quoting both
sides (short allowed), flow against the bid cancels the bid alone at the
exchange: the partly filled ask is the same order, still live, never cancelled.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("argus_venue_polymarket")
sys.path.insert(0, str(Path(__file__).parent))  # live_snapshot, beside this file

from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.signing import client_order_metadata
from argus_venue_polymarket.testing import (
    HARDHAT_KEY,
    Fault,
    LocalClob,
    make_book,
)
from live_snapshot import iso_in, snapshot_books, snapshot_events

from argus_core.config import parse_config
from argus_core.ledger import Ledger
from argus_core.runner import Runner

API_KEY, API_PASSPHRASE = "maker-key-1", "maker-pass"
API_SECRET = base64.urlsafe_b64encode(b"argus-local-clob-test-secret-32b").decode()
FED = "481717"


@pytest.fixture(autouse=True)
def _live_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The throwaway key and API credentials, referenced only as ``$env:``."""
    monkeypatch.setenv("PM_LIVE_KEY", HARDHAT_KEY)
    monkeypatch.setenv("PM_LIVE_API_KEY", API_KEY)
    monkeypatch.setenv("PM_LIVE_API_SECRET", API_SECRET)
    monkeypatch.setenv("PM_LIVE_API_PASSPHRASE", API_PASSPHRASE)


@pytest.fixture
def exchange() -> Iterator[tuple[SnapshotServer, LocalClob, str, dict[str, Any]]]:
    """The example snapshot with the Fed "no change" token's book widened to
    0.60 / 0.66 (room for a quote inside); returns the servers, the token and its book."""
    events, books = snapshot_events(), snapshot_books()  # end dates a month from now
    fed = next(e for e in events if e["id"] == FED)
    market = fed["markets"][2]
    token = json.loads(market["clobTokenIds"])[0]
    wide = _wide(token, market["conditionId"])
    books = [wide if b["asset_id"] == token else b for b in books]
    clob = LocalClob({b["asset_id"]: b for b in books}, api_key=API_KEY,
                     api_secret=API_SECRET, api_passphrase=API_PASSPHRASE)
    srv = SnapshotServer(events, books, ws_port=0, clob=clob).start()
    try:
        yield srv, clob, token, wide
    finally:
        srv.stop()


def _wide(token: str, condition_id: str, bid_size: str = "150", ask_size: str = "150"
          ) -> dict[str, Any]:
    """The token's book at 0.60 / 0.66, stamped now (the core judges staleness by it)."""
    return make_book(token, condition_id, [("0.60", bid_size)], [("0.66", ask_size)],
                     tick="0.01", neg_risk=True, last="0.63",
                     timestamp=str(time.time_ns() // 10**6))


def _config(srv: SnapshotServer, token: str, **pm_maker: Any) -> Any:
    return parse_config({
        "argus": {"plugins": ["polymarket", "pmscanners"], "mode": "live"},
        "run": {"venue": "polymarket", "strategies": ["pm_maker"], "risk_checks": [],
                "starting_cash": "1000"},
        "plugins": {
            "polymarket": {
                "gamma_url": srv.url, "clob_url": srv.url, "ws_url": srv.ws_url,
                "private_key": "$env:PM_LIVE_KEY", "api_key": "$env:PM_LIVE_API_KEY",
                "api_secret": "$env:PM_LIVE_API_SECRET",
                "api_passphrase": "$env:PM_LIVE_API_PASSPHRASE",
                "settlement_poll_s": 0, "trades_poll_s": 0.05, "heartbeat_interval_s": 0.1,
                "reconnect_min_s": 0.2, "reconnect_max_s": 0.5},
            "pmscanners": {"pm_maker": {"tokens": [token], "min_requote_s": 0.1,
                                        **pm_maker}}}},
        Path("live.toml"))


async def _until(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _orders(runner: Runner) -> list[dict[str, Any]]:
    return list(runner.ledger.query("select * from orders order by ts_ns, client_order_id"))


def _vid(clob: LocalClob, client_order_id: str) -> str:
    (vid,) = [v for v, r in clob.orders.items()
              if r["metadata"] == client_order_metadata(client_order_id)]
    return vid


@pytest.mark.slow
async def test_disconnects_and_partial_fills_book_every_order_and_fill_once(
        exchange: Any, tmp_path: Path) -> None:
    srv, clob, token, wide = exchange
    iid = f"polymarket:{token}"
    clob.faults.append(Fault(reset=True))  # the first quote: acted on, answer lost
    runner = Runner(_config(srv, token), tmp_path / "run", live_confirmed=True)
    strategy: Any = runner.asm.strategies["pm_maker"]
    task = asyncio.create_task(runner.run())

    def book_frame() -> int:
        """The token's book again, stamped now (as the channel sends after any change on
        it); also what a reconnect's subscription is answered with."""
        fresh = srv.books[token] = _wide(token, wide["market"])
        return srv.push([dict(fresh, event_type="book")])

    def statuses() -> list[str]:
        return [o["status"] for o in _orders(runner)]

    # 1. the quote goes out once; the lost answer is resolved by asking the exchange
    await _until(lambda: statuses() == ["open"], "the first quote acknowledged")
    (first,) = _orders(runner)
    vid1 = _vid(clob, first["client_order_id"])
    assert (first["side"], Decimal(first["limit_price"]), Decimal(first["quantity"]),
            first["time_in_force"]) == ("buy", Decimal("0.61"), Decimal(5), "gtc")
    # 2. a maker fill takes 2 of 5; the strategy keeps the remaining 3 resting
    trade1 = clob.fill_resting(vid1, "2")
    await _until(lambda: runner.n_fills == 1, "the first maker fill")
    book_frame()
    await _until(lambda: strategy.books[iid].bid is not None
                 and strategy.books[iid].bid.filled == 2, "the strategy seeing the fill")
    assert len(clob.posts) == 1  # no second quote after the partial fill
    # 3. the market websocket drops: stale book -> the quote is cancelled; after the
    #    reconnect's snapshot a new quote goes out
    for conn in list(srv._ws_conns):  # (a thread: the close handshake needs this loop)
        await asyncio.to_thread(conn.close)
    await _until(lambda: statuses()[:1] == ["cancelled"], "the quote cancelled while blind")
    assert len(clob.posts) == 1  # nothing posted while the book was stale
    # reconnected, the channel's snapshot and later changes make the book live again
    for _ in range(100):
        if len(clob.posts) == 2:
            break
        book_frame()
        await asyncio.sleep(0.2)
    assert len(clob.posts) == 2, "no new quote after the reconnect"
    await _until(lambda: statuses() == ["cancelled", "open"], "the new quote acknowledged")
    second = _orders(runner)[1]
    vid2 = _vid(clob, second["client_order_id"])
    # 4. the new quote is partly filled too
    trade2 = clob.fill_resting(vid2, "1")
    await _until(lambda: runner.n_fills == 2, "the second maker fill")
    book_frame()
    await _until(lambda: strategy.books[iid].bid is not None
                 and strategy.books[iid].bid.filled == 1, "the strategy seeing it")
    polls = clob.count("GET", "/data/trades")
    await _until(lambda: clob.count("GET", "/data/trades") >= polls + 3, "three more polls")
    runner.max_events = runner.seq + 1
    assert book_frame() == 1
    summary = await asyncio.wait_for(task, 20)

    # the exchange's record
    assert len(clob.attempts) == 2 and len(clob.posts) == 2  # nothing re-sent
    assert sorted(clob.accepted.values()) == [1, 1]  # each order acted on once
    assert all(item["orderType"] == "GTC" for _, items in clob.posts for item in items)
    assert clob.orders[vid1]["status"] == "CANCELED"
    assert [v for v, r in clob.orders.items() if r["status"] == "LIVE"] == [vid2]
    assert clob.bad_signatures == [] and clob.auth_failures == []
    # ... and the ledger agree
    with Ledger.in_dir(tmp_path / "run") as ledger:
        orders = list(ledger.query("select * from orders order by ts_ns, client_order_id"))
        fills = list(ledger.query("select * from fills order by ts_ns"))
        positions = list(ledger.query("select * from positions"))
        risk = list(ledger.query("select check_name, action, reason from risk_events"))
    assert [(o["venue_order_id"], o["status"], o["filled_quantity"]) for o in orders] == [
        (vid1, "cancelled", "2"), (vid2, "partially_filled", "1")]
    for o in orders:
        assert Decimal(o["filled_quantity"]) == Decimal(clob.orders[o["venue_order_id"]]
                                                        ["size_matched"])
    assert [(f["fill_id"], f["client_order_id"], Decimal(f["quantity"]), Decimal(f["price"]),
             f["liquidity"]) for f in fills] == [
        (f"{trade1}:{vid1}", first["client_order_id"], 2, Decimal("0.61"), "maker"),
        (f"{trade2}:{vid2}", second["client_order_id"], 1, Decimal("0.61"), "maker")]
    schedule = runner.asm.venue.fee_schedule(iid)
    assert [Decimal(f["fee"]) for f in fills] == [
        schedule.fee(Decimal("0.61"), Decimal(q), maker=True) for q in (2, 1)]
    assert [(p["instrument_id"], Decimal(p["quantity"])) for p in positions] == [(iid, 3)]
    assert "book not tradeable" in (orders[0]["status_reason"] or "")
    assert not [r for r in risk if r["action"] in ("unknown_order", "unknown_fill")]
    assert summary.fills == 2 and summary.trading_state == "active"


@pytest.mark.slow
async def test_by_default_no_live_quote_within_an_hour_of_the_events_end(
        exchange: Any, tmp_path: Path) -> None:
    """``stop_before_end_s`` is on by default (an hour): the Fed event served ending in 30
    minutes, the live maker reads the token's books and posts nothing (before, the
    default was off and it quoted into the resolution)."""
    srv, clob, token, wide = exchange
    iid = f"polymarket:{token}"
    with srv._lock:
        for event in srv.events:
            for holder in (event, *event["markets"]):
                holder["endDate"] = iso_in(1800)
    runner = Runner(_config(srv, token), tmp_path / "run", live_confirmed=True)
    strategy: Any = runner.asm.strategies["pm_maker"]
    task = asyncio.create_task(runner.run())
    try:
        await _until(lambda: iid in strategy.books, "the token's first book")
        for _ in range(3):  # more books of the token: still nothing
            fresh = srv.books[token] = _wide(token, wide["market"])
            srv.push([dict(fresh, event_type="book")])
            await asyncio.sleep(0.2)
        assert _orders(runner) == [] and clob.posts == []
        assert strategy.settings.stop_before_end_s == 3600
    finally:
        runner.max_events = runner.seq + 1
        srv.push([dict(srv.books[token], event_type="book")])
        await asyncio.wait_for(task, 20)


@pytest.mark.slow
async def test_a_restarted_live_run_cancels_its_old_quote_before_posting_one(
        exchange: Any, tmp_path: Path) -> None:
    """Stopped with a quote resting and started again on the same run directory: the
    restored strategy cancels the quote the ledger holds open, then posts one — never a
    second working bid, every order acted on and booked once."""
    srv, clob, token, wide = exchange
    config = _config(srv, token)

    async def stop(runner: Runner, task: asyncio.Task[Any]) -> Any:
        runner.max_events = runner.seq + 1
        fresh = srv.books[token] = _wide(token, wide["market"])
        # pushed again until the run ends: on a loaded box the socket may be (re)connecting
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while not task.done() and loop.time() < deadline:
            srv.push([dict(fresh, event_type="book")])
            await asyncio.wait([task], timeout=0.5)
        return await asyncio.wait_for(task, 1)

    first = Runner(config, tmp_path / "run", live_confirmed=True)
    task = asyncio.create_task(first.run())
    await _until(lambda: [o["status"] for o in _orders(first)] == ["open"], "the first quote")
    await stop(first, task)
    assert len(clob.posts) == 1

    second = Runner(config, tmp_path / "run", live_confirmed=True)
    task = asyncio.create_task(second.run())
    await _until(lambda: [o["status"] for o in _orders(second)] == ["cancelled", "open"],
                 "the old quote cancelled and a new one acknowledged")
    summary = await stop(second, task)

    with Ledger.in_dir(tmp_path / "run") as ledger:
        orders = list(ledger.query("select * from orders order by ts_ns, client_order_id"))
    vids = [_vid(clob, o["client_order_id"]) for o in orders]
    assert [o["venue_order_id"] for o in orders] == vids
    assert [clob.orders[v]["status"] for v in vids] == ["CANCELED", "LIVE"]
    assert len(clob.attempts) == 2 and sorted(clob.accepted.values()) == [1, 1]
    assert "restarted live" in orders[0]["status_reason"]
    assert summary.resumed_from is not None and summary.trading_state == "active"


@pytest.mark.slow
async def test_a_one_sided_cancel_leaves_the_other_quote_live_at_the_exchange(
        exchange: Any, tmp_path: Path) -> None:
    """Both sides quoted (short allowed); the ask is partly filled; then bids are pulled
    and asks added (OFI -1: the bid's adverse selection leaves it no edge, the ask's
    rises by nothing): exactly one cancel request reaches the
    exchange, for the bid, and the ask is the same order, still live with its remainder;
    every order acted on once and every fill booked once."""
    srv, clob, token, wide = exchange
    iid = f"polymarket:{token}"
    runner = Runner(_config(srv, token, allow_short=True), tmp_path / "run",
                    live_confirmed=True)
    strategy: Any = runner.asm.strategies["pm_maker"]
    task = asyncio.create_task(runner.run())

    def book_frame(bid_size: str = "150", ask_size: str = "150") -> int:
        fresh = srv.books[token] = _wide(token, wide["market"], bid_size, ask_size)
        return srv.push([dict(fresh, event_type="book")])

    await _until(lambda: [o["status"] for o in _orders(runner)] == ["open", "open"],
                 "both quotes acknowledged")
    by_side = {o["side"]: o for o in _orders(runner)}
    bid, ask = by_side["buy"], by_side["sell"]
    assert (Decimal(bid["limit_price"]), Decimal(ask["limit_price"])) == (
        Decimal("0.61"), Decimal("0.65"))
    vid_bid, vid_ask = _vid(clob, bid["client_order_id"]), _vid(clob, ask["client_order_id"])
    # another account lifts 2 of our 5 offered: the ask keeps resting with 3
    trade = clob.fill_resting(vid_ask, "2")
    await _until(lambda: runner.n_fills == 1, "the maker fill")
    book_frame()
    await _until(lambda: strategy.books[iid].ask is not None
                 and strategy.books[iid].ask.filled == 2, "the strategy seeing the fill")
    assert clob.count("DELETE", "/order") == 0
    # selling pressure: bids pulled, asks added
    book_frame(bid_size="50", ask_size="300")
    await _until(lambda: clob.orders[vid_bid]["status"] == "CANCELED", "the bid cancelled")
    for _ in range(5):  # later frames change nothing: the flow stays against the bid
        book_frame(bid_size="50", ask_size="300")
        await asyncio.sleep(0.1)
    runner.max_events = runner.seq + 1
    assert book_frame(bid_size="50", ask_size="300") == 1
    summary = await asyncio.wait_for(task, 20)

    assert clob.count("DELETE", "/order") == 1  # one cancel request, for the bid alone
    assert clob.orders[vid_ask]["status"] == "LIVE"
    assert Decimal(clob.orders[vid_ask]["size_matched"]) == 2
    assert len(clob.posts) == 2 and sorted(clob.accepted.values()) == [1, 1]
    with Ledger.in_dir(tmp_path / "run") as ledger:
        orders = list(ledger.query("select * from orders order by ts_ns, client_order_id"))
        fills = list(ledger.query("select * from fills"))
        positions = list(ledger.query("select * from positions"))
    assert sorted((o["venue_order_id"], o["status"], o["filled_quantity"]) for o in orders) \
        == sorted([(vid_bid, "cancelled", "0"), (vid_ask, "partially_filled", "2")])
    cancelled = next(o for o in orders if o["venue_order_id"] == vid_bid)
    # OFI -1: the flow's adverse selection leaves the bid no edge
    assert "pm_maker: bid 0.61 cancelled: bid edge -" in cancelled["status_reason"]
    assert [(f["fill_id"], f["client_order_id"], Decimal(f["quantity"])) for f in fills] == [
        (f"{trade}:{vid_ask}", ask["client_order_id"], 2)]
    assert [(p["instrument_id"], Decimal(p["quantity"])) for p in positions] == [(iid, -2)]
    assert summary.fills == 1 and summary.trading_state == "active"
