"""A seeded random fault campaign against Polymarket's MARKET DATA path (the CLOB market
channel and the REST resnapshots), driven through the real :class:`MarketStream` (its
shard loop: subscribe, frames, stale marking, reconnects, REST resnapshots) into a core
``MarketState`` as the runner does.

A local exchange (:class:`PmMdExchange`) holds the true books of three tokens (random
adds, removes, touch moves inside the spread, a side or the whole book emptied; prices in
(0, 1) on a 0.01 tick; trade prints) and answers over an in-process connection that
stands in for the socket (``ws_connect`` is swapped for it): a hashed ``book`` per token
on subscribe, then ``price_change`` frames (absolute sizes, ``best_bid`` / ``best_ask``
after each change) and ``last_trade_price``.  Its REST ``POST /books`` answers a few
frames late with the books as they were when asked (or older: ``OLD_SNAPSHOT``).

Faults: as ``argus_testkit.md_campaign`` draws them, except that a ``price_change`` is
never dropped: the market channel has no sequence numbers, so a lost change that does not
move the touch cannot be seen by any client (the known limit, pinned by an xfail below);
``book`` and trade frames are dropped.  Checked at every frame boundary: each book the core
calls tradeable is one the exchange had, its timestamp never goes back, each trade is one
the exchange printed; at the end, faults off, every book is live and equal to the truth.

Bugs it found (regressions at the end of this file): a REST resnapshot was taken however
old it was, and the changes the stream had carried since were lost (seeds 9, 120, 138:
a never-existing book tradeable); a subscribe ``book`` lost left the token stale for good
(fixed on sight, the gap Kraken's and Kalshi's campaigns showed; the ``book`` drops keep it);
a ``price_change`` under a mangled ``event_type`` or ``asset_id`` was dropped unseen
(seeds 3, 106) or emptied from its list (seed 1044); a price off the tick or a size of
1e400 reached the core; an unreadable decimal raised ``InvalidOperation`` and ended the
shard (seed 100); reordered changes made book timestamps go back; the malformed-frame
resnapshot was awaited inside the read loop; changes kept for a REST book's catch-up that
were read before a malformed frame's lost ones were replayed over the REST book stamped in
their millisecond, undoing a lost change (seed 1479, a sweep of 1000-1999); and (found
beside it) kept changes were replayed in the order they came, not their time order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator
from decimal import Decimal
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
from argus_venue_polymarket import data as pm_data
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.data import MarketStream
from argus_venue_polymarket.instruments import instrument_id
from argus_venue_polymarket.schemas import ClobBook
from argus_venue_polymarket.testing import make_book
from websockets.exceptions import ConnectionClosed

from argus_core import BookStatus, DataError, MarketState, OrderBook, Trade

TOKENS = ["7001", "7002", "7003"]
TICK = Decimal("0.01")


class _Done(Exception):
    """The scenario has run its steps."""


def _px(p: Decimal) -> str:
    return str(p.quantize(TICK))


class PmMdExchange:
    """The true books, the frames of the open connection, and the REST books."""

    def __init__(self, seed: int, plan: MdFaultPlan) -> None:
        self.plan = plan
        self.truth = TrueMarket(TOKENS, random.Random(seed), tick=TICK, lo=Decimal("0.01"),
                                hi=Decimal("0.99"), step_ns=250_000_000)
        self.history = BookHistory()
        self.past: list[dict[str, dict[str, Any]]] = []  # book payloads per step
        for t in TOKENS:
            self.history.record(instrument_id(t), self.truth.bids[t], self.truth.asks[t])
        self.past.append({t: self._book(t) for t in TOKENS})
        self.subscribed: list[str] = []
        self.late = 0  # steps before the subscribe's books are sent
        self.silent = False  # the subscribe was ignored: nothing flows
        self.sub_fault: MdFault | None = None
        self.outbox: list[str] = []
        self.printed = 0

    def ms(self) -> str:
        return str(self.truth.now_ns // 1_000_000)

    def _book(self, t: str) -> dict[str, Any]:
        bids = [(_px(p), str(q)) for p, q in sorted(self.truth.bids[t].items(), reverse=True)]
        asks = [(_px(p), str(q)) for p, q in sorted(self.truth.asks[t].items())]
        return dict(make_book(t, "0xmd", bids, asks, timestamp=self.ms()), event_type="book")

    def reset(self) -> None:
        self.subscribed, self.outbox, self.late, self.silent = [], [], 0, False

    def receive(self, text: str) -> None:
        if text == "PING":
            return
        msg = json.loads(text)
        fault, self.sub_fault = self.sub_fault, None
        if fault is MdFault.SUB_REFUSED:  # the venue ignores it: no books, no changes
            self.plan.note("exchange: subscribe ignored")
            self.silent = True
            return
        self.subscribed = [t for t in msg["assets_ids"] if t in TOKENS]
        if fault is MdFault.SUB_LATE:
            self.plan.note("exchange: subscribe answered late")
            self.late = 6
            return
        self.outbox.append(json.dumps([self._book(t) for t in self.subscribed]))

    def step(self) -> None:
        bids = {t: dict(self.truth.bids[t]) for t in TOKENS}  # before the step
        asks = {t: dict(self.truth.asks[t]) for t in TOKENS}
        changes = self.truth.step()
        for t in {c[0] for c in changes}:
            self.history.record(instrument_id(t), self.truth.bids[t], self.truth.asks[t])
        self.past.append({t: self._book(t) for t in TOKENS})
        if self.silent or not self.subscribed:
            return
        if self.late:
            self.late -= 1
            if not self.late:
                self.outbox.append(json.dumps([self._book(t) for t in self.subscribed]))
            return
        if changes:
            pcs = []
            for t, side, price, size in changes:  # best bid / ask after each, as sent
                ladder = bids[t] if side == "bid" else asks[t]
                if size:
                    ladder[price] = size
                else:
                    ladder.pop(price, None)
                bb, ba = max(bids[t], default=None), min(asks[t], default=None)
                pcs.append({"asset_id": t, "price": _px(price), "size": str(size),
                            "side": "BUY" if side == "bid" else "SELL",
                            "hash": "0x0", "best_bid": _px(bb) if bb is not None else "0",
                            "best_ask": _px(ba) if ba is not None else "1"})
            self.outbox.append(json.dumps({"event_type": "price_change", "market": "0xmd",
                                           "timestamp": self.ms(), "price_changes": pcs}))
        for p in self.truth.prints[self.printed:]:
            self.outbox.append(json.dumps({
                "event_type": "last_trade_price", "asset_id": p.instrument, "market": "0xmd",
                "price": _px(p.price), "size": str(p.size), "side": p.side.upper(),
                "fee_rate_bps": "0", "timestamp": str(p.ts_ns // 1_000_000)}))
            self.printed += 1


def wrong(frame: str, rng: random.Random) -> str:
    """``frame`` with one field of a wrong type or value (a price outside (0, 1), off the
    tick, NaN, "1e400", a negative size, ...)."""
    msg = json.loads(frame)
    item = rng.choice(msg) if isinstance(msg, list) else msg
    targets: list[dict[str, Any]] = [item]
    for key in ("price_changes", "bids", "asks"):
        targets += [x for x in item.get(key) or [] if isinstance(x, dict)]
    target = rng.choice(targets)
    field = rng.choice(sorted(target))
    if field == "price" and rng.random() < 0.6:  # outside (0, 1), off the tick, no number
        off_tick = [] if item.get("event_type") == "last_trade_price" else ["0.505"]
        target[field] = rng.choice(["1.5", "-0.3", "NaN", "1e400", "Infinity", *off_tick])
    elif field == "size" and rng.random() < 0.6:
        target[field] = rng.choice(["-5", "NaN", "1e400", "Infinity", "-0.3"])
    elif field in ("best_bid", "best_ask"):
        target[field] = rng.choice(["NaN", "2", None])
    else:
        target[field] = rng.choice(WRONG_VALUES)
    return json.dumps(msg)


def corrupt(frame: str, rng: random.Random) -> str:
    """A ``book``'s hash or a ``price_change``'s best bid / ask made wrong."""
    msg = json.loads(frame)
    if isinstance(msg, list):
        rng.choice(msg)["hash"] = "0" * 40
    elif msg.get("event_type") == "price_change":
        ch = rng.choice(msg["price_changes"])
        key = rng.choice(("best_bid", "best_ask"))
        ch[key] = "0.995" if ch[key] in ("0", "1") else _px(Decimal(ch[key]) + TICK / 2)
    return json.dumps(msg)


@attrs.define
class Driver:
    plan: MdFaultPlan
    ex: PmMdExchange
    state: MarketState
    checker: MdChecker
    stream: MarketStream
    steps: int
    quiet_from: int
    stale_s: float
    step: int = 0
    frames: int = 0
    held: str | None = None
    again: str | None = None

    def tick(self) -> None:
        if self.step >= self.steps:
            raise _Done
        self.step += 1
        if self.step == self.quiet_from:
            self.plan.quiet = True
        self.ex.step()

    def drain(self) -> None:
        q = self.stream._queue
        while not q.empty():
            ev = q.get_nowait()
            self.state.apply(ev)
            if isinstance(ev, BookStatus):
                self.plan.note(f"step {self.step}: {ev.instrument_id} stale: {ev.reason[:70]}")
            elif isinstance(ev, Trade):
                assert any(instrument_id(p.instrument) == ev.instrument_id
                           and p.price == ev.price and p.size == ev.size
                           and p.ts_ns // 10**6 * 10**6 == ev.ts_ns
                           for p in self.ex.truth.prints), f"a trade never printed: {ev}"

    async def settle(self) -> None:
        """Let the REST answers due run, then fold what the stream emitted into the state."""
        for _ in range(3):
            await asyncio.sleep(0)
        self.drain()
        self.checker.after_frame(f"step {self.step} frame {self.frames}")

    async def recv(self) -> str:
        await self.settle()
        if self.again is not None:
            raw, self.again = self.again, None
            return raw
        while True:
            quiet_s = 0.0
            while not self.ex.outbox:
                self.tick()
                await self.settle()
                quiet_s += self.ex.truth.step_ns / 1e9
                if quiet_s > self.stale_s:  # the shard's ws_stale_after_s deadline
                    raise TimeoutError
            raw = self.ex.outbox.pop(0)
            fault, rng = self.plan.draw("ws")
            where = f"step {self.step} frame {self.frames} ({fault.value})"
            self.frames += 1
            if fault is MdFault.DROP:
                if '"price_change"' in raw:
                    return raw  # see the module docstring: not a fault a client can see
                self.plan.note(f"{where}: dropped {raw[:60]}")
                continue
            if fault is MdFault.DISCONNECT:
                self.plan.note(f"{where}: disconnect")
                raise ConnectionClosed(None, None)
            if fault is MdFault.STALL:
                for _ in range(rng.randint(1, 4)):
                    self.tick()
                raise TimeoutError
            if fault in (MdFault.SUB_LATE, MdFault.SUB_REFUSED):
                self.ex.sub_fault = fault
            elif fault is MdFault.OLD_SNAPSHOT:
                self.rest_old = rng.randint(2, 12)
            elif fault is MdFault.CORRUPT_CHECK:
                raw = corrupt(raw, rng)
            elif fault is MdFault.TRUNCATE:
                raw = truncate(raw, rng)
            elif fault is MdFault.GARBLE:
                raw = garble(raw, rng)
            elif fault is MdFault.WRONG_TYPE:
                raw = wrong(raw, rng)
            elif fault is MdFault.REORDER and self.held is None and self.ex.outbox:
                self.held = raw
                continue
            elif fault is MdFault.DUPLICATE:
                self.again = raw
            if self.held is not None:
                self.ex.outbox.insert(0, self.held)
                self.held = None
            return raw

    rest_old: int = 0

    async def books(self, tokens: list[str]) -> list[ClobBook | DataError]:
        """``POST /books``: the books as they were when asked (``rest_old`` steps older
        under an OLD_SNAPSHOT fault), answered a few steps later (at once when the
        shard itself awaits it)."""
        old, self.rest_old = self.rest_old, 0
        at = self.ex.past[max(0, len(self.ex.past) - 1 - old)]
        if old:
            self.plan.note(f"step {self.step}: REST answers {old} steps old")
        answer = [ClobBook.parse(at[t]) for t in tokens]
        if asyncio.current_task() is not self.shard:
            due = self.step + 2
            while self.step < due:
                await asyncio.sleep(0)
        return list(answer)

    shard: Any = None

    @contextlib.asynccontextmanager
    async def connect(self, *args: Any, **kwargs: Any) -> AsyncIterator[_Conn]:
        self.ex.reset()
        self.held = self.again = None
        yield _Conn(self)


class _Conn:
    def __init__(self, driver: Driver) -> None:
        self.driver = driver

    async def send(self, text: str) -> None:
        self.driver.ex.receive(text)

    async def recv(self) -> str:
        return await self.driver.recv()


def scenario(monkeypatch: pytest.MonkeyPatch, *, steps: int = 160, quiet_steps: int = 200):
    settings = PolymarketSettings(reconnect_min_s=0.0001, reconnect_max_s=0.0001)

    async def run(plan: MdFaultPlan) -> None:
        ex = PmMdExchange(plan.seed, plan)
        state = MarketState()
        stream = MarketStream(settings, list(TOKENS), None, seed=plan.seed)  # type: ignore[arg-type]  # the driver is the REST
        d = Driver(plan, ex, state, MdChecker(state, ex.history, plan), stream,
                   steps + quiet_steps, steps, settings.ws_stale_after_s)
        stream.rest = d  # type: ignore[assignment]  # answers books() like PolymarketRest
        monkeypatch.setattr(pm_data, "ws_connect", d.connect)
        with LogCapture() as logs:
            d.shard = asyncio.get_running_loop().create_task(stream._run_shard(0, TOKENS))
            try:
                with pytest.raises(_Done):
                    await d.shard
            finally:
                for task in asyncio.all_tasks():
                    if task is not asyncio.current_task():
                        task.cancel()
                await asyncio.sleep(0)
            d.drain()
            problems = d.checker.converged()
            assert not problems, (f"{quiet_steps} quiet steps after the faults stopped the "
                                  f"core still differs from the exchange:\n"
                                  + "\n".join(problems))
            assert all(v is None or len(v) < 10_000 for v in stream._kept.values())
        assert not plan.drawn or logs.lines

    return run


WEIGHTS = dict(MD_WEIGHTS)


def make_plan(seed: int) -> MdFaultPlan:
    return MdFaultPlan(seed, rate=0.08, weights=WEIGHTS)


async def test_md_campaign_seeds(monkeypatch) -> None:
    times = await run_md_campaign(scenario(monkeypatch), range(10), make_plan)
    assert len(times) == 10


@pytest.mark.slow
async def test_md_campaign_long(monkeypatch) -> None:
    await run_md_campaign(scenario(monkeypatch, steps=600), range(100, 200), make_plan)


async def test_the_campaign_catches_a_stream_that_takes_any_rest_book(monkeypatch) -> None:
    """The campaign's own check: taking every REST book as it comes (the old behaviour)
    leaves books the exchange never had, and the campaign says so."""
    monkeypatch.setattr(MarketStream, "_catch_up", lambda self, token, book, first=True: book)
    with pytest.raises(MdCampaignFailure, match=r"never had|differs"):
        await run_md_campaign(scenario(monkeypatch), range(40), make_plan, shrink_budget=2)


# -- regressions shrunk from the campaign ---------------------------------------------------

T1 = "7001"


class _Rest:
    """``books()`` answering the queued payloads, one list per call."""

    def __init__(self, *answers: list[dict[str, Any]]) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def books(self, tokens: list[str]) -> list[ClobBook | DataError]:
        self.calls += 1
        return [ClobBook.parse(b) for b in self.answers.pop(0)] if self.answers else []


def _stream(rest: Any = None) -> MarketStream:
    s = PolymarketSettings(reconnect_min_s=0.0001, reconnect_max_s=0.0001)
    return MarketStream(s, [T1], rest or _Rest(), seed=1)


def _pm_book(ms: int, bid: str = "0.40", ask: str = "0.45") -> dict[str, Any]:
    return dict(make_book(T1, "0xm", [(bid, "10")], [(ask, "10")], timestamp=str(ms)),
                event_type="book")


def _change(ms: int, price: str, size: str, side: str = "BUY", bb: str = "0.40",
            ba: str = "0.45", asset: Any = T1) -> str:
    return json.dumps({"event_type": "price_change", "market": "0xm", "timestamp": str(ms),
                       "price_changes": [{"asset_id": asset, "price": price, "size": size,
                                          "side": side, "best_bid": bb, "best_ask": ba}]})


def _events(stream: MarketStream) -> list[Any]:
    out = []
    while not stream._queue.empty():
        out.append(stream._queue.get_nowait())
    return out


async def _settled(stream: MarketStream) -> list[Any]:
    # Real time passes: a REST book asked again waits its backoff (50-100 us here), and
    # twenty bare yields could all run inside it (a full suite's run failed so).
    for _ in range(20):
        await asyncio.sleep(0.0005)
    return _events(stream)


async def test_a_rest_book_older_than_the_stream_is_asked_for_again() -> None:
    """Seed 9 / 138: a REST resnapshot older than what the stream had said (or from before
    a reconnect, or asked for before a newer doubt) was taken, and the changes between
    were lost: the core book had never existed.  Now refused and asked again; a newer one
    gets the changes kept meanwhile applied on top."""
    rest = _Rest([_pm_book(1500)], [_pm_book(2500)])
    stream = _stream(rest)
    await stream._on_frame(json.dumps(_pm_book(1000)), [T1])
    await stream._on_frame(_change(2000, "0.41", "5", bb="0.41"), [T1])
    await stream._on_frame(_change(2100, "0.42", "5", bb="0.40"), [T1])  # touch disagrees
    await stream._on_frame(_change(3000, "0.43", "7", bb="0.43"), [T1])  # kept while stale
    events = await _settled(stream)
    assert rest.calls == 2 and stream.live[T1]
    book = events[-1]
    assert book.ts_ns == 3000 * 10**6
    assert book.bids.tolist() == [[0.43, 7.0], [0.40, 10.0]]  # REST 2500 + the change at 3000


async def test_an_older_change_after_a_newer_one_puts_the_book_in_doubt() -> None:
    stream = _stream()
    await stream._on_frame(json.dumps(_pm_book(1000)), [T1])
    await stream._on_frame(_change(3000, "0.39", "5"), [T1])
    await stream._on_frame(_change(2000, "0.38", "5"), [T1])  # reordered
    statuses = [e for e in _events(stream) if isinstance(e, BookStatus)]
    assert statuses and "older than the last" in statuses[0].reason and not stream.live[T1]


def _pm_book_at(ms: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
               ) -> dict[str, Any]:
    return dict(make_book(T1, "0xm", bids, asks, timestamp=str(ms)), event_type="book")


async def test_a_change_read_before_a_lost_one_is_not_replayed_over_the_rest_book() -> None:
    """Seed 1479 (a sweep of 1400-1499): a stale book's frame whose first change was
    read (kept for the REST book's catch-up) and whose second was malformed (lost) set
    one level twice in one millisecond, 10 then 1.  The REST book, stamped in that
    millisecond, had the 1; the catch-up replayed the kept 10 over it: a book the
    exchange never had, called tradeable.  A malformed frame now drops what was kept."""
    rest = _Rest([_pm_book_at(5000, [("0.41", "1"), ("0.40", "10")], [("0.45", "10")])])
    stream = _stream(rest)
    await stream._on_frame(json.dumps(_pm_book(1000)), [T1])
    await stream._on_frame("{not json", [T1])  # stale, a REST book asked
    await stream._on_frame(json.dumps({
        "event_type": "price_change", "market": "0xm", "timestamp": "5000", "price_changes": [
            {"asset_id": T1, "price": "0.41", "size": "10", "side": "BUY"},
            {"asset_id": T1, "price": "0.41", "size": "1", "side": "??"}]}), [T1])
    await stream._on_frame(_change(5000, "0.45", "10", side="SELL"), [T1])  # dates the loss
    book = (await _settled(stream))[-1]
    assert stream.live[T1] and isinstance(book, OrderBook)
    assert book.bids.tolist() == [[0.41, 1.0], [0.40, 10.0]]


async def test_changes_kept_before_a_disconnect_are_not_replayed_over_the_rest_book() -> None:
    """The class of seed 1479 through a disconnect: a stale book kept a change (a level to
    10); the connection dropped with the frame setting it to 1 in flight, and the new
    connection's subscribe book was lost.  The REST book of that millisecond has the 1;
    the kept 10 replayed over it made a book the exchange never had."""
    rest = _Rest([_pm_book_at(5000, [("0.41", "1"), ("0.40", "10")], [("0.45", "10")])])
    stream = _stream(rest)
    await stream._on_frame(json.dumps(_pm_book(1000)), [T1])
    await stream._on_frame(_change(2000, "0.42", "5", bb="0.40"), [T1])  # touch disagrees
    await stream._on_frame(_change(5000, "0.41", "10", bb="0.41"), [T1])  # kept
    stream._mark_stale([T1], "websocket disconnected")  # as _run_shard does, then reconnects
    stream._reconnected.add(T1)
    stream._floor_pending.add(T1)
    await stream._on_frame(_change(5000, "0.45", "10", side="SELL"), [T1])  # the new socket
    book = (await _settled(stream))[-1]
    assert stream.live[T1] and isinstance(book, OrderBook)
    assert book.bids.tolist() == [[0.41, 1.0], [0.40, 10.0]]


async def test_changes_kept_out_of_order_are_replayed_in_their_time_order() -> None:
    """The changes a stale book keeps for its REST book's catch-up came in out of order
    (4000 before 3500: one level set to 5, then to 7): replayed as they came over a REST
    book of 3500, the level ended at 5, where the exchange had 7."""
    rest = _Rest([_pm_book_at(3500, [("0.41", "5"), ("0.40", "10")], [("0.45", "10")])])
    stream = _stream(rest)
    await stream._on_frame(json.dumps(_pm_book(1000)), [T1])
    await stream._on_frame(_change(2000, "0.41", "3", bb="0.40"), [T1])  # touch disagrees
    await stream._on_frame(_change(4000, "0.41", "7", bb="0.41"), [T1])
    await stream._on_frame(_change(3500, "0.41", "5", bb="0.41"), [T1])
    book = (await _settled(stream))[-1]
    assert stream.live[T1] and isinstance(book, OrderBook)
    assert book.bids.tolist() == [[0.41, 7.0], [0.40, 10.0]] and book.ts_ns == 4000 * 10**6


@pytest.mark.parametrize("raw", [
    _change(2000, "0.39", "5").replace('"price_change"', "[]"),  # seed 3: type mangled
    _change(2000, "0.39", "5", asset=True),  # seed 106: an asset id not subscribed
    _change(2000, "0.395", "5"),  # off the book's 0.01 tick
    _change(2000, "0.39", "1e400"),  # beyond any size
    _change(2000, "0.39", "abc"),  # seed 100: decimal.InvalidOperation ended the shard
    json.dumps({"event_type": "price_change", "timestamp": "2000",  # seed 1044: emptied
                "price_changes": []}),
])
async def test_a_change_that_cannot_be_read_is_a_malformed_frame(raw: str) -> None:
    stream = _stream()
    await stream._on_frame(json.dumps(_pm_book(1000)), [T1])
    _events(stream)
    await stream._on_frame(raw, [T1])  # before: dropped unseen, applied, or raised
    assert stream.stats["malformed"] == 1 and not stream.live[T1]


async def test_a_book_stale_for_the_stale_deadline_is_resnapshotted() -> None:
    """The subscribe's ``book`` was lost and nothing asked again (the gap Kraken's and
    Kalshi's campaigns found; fixed here on sight)."""
    rest = _Rest([_pm_book(40_000)])
    stream = MarketStream(PolymarketSettings(), [T1, "7002"], rest)  # type: ignore[arg-type]  # books() only
    stream._stale_at = {T1: 0, "7002": 0}  # as _run_shard leaves them on connecting
    await stream._on_frame(json.dumps(_pm_book(1000)), [T1, "7002"])  # only T1's came
    for ms in (2_000, 31_500):  # price_changes of T1 move the stream's clock
        await stream._on_frame(_change(ms, "0.40", "11"), [T1, "7002"])
    assert rest.calls == 0
    await stream._on_frame(_change(33_000, "0.40", "12"), [T1, "7002"])
    await _settled(stream)
    assert rest.calls == 1


@pytest.mark.xfail(strict=True, reason="the market channel has no sequence numbers: a lost "
                   "price_change that does not move the touch cannot be seen (known limit)")
async def test_a_lost_change_behind_the_touch_is_seen() -> None:
    stream = _stream()
    book = dict(make_book(T1, "0xm", [("0.40", "10"), ("0.39", "10")], [("0.45", "10")],
                          timestamp="1000"), event_type="book")
    await stream._on_frame(json.dumps(book), [T1])
    # the exchange sent 0.39 -> 20 (lost), then 0.45 -> 11: nothing says a change is missing
    await stream._on_frame(_change(3000, "0.45", "11", side="SELL"), [T1])
    assert not stream.live[T1]


