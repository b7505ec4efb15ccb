"""``executions()`` from the CLOB trades endpoint (partial fills, duplicates, other accounts'
orders) and ``Settlement`` events from Gamma's closed markets, against local servers."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.schemas import GammaMarket
from argus_venue_polymarket.testing import make_book, tokens_of
from argus_venue_polymarket.venue import PolymarketVenue

from argus_core.errors import DataError, VenueError
from argus_core.models import (
    Fill,
    Instrument,
    KnownOrder,
    Liquidity,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Settlement,
    Side,
    TimeInForce,
    VenueResume,
)
from argus_core.secrets import Secret

TOKEN_A, TOKEN_B = "1234", "5678"
OUR_KEY = "key-1"


@pytest.fixture(autouse=True)
def _keys(pm_keys: Callable[[str, str, str], None]) -> None:
    pm_keys(OUR_KEY, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "pass")


def _venue(url: str) -> PolymarketVenue:
    settings = PolymarketSettings(
        clob_url=url, private_key=Secret("$env:PM_TEST_KEY"), api_key=Secret("$env:PM_K"),
        api_secret=Secret("$env:PM_S"), api_passphrase=Secret("$env:PM_P"),
        trades_poll_s=0.02, heartbeat_interval_s=0.05, user_channel=False)
    venue = PolymarketVenue(settings)
    meta = {"neg_risk": True, "fee_rate": "0.05", "fee_exponent": "1", "fee_taker_only": True}
    for t in (TOKEN_A, TOKEN_B):
        inst = Instrument("polymarket", t, kind="binary", tick_size="0.01", lot_size="0.01",
                          min_size="5", meta=meta)
        venue._instruments[inst.id] = inst
    return venue


def _trade(tid: str, *, status: str = "MATCHED", trader_side: str = "MAKER",
           taker_order: str = "0xother-taker", size: str = "40", price: str = "0.45",
           makers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A ``GET /data/trades`` item in the documented shape."""
    return {"id": tid, "taker_order_id": taker_order, "market": "0xcond", "asset_id": TOKEN_A,
            "side": "SELL" if trader_side == "MAKER" else "BUY", "size": size,
            "fee_rate_bps": "0", "price": price, "status": status, "match_time": "1786875390",
            "last_update": "1786875391", "outcome": "Yes", "bucket_index": 0,
            "owner": OUR_KEY if trader_side == "TAKER" else "other-key",
            "maker_address": "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
            "transaction_hash": "0x" + "ab" * 32, "trader_side": trader_side,
            "maker_orders": makers or []}


def _maker(order_id: str, amount: str, owner: str = OUR_KEY, price: str = "0.45",
           side: str = "BUY") -> dict[str, Any]:
    return {"order_id": order_id, "owner": owner, "maker_address": "0xf39f", "asset_id": TOKEN_A,
            "matched_amount": amount, "price": price, "fee_rate_bps": "0", "outcome": "Yes",
            "side": side}


class Clob:
    """Order posting plus a scripted ``GET /data/trades`` (one page per poll)."""

    def __init__(self, pages: list[list[dict[str, Any]]],
                 answers: dict[str, dict[str, Any]] | None = None) -> None:
        self.pages = pages
        self.answers = answers or {}
        self.trade_queries: list[dict[str, list[str]]] = []
        #: venue order id -> the ``GET /data/order/<id>`` record (``status`` LIVE: listed
        #: by ``GET /data/orders``)
        self.orders: dict[str, dict[str, Any]] = {}

    def __call__(self, method: str, path: str, query: Any, body: Any) -> Any:
        if method == "GET" and path == "/data/orders":
            rows = [r for r in self.orders.values() if r["status"] == "LIVE"]
            return 200, {"data": rows, "next_cursor": "LTE=", "limit": 500, "count": len(rows)}
        if method == "DELETE" and path == "/order":  # documented answer of a cancel
            rec = self.orders.get(body["orderID"])
            if rec is None or rec["status"] != "LIVE":
                return 200, {"canceled": [], "not_canceled": {body["orderID"]: "not open"}}
            rec["status"] = "CANCELED"
            return 200, {"canceled": [body["orderID"]], "not_canceled": {}}
        if method == "GET" and path.startswith("/data/order/"):
            rec = self.orders.get(path.rsplit("/", 1)[1])
            return (200, rec) if rec else (404, {"error": "order not found"})
        if method == "POST" and path == "/order":
            cid = body["order"]["tokenId"]
            return 200, dict(self.answers.get(cid, {"success": True, "status": "live"}),
                             orderID=f"0xvid{cid}")
        if method == "POST" and path == "/v1/heartbeats":
            return 200, {"heartbeat_id": "hb"}
        if method == "GET" and path == "/data/trades":
            self.trade_queries.append(query)
            page = self.pages[min(len(self.trade_queries) - 1, len(self.pages) - 1)]
            return 200, {"data": page, "next_cursor": "LTE=", "limit": 100, "count": len(page)}
        return None


