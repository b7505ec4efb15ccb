"""Rebuild ``snapshot/`` (the Polymarket suite example's multi-event snapshot).

Three events, as of one constructed moment (26 July 2022 18:00 UTC, the day before the
July 2022 FOMC decision):

* "Fed Decision in September?" -- the recorded Gamma event, unchanged; books constructed
  from each market's recorded ``bestBid``/``bestAsk``, with "No change" offered at 0.64
  (recorded 0.69): a constructed negRisk arbitrage (as in ``examples/polymarket``);
* "Presidential Election Winner 2024" -- the recorded Gamma event, unchanged; books
  constructed from its recorded top of book (fair: nothing to find);
* "Fed interest rates: July 2022" -- the three real "Above X% after July meeting?"
  markets of ``fomc_tokens.csv`` (real questions, condition ids, token ids and final
  outcomes) in a CONSTRUCTED Gamma wrapper (fields copied from the September event's
  markets), with CONSTRUCTED books: "Above 2.25%" bid at near-certainty (0.96), "Above
  2.00%" offered below that bid (0.94: a violation of the nested thresholds, since
  above 2.25% implies above 2.00%), "Above 2.50%" quoted four ticks wide (0.08/0.12).

Resolutions: the election and July 2022 markets resolve as they really did; the
September event's "No change" is a constructed winner.  See SOURCES.md.

    python examples/polymarket_suite/build_snapshot.py
"""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from typing import Any

from argus_venue_polymarket.testing import make_book

HERE = Path(__file__).parent
SHARED = Path("/work/shared")
#: The snapshot's moment: 2022-07-26T18:00:00Z, in ms (every book carries it).
SNAPSHOT_MS = 1_658_858_400_000
#: Resolutions are stamped 2022-07-27T18:30:00Z, after the July 2022 FOMC statement.  The
#: books are then a day old, stale to the core (30 s), so nothing trades on them after a
#: resolution: the real CLOB closes a resolved market's book, this server keeps serving it.
RESOLVED_MS = 1_658_946_600_000
LEVELS = 3
SIZE = "150"


def _fmt(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".")


def ladder(best: float, tick: float, step: int) -> list[tuple[str, str]]:
    """``LEVELS`` levels of ``SIZE`` from ``best`` outwards (``step`` -1 bids, +1 asks),
    strictly inside (0, 1)."""
    return [(_fmt(best + step * k * tick), SIZE) for k in range(LEVELS)
            if 0 < round(best + step * k * tick, 6) < 1]


def market_books(m: dict[str, Any], bid: float | None, ask: float, *,
                 neg_risk: bool) -> list[dict[str, Any]]:
    """YES and NO books of market ``m``: YES ``bid``/``ask``; NO mirrors them (1 - p)."""
    yes, no = json.loads(m["clobTokenIds"])
    tick = float(m.get("orderPriceMinTickSize", 0.01))
    bid = min(bid or 0.0, round(ask - tick, 6))  # never crossed

    def book(token: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
             ) -> dict[str, Any]:
        return make_book(token, m["conditionId"], bids, asks,
                         tick=str(m.get("orderPriceMinTickSize", 0.01)),
                         min_size=str(m.get("orderMinSize", 5)), neg_risk=neg_risk,
                         timestamp=str(SNAPSHOT_MS))

    # a YES side without bids leaves NO without asks (NO ask = 1 - YES bid)
    no_asks = ladder(round(1 - bid, 6), tick, +1) if bid > 0 else []
    return [book(yes, ladder(bid, tick, -1) if bid > 0 else [], ladder(ask, tick, +1)),
            book(no, ladder(round(1 - ask, 6), tick, -1), no_asks)]


def recorded_books(event: dict[str, Any], asks: dict[str, float]) -> list[dict[str, Any]]:
    """Books at each market's recorded top of book (``asks`` overrides an ask by title)."""
    out = []
    for m in event["markets"]:
        ask = asks.get(m["groupItemTitle"], float(m["bestAsk"]))
        out += market_books(m, float(m.get("bestBid") or 0), ask, neg_risk=True)
    return out


