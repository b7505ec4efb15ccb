"""A seeded random fault campaign against Kalshi's MARKET DATA path (the ``orderbook_delta``
channel), driven through the real :class:`BookStream` (its reconnect loop, session,
subscribe / resubscribe and ``seq`` checks) into a core ``MarketState`` as the runner does.

A local exchange (:class:`KalshiMdExchange`) holds the true books of two markets (random
adds, removes, touch moves, sides and whole books emptied; YES bids and NO bids never
crossing) and speaks the v2 websocket protocol over an in-process connection that stands
in for the socket (``connect`` is swapped for it): ``subscribed`` acks with a ``sid``, one
``orderbook_snapshot`` per market, then one ``orderbook_delta`` per level change with
``seq`` counting up by one per subscription.  Every frame meets a drawn fault (see
``argus_testkit.md_campaign``); a disconnect is a ``ConnectionClosed`` out of ``recv`` and
a stall a ``TimeoutError`` (what the session's heartbeat deadline raises).

Checked at every frame boundary (the session asks for the next frame only once the
events of the last one were applied): each YES / NO book the core calls tradeable is one
the exchange had and its timestamp never goes back; at the end, with faults off, every
book is live and equal to the exchange's.

Bugs it found (regressions at the end of this file): a refused subscribe left the books
stale for the connection (seed 0); a ``delta_fp`` off the 0.01 count grid (or 1e400, or a
price off the 0.0001 grid) reached the core (seed 3); a duplicated ``subscribed`` answer
unsubscribed the live sid (seed 9); ``"id": true`` passed as a command id (seed 104); with
a subscribe asked again, the late answer of the first fed the same ladders twice.
"""

from __future__ import annotations

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
from argus_venue_kalshi import data as kalshi_data
from argus_venue_kalshi.config import KalshiSettings
from argus_venue_kalshi.data import BookStream
from argus_venue_kalshi.instruments import NO, YES, instrument_id
from websockets.exceptions import ConnectionClosed

from argus_core import BookStatus, MarketState

TICKERS = ["KXMDA-26DEC31-T1", "KXMDB-26DEC31-T2"]
ONE = Decimal(1)
#: No REST resnapshots on Kalshi's stream: a resubscribe brings the fresh snapshot.
WEIGHTS = {f: w for f, w in MD_WEIGHTS.items() if f is not MdFault.OLD_SNAPSHOT}


class _Done(Exception):
    """The scenario has run its steps."""


def _fp(value: Decimal) -> str:
    return f"{value:.2f}"


def _px(value: Decimal) -> str:
    return f"{value:.4f}"