def _order_record(vid: str, size: str, matched: str, status: str, **extra: Any
                  ) -> dict[str, Any]:
    """A ``GET /data/order/<id>`` record (the documented OpenOrder shape)."""
    return {"id": vid, "status": status, "owner": OUR_KEY, "maker_address": "0xf39f",
            "market": "0xcond", "asset_id": TOKEN_A, "side": "BUY", "original_size": size,
            "size_matched": matched, "price": "0.45", "outcome": "Yes", "expiration": "0",
            "order_type": "GTC", "associate_trades": [], "created_at": 1786875390} | extra


async def _take(venue: PolymarketVenue, n: int, settle_s: float = 0.3
                ) -> list[Fill | OrderUpdate]:
    """The first ``n`` items (fills and order updates) of ``executions()``, then keep
    polling ``settle_s`` to prove nothing else comes."""
    out: list[Fill | OrderUpdate] = []

    async def run() -> None:
        async for item in venue.executions():
            out.append(item)

    task = asyncio.create_task(run())
    for _ in range(200):
        if len(out) >= n:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(settle_s)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return out


async def test_fills_of_a_resting_order_partial_then_rest_duplicates_once(snapshot_server) -> None:  # type: ignore[no-untyped-def]
    ours = "0xvid" + TOKEN_A
    t1 = _trade("t1", makers=[_maker(ours, "40"), _maker("0xsomeone", "10", owner="other")])
    t2 = _trade("t2", size="60", makers=[_maker(ours, "60")])
    pages = [[t1],                                    # a partial fill (40 of 100)
             [copy.deepcopy(t1) | {"status": "MINED"}, t2],  # t1 again (mined) + the rest
             [t1 | {"status": "CONFIRMED"}, t2 | {"status": "CONFIRMED"},
              _trade("t3", status="FAILED", makers=[_maker(ours, "5")])]]
    clob = Clob(pages)
    srv = snapshot_server([], [], extra=clob)
    venue = _venue(srv.url)
    order = Order("core-g1", "polymarket", f"polymarket:{TOKEN_A}", Side.BUY, "100", "0.45",
                  OrderType.LIMIT, TimeInForce.GTC)
    assert await venue.submit(order) == []  # resting, nothing matched yet
    # filled by t1 + t2: gone from the open orders, size_matched 100 = the fills: no update
    clob.orders[ours] = _order_record(ours, "100", "100", "MATCHED")
    ack, *fills = await _take(venue, 3)
    assert ack == OrderUpdate("core-g1", OrderStatus.OPEN, ack.ts_ns, ours)
    assert all(isinstance(f, Fill) for f in fills)
    assert [(f.fill_id, f.client_order_id, f.side, f.quantity, f.price, f.liquidity, f.fee)
            for f in fills] == [
        (f"t1:{ours}", "core-g1", Side.BUY, Decimal(40), Decimal("0.45"), Liquidity.MAKER, 0),
        (f"t2:{ours}", "core-g1", Side.BUY, Decimal(60), Decimal("0.45"), Liquidity.MAKER, 0)]
    assert fills[0].ts_ns == 1786875390 * 10**9
    assert len(clob.trade_queries) >= 3  # kept polling; duplicates and FAILED not re-reported
    assert all("after" in q and q["next_cursor"] == ["MA=="] for q in clob.trade_queries)
    trade_headers = [h for h in srv.headers_seen if "POLY_API_KEY" in h]
    assert trade_headers and all(h["POLY_API_KEY"] == OUR_KEY for h in trade_headers)
    await venue.close()