#: July 2022 FOMC: constructed YES (bid, ask) per real market, by threshold (see the
#: module docstring).
JULY_2022_BOOKS = {"2.00": (0.93, 0.94), "2.25": (0.96, 0.97), "2.50": (0.08, 0.12)}


def july_2022_event(template: dict[str, Any]) -> dict[str, Any]:
    """A Gamma event wrapping the three real July 2022 'Above X%' markets."""
    rows = [r for r in csv.DictReader(
        (SHARED / "data/polymarket/fomc_timeseries/fomc_tokens.csv").open())
        if r["event_slug"] == "fed-interest-rates-july-2022"]
    base = template["markets"][2]
    markets = []
    for k, row in enumerate(rows):
        clean = {key: value.strip('"') for key, value in row.items()}
        m = copy.deepcopy(base)
        title = clean["marketTitle"]
        m.update(id=f"9000{k + 1}", question=title, conditionId=clean["Condition"],
                 slug=clean["slug"], groupItemTitle=title,
                 questionID="0x" + f"{k + 1:064x}",
                 clobTokenIds=json.dumps([clean["Yes"], clean["No"]]),
                 outcomes=json.dumps(["Yes", "No"]), outcomePrices=json.dumps(["0.5", "0.5"]),
                 endDate="2022-07-28T00:00:00Z", endDateIso="2022-07-28",
                 startDate="2022-06-16T00:00:00Z", negRisk=False,
                 description="Constructed wrapper for a real July 2022 FOMC market.")
        markets.append(m)
    event = {key: value for key, value in template.items() if key != "markets"}
    event.update(id="900000", slug="fed-interest-rates-july-2022",
                 title="Fed interest rates: July 2022", negRisk=False, enableNegRisk=False,
                 negRiskAugmented=False, negRiskMarketID=None,
                 endDate="2022-07-28T00:00:00Z", startDate="2022-06-16T00:00:00Z",
                 markets=markets)
    return event


def july_books(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The constructed July 2022 books (``JULY_2022_BOOKS``)."""
    out = []
    for m in event["markets"]:
        threshold = m["question"].split("%")[0].split()[-1]
        bid, ask = JULY_2022_BOOKS[threshold]
        out += market_books(m, bid, ask, neg_risk=False)
    return out


def resolutions(fed: dict[str, Any], election: dict[str, Any],
                july: dict[str, Any]) -> dict[str, Any]:
    """Final outcome prices per Gamma market id."""
    prices: dict[str, list[str]] = {}
    for m in fed["markets"]:  # constructed: "No change" wins
        prices[m["id"]] = ["1", "0"] if m["groupItemTitle"] == "No change" else ["0", "1"]
    for m in election["markets"]:  # real: Donald Trump won
        prices[m["id"]] = ["1", "0"] if m["groupItemTitle"] == "Donald Trump" else ["0", "1"]
    for m in july["markets"]:  # real: the upper bound went to 2.50%
        prices[m["id"]] = ["0", "1"] if "2.50%" in m["question"] else ["1", "0"]
    return {"timestamp": str(RESOLVED_MS), "outcome_prices": prices}


def main() -> None:
    """Write snapshot/events.json, books.json and resolutions.json."""
    fed = json.loads((SHARED / "fixtures/polymarket_gamma_event_negrisk.json").read_text())
    election = json.loads((SHARED / "data/polymarket/"
                           "gamma_event_presidential-election-winner-2024.json").read_text())
    july = july_2022_event(fed)
    books = (recorded_books(fed, {"No change": 0.64}) + recorded_books(election, {})
             + july_books(july))
    out = HERE / "snapshot"
    out.mkdir(exist_ok=True)
    (out / "events.json").write_text(json.dumps([fed, election, july], indent=1) + "\n")
    (out / "books.json").write_text(json.dumps(books, indent=1) + "\n")
    (out / "resolutions.json").write_text(
        json.dumps(resolutions(fed, election, july), indent=1) + "\n")


if __name__ == "__main__":
    main()
