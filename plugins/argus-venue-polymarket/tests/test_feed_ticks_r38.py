"""Red team r38, market data: a ``tick_size_change`` to a coarser tick with levels resting
off the new grid.

A level that rests from before the change (0.401 on a 0.001 tick, the tick now 0.01) still
shrinks or leaves.  Its ``price_change`` was refused as off the tick: a malformed frame,
so every book on the connection went stale and was resnapshotted, and a book that stated
such a level could never lose it by a change.  Now a change at a price the book holds is
taken whatever the tick; one off the tick at a price it does not hold is still malformed.
"""

from __future__ import annotations

from typing import Any

from argus_venue_polymarket.testing import make_book, stream_frames

from argus_core import BookDelta, BookStatus, MarketEvent

T1, T2 = "111", "222"
MS = 1786875382652


def _book(token: str) -> dict[str, Any]:
    return dict(make_book(token, "0xm", [("0.401", "10"), ("0.40", "10")], [("0.45", "10")],
                          tick="0.001", timestamp=str(MS)), event_type="book")


def _coarser(token: str) -> dict[str, Any]:
    return {"event_type": "tick_size_change", "asset_id": token, "market": "0xm",
            "old_tick_size": "0.001", "new_tick_size": "0.01", "timestamp": str(MS + 1)}


def _change(price: str, size: str, best_bid: str) -> dict[str, Any]:
    return {"event_type": "price_change", "market": "0xm", "timestamp": str(MS + 2),
            "price_changes": [{"asset_id": T1, "price": price, "size": size, "side": "BUY",
                               "best_bid": best_bid, "best_ask": "0.45"}]}


def _delta_or_doubt(out: list[MarketEvent]) -> bool:
    return any(isinstance(e, BookStatus) for e in out) or \
        any(isinstance(e, BookDelta) for e in out)


async def test_a_level_resting_off_a_coarser_tick_can_leave() -> None:
    events = await stream_frames(
        [T1, T2], [_book(T1), _book(T2), _coarser(T1), _change("0.401", "0", "0.40")],
        _delta_or_doubt)
    doubts = [e for e in events if isinstance(e, BookStatus)]
    assert not doubts, f"books put in doubt by the removal of a resting level: {doubts}"
    delta = events[-1]
    assert isinstance(delta, BookDelta) and (str(delta.price), str(delta.size)) == ("0.401", "0")


async def test_a_new_level_off_the_coarser_tick_is_still_malformed() -> None:
    events = await stream_frames(
        [T1, T2], [_book(T1), _book(T2), _coarser(T1), _change("0.403", "5", "0.403")],
        _delta_or_doubt)
    doubts = [e for e in events if isinstance(e, BookStatus)]
    assert doubts and "is no level" in doubts[0].reason, events
