"""Red team r38, listings: one market listed under two Gamma events.

Gamma lists a market under each event it belongs to.  Built as it came, the second event's
instrument replaced the first's (its ``meta`` naming the other event) and both negRisk
events stayed ``exhaustive``: a "one outcome must win" basket over the second counted an
outcome of another question among its own.  Now the first listing keeps the instrument and
every event sharing a token is not exhaustive.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.replay_server import SnapshotServer
from argus_venue_polymarket.venue import PolymarketVenue

SNAPSHOT = Path(__file__).parents[3] / "examples" / "polymarket" / "snapshot"
FED = "481717"


def _fed_and_a_second_listing() -> list[dict[str, Any]]:
    """The recorded Fed event, and another negRisk event listing two of its markets."""
    events = {e["id"]: e for e in json.loads((SNAPSHOT / "events.json").read_text())}
    fed = events[FED]
    other = copy.deepcopy(fed)
    other.update(id="999001", title="Fed: two outcomes", slug="fed-two",
                 negRiskMarketID="0x" + "ab" * 32, markets=other["markets"][:2])
    return [fed, other]


async def test_a_market_under_two_events_makes_both_not_exhaustive() -> None:
    fed, other = _fed_and_a_second_listing()
    srv = SnapshotServer([fed, other], []).start()
    venue = PolymarketVenue(PolymarketSettings(gamma_url=srv.url, clob_url=srv.url,
                                               request_timeout_s=5.0))
    try:
        events = {e.event_id: e for e in await venue.discover()}
        instruments = await venue.instruments()
    finally:
        srv.stop()
    assert set(events) == {FED, "999001"}
    assert not events["999001"].exhaustive and not events[FED].exhaustive, \
        {k: e.exhaustive for k, e in events.items()}
    shared = json.loads(other["markets"][0]["clobTokenIds"])[0]
    inst = venue.instrument(f"polymarket:{shared}")
    assert inst is not None and inst.meta["event_id"] == FED, inst
    assert len(instruments) == len({i.id for i in instruments})


async def test_the_fed_event_alone_is_still_exhaustive() -> None:
    fed, _ = _fed_and_a_second_listing()
    srv = SnapshotServer([fed], []).start()
    venue = PolymarketVenue(PolymarketSettings(gamma_url=srv.url, clob_url=srv.url,
                                               request_timeout_s=5.0))
    try:
        events = await venue.discover()
    finally:
        srv.stop()
    assert [e.exhaustive for e in events] == [True]
