"""A seeded random fault campaign against Kraken's MARKET DATA path (WebSocket v2 ``book``
and ``trade``), driven through the real :class:`KrakenMarketFeed` into a core
``MarketState`` as the runner does.

A local exchange (:class:`KrakenMdExchange`) holds the true books of two pairs (random
adds, removes, touch moves, sides and whole books emptied, levels beyond the subscribed
depth refilling it as Kraken does, trade prints) and speaks the v2 protocol to the feed:
per-symbol subscribe acks, a checksummed snapshot, checksummed updates, trades.  Every
frame it sends meets a drawn fault (see ``argus_testkit.md_campaign``); a disconnect or a
stall goes through the feed's ``on_disconnect`` / ``on_connect`` as ``WsSession.events``
does, and a ``ConnectionResetError`` out of the feed (too many resyncs) is a reconnect,
as there.

Checked after every frame: each book the core calls tradeable is one the exchange had
(never crossed, no removed level, no corrupted size), its timestamp never goes back, each
trade in the core is one the exchange printed; at the end, with faults off, every book is
live and equal to the exchange's within a bounded number of frames.

Regressions shrunk from it (end of this file):

* seed 0 (a corrupted snapshot checksum, then the fresh snapshot lost): the book waited
  for a snapshot for the rest of the connection (stale for ever); now a snapshot not there
  within ``heartbeat_timeout_s`` of subscribing is asked for again (also a refused
  subscribe);
* long-run seed 149 and the next failing one (a trade frame with a wrong value): a print
  at a price off the pair's tick, or of size ``1e400``, reached the core as a trade; now
  refused.

Known limit (seed 1312, pinned as a strict xfail): Kraken's checksum joins the asks' text
then the bids', so a lost update that moves a level across the spread with its size
leaves a book with the same checksum; the campaign fails on a seed whose drop lands on one.
"""

from __future__ import annotations

import asyncio
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from argus_testkit.md_campaign import (
    MD_WEIGHTS,
    WRONG_VALUES,
    BookHistory,
    LogCapture,
    MdCampaignFailure,
    MdChecker,
    MdFault,
    MdFaultPlan,
    TrueMarket,
    garble,
    run_md_campaign,
    truncate,
)
from argus_venue_kraken.book import ChecksumBook
from argus_venue_kraken.config import KrakenSettings
from argus_venue_kraken.data import KrakenMarketFeed
from argus_venue_kraken.instruments import PairInfo, instrument_id
from argus_venue_kraken.testing import ReferenceBook
from argus_venue_kraken.testing.book import _rfc3339

from argus_core import BookStatus, MarketState, OrderBook, Trade

SYMBOLS = ("BTC/USD", "ETH/USD")
DEPTH = 10
PD, LD = 1, 8
TICK = Decimal("0.1")
#: No REST resnapshots on Kraken: a resubscribe brings the fresh snapshot.
WEIGHTS = {f: w for f, w in MD_WEIGHTS.items() if f is not MdFault.OLD_SNAPSHOT}


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f")