async def test_a_confirmed_cancel_is_reported_after_the_fills_the_venue_matched(
        snapshot_server) -> None:  # type: ignore[no-untyped-def]
    ours = "0xvid" + TOKEN_A
    # the trades feed lists the 40 matched before our cancel only from its second poll on
    clob = Clob([[], [_trade("t1", makers=[_maker(ours, "40")])]])
    srv = snapshot_server([], [], extra=clob)
    venue = _venue(srv.url)
    order = Order("core-c1", "polymarket", f"polymarket:{TOKEN_A}", Side.BUY, "100", "0.45",
                  OrderType.LIMIT, TimeInForce.GTC)
    assert await venue.submit(order) == []
    clob.orders[ours] = _order_record(ours, "100", "40", "LIVE")
    await venue.cancel("core-c1")
    assert clob.orders[ours]["status"] == "CANCELED"
    items = await _take(venue, 3, settle_s=0.15)
    assert [(type(i).__name__, i.client_order_id) for i in items] == [
        ("OrderUpdate", "core-c1"), ("Fill", "core-c1"), ("OrderUpdate", "core-c1")]
    ack, fill, end = items
    assert (ack.status, ack.venue_order_id) == (OrderStatus.OPEN, ours)
    assert (fill.fill_id, fill.quantity) == (f"t1:{ours}", Decimal(40))
    assert (end.status, end.venue_order_id) == (OrderStatus.CANCELLED, ours)
    assert end.reason == "cancelled at our request; 40 of 100 matched"
    assert len(clob.trade_queries) >= 2 and venue.execution.watched == {}
    with pytest.raises(VenueError, match="refused"):  # no longer open: the venue says so
        await venue.cancel("core-c1")
    await venue.close()


async def test_taker_fills_reported_by_the_order_response_are_not_reported_twice(
        snapshot_server) -> None:  # type: ignore[no-untyped-def]
    matched = {"success": True, "status": "matched", "makingAmount": "30",
               "takingAmount": "100"}
    clob = Clob([[_trade("t9", trader_side="TAKER", taker_order=f"0xvid{TOKEN_A}", size="100",
                         price="0.30"),
                  _trade("t10", trader_side="TAKER", taker_order=f"0xvid{TOKEN_B}", size="50",
                         price="0.60") | {"asset_id": TOKEN_B}]],
                answers={TOKEN_A: matched, TOKEN_B: {"success": True, "status": "delayed"}})
    srv = snapshot_server([], [], extra=clob)
    venue = _venue(srv.url)
    a = Order("core-a", "polymarket", f"polymarket:{TOKEN_A}", Side.BUY, "100", "0.30",
              OrderType.LIMIT, TimeInForce.FOK)
    b = Order("core-b", "polymarket", f"polymarket:{TOKEN_B}", Side.BUY, "50", "0.60",
              OrderType.LIMIT, TimeInForce.IOC)
    (fa,) = await venue.submit(a)  # reported by the response
    assert await venue.submit(b) == []  # matched later: only the trades endpoint knows
    clob.orders[f"0xvid{TOKEN_B}"] = _order_record(f"0xvid{TOKEN_B}", "50", "50", "MATCHED",
                                                   order_type="FAK")
    items = await _take(venue, 5, settle_s=0.15)
    # the answers (a: acknowledged + its match again, same fill id; b: acknowledged, delayed),
    # then b's match from the trades feed; b filled fully, so no CANCELLED follows
    updates = [(i.client_order_id, i.status, i.venue_order_id) for i in items
               if isinstance(i, OrderUpdate)]
    assert updates == [("core-a", OrderStatus.OPEN, f"0xvid{TOKEN_A}"),
                       ("core-b", OrderStatus.OPEN, f"0xvid{TOKEN_B}")]
    fills = [i for i in items if isinstance(i, Fill)]
    assert fills[0] == fa and items.index(fills[0]) == 1
    assert [(f.client_order_id, f.quantity, f.price, f.liquidity) for f in fills[1:]] == [
        ("core-b", Decimal(50), Decimal("0.60"), Liquidity.TAKER)]
    assert fills[1].fee == Decimal("0.6")  # 50 x 0.05 x 0.6 x 0.4
    assert fa.client_order_id == "core-a" and fa.quantity == 100
    await venue.close()


