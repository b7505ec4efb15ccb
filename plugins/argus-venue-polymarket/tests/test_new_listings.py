"""Markets listed after the start are followed by a running stream: discovery runs again
(every ``discovery_poll_s``, or at once after the market channel's ``new_market``
frame), the stream says the new instruments and events, and subscribes the new tokens on
the open connection (``"operation": "subscribe"``); settled tokens are unsubscribed.

Before, ``stream()`` followed the tokens discovered at the start only: a market listed
later (the 15-minute up/down markets the latency scanner trades are listed every 15
minutes) was neither streamed nor known to the core until a restart.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argus_venue_polymarket import venue as venue_mod
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.data import MarketStream, PolymarketRest
from argus_venue_polymarket.listings import listing_changes
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.testing import make_book
from argus_venue_polymarket.venue import PolymarketVenue

from argus_core import Event, Instrument, Outcome
from argus_core.config import parse_config
from argus_core.models import BookStatus, OrderBook, Settlement, Trade
from argus_core.runner import Runner

SNAPSHOT = Path(__file__).parents[3] / "examples" / "polymarket" / "snapshot"
FED, PRESIDENT = "481717", "903193"


def _snapshot() -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    events = {e["id"]: e for e in json.loads((SNAPSHOT / "events.json").read_text())}
    return events, json.loads((SNAPSHOT / "books.json").read_text())


def _tokens(event: dict[str, Any]) -> list[str]:
    return [t for m in event["markets"] for t in json.loads(m["clobTokenIds"])]


def _books_of(event: dict[str, Any], books: list[dict[str, Any]]) -> list[dict[str, Any]]:
    wanted = set(_tokens(event))
    return [b for b in books if b["asset_id"] in wanted]


@pytest.fixture
def president_only() -> Iterator[tuple[SnapshotServer, dict[str, Any], list[dict[str, Any]]]]:
    """A server listing the presidential event only; the Fed event and every book are
    at hand for :meth:`SnapshotServer.list_event`."""
    events, books = _snapshot()
    srv = SnapshotServer([events[PRESIDENT]], _books_of(events[PRESIDENT], books),
                         ws_port=0).start()
    try:
        yield srv, events[FED], books
    finally:
        srv.stop()


@pytest.fixture
def no_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``new_market`` frame runs discovery at once (the product waits 5 s between runs)."""
    monkeypatch.setattr(venue_mod, "LISTING_MIN_GAP_S", 0.0)


async def _collect(agen: Any, until: Callable[[list[Any]], bool], *, during: Any = None,
                   timeout_s: float = 20.0) -> list[Any]:
    """Events of ``agen`` until ``until(events)``; ``during(events)`` runs after each."""
    out: list[Any] = []

    async def run() -> None:
        async for ev in agen:
            out.append(ev)
            if during is not None:
                during(out)
            if until(out):
                return

    try:
        await asyncio.wait_for(run(), timeout=timeout_s)
    finally:
        await agen.aclose()
    return out


def _settings(srv: SnapshotServer, **kw: Any) -> PolymarketSettings:
    base: dict[str, Any] = dict(gamma_url=srv.url, clob_url=srv.url, ws_url=srv.ws_url,
                                settlement_poll_s=0, reconnect_min_s=0.01,
                                reconnect_max_s=0.05)
    base.update(kw)
    return PolymarketSettings(**base)


def _books_seen(events: list[Any]) -> set[str]:
    return {e.instrument_id.partition(":")[2] for e in events if isinstance(e, OrderBook)}


# --- the diff of two discoveries -----------------------------------------------------------

def _inst(symbol: str, **meta: Any) -> Instrument:
    return Instrument("polymarket", symbol, "binary", "0.01", "0.01", "5",
                      meta={"tradeable": True, **meta})


def _event(event_id: str, *pairs: tuple[str, str], exhaustive: bool = True) -> Event:
    return Event("polymarket", event_id, "t", [Outcome(f"o{i}", y, n)
                                               for i, (y, n) in enumerate(pairs)],
                 neg_risk=True, exhaustive=exhaustive)


