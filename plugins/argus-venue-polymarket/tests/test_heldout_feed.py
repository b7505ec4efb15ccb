"""Held-out feed faults on Polymarket's market channel, frame by frame through
:meth:`MarketStream._on_frame`.

Found (failed before the fix): a frame nested thousands deep (valid JSON) raised
RecursionError out of the shard's task, which died silently: its books then neither
updated nor went stale.  Held: an item that is not an object, a ``price_change`` whose
changes are not objects, and an unknown event type leave the run going.
"""

from __future__ import annotations

from typing import Any

import pytest
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.data import MarketStream

from argus_core import BookStatus

T1 = "111"


class NoRest:
    """A REST client whose resnapshot returns no books (the books stay stale)."""

    async def books(self, tokens: list[str]) -> list[Any]:
        return []


@pytest.mark.parametrize("raw", [
    "[" * 5_000 + "]" * 5_000,
    '[5]',
    '{"event_type":"price_change","price_changes":[5]}',
])
async def test_a_bad_frame_marks_the_books_stale_and_the_shard_goes_on(raw) -> None:
    s = PolymarketSettings(ws_url="ws://127.0.0.1:9", clob_url="http://127.0.0.1:9")
    stream = MarketStream(s, [T1], NoRest())  # type: ignore[arg-type]  # books() only
    stream.live[T1] = True
    await stream._on_frame(raw, [T1])  # raised before (the nested ones)
    event = stream._queue.get_nowait()
    assert isinstance(event, BookStatus) and not event.live
    assert "malformed websocket frame" in event.reason
    assert stream.stats["malformed"] == 1 and stream.stats["resnapshots"] == 1


async def test_an_unknown_event_type_is_ignored() -> None:
    s = PolymarketSettings(ws_url="ws://127.0.0.1:9", clob_url="http://127.0.0.1:9")
    stream = MarketStream(s, [T1], NoRest())  # type: ignore[arg-type]  # books() only
    stream.live[T1] = True
    await stream._on_frame('{"event_type":"brand_new","asset_id":"111"}', [T1])
    assert stream._queue.empty() and stream.live[T1]
