"""Market states for tests, examples and the benchmark: a builder of constructed books,
and the bundled FOMC data (``shared/data/polymarket/fomc_timeseries``) folded into a
:class:`~argus_core.MarketState` at a chosen time.

The FOMC files are trade prints, not quotes: :func:`fomc_market` turns each token's last
print at or before ``at_s`` into a one-level book (ask = bid + 1 tick around the print;
see its docstring), which is what "priced at" means for the tests on real data.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path

import attrs
import numpy as np

from argus_core import (
    Bar,
    Event,
    FeeSchedule,
    Instrument,
    MarketState,
    OrderBook,
    Outcome,
    Settlement,
)

VENUE = "polymarket"
Levels = Sequence[tuple[float, float]]


def _arr(levels: Levels) -> np.ndarray:
    return np.asarray(levels, dtype=np.float64).reshape(-1, 2)


class MarketBuilder:
    """Builds a :class:`MarketState` of Polymarket-shaped events and books by hand."""

    def __init__(self, fees: FeeSchedule | None = None, *, stale_after_ns: int = 0) -> None:
        schedule = fees or FeeSchedule()
        self.market = MarketState(stale_after_ns=stale_after_ns, fees=lambda iid: schedule)

    def event(self, eid: str, names: Sequence[str], *, questions: Sequence[str] | None = None,
              neg_risk: bool = True, exhaustive: bool = True, end_ts_ns: int | None = None,
              min_size: str = "5", tick: str = "0.01",
              meta: dict[str, object] | None = None) -> list[tuple[str, str]]:
        """A negRisk event (or, with ``neg_risk=False``, one binary market per name, each its
        own event ``<eid>:<i>``); returns the (YES, NO) instrument ids per outcome."""
        qs = list(questions or names)
        ids = [(f"{VENUE}:{eid}-{i}-y", f"{VENUE}:{eid}-{i}-n") for i in range(len(names))]
        for (yes, no), name, q in zip(ids, names, qs, strict=True):
            for iid, other, is_yes in ((yes, no, True), (no, yes, False)):
                self.market.add_instruments([Instrument(
                    VENUE, iid.split(":", 1)[1], kind="binary", tick_size=tick, lot_size="0.01",
                    min_size=min_size, meta={"question": q, "outcome": name, "is_yes": is_yes,
                                             "complement": other, "event_id": eid,
                                             **(meta or {})})])
        if neg_risk:
            self.market.apply(Event(VENUE, eid, eid, tuple(
                Outcome(n, y, no) for n, (y, no) in zip(names, ids, strict=True)),
                neg_risk=True, exhaustive=exhaustive, end_ts_ns=end_ts_ns))
        else:
            for i, ((yes, no), q) in enumerate(zip(ids, qs, strict=True)):
                self.market.apply(Event(VENUE, f"{eid}:{i}", q,
                                        (Outcome("Yes", yes, no), Outcome("No", no, yes)),
                                        neg_risk=False, exhaustive=exhaustive,
                                        end_ts_ns=end_ts_ns))
        return ids

    def book(self, iid: str, bids: Levels = (), asks: Levels = (), ts_ns: int = 1) -> None:
        """Load a full book snapshot for ``iid``."""
        self.market.apply(OrderBook(iid, ts_ns, _arr(bids), _arr(asks)))

    def settle(self, iid: str, price: Decimal | str | int, ts_ns: int = 1, reason: str = "resolved"
               ) -> None:
        """The venue reports ``iid`` resolved at ``price``."""
        self.market.apply(Settlement(iid, ts_ns, price, reason))


# --- the bundled FOMC data ---------------------------------------------------------------------

def data_dir() -> Path:
    """``<repo>/../shared/data/polymarket`` (the bundled real Polymarket data)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent / "shared" / "data" / "polymarket"
        if cand.is_dir():
            return cand
        cand = parent.parent / "shared" / "data" / "polymarket"
        if cand.is_dir():
            return cand
    return here.parents[5] / "shared" / "data" / "polymarket"