class KalshiMdExchange:
    """The true books and the frames of the connection open to them."""

    def __init__(self, seed: int, plan: MdFaultPlan) -> None:
        self.plan = plan
        self.truth = TrueMarket(TICKERS, random.Random(seed), tick=Decimal("0.01"),
                                lo=Decimal("0.01"), hi=Decimal("0.99"), lot=ONE,
                                step_ns=250_000_000)
        self.history = BookHistory()
        # what the wire has said so far: yes / no bid ladders per ticker
        self.wire: dict[str, dict[str, dict[Decimal, Decimal]]] = {}
        for t in TICKERS:
            self.wire[t] = {"yes": dict(self.truth.bids[t]),
                            "no": {ONE - p: q for p, q in self.truth.asks[t].items()}}
            self._record(t)
        self.subs: dict[int, list[str]] = {}
        self.seq: dict[int, int] = {}
        self.sids = 100
        self.outbox: list[str] = []
        self.sub_fault: MdFault | None = None
        self.late: list[tuple[int, str, int, list[str]]] = []  # (steps left, ack, sid, ...)

    def _record(self, t: str) -> None:
        yes, no = self.wire[t]["yes"], self.wire[t]["no"]
        self.history.record(instrument_id(t, YES), yes, {ONE - p: q for p, q in no.items()})
        self.history.record(instrument_id(t, NO), no, {ONE - p: q for p, q in yes.items()})

    def reset(self) -> None:
        """A new connection: no subscriptions."""
        self.subs.clear()
        self.outbox.clear()
        self.late.clear()

    def _frame(self, sid: int, kind: str, msg: dict[str, Any]) -> str:
        self.seq[sid] = self.seq.get(sid, 0) + 1
        return json.dumps({"type": kind, "sid": sid, "seq": self.seq[sid], "msg": msg})

    def _snapshot(self, sid: int, t: str) -> str:
        w = self.wire[t]
        return self._frame(sid, "orderbook_snapshot", {
            "market_ticker": t, "market_id": t.lower(),
            "yes_dollars_fp": [[_px(p), _fp(q)] for p, q in sorted(w["yes"].items())],
            "no_dollars_fp": [[_px(p), _fp(q)] for p, q in sorted(w["no"].items())]})

    def receive(self, cmd: dict[str, Any]) -> None:
        """A command from the client."""
        params = cmd.get("params") or {}
        if cmd.get("cmd") == "unsubscribe":
            for sid in params.get("sids", []):
                if self.subs.pop(sid, None) is not None:
                    self.outbox.append(json.dumps({"id": cmd["id"], "sid": sid,
                                                   "type": "unsubscribed"}))
            return
        sid = self.sids = self.sids + 1
        channel = (params.get("channels") or ["?"])[0]
        ack = json.dumps({"id": cmd["id"], "type": "subscribed",
                          "msg": {"channel": channel, "sid": sid}})
        if channel != "orderbook_delta":
            self.outbox.append(ack)
            return
        fault, self.sub_fault = self.sub_fault, None
        if fault is MdFault.SUB_REFUSED:
            self.plan.note(f"exchange: refused subscribe {cmd['id']}")
            self.outbox.append(json.dumps({"id": cmd["id"], "type": "error", "msg": {
                "code": 17, "msg": "Internal error"}}))
            return
        tickers = [t for t in params.get("market_tickers", []) if t in self.wire]
        if fault is MdFault.SUB_LATE:  # answered (and its books sent) a few steps later
            self.plan.note(f"exchange: subscribe {cmd['id']} answered late")
            self.late.append((6, ack, sid, tickers))
            return
        self._open(ack, sid, tickers)

    def _open(self, ack: str, sid: int, tickers: list[str]) -> None:
        self.subs[sid] = tickers
        self.outbox.append(ack)
        self.outbox.extend(self._snapshot(sid, t) for t in tickers)

    def step(self) -> None:
        """Move the truth one step; one delta frame per level change to each subscriber."""
        still = []
        for left, ack, sid, tickers in self.late:
            if left <= 1:
                self._open(ack, sid, tickers)
            else:
                still.append((left - 1, ack, sid, tickers))
        self.late = still
        for t, side, price, size in self.truth.step():
            kind, p = ("yes", price) if side == "bid" else ("no", ONE - price)
            ladder = self.wire[t][kind]
            delta = size - ladder.get(p, Decimal(0))
            if size:
                ladder[p] = size
            else:
                ladder.pop(p, None)
            self._record(t)
            if not delta:
                continue
            for sid, tickers in self.subs.items():
                if t in tickers:
                    self.outbox.append(self._frame(sid, "orderbook_delta", {
                        "market_ticker": t, "price_dollars": _px(p), "delta_fp": _fp(delta),
                        "side": kind, "ts": self.truth.now_ns // 10**9}))


def wrong(frame: str, rng: random.Random) -> str:
    """``frame`` with one field of a wrong type or value (an off-grid price, 1e400, ...)."""
    msg = json.loads(frame)
    body = msg.get("msg") if isinstance(msg.get("msg"), dict) else msg
    roll = rng.random()
    if msg.get("type") == "orderbook_delta" and roll < 0.5:
        field = rng.choice(["price_dollars", "delta_fp", "side"])
        body[field] = rng.choice({"price_dollars": ["0.50005", "1.5000", "-0.2000", "0.0000"],
                                  "delta_fp": ["1e400", "0.001", "NaN", "-1e400"],
                                  "side": ["YES", "maybe", 1]}[field])
    elif msg.get("type") == "orderbook_snapshot" and roll < 0.5 and (
            body.get("yes_dollars_fp") or body.get("no_dollars_fp")):
        levels = body.get("yes_dollars_fp") or body.get("no_dollars_fp")
        level = rng.choice(levels)
        level[rng.randrange(2)] = rng.choice(["0.50005", "1e400", "NaN", "-3.00", True, None])
    else:
        field = rng.choice(sorted(msg))
        msg[field] = rng.choice((*WRONG_VALUES, "5"))
    return json.dumps(msg)


@attrs.define
class Driver:
    """The exchange, the stream's connections to it, the faults and the checks."""

    plan: MdFaultPlan
    ex: KalshiMdExchange
    checker: MdChecker
    steps: int
    quiet_from: int
    heartbeat_s: float
    step: int = 0
    frames: int = 0
    connections: int = 0
    held: str | None = None
    again: str | None = None

    def tick(self) -> None:
        if self.step >= self.steps:
            raise _Done
        self.step += 1
        if self.step == self.quiet_from:
            self.plan.quiet = True
        self.ex.step()

    async def recv(self) -> str:
        self.checker.after_frame(f"step {self.step} frame {self.frames}")
        if self.again is not None:
            raw, self.again = self.again, None
            return raw
        while True:
            quiet_s = 0.0
            while not self.ex.outbox:
                self.tick()
                quiet_s += self.ex.truth.step_ns / 1e9
                if quiet_s > self.heartbeat_s:  # the session's heartbeat deadline
                    self.plan.note(f"step {self.step}: no frame for {quiet_s:g}s")
                    raise TimeoutError
            raw = self.ex.outbox.pop(0)
            fault, rng = self.plan.draw("ws")
            where = f"step {self.step} frame {self.frames} ({fault.value})"
            self.frames += 1
            if fault is MdFault.DROP:
                self.plan.note(f"{where}: dropped {raw[:70]}")
                continue
            if fault is MdFault.DISCONNECT:
                self.plan.note(f"{where}: disconnect")
                raise ConnectionClosed(None, None)
            if fault is MdFault.STALL:
                for _ in range(rng.randint(1, 4)):
                    self.tick()
                self.plan.note(f"{where}: stalled (heartbeat deadline)")
                raise TimeoutError
            if fault in (MdFault.SUB_LATE, MdFault.SUB_REFUSED):
                self.ex.sub_fault = fault
            elif fault is MdFault.CORRUPT_CHECK and '"seq"' in raw:
                msg = json.loads(raw)
                # a jump forward: a seq lowered by k would fill the gap of k frames lost
                # unseen (a garbled ``type``) and be a valid stream, which no check can see
                msg["seq"] += rng.choice((1, 2, 1000))
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
            elif fault is MdFault.DUPLICATE:
                self.again = raw  # delivered again next, as it is (a copy, not a forgery)
            if self.held is not None:
                self.ex.outbox.insert(0, self.held)  # the held frame right after this one
                self.held = None
            return raw

    @contextlib.asynccontextmanager
    async def connect(self, *args: Any, **kwargs: Any) -> AsyncIterator[_Conn]:
        self.connections += 1
        self.ex.reset()
        self.held = self.again = None
        yield _Conn(self)


class _Conn:
    """The client's end of one connection."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver

    async def send(self, text: str) -> None:
        self.driver.ex.receive(json.loads(text))

    async def recv(self) -> str:
        return await self.driver.recv()


def scenario(monkeypatch: pytest.MonkeyPatch, *, steps: int = 160, quiet_steps: int = 200):
    settings = KalshiSettings(markets=list(TICKERS), reconnect_base_s=0.0001,
                              reconnect_max_s=0.0001)

    async def run(plan: MdFaultPlan) -> None:
        ex = KalshiMdExchange(plan.seed, plan)
        state = MarketState()
        checker = MdChecker(state, ex.history, plan)
        d = Driver(plan, ex, checker, steps + quiet_steps, steps, settings.heartbeat_timeout_s)
        monkeypatch.setattr(kalshi_data, "connect", d.connect)
        stream = BookStream(settings, None, list(TICKERS))  # type: ignore[arg-type]  # no REST: no lifecycle frames here
        stream.clock_ns = lambda: ex.truth.now_ns
        with LogCapture() as logs:
            events = stream.events()
            try:
                async for ev in events:
                    state.apply(ev)
                    if isinstance(ev, BookStatus):
                        plan.note(f"step {d.step}: {ev.instrument_id} stale: "
                                  f"{ev.reason[:70]}")
            except _Done:
                pass
            finally:
                await events.aclose()
            problems = checker.converged()
            assert not problems, (f"{quiet_steps} quiet steps after the faults stopped the "
                                  f"core still differs from the exchange:\n"
                                  + "\n".join(problems))
        assert not plan.drawn or logs.lines

    return run


def make_plan(seed: int) -> MdFaultPlan:
    return MdFaultPlan(seed, rate=0.08, weights=WEIGHTS)


async def test_md_campaign_seeds(monkeypatch) -> None:
    times = await run_md_campaign(scenario(monkeypatch), range(10), make_plan)
    assert len(times) == 10


@pytest.mark.slow
async def test_md_campaign_long(monkeypatch) -> None:
    await run_md_campaign(scenario(monkeypatch, steps=600), range(100, 300), make_plan)


async def test_the_campaign_catches_a_stream_that_ignores_gaps(monkeypatch) -> None:
    """The campaign's own check: a stream whose ``seq`` check lets every frame through
    keeps a gapped book tradeable, and the campaign says so."""
    monkeypatch.setattr(kalshi_data.SequenceCheck, "check", lambda self, frame: None)
    with pytest.raises(MdCampaignFailure, match=r"never had|differs"):
        await run_md_campaign(scenario(monkeypatch), range(5), make_plan, shrink_budget=4)


# -- regressions shrunk from the campaign ---------------------------------------------------

class _Wire:
    """The client's end of a session for driving ``BookStream._frame`` frame by frame."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))


async def _feed(stream: BookStream, ws: _Wire, state: Any, frame: dict[str, Any]) -> list[Any]:
    return [ev async for ev in stream._frame(ws, frame, state)]  # type: ignore[arg-type]  # the wire stands in for the socket


def _snap(sid: int, seq: int, ticker: str = TICKERS[0]) -> dict[str, Any]:
    return {"type": "orderbook_snapshot", "sid": sid, "seq": seq, "msg": {
        "market_ticker": ticker, "yes_dollars_fp": [["0.4000", "10.00"]],
        "no_dollars_fp": [["0.5500", "3.00"]]}}


@pytest.fixture
def session() -> tuple[BookStream, _Wire, Any, list[int]]:
    stream = BookStream(KalshiSettings(markets=[TICKERS[0]]), None,  # type: ignore[arg-type]  # no REST needed
                        [TICKERS[0]])
    clock = [0]
    stream.clock_ns = lambda: clock[0]
    state = kalshi_data._Session()
    state.pending[100] = [TICKERS[0]]  # stream ids count from 1
    state.asked[TICKERS[0]] = 0
    return stream, _Wire(), state, clock


async def test_a_refused_subscribe_is_asked_again(session) -> None:
    """Seed 0: Kalshi refused a resubscribe (``type: error`` naming its id); the books
    stayed stale for the rest of the connection."""
    stream, ws, state, _ = session
    await _feed(stream, ws, state, {"id": 100, "type": "error",
                                    "msg": {"code": 17, "msg": "Internal error"}})
    assert [m["cmd"] for m in ws.sent] == ["subscribe"]
    assert ws.sent[0]["params"]["market_tickers"] == [TICKERS[0]]


async def test_refusals_without_end_drop_the_connection(session) -> None:
    stream, ws, state, _ = session
    with pytest.raises(ConnectionResetError):  # events() reconnects with backoff
        for _ in range(10):
            cmd = max(state.pending)
            await _feed(stream, ws, state, {"id": cmd, "type": "error", "msg": {"code": 17}})


async def test_a_duplicate_subscribed_answer_keeps_the_subscription(session) -> None:
    """Seed 9: a duplicated ``subscribed`` frame was taken for the late answer of a
    subscribe given up on, and its (live) sid was unsubscribed."""
    stream, ws, state, _ = session
    ack = {"id": 100, "type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": 7}}
    await _feed(stream, ws, state, ack)
    await _feed(stream, ws, state, ack)
    assert ws.sent == [] and 7 not in state.dead
    assert [type(e).__name__ for e in await _feed(stream, ws, state, _snap(7, 1))] == \
        ["OrderBook", "OrderBook"]


async def test_the_late_answer_of_a_subscribe_given_up_on_is_ended(session) -> None:
    """Seed 104: ``"id": true`` (a bool is an int to ``isinstance``) passed as an id; and a
    subscribe answered after it was given up on fed the same ladders from two sids."""
    stream, ws, state, clock = session
    clock[0] = 31 * 10**9  # past heartbeat_timeout_s: asked again
    await stream._overdue(ws, state)  # type: ignore[arg-type]  # the wire stands in
    assert [m["cmd"] for m in ws.sent] == ["subscribe"] and 100 not in state.pending
    await _feed(stream, ws, state, {"id": 100, "type": "subscribed", "msg": {"sid": 8}})
    assert ws.sent[-1] == {"id": ws.sent[-1]["id"], "cmd": "unsubscribe",
                           "params": {"sids": [8]}}
    assert await _feed(stream, ws, state, _snap(8, 1)) == []  # its frames are not ours
    await _feed(stream, ws, state, {"id": True, "type": "subscribed", "msg": {"sid": 9}})
    assert 9 not in state.sid_tickers


async def test_a_snapshot_that_never_comes_is_asked_for_again(session) -> None:
    stream, ws, state, clock = session
    await _feed(stream, ws, state, {"id": 100, "type": "subscribed", "msg": {"sid": 7}})
    clock[0] = 29 * 10**9
    await stream._overdue(ws, state)  # type: ignore[arg-type]  # the wire stands in
    assert ws.sent == []
    clock[0] = 31 * 10**9
    await stream._overdue(ws, state)  # type: ignore[arg-type]  # the wire stands in
    assert [m["cmd"] for m in ws.sent] == ["unsubscribe", "subscribe"]


@pytest.mark.parametrize(("price", "delta"), [("0.50005", "3.00"), ("0.5000", "0.001"),
                                              ("0.5000", "1e400"), ("0.5000", "-1e400")])
async def test_a_delta_off_kalshis_grids_is_refused(session, price, delta) -> None:
    """Seed 3: a ``delta_fp`` of 0.001 (counts have 2 decimals) was applied: the core held a
    size of 2.001 contracts; an off-grid price or a 1e400 count the same."""
    stream, ws, state, _ = session
    await _feed(stream, ws, state, {"id": 100, "type": "subscribed", "msg": {"sid": 7}})
    await _feed(stream, ws, state, _snap(7, 1))
    events = await _feed(stream, ws, state, {"type": "orderbook_delta", "sid": 7, "seq": 2,
                                             "msg": {"market_ticker": TICKERS[0], "side": "yes",
                                                     "price_dollars": price,
                                                     "delta_fp": delta}})
    assert {type(e).__name__ for e in events} == {"BookStatus"}
    assert [m["cmd"] for m in ws.sent] == ["unsubscribe", "subscribe"]


async def test_a_frame_for_a_market_its_sid_does_not_carry_is_refused(session) -> None:
    stream, ws, state, _ = session
    await _feed(stream, ws, state, {"id": 100, "type": "subscribed", "msg": {"sid": 7}})
    events = await _feed(stream, ws, state, _snap(7, 1, TICKERS[1]))
    assert {type(e).__name__ for e in events} == {"BookStatus"}
