"""Held-out feed faults on Kalshi's ``orderbook_delta`` websocket: frames the feed tests do
not send, driven through :meth:`BookStream._session` with a scripted socket.

Found (each failed before its fix): a frame nested thousands deep (valid JSON) raised
RecursionError out of the stream; a ``subscribed`` ack without ``msg.sid`` and a book frame
whose ``sid`` is a list raised out of the stream (the run ended); a malformed
``market_lifecycle_v2`` frame did too; after a resubscribe, a delta on the new subscription
that came before its snapshot landed on the old ladder and was emitted as a delta of a
whole book.  Held: a seq gap resubscribes once and the snapshot after it is right; a
duplicate delta is a gap; a delta taking a level below zero resyncs; a zero delta on an
absent level is harmless; a string count where a number was expected (and vice versa).
"""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import pytest
from argus_venue_kalshi.data import BookStream

from argus_core import BookDelta, BookStatus, OrderBook, Side

TICKER = "KXHIGHNY-24JAN01-T60"
YES = f"kalshi:{TICKER}/YES"


class _End(Exception):
    """The script ran out."""


class ScriptedWs:
    """A socket that answers ``recv`` from a script and records what was sent."""

    def __init__(self, frames: list[Any]) -> None:
        self.frames = [f if isinstance(f, str) else json.dumps(f) for f in frames]
        self.sent: list[dict[str, Any]] = []

    async def recv(self) -> str:
        if not self.frames:
            raise _End
        return self.frames.pop(0)

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))


async def run_script(make_settings: Any, frames: list[Any]) -> tuple[list[Any], ScriptedWs]:
    """Every event of one session over ``frames`` (command ids: lifecycle 1, books 2, then
    each resubscribe an unsubscribe and a subscribe)."""
    stream = BookStream(make_settings(), rest=None, tickers=[TICKER])  # type: ignore[arg-type]  # books need no REST
    ws = ScriptedWs(frames)
    out: list[Any] = []
    with pytest.raises(_End):
        async for event in stream._session(ws):  # type: ignore[arg-type]  # duck-typed socket
            out.append(event)
    return out, ws


def subscribed(cmd_id: int, sid: int) -> dict[str, Any]:
    return {"id": cmd_id, "type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": sid}}


def snapshot(sid: int, seq: int, yes: list[list[str]], no: list[list[str]]) -> dict[str, Any]:
    return {"type": "orderbook_snapshot", "sid": sid, "seq": seq,
            "msg": {"market_ticker": TICKER, "yes_dollars_fp": yes, "no_dollars_fp": no}}


def delta(sid: int, seq: int, side: str, price: Any, d: Any) -> dict[str, Any]:
    return {"type": "orderbook_delta", "sid": sid, "seq": seq,
            "msg": {"market_ticker": TICKER, "side": side, "price_dollars": price,
                    "delta_fp": d}}


SNAP = snapshot(1, 1, [["0.40", "10.00"]], [["0.55", "20.00"]])


def book_cmds(ws: ScriptedWs) -> list[str]:
    return [c["cmd"] for c in ws.sent
            if "market_lifecycle_v2" not in (c.get("params") or {}).get("channels", [])]


async def test_deep_nesting_is_a_malformed_frame_not_a_crash(make_settings) -> None:
    events, ws = await run_script(make_settings, [
        subscribed(2, 1), SNAP, "[" * 100_000 + "]" * 100_000,
        subscribed(4, 2), snapshot(2, 1, [["0.41", "1.00"]], [])])
    stale = [e for e in events if isinstance(e, BookStatus)]
    assert stale and stale[0].reason == "malformed frame" and not stale[0].live
    assert book_cmds(ws) == ["subscribe", "unsubscribe", "subscribe"]
    assert [b.best_bid for b in events if isinstance(b, OrderBook) and b.instrument_id == YES
            ][-1] == 0.41


@pytest.mark.parametrize("bad", [
    {"id": 2, "type": "subscribed"},
    {"id": 2, "type": "subscribed", "msg": "x"},
    {"id": 2, "type": "subscribed", "msg": {"sid": "1"}},
])
async def test_a_subscribed_ack_without_a_sid_resubscribes(make_settings, bad) -> None:
    events, ws = await run_script(make_settings, [bad, subscribed(3, 7),
                                                  snapshot(7, 1, [["0.40", "1"]], [])])
    assert book_cmds(ws) == ["subscribe", "subscribe"]
    assert any(isinstance(e, OrderBook) and e.instrument_id == YES for e in events)


def lifecycle_cmds(ws: ScriptedWs) -> list[int]:
    return [c["id"] for c in ws.sent
            if "market_lifecycle_v2" in (c.get("params") or {}).get("channels", [])]


async def test_the_lifecycle_channel_is_subscribed_before_the_books(make_settings) -> None:
    """Kalshi answers a session's commands in order: with the lifecycle subscribed first,
    no book arrives before a ``settled`` frame of its market could."""
    _, ws = await run_script(make_settings, [])
    assert [c["id"] for c in ws.sent] == [1, 2] and lifecycle_cmds(ws) == [1]