def test_malformed_trade_payloads_name_the_field() -> None:
    from argus_venue_polymarket.schemas import ClobTrade

    good = _trade("t1", makers=[_maker("0x1", "5")])
    assert ClobTrade.parse(good).maker_orders[0].matched_amount == 5
    iso = ClobTrade.parse(dict(good, match_time="2026-08-16T09:36:30Z"))
    assert iso.match_time_s == 1786872990
    for bad, fragment in ((dict(good, side="HOLD"), "side"),
                          (dict(good, price="1.2"), "price"),
                          (dict(good, size="-1"), "size"),
                          (dict(good, trader_side="BOTH"), "trader_side"),
                          ({k: v for k, v in good.items() if k != "asset_id"}, "asset_id"),
                          (dict(good, maker_orders=[{"order_id": "x"}]), r"maker_orders\[0\]")):
        with pytest.raises(DataError, match=fragment):
            ClobTrade.parse(bad)


# --- settlement from Gamma ------------------------------------------------------------------

def _market(raw: dict[str, Any], **changes: Any) -> GammaMarket:
    return GammaMarket.parse(dict(raw, **changes), "m")


def test_gamma_resolution_needs_closed_final_prices(fed_event: dict[str, Any]) -> None:
    m = fed_event["markets"][2]
    assert _market(m).resolution() is None  # open
    assert _market(m, closed=True).resolution() is None  # closed, still trading prices
    res = _market(m, closed=True, outcomePrices='["1", "0"]', umaResolutionStatus="resolved")
    assert res.resolution() == (Decimal(1), Decimal(0))
    assert _market(m, closed=True, outcomePrices='["0.5", "0.5"]').resolution() == (
        Decimal("0.5"), Decimal("0.5"))  # 50-50
    assert _market(m, closed=True, outcomePrices='["1", "0"]',
                   umaResolutionStatus="disputed").resolution() is None
    assert _market(m, closed=True, outcomePrices='["1", "1"]').resolution() is None


