"""The example Polymarket snapshot as the live maker tests serve it: its end dates moved.

``examples/polymarket/snapshot`` (not this plugin's to change) was recorded with the Fed
event ending 2026-09-16; ``pm_maker`` stops quoting ``stop_before_end_s`` (an hour by
default) before an event's end, so against the recorded dates a live test run after that
day would see the maker quote nothing.  The live harness serves the snapshot with every
end date moved to :data:`ENDS_IN_S` from now instead (the harness's clock is the
machine's: books are stamped now), so the tests quote whatever day they run.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
SNAPSHOT = ROOT / "examples" / "polymarket" / "snapshot"
#: How far ahead the served events end: well past any test's run.
ENDS_IN_S = 30 * 86_400


def iso_in(seconds: float) -> str:
    """Gamma's ``endDate`` form for ``seconds`` from now."""
    return datetime.fromtimestamp(time.time() + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def snapshot_events(ends_in_s: float = ENDS_IN_S) -> list[dict[str, Any]]:
    """The snapshot's Gamma events, each event's and market's ``endDate`` set to
    ``ends_in_s`` from now (a copy: the files are not touched)."""
    events: list[dict[str, Any]] = json.loads((SNAPSHOT / "events.json").read_text())
    end = iso_in(ends_in_s)
    for event in events:
        if "endDate" in event:
            event["endDate"] = end
        for market in event.get("markets", []):
            if "endDate" in market:
                market["endDate"] = end
    return events


def snapshot_books() -> list[dict[str, Any]]:
    """The snapshot's CLOB books, as recorded."""
    books: list[dict[str, Any]] = json.loads((SNAPSHOT / "books.json").read_text())
    return books