class KrakenMdExchange:
    """The true books and the v2 frames a connection to them receives."""

    def __init__(self, seed: int, plan: MdFaultPlan) -> None:
        self.plan = plan
        self.truth = TrueMarket(list(SYMBOLS), random.Random(seed), tick=TICK,
                                lo=Decimal(100), hi=Decimal(140), lot=Decimal("0.0001"),
                                max_levels=DEPTH + 3, step_ns=250_000_000)
        self.history = BookHistory()
        self.views: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}
        for s in SYMBOLS:
            self.views[s] = self._view(s)
            self.history.record(instrument_id(s), *self.views[s])
        self.book_subs: set[str] = set()
        self.trade_subs: set[str] = set()
        #: symbol -> steps left before its (late) snapshot is sent
        self.late: dict[str, int] = {}
        self.sub_fault: MdFault | None = None
        self.outbox: list[str] = []  # frames on their way to the client
        self.printed = 0

    def _view(self, s: str) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        """The subscribed depth of the true book (what Kraken's book channel shows)."""
        bids = dict(sorted(self.truth.bids[s].items(), reverse=True)[:DEPTH])
        asks = dict(sorted(self.truth.asks[s].items())[:DEPTH])
        return bids, asks

    def _checksum(self, bids: dict[Decimal, Decimal], asks: dict[Decimal, Decimal]) -> int:
        ref = ReferenceBook(DEPTH, PD, LD)
        ref.apply([{"price": _num(p), "qty": _num(q)} for p, q in bids.items()],
                  [{"price": _num(p), "qty": _num(q)} for p, q in asks.items()])
        return ref.checksum()

    def _ts(self) -> str:
        return _rfc3339(self.truth.now_ns)

    def _snapshot(self, s: str) -> str:
        bids, asks = self.views[s]
        return json.dumps({"channel": "book", "type": "snapshot", "data": [{
            "symbol": s, "bids": [{"price": _num(p), "qty": _num(q)} for p, q in bids.items()],
            "asks": [{"price": _num(p), "qty": _num(q)} for p, q in asks.items()],
            "checksum": self._checksum(bids, asks), "timestamp": self._ts()}]})

    def receive(self, msg: dict[str, Any]) -> None:
        """A message from the client: acknowledge (un)subscriptions, send snapshots."""
        method, params = msg.get("method"), msg.get("params", {})
        channel = params.get("channel")
        for s in params.get("symbol", []):
            ack: dict[str, Any] = {"method": method, "success": True,
                                   "result": {"channel": channel, "symbol": s},
                                   "req_id": msg.get("req_id"), "time_in": self._ts(),
                                   "time_out": self._ts()}
            if method == "unsubscribe":
                (self.book_subs if channel == "book" else self.trade_subs).discard(s)
                self.late.pop(s, None) if channel == "book" else None
                self.outbox.append(json.dumps(ack))
                continue
            if channel == "trade":
                self.trade_subs.add(s)
                self.outbox.append(json.dumps(ack))
                continue
            fault, self.sub_fault = self.sub_fault, None
            if fault is MdFault.SUB_REFUSED:
                self.plan.note(f"exchange: refused the book subscribe of {s}")
                self.outbox.append(json.dumps({**ack, "success": False,
                                               "error": "EGeneral:Too many requests"}))
                continue
            self.book_subs.add(s)
            if fault is MdFault.SUB_LATE:
                self.late[s] = 4
                self.plan.note(f"exchange: the book subscribe of {s} answered late")
                continue
            self.outbox.append(json.dumps(ack))
            self.outbox.append(self._snapshot(s))

    def step(self) -> None:
        """Move the truth one step and queue the frames a subscriber receives."""
        for s, left in list(self.late.items()):
            if left <= 1:
                del self.late[s]
                self.outbox.append(json.dumps({"method": "subscribe", "success": True,
                                               "result": {"channel": "book", "symbol": s}}))
                self.outbox.append(self._snapshot(s))
            else:
                self.late[s] = left - 1
        changes = self.truth.step()
        if self.truth.now_ns % 1_000_000_000 == 0 and (self.book_subs or self.trade_subs):
            self.outbox.append('{"channel":"heartbeat"}')  # once a second, as Kraken does
        for s in {c[0] for c in changes}:
            old_bids, old_asks = self.views[s]
            bids, asks = self.views[s] = self._view(s)
            self.history.record(instrument_id(s), bids, asks)
            if s not in self.book_subs or s in self.late:
                continue

            def diff(old: dict[Decimal, Decimal], new: dict[Decimal, Decimal]
                     ) -> list[dict[str, str]]:
                gone = [{"price": _num(p), "qty": "0"} for p in old if p not in new]
                return gone + [{"price": _num(p), "qty": _num(q)} for p, q in new.items()
                               if old.get(p) != q]

            b, a = diff(old_bids, bids), diff(old_asks, asks)
            if b or a:
                self.outbox.append(json.dumps({"channel": "book", "type": "update", "data": [{
                    "symbol": s, "bids": b, "asks": a, "checksum": self._checksum(bids, asks),
                    "timestamp": self._ts()}]}))
        for p in self.truth.prints[self.printed:]:
            if p.instrument in self.trade_subs:
                self.outbox.append(json.dumps({"channel": "trade", "type": "update", "data": [{
                    "symbol": p.instrument, "side": p.side, "price": _num(p.price),
                    "qty": _num(p.size), "ord_type": "limit", "trade_id": self.printed + 1,
                    "timestamp": _rfc3339(p.ts_ns)}]}))
            self.printed += 1


