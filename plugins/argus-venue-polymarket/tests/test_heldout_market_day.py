"""Held-out audit: the market channel, Gamma and resolutions on a bad day at the venue
(red team, round after ``test_md_campaign`` / ``test_heldout_feed`` / ``_venue_day``).

Found (each failed before its fix):

* A ``price_change`` stamped before the ``book`` snapshot it followed (a change the
  snapshot already held, delivered late) was applied over the newer snapshot: a level the
  venue still had was removed, and the book stayed live.  The snapshot now dates the
  book: an older change puts it in doubt (stale, resnapshot).
* A websocket ``book`` older than a change already read replaced the live book: the
  newer change was undone, the book live.  Now refused the same way.
* A change that crossed the book (best bid >= best ask: a missed update) left the book
  live at the venue and untradeable in the core for good: nothing asked for a fresh one.
* ``best_bid`` / ``best_ask`` were checked only when both came: a lone ``best_bid`` that
  disagreed with the book went unseen.
* ``market_resolved`` settled whatever it named: a ``winning_asset_id`` not among its
  ``assets_ids`` (a 50-50 or a mangled id) settled every token at 0; ``assets_ids`` as a
  string settled one "token" per character; tokens never followed were settled; a second
  frame with another winner was emitted too.  Now each is refused in the log (market and
  winner named) and the Gamma poll settles the market; only followed tokens settle.
* A Gamma market naming one token twice (YES and NO the same token, or one token in two
  markets of an event) became an "exhaustive" event whose outcomes overlap: buying "every
  outcome" bought one token twice.  Now the event is malformed (skipped, logged).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.data import MarketStream
from argus_venue_polymarket.schemas import GammaEvent
from argus_venue_polymarket.testing import make_book

from argus_core import BookDelta, BookStatus, DataError, MarketState, OrderBook, Settlement

T1, T2 = "7001", "7002"


class CountingRest:
    """``books()`` answering nothing (books stay stale), counting the asks."""

    def __init__(self) -> None:
        self.calls = 0

    async def books(self, tokens: list[str]) -> list[Any]:
        self.calls += 1
        return []


def _stream() -> MarketStream:
    settings = PolymarketSettings(reconnect_min_s=0.0001, reconnect_max_s=0.0001)
    return MarketStream(settings, [T1, T2], CountingRest(), seed=1)  # type: ignore[arg-type]


def _book(ms: int, bids: list[tuple[str, str]] | None = None,
          asks: list[tuple[str, str]] | None = None) -> str:
    return json.dumps(dict(make_book(T1, "0xm", bids or [("0.40", "10")],
                                     asks or [("0.45", "10")], timestamp=str(ms)),
                           event_type="book"))


def _change(ms: int, price: str, size: str, side: str = "BUY", **best: str) -> str:
    item = {"asset_id": T1, "price": price, "size": size, "side": side, **best}
    return json.dumps({"event_type": "price_change", "market": "0xm", "timestamp": str(ms),
                       "price_changes": [item]})


def _drain(stream: MarketStream) -> list[Any]:
    out = []
    while not stream._queue.empty():
        out.append(stream._queue.get_nowait())
    return out


def _core(events: list[Any]) -> MarketState:
    state = MarketState()
    for ev in events:
        state.apply(ev)
    return state


def _stale_reasons(events: list[Any]) -> list[str]:
    return [e.reason for e in events if isinstance(e, BookStatus) and not e.live]


async def test_a_change_older_than_the_snapshot_puts_the_book_in_doubt() -> None:
    """Before: the change at 2500 (already in the 3000 snapshot) removed the 0.42 bid the
    venue still had; the book stayed live and tradeable."""
    stream = _stream()
    await stream._on_frame(_book(1000), [T1])
    await stream._on_frame(_book(3000, bids=[("0.40", "10"), ("0.42", "3")]), [T1])
    await stream._on_frame(_change(2500, "0.42", "0"), [T1])
    events = _drain(stream)
    assert not stream.live[T1]
    assert any("older than" in r for r in _stale_reasons(events))
    assert not _core(events).tradeable(f"polymarket:{T1}")[0]


async def test_a_snapshot_older_than_a_change_already_read_is_not_taken() -> None:
    """Before: a ``book`` of 2000 after a change of 3000 replaced the live book; the 0.41
    bid of 3000 vanished and the book stayed live."""
    stream = _stream()
    await stream._on_frame(_book(1000), [T1])
    await stream._on_frame(_change(3000, "0.41", "5"), [T1])
    await stream._on_frame(_book(2000), [T1])
    events = _drain(stream)
    assert not stream.live[T1]
    assert any("older than" in r for r in _stale_reasons(events))
    assert not _core(events).tradeable(f"polymarket:{T1}")[0]


async def test_a_snapshot_and_changes_in_one_frame_in_either_order_stay_right() -> None:
    """(Held before; pinned beside the fixes above.)  A change then its snapshot, or the
    snapshot then a change of its millisecond, in one frame: live and right."""
    stream = _stream()
    change = json.loads(_change(1000, "0.41", "5"))
    await stream._on_frame(json.dumps([change, json.loads(_book(1000))]), [T1])
    await stream._on_frame(json.dumps([json.loads(_book(2000)),
                                       json.loads(_change(2000, "0.41", "5"))]), [T1])
    state = _core(_drain(stream))
    assert stream.live[T1] and state.tradeable(f"polymarket:{T1}") == (True, "")
    assert sorted(state.books[f"polymarket:{T1}"].bids.items()) == [(0.40, 10.0), (0.41, 5.0)]


async def test_a_change_that_crosses_the_book_asks_for_a_fresh_one() -> None:
    """Before: the book stayed live at the venue (the core refused it as crossed) and no
    snapshot was asked for: untradeable until the venue happened to send one."""
    for best in ({}, {"best_bid": "0.47", "best_ask": "0.45"}):
        stream = _stream()
        await stream._on_frame(_book(1000), [T1])
        await stream._on_frame(_change(2000, "0.47", "5", **best), [T1])
        events = _drain(stream)
        assert not stream.live[T1]
        assert any("crossed" in r for r in _stale_reasons(events)), best
        assert stream.stats["resnapshots"] == 1


async def test_a_lone_best_price_that_disagrees_is_seen() -> None:
    """Before: ``best_bid`` was compared only beside a ``best_ask``: the venue's 0.40
    against our 0.42 went unseen and the book stayed live."""
    stream = _stream()
    await stream._on_frame(_book(1000), [T1])
    await stream._on_frame(_change(2000, "0.42", "5", best_bid="0.40"), [T1])
    assert not stream.live[T1] and stream.stats["best_mismatch"] == 1


def _resolved(winner: Any, assets: Any = (T1, T2), ms: int = 1000) -> str:
    return json.dumps({"event_type": "market_resolved", "market": "0xm", "id": "42",
                       "assets_ids": list(assets) if isinstance(assets, tuple) else assets,
                       "winning_asset_id": winner, "winning_outcome": "Yes",
                       "timestamp": str(ms)})


@pytest.mark.parametrize(("frame", "said"), [
    (_resolved("999"), "not among"),  # every token settled at 0 before
    (_resolved(T1, assets=T1 + T2), "assets_ids"),  # one settlement per character before
    (_resolved(None), "winning_asset_id"),
    (_resolved(T1, assets=(T1, T1)), "assets_ids"),
], ids=["winner-not-among-assets", "assets-a-string", "no-winner", "assets-twice"])
async def test_a_resolution_that_names_no_winner_of_its_own_settles_nothing(
        frame: str, said: str, caplog: pytest.LogCaptureFixture) -> None:
    """Before: Settlements at 0 for both tokens (a winning position settled at nothing),
    or for instruments such as ``polymarket:7``."""
    stream = _stream()
    with caplog.at_level(logging.WARNING):
        await stream._on_frame(frame, [T1])
    assert [e for e in _drain(stream) if isinstance(e, Settlement)] == []
    assert any(said in r.getMessage() and "0xm" in r.getMessage() for r in caplog.records)


async def test_a_resolution_of_tokens_not_followed_settles_only_ours() -> None:
    """Before: settlements for ``polymarket:8881`` / ``8882``, tokens this stream never
    subscribed (and into the venue's settled set)."""
    stream = _stream()
    await stream._on_frame(_resolved("8881", assets=("8881", "8882")), [T1])
    await stream._on_frame(_resolved(T1, assets=(T1, "8883")), [T1])
    settled = [(e.instrument_id, e.price) for e in _drain(stream) if isinstance(e, Settlement)]
    assert settled == [(f"polymarket:{T1}", 1)]


async def test_a_second_resolution_with_another_winner_is_refused(
        caplog: pytest.LogCaptureFixture) -> None:
    """Before: both frames became Settlements (the second paying the other token); the
    same frame again is not news either."""
    stream = _stream()
    await stream._on_frame(_resolved(T1), [T1])
    with caplog.at_level(logging.ERROR):
        await stream._on_frame(_resolved(T2, ms=2000), [T1])
        await stream._on_frame(_resolved(T1, ms=3000), [T1])
    settled = [(e.instrument_id, e.price) for e in _drain(stream) if isinstance(e, Settlement)]
    assert settled == [(f"polymarket:{T1}", 1), (f"polymarket:{T2}", 0)]
    assert any("another winner" in r.getMessage() for r in caplog.records)


def _gamma_event(*tokens: list[str]) -> dict[str, Any]:
    return {"id": "9", "negRisk": True, "markets": [
        {"id": str(i), "outcomes": '["Yes", "No"]', "clobTokenIds": json.dumps(pair),
         "orderPriceMinTickSize": 0.01} for i, pair in enumerate(tokens)]}


@pytest.mark.parametrize("tokens", [
    (["11", "11"],),  # YES and NO the same token
    (["11", "12"], ["13", "11"]),  # one token in two markets of the event
], ids=["yes-is-no", "two-markets"])
def test_a_gamma_event_naming_a_token_twice_is_malformed(tokens: tuple[list[str], ...]) -> None:
    """Before: parsed; the negRisk event was exhaustive with overlapping outcomes."""
    with pytest.raises(DataError, match="11"):
        GammaEvent.parse(_gamma_event(*tokens))


async def test_a_book_delta_never_reaches_the_core_for_a_token_without_a_snapshot() -> None:
    """(Held before; pinned.)  Changes before the first snapshot are kept, not emitted."""
    stream = _stream()
    await stream._on_frame(_change(1000, "0.41", "5"), [T1])
    assert not [e for e in _drain(stream) if isinstance(e, BookDelta | OrderBook)]