def test_listing_changes_says_new_and_changed_things_once() -> None:
    a, b = _inst("1"), _inst("2")
    ev = _event("e", ("polymarket:1", "polymarket:2"))
    known_i, known_e = {a.id: a, b.id: b}, {"e": ev}
    same = listing_changes(known_i, known_e, [ev], [a, b], {"1", "2"})
    assert not same and same.new_tokens == []

    # a new market; an old one stopped taking orders (only its meta moved: meta is not
    # part of an Instrument's equality); the event lost its exhaustiveness
    c, d = _inst("3"), _inst("4")
    b_closed = _inst("2", tradeable=False)
    ev2 = _event("e", ("polymarket:1", "polymarket:2"), exhaustive=False)
    new_ev = _event("f", ("polymarket:3", "polymarket:4"))
    found = listing_changes(known_i, known_e, [ev2, new_ev], [a, b_closed, c, d], {"1", "2"})
    assert [i.id for i in found.instruments] == ["polymarket:2", "polymarket:3",
                                                  "polymarket:4"]
    assert found.instruments[0].meta["tradeable"] is False
    assert [e.event_id for e in found.events] == ["e", "f"]
    assert found.new_tokens == ["3", "4"]

    # a new tick size is a change of the instrument itself
    finer = Instrument("polymarket", "1", "binary", "0.001", "0.01", "5",
                       meta={"tradeable": True})
    assert [i.id for i in listing_changes(known_i, known_e, [ev], [finer], {"1"}).instruments
            ] == ["polymarket:1"]
    # a settled token (in ``followed``) is never subscribed again, even if Gamma still
    # lists its market as open; a tradeable token not followed (held, say) is
    assert listing_changes(known_i, known_e, [ev], [a, b], {"1", "2"}).new_tokens == []
    assert listing_changes(known_i, known_e, [ev], [a, b], {"1"}).new_tokens == ["2"]


# --- the websocket: subscribe / unsubscribe on an open connection ---------------------------

async def test_tokens_added_to_a_running_stream_are_subscribed_on_the_open_connection() -> None:
    srv = SnapshotServer([], [make_book(t, "0xm", [("0.40", "10")], [("0.45", "10")])
                              for t in ("11", "22", "33", "44")], ws_port=0).start()
    try:
        s = _settings(srv, tokens_per_ws_connection=3)
        stream = MarketStream(s, ["11"], PolymarketRest(s), without_tokens=True)
        added: list[list[str]] = []

        def during(out: list[Any]) -> None:
            seen = _books_seen(out)
            if seen == {"11"} and not added:
                added.append(stream.add_tokens(["22", "11", "33"]))  # "11" is followed
            elif seen == {"11", "22", "33"} and len(added) == 1:
                added.append(stream.add_tokens(["44"]))  # the first connection is full

        events = await _collect(stream.__aiter__(), lambda out: len(_books_seen(out)) == 4,
                                during=during)
    finally:
        srv.stop()
    assert added == [["22", "33"], ["44"]]
    subs = [json.loads(m) for m in srv.ws_messages if m != "PING"]
    assert subs[:2] == [{"assets_ids": ["11"], "type": "market", "custom_feature_enabled": True},
                        {"assets_ids": ["22", "33"], "operation": "subscribe",
                         "custom_feature_enabled": True}]
    # the third token had no room: a connection of its own, subscribed as any first one
    assert subs[2] == {"assets_ids": ["44"], "type": "market", "custom_feature_enabled": True}
    assert stream.stats["connects"] == 2 and stream.stats["malformed"] == 0
    # stale until their first book, as any token whose book is not in yet
    statuses = [e for e in events if isinstance(e, BookStatus)]
    assert statuses == []  # never live before: nothing to take back
    assert all(stream.live[t] for t in ("11", "22", "33", "44"))