def wrong(frame: str, rng: random.Random) -> str:
    """``frame`` with one field given a wrong type or value (or an off-tick price)."""
    msg = json.loads(frame)
    data = msg.get("data")
    if not isinstance(data, list) or not data:
        msg["method" if "method" in msg else "channel"] = rng.choice(WRONG_VALUES)
        return json.dumps(msg)
    item = data[0]
    levels = [lv for side in ("bids", "asks") for lv in item.get(side, [])]
    target = rng.choice(levels) if levels and rng.random() < 0.8 else item
    field = rng.choice([k for k in target if k != "symbol"] or ["symbol"])
    roll = rng.random()
    if field == "price" and roll < 0.3:
        target[field] = str(Decimal(str(target[field])) + TICK / 2)  # off the tick
    elif roll < 0.45 and field in ("qty", "price"):
        target[field] = "-" + str(target[field])
    else:
        target[field] = rng.choice(WRONG_VALUES)
    return json.dumps(msg)


@attrs.define
class Driver:
    """The feed, its exchange and the core state, stepped frame by frame."""

    plan: MdFaultPlan
    feed: KrakenMarketFeed
    ex: KrakenMdExchange
    state: MarketState
    checker: MdChecker
    held: str | None = None
    frames: int = 0
    connects: int = 0
    stalled: int = 0  # steps left of a stall (frames lost, no heartbeat)

    def emit(self, events: list[Any], where: str) -> None:
        for ev in events:
            self.state.apply(ev)
            if isinstance(ev, BookStatus):
                self.plan.note(f"{where}: {ev.instrument_id} stale: {ev.reason[:70]}")
            elif isinstance(ev, OrderBook) and not self.state.tradeable(ev.instrument_id)[0]:
                self.plan.note(f"{where}: {ev.instrument_id} book, not tradeable")
            if isinstance(ev, Trade):
                assert any(p.instrument == ev.instrument_id.partition(":")[2]
                           and p.price == ev.price and p.size == ev.size
                           and p.ts_ns == ev.ts_ns for p in self.ex.truth.prints), \
                    f"{where}: a trade the exchange never printed: {ev}"
        self.checker.after_frame(where)

    def flush(self) -> None:
        while self.feed._outbox:
            self.ex.receive(self.feed._outbox.pop(0))

    def connect(self) -> None:
        self.connects += 1
        self.ex.outbox.clear()
        self.ex.book_subs.clear()
        self.ex.trade_subs.clear()
        self.ex.late.clear()
        self.emit(self.feed.on_connect(), f"connect {self.connects}")
        self.flush()

    def disconnect(self, reason: str) -> None:
        self.ex.outbox.clear()
        self.held = None
        self.emit(self.feed.on_disconnect(reason), f"disconnect ({reason})")
        self.connect()

    def deliver(self, raw: str, where: str) -> None:
        self.frames += 1
        try:
            events = self.feed.on_frame(raw)
        except ConnectionResetError as exc:  # WsSession.events: an OSError is a reconnect
            self.plan.note(f"{where}: feed dropped the connection: {exc}")
            self.disconnect(str(exc))
            return
        self.emit(events, where)
        self.flush()

    def pump(self, step: int) -> None:
        """Deliver what the exchange sent, each frame under its drawn fault."""
        while self.ex.outbox:
            raw = self.ex.outbox.pop(0)
            fault, rng = self.plan.draw("ws")
            where = f"step {step} frame {self.frames} ({fault.value})"
            if self.stalled:
                continue  # the socket is silent: the frame never arrives
            if fault is MdFault.DROP:
                self.plan.note(f"{where}: dropped {raw[:60]}")
                continue
            if fault is MdFault.DISCONNECT:
                self.disconnect("connection closed (1006)")
                return
            if fault is MdFault.STALL:
                self.stalled = rng.randint(1, 4)
                continue
            if fault in (MdFault.SUB_LATE, MdFault.SUB_REFUSED):
                self.ex.sub_fault = fault
            elif fault is MdFault.CORRUPT_CHECK and '"checksum"' in raw:
                msg = json.loads(raw)
                msg["data"][0]["checksum"] = (msg["data"][0]["checksum"] + 1) % 2 ** 32
                raw = json.dumps(msg)
            elif fault is MdFault.TRUNCATE:
                raw = truncate(raw, rng)
            elif fault is MdFault.GARBLE:
                raw = garble(raw, rng)
            elif fault is MdFault.WRONG_TYPE:
                raw = wrong(raw, rng)
            elif fault is MdFault.REORDER and self.held is None and self.ex.outbox:
                self.held = raw
                continue
            self.deliver(raw, where)
            if fault is MdFault.DUPLICATE:
                self.deliver(raw, where + " again")
            if self.held is not None and raw is not self.held:
                held, self.held = self.held, None
                self.deliver(held, where + " (held back)")

    def tick(self, step: int) -> None:
        self.ex.step()
        self.pump(step)
        if self.stalled:
            self.stalled -= 1
            if not self.stalled:  # the heartbeat deadline fires
                self.disconnect("no frame for 10s (heartbeat missed)")


