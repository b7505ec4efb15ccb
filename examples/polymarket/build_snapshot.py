"""Rebuild ``snapshot/`` (the offline example's recorded snapshot) from the shared fixtures.

Events are the two recorded Gamma events, unchanged.  The CLOB books are
CONSTRUCTED from each market's recorded top of book (``bestBid``/``bestAsk``)
with fixed depth, and one arbitrage is constructed on purpose: the "No
change" outcome of the Fed event is offered at 0.64 (recorded best ask 0.69),
which makes buying YES of all five outcomes cost less than 1 after fees.
See SOURCES.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from argus_venue_polymarket.testing import make_book

HERE = Path(__file__).parent
SHARED = HERE.parents[2].parent / "shared" if not (HERE / "_shared").exists() else HERE / "_shared"


def _fmt(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".")


def books_for(event: dict, overrides: dict[str, float]) -> list[dict]:
    out = []
    for m in event["markets"]:
        yes, no = json.loads(m["clobTokenIds"])
        tick = str(m.get("orderPriceMinTickSize", 0.01))
        t = float(tick)
        ask = overrides.get(m["groupItemTitle"], float(m["bestAsk"]))
        bid = min(float(m.get("bestBid") or 0), round(ask - t, 6))  # never crossed
        yes_asks = [(_fmt(ask + k * t), "150") for k in range(3) if ask + k * t < 1]
        yes_bids = [(_fmt(bid - k * t), "150") for k in range(3) if bid - k * t > 0]
        # NO asks mirror YES bids (1 - bid); a YES side without bids leaves NO without asks
        no_ask = 1 - bid
        no_asks = [(_fmt(no_ask + k * t), "150") for k in range(3)
                   if bid > 0 and no_ask + k * t < 1]
        no_bid = min(1 - ask, no_ask - t)
        no_bids = [(_fmt(no_bid - k * t), "150") for k in range(3) if no_bid - k * t > 0]
        common = {"tick": tick, "min_size": str(m.get("orderMinSize", 5)), "neg_risk": True}
        out.append(make_book(yes, m["conditionId"], yes_bids, yes_asks, **common))
        out.append(make_book(no, m["conditionId"], no_bids, no_asks, **common))
    return out


def main() -> None:
    """Write snapshot/events.json and snapshot/books.json."""
    fixtures = Path("/work/shared") if Path("/work/shared").exists() else SHARED
    fed = json.loads((fixtures / "fixtures/polymarket_gamma_event_negrisk.json").read_text())
    election = json.loads((fixtures / "data/polymarket/"
                           "gamma_event_presidential-election-winner-2024.json").read_text())
    books = books_for(fed, {"No change": 0.64}) + books_for(election, {})
    out = HERE / "snapshot"
    out.mkdir(exist_ok=True)
    (out / "events.json").write_text(json.dumps([fed, election], indent=1))
    (out / "books.json").write_text(json.dumps(books, indent=1))


if __name__ == "__main__":
    main()