# --- the venue: discovery during the stream -------------------------------------------------

async def test_a_market_listed_mid_stream_is_announced_then_streamed(
        president_only: tuple[SnapshotServer, dict[str, Any], list[dict[str, Any]]],
        no_gap: None) -> None:
    """The ``new_market`` frame asks Gamma for its event at once (the poll is an hour
    away; one request by id, not a whole discovery): the Fed event's instruments, then its
    event, then its books."""
    srv, fed, books = president_only
    venue = PolymarketVenue(_settings(srv, discovery_poll_s=3600))
    fed_tokens = set(_tokens(fed))
    listed: list[int] = []

    def during(out: list[Any]) -> None:
        if not listed and len(_books_seen(out)) >= 2:
            listed.append(srv.list_event(copy.deepcopy(fed), _books_of(fed, books)))

    events = await _collect(venue.stream(), lambda out: fed_tokens <= _books_seen(out),
                            during=during)
    await venue.close()
    assert listed == [1]
    asked = [q for _m, path, q in srv.requests if path == "/events"]
    assert "id" not in asked[0] and [q.get("id") for q in asked[1:]] == [[FED]]
    new = [e for e in events if isinstance(e, Instrument)]
    assert {i.symbol for i in new} == fed_tokens and all(i.meta["tradeable"] for i in new)
    fed_event = [e for e in events if isinstance(e, Event) and e.event_id == FED]
    assert len(fed_event) == 1 and fed_event[0].exhaustive
    first_book = min(i for i, e in enumerate(events) if isinstance(e, OrderBook)
                     and e.instrument_id.partition(":")[2] in fed_tokens)
    assert max(events.index(i) for i in new) < events.index(fed_event[0]) < first_book
    assert all(venue.instrument(f"polymarket:{t}") is not None for t in fed_tokens)
    ops = [json.loads(m) for m in srv.ws_messages if m != "PING"]
    assert ops[1]["operation"] == "subscribe" and set(ops[1]["assets_ids"]) == fed_tokens
    # the new market's fees are the venue's for it (its Gamma fee schedule, not a default)
    some = next(iter(fed_tokens))
    assert venue.fee_schedule(f"polymarket:{some}") == venue_mod.PolymarketFeeSchedule.of(
        venue_mod.inst_mod.fee_of(venue.instrument(f"polymarket:{some}")))  # type: ignore[arg-type]


async def test_discovery_polls_without_a_frame_and_says_a_market_stopped_taking_orders(
        president_only: tuple[SnapshotServer, dict[str, Any], list[dict[str, Any]]]) -> None:
    """No ``new_market`` frame (a client without the channel's custom features would get
    none): the poll finds the new event; a market of the followed event that stopped
    taking orders is said as its instruments with ``tradeable`` false and the event no
    longer exhaustive (a scanner must not take its basket as risk-free any more)."""
    srv, fed, books = president_only
    venue = PolymarketVenue(_settings(srv, discovery_poll_s=0.2))
    fed_tokens = set(_tokens(fed))
    president = srv.events[0]
    halted = president["markets"][0]
    halted_tokens = set(json.loads(halted["clobTokenIds"]))
    done: list[bool] = []

    def during(out: list[Any]) -> None:
        if not done and len(_books_seen(out)) >= 2:
            done.append(True)
            with srv._lock:
                srv.events.append(copy.deepcopy(fed))  # listed without a frame
                srv.books.update({b["asset_id"]: b for b in _books_of(fed, books)})
                halted["acceptingOrders"] = False

    def finished(out: list[Any]) -> bool:
        changed = {i.symbol for i in out if isinstance(i, Instrument)}
        return fed_tokens <= _books_seen(out) and halted_tokens <= changed

    events = await _collect(venue.stream(), finished, during=during)
    await venue.close()
    changed = [i for i in events if isinstance(i, Instrument) and i.symbol in halted_tokens]
    assert [i.meta["tradeable"] for i in changed] == [False, False]
    assert all(not i.takes_orders for i in changed)
    again = [e for e in events if isinstance(e, Event) and e.event_id == PRESIDENT]
    assert [e.exhaustive for e in again] == [True, False]  # at the start, after the halt
    # said once each: the next polls found nothing new
    assert len([i for i in events if isinstance(i, Instrument) and i.symbol in fed_tokens]
               ) == len(fed_tokens)