async def test_stream_settles_from_gamma_and_the_websocket_once_each_then_ends(
        fed_event: dict[str, Any]) -> None:
    from argus_venue_polymarket.replay_server import SnapshotServer

    tokens = tokens_of(fed_event)
    books = [make_book(t, cond, [("0.40", "10")], [("0.45", "10")])
             for cond, yes, no in tokens for t in (yes, no)]
    ids = [str(m["id"]) for m in fed_event["markets"]]
    prices = {mid: ["0", "1"] for mid in ids}
    prices[ids[2]] = ["1", "0"]  # "No change" wins
    prices[ids[3]] = ["0.5", "0.5"]  # a 50-50 market: no websocket frame, Gamma settles it
    srv = SnapshotServer([fed_event], books, resolutions={"timestamp": "1786875400000",
                                                          "outcome_prices": prices},
                         ws_port=0, resolve_after_books=True).start()
    try:
        venue = PolymarketVenue(PolymarketSettings(gamma_url=srv.url, clob_url=srv.url,
                                                   ws_url=srv.ws_url, settlement_poll_s=0.05))

        async def collect() -> list[Any]:
            return [ev async for ev in venue.stream()]

        events = await asyncio.wait_for(collect(), 20)  # ends by itself once all resolved
        await venue.close()
    finally:
        srv.stop()
    settlements = [e for e in events if isinstance(e, Settlement)]
    got = {s.instrument_id: s.price for s in settlements}
    assert len(settlements) == len(got) == 10  # every token once, though both paths report
    want = {}
    for mid, (_cond, yes, no) in zip(ids, tokens, strict=True):
        p_yes, p_no = (Decimal(x) for x in prices[mid])
        want[f"polymarket:{yes}"], want[f"polymarket:{no}"] = p_yes, p_no
    assert got == want
    fifty = {f"polymarket:{tokens[3][1]}", f"polymarket:{tokens[3][2]}"}
    assert all("Gamma" in s.reason for s in settlements if s.instrument_id in fifty)
    assert sum(isinstance(e, OrderBook) for e in events) == 10
    # the books came before any settlement (the websocket sends them first)
    first_settle = next(i for i, e in enumerate(events) if isinstance(e, Settlement))
    assert all(not isinstance(e, OrderBook) for e in events[first_settle:])
    polls = [q for m, p, q in srv.requests if p == "/markets"]
    assert polls and all(q["closed"] == ["true"] for q in polls)
    # only markets not yet settled are asked about: the 50-50 one until Gamma settled it
    asked = {c for q in polls for c in q["condition_ids"]}
    assert tokens[3][0] in asked and asked <= {cond for cond, _, _ in tokens}


async def test_gamma_poll_alone_settles_and_ends_the_stream(fed_event: dict[str, Any]) -> None:
    from argus_venue_polymarket.replay_server import SnapshotServer

    tokens = tokens_of(fed_event)
    books = [make_book(t, cond, [("0.40", "10")], [("0.45", "10")])
             for cond, yes, no in tokens for t in (yes, no)]
    prices = {str(m["id"]): ["0", "1"] for m in fed_event["markets"]}
    prices[str(fed_event["markets"][0]["id"])] = ["1", "0"]
    srv = SnapshotServer([fed_event], books, resolutions={"outcome_prices": prices},
                         ws_port=0).start()
    try:
        venue = PolymarketVenue(PolymarketSettings(gamma_url=srv.url, clob_url=srv.url,
                                                   ws_url=srv.ws_url, settlement_poll_s=0.05))
        seen: list[Any] = []

        async def collect() -> None:
            async for ev in venue.stream():
                seen.append(ev)
                if sum(isinstance(e, OrderBook) for e in seen) == 10 and not srv.resolved:
                    srv.resolve()  # the markets close on Gamma only now

        await asyncio.wait_for(collect(), 20)
        await venue.close()
    finally:
        srv.stop()
    settled = [e for e in seen if isinstance(e, Settlement)]
    assert sorted(s.price for s in settled) == [0] * 5 + [1] * 5
    assert {s.instrument_id for s in settled if s.price == 1} == {
        f"polymarket:{tokens[0][1]}", *(f"polymarket:{no}" for _, _, no in tokens[1:])}
    assert all(s.reason.startswith("Gamma: market") for s in settled)


async def test_a_trade_listed_before_its_order_response_waits_for_the_order_id(
        snapshot_server) -> None:  # type: ignore[no-untyped-def]
    """The trades feed can list our taker match while ``POST /order`` is still in flight;
    it must neither be booked under an unknown id nor, once the response reported the
    match, be booked a second time."""
    ours = f"0xvid{TOKEN_A}"
    clob = Clob([[_trade("t1", trader_side="TAKER", taker_order=ours, size="100",
                         price="0.30"),
                  _trade("t2", trader_side="TAKER", taker_order="0xmanual", size="5")]])
    srv = snapshot_server([], [], extra=clob)
    venue = _venue(srv.url)
    ex = venue.execution
    ex.posts_in_flight = 1  # an order post has not been answered yet
    assert await ex.poll_trades(0) == []  # neither trade can be attributed yet
    # the answer arrives: the order's id and its (already reported) taker match
    ex.posts_in_flight = 0
    ex.venue_ids["core-a"] = ours
    ex.taker_reported.add(ours)
    (manual,) = await ex.poll_trades(0)
    # ours is not reported twice; the other one is nobody's order of this run: flagged
    assert (manual.fill_id, manual.client_order_id) == ("t2:0xmanual", "pm:0xmanual")
    assert await ex.poll_trades(0) == []
    await venue.close()