def make_world(plan: MdFaultPlan, tmp: Path) -> Driver:
    settings = attrs.evolve(KrakenSettings(nonce_path=tmp / "nonce"), pairs=list(SYMBOLS),
                            channels=["book", "trade"], book_depth=DEPTH)
    pairs = {s: PairInfo(s, s, s, PD, LD, TICK, Decimal("0.0001"), None, "online",
                         s[:3], "USD") for s in SYMBOLS}
    ex = KrakenMdExchange(plan.seed, plan)
    feed = KrakenMarketFeed(settings, pairs, clock_ns=lambda: ex.truth.now_ns)
    state = MarketState()
    return Driver(plan, feed, ex, state, MdChecker(state, ex.history, plan))


def scenario(tmp: Path, *, steps: int = 160, quiet_steps: int = 100):
    async def run(plan: MdFaultPlan) -> None:
        d = make_world(plan, tmp)
        with LogCapture() as logs:
            d.connect()
            for step in range(steps):
                d.tick(step)
            plan.quiet = True
            for step in range(steps, steps + quiet_steps):
                d.tick(step)
            problems = d.checker.converged()
            assert not problems, (f"{quiet_steps} quiet steps after the faults stopped the "
                                  f"core still differs from the exchange:\n"
                                  + "\n".join(problems))
            # memory bounded: nothing queued or remembered beyond the pairs
            assert not d.feed._outbox and len(d.feed._trade_ids) <= len(SYMBOLS)
            assert d.feed._awaiting <= set(SYMBOLS)
        # every fault the feed noticed was said in the log, without any credential
        assert not plan.drawn or logs.lines
        logs.assert_no_secret([d.feed.settings.api_key.reference if d.feed.settings.api_key
                               else ""])
        await asyncio.sleep(0)
    return run


def make_plan(seed: int) -> MdFaultPlan:
    return MdFaultPlan(seed, rate=0.08, weights=WEIGHTS)


async def test_md_campaign_seeds(tmp_path: Path) -> None:
    times = await run_md_campaign(scenario(tmp_path), range(10), make_plan)
    assert len(times) == 10


@pytest.mark.slow
async def test_md_campaign_long(tmp_path: Path) -> None:
    await run_md_campaign(scenario(tmp_path, steps=600), range(100, 300), make_plan)


# -- regressions shrunk from the campaign ---------------------------------------------------

SNAP = {"channel": "book", "type": "snapshot", "data": [{
    "symbol": "BTC/USD", "bids": [{"price": "100.1", "qty": "1"}],
    "asks": [{"price": "100.3", "qty": "2"}], "checksum": 0,
    "timestamp": "2023-11-14T22:13:20.000000Z"}]}


@pytest.fixture
def clock() -> list[int]:
    return [1_700_000_000_000_000_000]


@pytest.fixture
def feed(tmp_path: Path, clock: list[int]) -> KrakenMarketFeed:
    settings = attrs.evolve(KrakenSettings(nonce_path=tmp_path / "nonce"), pairs=["BTC/USD"],
                            channels=["book", "trade"])
    pair = PairInfo("BTC/USD", "XXBTZUSD", "XBTUSD", 1, 8, Decimal("0.1"), Decimal("0.0001"),
                    None, "online", "XBT", "USD")
    f = KrakenMarketFeed(settings, {"BTC/USD": pair}, clock_ns=lambda: clock[0])
    f.on_connect()
    f._outbox.clear()
    return f