def _unquote(field: str) -> str:
    return field.strip().strip('"').strip()


@attrs.frozen
class FomcMarket:
    """One row of ``fomc_tokens.csv``: a market of an FOMC event and how it resolved."""

    event_slug: str
    slug: str
    title: str
    yes: str
    no: str
    outcome_yes: Decimal
    outcome_no: Decimal

    @property
    def question(self) -> str:
        """The market's question as text: its slug's words and its title."""
        return f"{self.slug.replace('-', ' ')} | {self.title}"


def fomc_markets(directory: Path | None = None) -> list[FomcMarket]:
    """Every market of ``fomc_tokens.csv`` in file order."""
    path = (directory or data_dir() / "fomc_timeseries") / "fomc_tokens.csv"
    with path.open(newline="") as fh:
        return [FomcMarket(r["event_slug"], r["slug"], r["marketTitle"].strip(),
                           _unquote(r["Yes"]), _unquote(r["No"]),
                           Decimal(_unquote(r["outcomeYes"])), Decimal(_unquote(r["outcomeNo"])))
                for r in csv.DictReader(fh)]


def fomc_prints(files: Iterable[Path]) -> list[tuple[int, str, float, float]]:
    """(timestamp s, token, price, shares) of every print in ``files``, in time order."""
    rows = []
    for path in files:
        with path.open(newline="") as fh:
            for r in csv.DictReader(fh):
                rows.append((int(r["timestamp"]), _unquote(r["asset"]), float(r["price"]),
                             float(r["tokenVolume"])))
    rows.sort(key=lambda t: t[0])
    return rows


def fomc_market(markets: Sequence[FomcMarket], prints: Sequence[tuple[int, str, float, float]],
                at_s: int | None, *, end_s: dict[str, int] | None = None,
                settle: bool = False, fees: FeeSchedule | None = None,
                tick: float = 0.001) -> MarketState:
    """A market state of ``markets`` (one negRisk event per ``event_slug``, not exhaustive;
    the 2022 "rates above X%" events, nested rather than exclusive, as one binary event per
    market, ``<slug>#<i>``) with each token's last print at or before
    ``at_s`` as its book: an ask at the print price and a bid one ``tick`` below, both of
    the print's size (no book where the token has no print).  ``end_s`` gives events'
    end times (unix s); ``settle`` adds each token's resolution as a ``Settlement``."""
    b = MarketBuilder(fees)
    by_event: dict[str, list[FomcMarket]] = {}
    for m in markets:
        by_event.setdefault(m.event_slug, []).append(m)
    for slug, ms in by_event.items():
        end = (end_s or {}).get(slug)
        outcomes = []
        for m in ms:
            y, n = f"{VENUE}:{m.yes}", f"{VENUE}:{m.no}"
            outcomes.append(Outcome(m.title, y, n))
            for tok, other, is_yes in ((m.yes, m.no, True), (m.no, m.yes, False)):
                b.market.add_instruments([Instrument(
                    VENUE, tok, kind="binary", tick_size=str(tick), lot_size="0.01",
                    min_size="0", meta={"question": m.question, "outcome": m.title,
                                        "is_yes": is_yes, "complement": f"{VENUE}:{other}",
                                        "event_id": slug})])
        end_ns = end * 10**9 if end is not None else None
        if any(m.title.lower().startswith(("above", ">")) for m in ms):
            # "rates above X%" markets are nested, not exclusive: grouped binaries
            for i, (m, o) in enumerate(zip(ms, outcomes, strict=True)):
                b.market.apply(Event(VENUE, f"{slug}#{i}", m.question, (
                    Outcome("Yes", o.yes_instrument_id, o.no_instrument_id),
                    Outcome("No", o.no_instrument_id, o.yes_instrument_id)),
                    neg_risk=False, exhaustive=False, end_ts_ns=end_ns))
        else:
            b.market.apply(Event(VENUE, slug, slug, tuple(outcomes), neg_risk=True,
                                 exhaustive=False, end_ts_ns=end_ns))
    known = {f"{VENUE}:{t}" for m in markets for t in (m.yes, m.no)}
    last: dict[str, tuple[int, float, float]] = {}
    for ts, tok, price, size in prints:
        if at_s is not None and ts > at_s:
            break
        last[f"{VENUE}:{tok}"] = (ts, price, size)
    for iid, (ts, price, size) in sorted(last.items()):
        if iid not in known:
            continue
        bid = round(price - tick, 6)
        b.book(iid, [(bid, size)] if bid > 0 else [], [(price, size)], ts * 10**9)
    if settle:
        for m in markets:
            b.settle(f"{VENUE}:{m.yes}", m.outcome_yes, reason="fomc_tokens.csv outcomeYes")
            b.settle(f"{VENUE}:{m.no}", m.outcome_no, reason="fomc_tokens.csv outcomeNo")
    return b.market