async def test_discovery_off_follows_the_start_markets_only(
        president_only: tuple[SnapshotServer, dict[str, Any], list[dict[str, Any]]]) -> None:
    srv, fed, books = president_only
    venue = PolymarketVenue(_settings(srv, discovery_poll_s=0))
    pushes: list[int] = []

    def during(out: list[Any]) -> None:
        if not pushes and len(_books_seen(out)) >= 2:
            pushes.append(srv.list_event(copy.deepcopy(fed), _books_of(fed, books)))

    with pytest.raises(TimeoutError):
        await _collect(venue.stream(), lambda out: bool(_books_seen(out) & set(_tokens(fed))),
                       during=during, timeout_s=1.5)
    await venue.close()
    assert pushes == [1] and not [r for r in srv.requests[1:] if r[1] == "/events"]


# --- the core: a paper run trades a market listed after its start --------------------------

async def test_a_paper_run_trades_a_basket_of_an_event_listed_after_its_start(
        president_only: tuple[SnapshotServer, dict[str, Any], list[dict[str, Any]]],
        no_gap: None, tmp_path: Path) -> None:
    """The negRisk scanner finds the Fed basket only once the event is listed: its
    instruments reach the core's market state mid-run (tick, minimum size, fee curve), the
    event its scanners, the books its broker; the five legs are bought and booked."""
    srv, fed, books = president_only
    config = parse_config({
        "argus": {"plugins": ["polymarket", "negrisk"], "mode": "paper"},
        "run": {"venue": "polymarket", "scanners": ["negrisk"], "starting_cash": "10000"},
        "plugins": {"polymarket": {"gamma_url": srv.url, "clob_url": srv.url,
                                   "ws_url": srv.ws_url, "settlement_poll_s": 0,
                                   "discovery_poll_s": 3600},
                    "negrisk": {"min_edge": "0.001", "gas_usd_per_leg": "0"}}})
    runner = Runner(config, tmp_path / "run")
    task = asyncio.create_task(runner.run())
    yes = [json.loads(m["clobTokenIds"])[0] for m in fed["markets"]]
    loop = asyncio.get_running_loop()
    try:
        deadline = loop.time() + 30
        while len(runner.market.books) < 2 * len(srv.events[0]["markets"]):
            assert loop.time() < deadline, "the presidential books never came"
            await asyncio.sleep(0.02)
        before = runner.n_fills
        assert f"polymarket:{yes[0]}" not in runner.market.instruments
        srv.list_event(copy.deepcopy(fed), _books_of(fed, books))
        while runner.n_fills < before + len(yes):
            assert loop.time() < deadline + 30, "the Fed basket was never bought"
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert FED in runner.market.events
    inst = runner.market.instruments[f"polymarket:{yes[0]}"]
    assert inst.tick_size == Decimal(str(fed["markets"][0]["orderPriceMinTickSize"]))
    bought = {iid for iid, p in runner.account.positions.items() if p.quantity > 0}
    assert {f"polymarket:{t}" for t in yes} <= bought