async def test_after_a_restart_fills_booked_from_order_responses_are_not_booked_again(
        snapshot_server) -> None:  # type: ignore[no-untyped-def]
    """A new process knows nothing of the taker matches the last one booked from order
    responses (fill ids ``<venue order id>:0``); ``resume`` with the ledger's fills tells it,
    so the trades feed re-reading those trades books nothing twice, while a later maker fill
    of an order known only from the ledger still maps to its core order."""
    ours_a, ours_b = f"0xvid{TOKEN_A}", f"0xvid{TOKEN_B}"
    clob = Clob([[_trade("t1", trader_side="TAKER", taker_order=ours_a, size="100",
                         price="0.30"),
                  _trade("t2", makers=[_maker(ours_b, "7")])]])
    srv = snapshot_server([], [], extra=clob)
    venue = _venue(srv.url)
    ex = venue.execution
    venue.resume(VenueResume((), {f"{ours_a}:0": "core-a", f"t0:{ours_b}": "core-b"}))
    (late,) = await ex.poll_trades(0)
    assert (late.fill_id, late.client_order_id, late.quantity) == (f"t2:{ours_b}", "core-b", 7)
    await venue.close()


async def test_open_orders_map_back_to_ledger_orders_after_a_restart(snapshot_server) -> None:  # type: ignore[no-untyped-def]
    """Open orders placed by an earlier process: by signed ``metadata``; without it, by a
    unique (token, side, price, size) match among the ledger's orders (``resume``); two
    candidates or none are never guessed between (``pm:<venue id>``).  Resting orders found
    again get heartbeats."""
    from argus_venue_polymarket.signing import client_order_metadata

    def row(vid: str, price: str, size: str, meta: str | None) -> dict[str, Any]:
        r = {"id": vid, "status": "LIVE", "owner": OUR_KEY, "market": "0xcond",
             "asset_id": TOKEN_A, "side": "BUY", "original_size": size, "size_matched": "0",
             "price": price, "outcome": "Yes", "expiration": "0", "order_type": "GTC",
             "associate_trades": [], "created_at": 1786875390}
        return r | ({"metadata": meta} if meta else {})

    rows = [row("0xv1", "0.40", "10", client_order_metadata("core-1")),
            row("0xv2", "0.41", "20", None), row("0xv3", "0.42", "30", None)]

    def clob(method: str, path: str, query: Any, body: Any) -> Any:
        if path == "/data/orders":
            return 200, {"data": rows, "next_cursor": "LTE=", "limit": 500, "count": 3}
        if path == "/v1/heartbeats":
            return 200, {"heartbeat_id": "hb"}
        return None

    srv = snapshot_server([], [], extra=clob)
    venue = _venue(srv.url)

    def order(cid: str, price: str, size: str) -> Order:
        return Order(cid, "polymarket", f"polymarket:{TOKEN_A}", Side.BUY, size, price,
                     OrderType.LIMIT, TimeInForce.GTC)

    venue.resume(VenueResume(tuple(KnownOrder(order(*a)) for a in (
        ("core-1", "0.40", "10"), ("core-2", "0.41", "20"), ("core-3a", "0.42", "30"),
        ("core-3b", "0.42", "30")))))
    got = {o.client_order_id: o.limit_price for o in await venue.open_orders()}
    assert got == {"core-1": Decimal("0.40"), "core-2": Decimal("0.41"),
                   "pm:0xv3": Decimal("0.42")}
    assert venue.execution.venue_ids == {"core-1": "0xv1", "core-2": "0xv2"}
    hb = venue.execution.heartbeat
    assert hb is not None and hb.resting == {"core-1", "core-2"}
    await venue.close()