async def test_a_refused_lifecycle_subscribe_is_asked_again(make_settings) -> None:
    """Before, a refused ``market_lifecycle_v2`` subscribe was only logged: with the
    settlement poll off no settlement would ever come on that connection."""
    _, ws = await run_script(make_settings, [
        {"id": 1, "type": "error", "msg": {"code": 17, "msg": "Internal error"}},
        subscribed(2, 1), SNAP])
    assert lifecycle_cmds(ws) == [1, 3]


async def test_lifecycle_refusals_without_end_drop_the_connection(make_settings) -> None:
    refusals = [{"id": n, "type": "error", "msg": {"code": 17}} for n in (1, 3, 4, 5, 6, 7)]
    with pytest.raises(ConnectionResetError, match="market_lifecycle_v2"):
        await run_script(make_settings, refusals)


@pytest.mark.parametrize("frame", [
    {"type": "orderbook_delta", "sid": [1], "seq": 2, "msg": {}},
    {"type": "orderbook_delta", "sid": {"a": 1}, "seq": 2, "msg": {}},
    {"type": "market_lifecycle_v2", "msg": {"market_ticker": [TICKER]}},
    {"type": "some_new_type", "sid": 1, "seq": 2},
])
async def test_odd_frames_are_dropped_and_the_book_stays_right(make_settings, frame) -> None:
    events, _ = await run_script(make_settings, [subscribed(2, 1), SNAP, frame,
                                                 delta(1, 2, "yes", "0.40", "-4.00")])
    deltas = [e for e in events if isinstance(e, BookDelta) and e.instrument_id == YES]
    assert [(d.side, d.price, d.size) for d in deltas] == [(Side.BUY, D("0.40"), D("6.00"))]
    assert not any(isinstance(e, BookStatus) for e in events)


async def test_a_delta_before_the_new_snapshot_is_not_applied_to_the_old_ladder(
        make_settings) -> None:
    events, ws = await run_script(make_settings, [
        subscribed(2, 1), SNAP, delta(1, 3, "yes", "0.40", "1"),  # gap: resubscribe
        subscribed(4, 2), delta(2, 1, "yes", "0.40", "-2"),  # new sid, snapshot lost
        subscribed(6, 3), snapshot(3, 1, [["0.40", "7.00"]], [])])
    assert not [e for e in events if isinstance(e, BookDelta)]
    reasons = [e.reason for e in events if isinstance(e, BookStatus) and e.instrument_id == YES]
    assert len(reasons) == 2 and "seq 3 after 1" in reasons[0] and "before its snapshot" in \
        reasons[1]
    assert book_cmds(ws) == ["subscribe", "unsubscribe", "subscribe", "unsubscribe", "subscribe"]
    last = [e for e in events if isinstance(e, OrderBook) and e.instrument_id == YES][-1]
    assert last.bids.tolist() == [[0.40, 7.0]]


async def test_a_gap_resubscribes_once_and_stale_frames_of_the_old_sid_are_ignored(
        make_settings) -> None:
    events, ws = await run_script(make_settings, [
        subscribed(2, 1), SNAP, delta(1, 2, "yes", "0.40", "1"),
        delta(1, 2, "yes", "0.40", "1"),  # duplicate: a gap
        *(delta(1, n, "yes", "0.40", "1") for n in range(3, 40)),  # the old sid keeps going
        subscribed(4, 2), snapshot(2, 1, [["0.40", "12.00"]], []),
        delta(2, 2, "yes", "0.39", 3)])  # a number where text was expected
    assert book_cmds(ws) == ["subscribe", "unsubscribe", "subscribe"]
    assert sum(isinstance(e, BookStatus) for e in events) == 2  # YES and NO, once
    deltas = [e for e in events if isinstance(e, BookDelta) and e.instrument_id == YES]
    assert [(d.price, d.size) for d in deltas] == [(D("0.40"), D("11.00")), (D("0.39"), D("3"))]


async def test_negative_level_and_zero_delta_on_absent_level(make_settings) -> None:
    events, ws = await run_script(make_settings, [
        subscribed(2, 1), SNAP, delta(1, 2, "yes", "0.30", "0"),  # absent level, zero
        delta(1, 3, "yes", "0.40", "-11.00"),  # 10 - 11 < 0: the book is wrong
        delta(1, 4, "yes", "0.40", "1")])
    zero = [e for e in events if isinstance(e, BookDelta) and e.instrument_id == YES]
    assert [(d.price, d.size) for d in zero] == [(D("0.30"), D("0"))]
    stale = [e for e in events if isinstance(e, BookStatus)]
    assert len(stale) == 2 and "0.40" in stale[0].reason
    assert book_cmds(ws) == ["subscribe", "unsubscribe", "subscribe"]