async def test_a_recording_carries_a_market_listed_mid_stream_with_its_fees(
        president_only: tuple[SnapshotServer, dict[str, Any], list[dict[str, Any]]],
        no_gap: None, tmp_path: Path) -> None:
    """``argus record`` writes the new market's instruments with their fee schedules; its
    replay serves those schedules (the Fed markets' Gamma fees), not the defaults."""
    from argus_core.builtins.replay_venue import ReplaySettings, ReplayVenue
    from argus_core.recorder import record

    srv, fed, books = president_only
    config = parse_config({
        "argus": {"plugins": ["polymarket"], "mode": "paper"},
        "run": {"venue": "polymarket"},
        "plugins": {"polymarket": {"gamma_url": srv.url, "clob_url": srv.url,
                                   "ws_url": srv.ws_url, "settlement_poll_s": 0,
                                   "discovery_poll_s": 3600, "fee_rate_override": "0.03"}}})
    out = tmp_path / "rec.ndjson"
    fed_tokens = set(_tokens(fed))
    task = asyncio.create_task(record(config, out, duration_s=30))

    def lines() -> list[dict[str, Any]]:
        text = out.read_text() if out.exists() else ""
        return [json.loads(x) for x in text.split("\n")[:-1] if x.strip()]  # complete ones

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while sum(x.get("type") == "book" for x in lines()) < 2:
        assert loop.time() < deadline
        await asyncio.sleep(0.02)
    srv.list_event(copy.deepcopy(fed), _books_of(fed, books))
    while not fed_tokens <= {x.get("asset_id", x.get("instrument_id", "")).partition(":")[2]
                             for x in lines() if x.get("type") == "book"}:
        assert loop.time() < deadline + 20
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    listed = [x for x in lines() if x.get("type") == "instrument"]
    assert {x["symbol"] for x in listed} == fed_tokens
    assert all(x["fee_schedule"]["class"].endswith(":PolymarketFeeSchedule") for x in listed)
    replay = ReplayVenue(ReplaySettings(ndjson=out))
    replayed = [e for e in replay.events() if isinstance(e, Instrument)]
    assert {i.symbol for i in replayed} == fed_tokens
    iid = replayed[0].id
    assert replay.fee_schedule(iid).fee(Decimal("0.5"), Decimal("100"), maker=False) == \
        Decimal("0.75")  # 0.03 x 100 x 0.5 x 0.5: the override, recorded


async def test_settled_tokens_leave_their_connection_and_make_room_for_new_ones(
        president_only: tuple[SnapshotServer, dict[str, Any], list[dict[str, Any]]],
        no_gap: None) -> None:
    """A resolved market's tokens are unsubscribed (a run following rolling markets holds
    connections for the open ones only) but what still arrives for them is read; a market
    listed afterwards takes their room on the same connection."""
    srv, fed, books = president_only
    markets = srv.events[0]["markets"]
    room = 2 * len(markets)  # the presidential event fills one connection exactly
    venue = PolymarketVenue(_settings(srv, discovery_poll_s=3600, end_when_resolved=False,
                                      tokens_per_ws_connection=room))
    resolved = markets[0]
    settled_tokens = json.loads(resolved["clobTokenIds"])
    srv.resolutions = {"timestamp": "1789669805000",
                       "outcome_prices": {str(resolved["id"]): ["1", "0"]}}
    fed_one = copy.deepcopy(fed)
    fed_one["markets"] = fed_one["markets"][:1]  # two tokens: the room the settled two left
    fed_tokens = set(_tokens(fed_one))
    print_ = {"event_type": "last_trade_price", "asset_id": settled_tokens[0], "market": "",
              "price": "0.99", "size": "1", "side": "BUY", "timestamp": "1789669806000"}
    steps: list[str] = []

    def during(out: list[Any]) -> None:
        if not steps and len(_books_seen(out)) == room:
            steps.append("resolve")
            for frame in srv._resolved_frames(set(settled_tokens)):
                srv.push(frame)
        elif steps == ["resolve"] and sum(isinstance(e, Settlement) for e in out) == 2:
            steps.append("print")
            srv.push(print_)  # still read after the unsubscribe
        elif steps == ["resolve", "print"] and any(isinstance(e, Trade) for e in out):
            steps.append("list")
            srv.list_event(fed_one, _books_of(fed_one, books))

    events = await _collect(venue.stream(), lambda out: fed_tokens <= _books_seen(out),
                            during=during)
    stream = venue._stream
    await venue.close()
    assert steps == ["resolve", "print", "list"]
    trades = [e for e in events if isinstance(e, Trade)]
    assert [t.instrument_id for t in trades] == [f"polymarket:{settled_tokens[0]}"]
    ops = [json.loads(m) for m in srv.ws_messages if m != "PING"]
    gone = [t for o in ops if o.get("operation") == "unsubscribe" for t in o["assets_ids"]]
    assert sorted(gone) == sorted(settled_tokens)  # one message per settlement
    assert next(o for o in ops if o.get("operation") == "subscribe")["assets_ids"] == \
        _tokens(fed_one)
    assert stream is not None and stream.stats["connects"] == 1  # no second connection
    assert stream.stats["malformed"] == 0