# --- the recorded websocket book ----------------------------------------------------------------

#: The recorded CLOB ``book`` message (the Trump 2024 market's No token, 2024-10-13).
TRUMP_NO_BOOK = "clob_ws_book_trump2024_no_token.json"


def ws_book(name: str = TRUMP_NO_BOOK, *, directory: Path | None = None) -> OrderBook:
    """A recorded CLOB websocket ``book`` message as an ``OrderBook`` of
    ``polymarket:<asset_id>`` stamped with its ``timestamp`` (ms -> ns)."""
    raw = json.loads(((directory or data_dir()) / name).read_text())
    bids = sorted(((float(x["price"]), float(x["size"])) for x in raw["bids"]), reverse=True)
    asks = sorted((float(x["price"]), float(x["size"])) for x in raw["asks"])
    return OrderBook(f"{VENUE}:{raw['asset_id']}", int(raw["timestamp"]) * 10**6,
                     _arr(bids), _arr(asks))


#: The Gamma snapshot of the 2024 presidential negRisk event (17 outcomes, 2024-10-31).
PRESIDENTIAL_EVENT = "gamma_event_presidential-election-winner-2024.json"


def rewards_meta(market: dict[str, object]) -> dict[str, object]:
    """A Gamma market's liquidity-rewards program as instrument ``meta`` keys
    (``rewards_daily_rate`` USD/day summed over its ``clobRewards``, ``rewards_min_size``
    shares, ``rewards_max_spread`` cents); empty without a program."""
    programs = market.get("clobRewards") or []
    assert isinstance(programs, list)
    rate = sum(float(p["rewardsDailyRate"]) for p in programs)
    if not rate:
        return {}
    return {"rewards_daily_rate": rate, "rewards_min_size": market.get("rewardsMinSize", 0),
            "rewards_max_spread": market.get("rewardsMaxSpread", 0)}


def presidential_market(*, top_size: float = 1000.0, fees: FeeSchedule | None = None,
                        directory: Path | None = None) -> MarketState:
    """The Gamma presidential event as one negRisk event whose YES tokens have one-level
    books at the snapshot's ``bestBid`` / ``bestAsk`` (Gamma gives no sizes: ``top_size``
    each, an assumption), stamped at the markets' ``updatedAt``; NO tokens have no book.
    Tick and minimum size are the market's; rewards programs are in ``meta``."""
    import datetime as _dt

    raw = json.loads(((directory or data_dir()) / PRESIDENTIAL_EVENT).read_text())
    b = MarketBuilder(fees)
    outcomes = []
    books = []
    for m in raw["markets"]:
        yes, no = json.loads(m["clobTokenIds"])
        y, n = f"{VENUE}:{yes}", f"{VENUE}:{no}"
        outcomes.append(Outcome(m["groupItemTitle"], y, n))
        for tok, other, is_yes in ((yes, n, True), (no, y, False)):
            b.market.add_instruments([Instrument(
                VENUE, tok, kind="binary", tick_size=str(m["orderPriceMinTickSize"]),
                lot_size="0.01", min_size=str(m["orderMinSize"]),
                meta={"question": m["question"], "outcome": m["groupItemTitle"],
                      "is_yes": is_yes, "complement": other, "event_id": str(raw["id"]),
                      **rewards_meta(m)})])
        ts = int(_dt.datetime.fromisoformat(m["updatedAt"].replace("Z", "+00:00"))
                 .timestamp() * 1e9)
        bid, ask = m.get("bestBid"), m.get("bestAsk")
        books.append((y, [(float(bid), top_size)] if bid else [],
                      [(float(ask), top_size)] if ask else [], ts))
    b.market.apply(Event(VENUE, str(raw["id"]), raw["title"], tuple(outcomes), neg_risk=True,
                         exhaustive=False))
    for iid, bids, asks, ts in books:
        b.book(iid, bids, asks, ts_ns=ts)
    return b.market


