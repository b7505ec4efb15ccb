"""Red team r40, listings: a market shared by two events, the second found mid-run.

Discovery at the start marks every event naming a token another Gamma event lists
``exhaustive=False`` and keeps the first listing's instrument
(``test_listings_shared_r38.py``).  A ``new_market`` frame asks Gamma for the announced
event alone, so the same check saw one event and found nothing shared: the new event was
streamed exhaustive, the event already followed stayed exhaustive, and the shared token's
instrument was streamed again naming the new event.  Both paths now agree.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from argus_venue_polymarket import instruments as inst_mod
from argus_venue_polymarket import venue as venue_mod
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.schemas import GammaEvent
from argus_venue_polymarket.venue import PolymarketVenue

from argus_core import Event, Instrument, OrderBook

SNAPSHOT = Path(__file__).parents[3] / "examples" / "polymarket" / "snapshot"
FED, PRESIDENT = "481717", "903193"


def _snapshot() -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    events = {e["id"]: e for e in json.loads((SNAPSHOT / "events.json").read_text())}
    return events, json.loads((SNAPSHOT / "books.json").read_text())


def _books_of(event: dict[str, Any], books: list[dict[str, Any]]) -> list[dict[str, Any]]:
    wanted = {t for m in event["markets"] for t in json.loads(m["clobTokenIds"])}
    return [b for b in books if b["asset_id"] in wanted]


def _books_seen(events: list[Any]) -> set[str]:
    return {e.instrument_id.partition(":")[2] for e in events if isinstance(e, OrderBook)}


async def _collect(agen: Any, until: Callable[[list[Any]], bool], *,
                   during: Callable[[list[Any]], None], timeout_s: float) -> list[Any]:
    """Events of ``agen`` until ``until(events)`` or ``timeout_s``; ``during`` after each."""
    out: list[Any] = []

    async def run() -> None:
        async for ev in agen:
            out.append(ev)
            during(out)
            if until(out):
                return

    try:
        await asyncio.wait_for(run(), timeout=timeout_s)
    except TimeoutError:
        pass  # the assertions say what is missing
    finally:
        await agen.aclose()
    return out


def _fed_sharing_a_president_market() -> tuple[dict[str, Any], dict[str, Any],
                                                list[dict[str, Any]]]:
    """The president event, and the Fed event listing also the president's first market
    (Gamma lists a market under each event it belongs to)."""
    events, books = _snapshot()
    president, fed = events[PRESIDENT], copy.deepcopy(events[FED])
    fed["markets"] = [*fed["markets"], copy.deepcopy(president["markets"][0])]
    return president, fed, books


@pytest.mark.parametrize("by_frame", [True, False], ids=["new_market", "poll"])
async def test_a_shared_market_found_mid_run_makes_both_events_not_exhaustive(
        monkeypatch: pytest.MonkeyPatch, by_frame: bool) -> None:
    monkeypatch.setattr(venue_mod, "LISTING_MIN_GAP_S", 0.0)
    president, fed, books = _fed_sharing_a_president_market()
    shared = json.loads(president["markets"][0]["clobTokenIds"])
    srv = SnapshotServer([president], _books_of(president, books), ws_port=0).start()
    venue = PolymarketVenue(PolymarketSettings(
        gamma_url=srv.url, clob_url=srv.url, ws_url=srv.ws_url, settlement_poll_s=0,
        reconnect_min_s=0.01, reconnect_max_s=0.05,
        discovery_poll_s=3600 if by_frame else 0.2))
    fed_only = set(json.loads(fed["markets"][0]["clobTokenIds"]))
    listed: list[bool] = []

    def during(out: list[Any]) -> None:
        if not listed and len(_books_seen(out)) >= 2:
            listed.append(True)
            if by_frame:
                srv.list_event(fed, _books_of(fed, books))
            else:
                with srv._lock:
                    srv.events.append(fed)
                    srv.books.update({b["asset_id"]: b for b in _books_of(fed, books)})

    def done(out: list[Any]) -> bool:
        return fed_only <= _books_seen(out) and any(
            isinstance(e, Event) and e.event_id == PRESIDENT and not e.exhaustive for e in out)

    try:
        events = await _collect(venue.stream(), done, during=during, timeout_s=10)
    finally:
        await venue.close()
        srv.stop()
    said = {e.event_id: e for e in events if isinstance(e, Event)}  # the last word on each
    assert FED in said, "the Fed event was never streamed"
    assert not said[FED].exhaustive, "the new event shares a market: not exhaustive"
    assert not said[PRESIDENT].exhaustive, "the followed event shares it too: not exhaustive"
    # the shared tokens keep the first listing's instrument (as discovery at the start does)
    for token in shared:
        inst = venue.instrument(f"polymarket:{token}")
        assert inst is not None and inst.meta["event_id"] == PRESIDENT, inst.meta
    again = [i for i in events if isinstance(i, Instrument) and i.symbol in shared
             and i.meta["event_id"] != PRESIDENT]
    assert again == [], "a shared token's instrument streamed again naming the new event"
    # the same as a discovery at the start that lists both
    start_events, _ = inst_mod.build(
        [GammaEvent.parse(president), GammaEvent.parse(fed)], venue.settings)
    assert {e.event_id: e.exhaustive for e in start_events} == {
        k: said[k].exhaustive for k in (PRESIDENT, FED)}