async def test_a_failed_or_malformed_discovery_changes_nothing_and_the_next_one_lists(
        president_only: tuple[SnapshotServer, dict[str, Any], list[dict[str, Any]]],
        caplog: pytest.LogCaptureFixture) -> None:
    """Discovery during the stream answered 503 (four times: the client's retries spent),
    then a page whose Fed event is malformed (skipped, as at the start): the followed
    markets stay followed, nothing is said; the next good answer lists the Fed event."""
    srv, fed, books = president_only
    answers: list[str] = []

    def extra(method: str, path: str, query: Any, body: Any) -> tuple[int, Any] | None:
        if path != "/events" or len(answers) >= 5:
            return None
        if not any(e["id"] == FED for e in srv.events):
            return None
        answers.append("503" if len(answers) < 4 else "bad")
        if answers[-1] == "503":
            return 503, {"error": "busy"}
        bad = copy.deepcopy(fed)
        bad["markets"][0]["clobTokenIds"] = "[\"not-a-token\", \"1\"]"
        return 200, [srv.events[0], bad]

    srv.extra = extra
    venue = PolymarketVenue(_settings(srv, discovery_poll_s=0.2, request_timeout_s=2,
                                      reconnect_max_s=0.05))
    fed_tokens = set(_tokens(fed))
    listed: list[bool] = []

    def during(out: list[Any]) -> None:
        if not listed and len(_books_seen(out)) >= 2:
            listed.append(True)
            with srv._lock:
                srv.events.append(copy.deepcopy(fed))
                srv.books.update({b["asset_id"]: b for b in _books_of(fed, books)})

    with caplog.at_level("WARNING"):
        events = await _collect(venue.stream(), lambda out: fed_tokens <= _books_seen(out),
                                during=during, timeout_s=30)
    await venue.close()
    assert answers == ["503"] * 4 + ["bad"]
    assert "discovery of new markets failed" in caplog.text
    assert "skipping malformed Gamma event" in caplog.text
    new = [e for e in events if isinstance(e, Instrument)]
    assert {i.symbol for i in new} == fed_tokens  # said once, after the good answer