def trump_no_market(*, with_rewards: bool = True, fees: FeeSchedule | None = None
                    ) -> MarketState:
    """The recorded Trump No book (:func:`ws_book`) with its instrument as Gamma describes
    the market (tick 0.001, minimum size 5, its rewards program in ``meta`` unless
    ``with_rewards`` is False)."""
    raw = json.loads((data_dir() / PRESIDENTIAL_EVENT).read_text())
    book = ws_book()
    token = book.instrument_id.split(":", 1)[1]
    (m,) = [m for m in raw["markets"] if token in json.loads(m["clobTokenIds"])]
    yes = json.loads(m["clobTokenIds"])[0]
    b = MarketBuilder(fees)
    b.market.add_instruments([Instrument(
        VENUE, token, kind="binary", tick_size=str(m["orderPriceMinTickSize"]),
        lot_size="0.01", min_size=str(m["orderMinSize"]),
        meta={"question": m["question"], "outcome": "No", "is_yes": False,
              "complement": f"{VENUE}:{yes}", "event_id": str(raw["id"]),
              **(rewards_meta(m) if with_rewards else {})})])
    b.market.apply(book)
    return b.market


# --- the bundled Kraken minute bars (spot for up/down markets) ----------------------------------

#: 721 one-minute XBT/USDT bars (2025-11-10 12:17 -> 2025-11-11 00:17 UTC), Kraken REST.
KRAKEN_MINUTES = "kraken_rest_ohlc_1m_XBTUSDT.json"


def kraken_minute_bars(instrument_id: str = "kraken:XBT/USDT", *,
                       directory: Path | None = None) -> list[Bar]:
    """The bundled Kraken REST OHLC capture as ``Bar`` events stamped at their *close*
    (open time + 60 s), in time order."""
    path = directory or data_dir().parent / "crypto"
    raw = json.loads((path / KRAKEN_MINUTES).read_text())
    (rows,) = [v for k, v in raw["result"].items() if k != "last"]
    return [Bar(instrument_id, (int(r[0]) + 60) * 10**9, float(r[1]), float(r[2]),
                float(r[3]), float(r[4]), float(r[6])) for r in rows]


def updown_pair(builder: MarketBuilder, name: str, underlying: str, start_ns: int,
                end_ns: int, open_price: float | None = None) -> tuple[str, str]:
    """An up/down market as two binary tokens (``direction`` up / down) over
    ``[start_ns, end_ns)``; returns (up, down) instrument ids."""
    up, down = f"{VENUE}:{name}-up", f"{VENUE}:{name}-down"
    for iid, other, direction in ((up, down, "up"), (down, up, "down")):
        meta: dict[str, object] = {"underlying": underlying, "window_start_ns": start_ns,
                                   "window_end_ns": end_ns, "direction": direction,
                                   "complement": other, "event_id": name,
                                   "question": f"{underlying} up or down, {name}"}
        if open_price is not None:
            meta["open_price"] = open_price
        builder.market.add_instruments([Instrument(
            VENUE, iid.split(":", 1)[1], kind="binary", tick_size="0.01", lot_size="0.01",
            min_size="5", meta=meta)])
    return up, down