def _snapshot(feed: KrakenMarketFeed) -> str:
    book = feed.books["BTC/USD"]
    book.apply_snapshot(SNAP["data"][0]["bids"], SNAP["data"][0]["asks"])
    frame = json.loads(json.dumps(SNAP))
    frame["data"][0]["checksum"] = book.checksum()
    book.clear()
    return json.dumps(frame)


@pytest.mark.parametrize("how", ["snapshot lost", "subscribe refused"])
def test_a_snapshot_that_never_comes_is_asked_for_again(feed, clock, how) -> None:
    if how == "subscribe refused":
        feed.on_frame(json.dumps({"method": "subscribe", "success": False,
                                  "error": "EGeneral:Too many requests", "req_id": 1}))
    # ... then only heartbeats: before the fix the book stayed stale for good.
    clock[0] += 5 * 10**9
    assert feed.on_frame('{"channel":"heartbeat"}') == [] and not feed._outbox
    clock[0] += 6 * 10**9
    events = feed.on_frame('{"channel":"heartbeat"}')
    assert [type(e) for e in events] == [BookStatus] and "no snapshot" in events[0].reason
    assert [m["method"] for m in feed._outbox] == ["unsubscribe", "subscribe"]
    assert [type(e) for e in feed.on_frame(_snapshot(feed))] == [OrderBook]
    assert feed.is_live("BTC/USD")


def test_a_book_that_never_gets_a_snapshot_ends_the_connection(feed, clock) -> None:
    with pytest.raises(ConnectionResetError):  # WsSession.events reconnects
        for _ in range(10):
            clock[0] += 11 * 10**9
            feed.on_frame('{"channel":"heartbeat"}')


@pytest.mark.parametrize(("price", "qty"), [("100.15", "0.5"), ("100.1", "1e400"),
                                            ("1e400", "0.5"), ("100.1", "0.000000001")])
def test_a_print_no_trade_could_have_is_refused(feed, price, qty) -> None:
    frame = ('{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy",'
             f'"price":{price},"qty":{qty},"ord_type":"limit","trade_id":7,'
             '"timestamp":"2023-11-14T22:13:20.000000Z"}]}')
    assert feed.on_frame(frame) == [] and feed.malformed == 1
    good = frame.replace(f'"price":{price},"qty":{qty}', '"price":100.1,"qty":0.5')
    assert [type(e) for e in feed.on_frame(good)] == [Trade]


@pytest.mark.xfail(strict=True, reason="Kraken's checksum joins the asks then the bids: a "
                   "lost update that moves a level across the spread with its size cannot be "
                   "seen (known limit)")
def test_a_lost_update_moving_a_level_across_the_spread_is_seen(feed) -> None:
    """Seed 1312 of a 1000-1399 sweep: the lost update took the ask 100.3 x 2 away and
    put a bid 100.3 x 2 in (truth: bids 100.3, 100.1; no asks).  The next update's
    checksum is the truth's, and the feed's book (asks 100.3; bids 100.1) has the same
    checksum text, "10032" then the bids: the book stays live with an ask the exchange
    no longer has, until an update near the touch tells them apart (the checksum or a
    crossed book).  The campaign meets it only where a drop lands on such an update."""
    feed.on_frame(_snapshot(feed))
    truth = ChecksumBook("BTC/USD", 10, 1, 8)
    truth.apply_snapshot([{"price": "100.3", "qty": "2"}, {"price": "100.1", "qty": "1.5"}], [])
    update = {"channel": "book", "type": "update", "data": [{
        "symbol": "BTC/USD", "bids": [{"price": "100.1", "qty": "1.5"}], "asks": [],
        "checksum": truth.checksum(), "timestamp": "2023-11-14T22:13:21.000000Z"}]}
    feed.on_frame(json.dumps(update))
    assert not feed.is_live("BTC/USD")


async def test_the_campaign_catches_a_feed_that_keeps_a_gapped_book(tmp_path, monkeypatch
                                                                    ) -> None:
    """The campaign's own check: a feed that ignores checksum mismatches and gaps fails."""
    monkeypatch.setattr(KrakenMarketFeed, "_resync", lambda self, symbol, reason, **kw: [])
    with pytest.raises(MdCampaignFailure, match=r"never had|differs"):
        await run_md_campaign(scenario(tmp_path), range(3), make_plan, shrink_budget=4)