async def test_a_new_token_whose_book_never_comes_is_snapshotted_over_rest() -> None:
    """The venue answers the subscribe operation without the new token's book (lost, or
    not there yet): the token stays stale, the changes meanwhile are kept, and once it is
    ``ws_stale_after_s`` of the stream's time overdue a REST snapshot makes it live, the
    kept changes applied on top (no reconnect needed)."""
    old = make_book("11", "0xm", [("0.40", "10")], [("0.45", "10")])
    srv = SnapshotServer([], [old], ws_port=0).start()
    t0 = 1_786_875_400_000

    def tick(ms: int, token: str, price: str) -> dict[str, Any]:
        return {"event_type": "price_change", "market": "0xm", "timestamp": str(t0 + ms),
                "price_changes": [{"asset_id": token, "price": price, "size": "3",
                                   "side": "BUY"}]}

    async def drive(stream: MarketStream) -> None:
        while not stream.live.get("11"):
            await asyncio.sleep(0.01)
        stream.add_tokens(["22"])  # the server has no book of it: none is sent
        while not any("operation" in m for m in srv.ws_messages):
            await asyncio.sleep(0.01)
        srv.push(tick(100, "22", "0.30"))  # before any book of 22: kept for it
        await asyncio.sleep(0.05)
        with srv._lock:  # REST has it now, newer than the stream's clock was
            srv.books["22"] = make_book("22", "0xm", [("0.31", "4")], [("0.60", "9")],
                                        timestamp=str(t0 + 50))
        for ms in range(200, 20_000, 200):  # the stream's clock moves on; never silent
            srv.push(tick(ms, "11", "0.39"))
            await asyncio.sleep(0.02)

    try:
        # 5 s of wall-clock silence would reconnect: far beyond a loaded box's pauses.  The
        # overdue rule counts the stream's time, which the ticks move 20 s on.
        s = _settings(srv, ws_stale_after_s=5.0)
        stream = MarketStream(s, ["11"], PolymarketRest(s), without_tokens=True)
        driver = asyncio.create_task(drive(stream))
        events = await _collect(stream.__aiter__(), lambda out: "22" in _books_seen(out))
        driver.cancel()
    finally:
        srv.stop()
    book = next(e for e in events if isinstance(e, OrderBook) and e.instrument_id.endswith(":22"))
    # the REST book with the kept change (0.30 x 3 bid) on top
    assert sorted(map(tuple, book.bids.tolist())) == [(0.3, 3.0), (0.31, 4.0)]
    assert stream.live["22"] and stream.stats["resnapshots"] >= 1
    assert stream.stats["connects"] == 1  # no reconnect was needed


# --- a tick size change -------------------------------------------------------------------

async def test_a_tick_size_change_replaces_the_instrument_for_signing_and_the_core(
        president_only: tuple[SnapshotServer, dict[str, Any], list[dict[str, Any]]]) -> None:
    """A ``tick_size_change`` was only a ``Signal``: the venue's instrument (what signing
    checks a limit against) kept the old tick, so orders were judged on the old grid (on a
    finer new one every order between the old ticks refused as "off the tick grid"), and
    the core's market state (scanners, paper fills) never learnt the new tick.  Now the
    stream says the instrument again, on the new tick, just before the signal, and the
    venue signs against it."""
    from argus_venue_polymarket.signing import order_terms

    from argus_core import Order, OrderType, Side, Signal, TimeInForce, VenueError

    srv, _fed, _books = president_only
    venue = PolymarketVenue(_settings(srv, discovery_poll_s=3600))
    pushed: list[str] = []

    def during(out: list[Any]) -> None:
        if not pushed and _books_seen(out):
            token = sorted(_books_seen(out))[0]
            old = venue.instrument(f"polymarket:{token}")
            assert old is not None and old.tick_size == Decimal("0.001")
            srv.push({"event_type": "tick_size_change", "asset_id": token, "market": "0xm",
                      "old_tick_size": "0.001", "new_tick_size": "0.01",
                      "timestamp": "1757908892351"})
            pushed.append(token)

    events = await _collect(venue.stream(), lambda out: any(
        isinstance(e, Signal) for e in out), during=during)
    await venue.close()
    iid = f"polymarket:{pushed[0]}"
    k = next(i for i, e in enumerate(events) if isinstance(e, Signal))
    assert isinstance(events[k - 1], Instrument) and events[k - 1].id == iid
    assert events[k - 1].tick_size == Decimal("0.01")
    inst = venue.instrument(iid)
    assert inst is not None and inst.tick_size == Decimal("0.01")

    def order(limit: str) -> Order:
        return Order("c1", "polymarket", iid, Side.BUY, Decimal(10), Decimal(limit),
                     OrderType.LIMIT, TimeInForce.GTC, "s")

    assert order_terms(order("0.31"), inst).tick == "0.01"
    with pytest.raises(VenueError, match=r"off the 0\.01 tick grid"):
        order_terms(order("0.305"), inst)  # the venue would refuse it now
