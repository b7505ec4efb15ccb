"""Stateful scanners: ``StaleQuoteScanner`` and ``SpikeScanner`` (state kept across scans).

**stale** -- a quote left behind after its event's other outcomes moved.  For outcome ``i``
of an exhaustive negRisk event whose every outcome has a two-sided YES book (mid ``m_j``):

    fair_i = 1 - sum_{j != i} m_j            (the others' implied probabilities)

The scanner remembers ``R_i = sum_{j != i} m_j`` as of the last change of ``i``'s own
books (YES and NO).  Token ``i`` is *stale* when its books are at least ``min_age_s`` old
and ``|sum_{j != i} m_j - R_i| >= move_threshold``.  Then each of its ask ladders is bought
while ``p + f(p) <= v - min_gap``, with ``v = fair_i`` for YES and ``1 - fair_i`` for NO
(``f = FeeSchedule.unit_fee``); reported when the condition held on ``persistence_scans``
consecutive scans and the size is at least ``min_depth``.  ``expected_profit = sum q (v -
p) - fees`` is an estimate against a fair value: research lane, ``risk_free=False``.

**spike** -- a sudden move on a thin book, likely to revert.  Per token the reference is an
EMA of the mid with time constant ``window_s``: ``ref += (1 - exp(-dt / window_s)) (mid -
ref)``, frozen while a spike is in progress (so the spike is measured against the
pre-spike level).  A *down-spike* is ``ref - mid >= min_move`` with the ask's top size at
most ``max_depth`` (thin: a deep move is information, not noise), seen on
``persistence_scans`` consecutive scans.  The fade buys the token's top ask ``a`` (size
``q``): expected exit ``x = mid + reversion_fraction (ref - mid)``, edge per share ``x - a -
f(a)``; reported when positive.  An up-spike is a down-spike of the complement token
(seen on its own book).  Research lane, ``risk_free=False``.

State is in memory (``get_state``/``set_state`` give it as JSON-able data, but the core
does not checkpoint scanners yet).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, ClassVar

from argus_core import Event, Leg, MarketState, Opportunity, Scanner, Side
from argus_scanners_polymarket.common import (
    RESEARCH,
    dec,
    edge,
    lane_reason,
    walk_asks,
)
from argus_scanners_polymarket.config import PmScannersSettings, SpikeSettings, StaleSettings


def _mid(market: MarketState, iid: str) -> float | None:
    book = market.books.get(iid)
    if book is None or not book.bids or not book.asks or not market.tradeable(iid)[0]:
        return None
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is not None and ask is not None
    return (bid + ask) / 2


class StaleQuoteScanner(Scanner):
    """Quotes left behind after the event's other outcomes moved."""

    name: ClassVar[str] = "stale"

    def __init__(self, settings: PmScannersSettings | StaleSettings | None = None) -> None:
        if isinstance(settings, PmScannersSettings):
            settings = settings.stale
        self.settings = settings or StaleSettings()
        #: YES token -> [its books' versions, R_i, consecutive scans the condition held]
        self._state: dict[str, list[Any]] = {}

    def get_state(self) -> dict[str, Any]:
        """JSON-able state (reference sums and persistence counters)."""
        return {"tokens": {k: list(v) for k, v in self._state.items()}}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s output."""
        self._state = {k: list(v) for k, v in state.get("tokens", {}).items()}

    def scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """Stale YES/NO ladders of every exhaustive negRisk event, best first."""
        found: list[Opportunity] = []
        for ev in market.events.values():
            if ev.neg_risk and ev.exhaustive and not ev.closed and len(ev.outcomes) >= 2:
                found.extend(self._event(market, ev, ts_ns))
        found.sort(key=lambda o: o.expected_profit, reverse=True)
        return found

    def _event(self, market: MarketState, ev: Event, ts_ns: int) -> list[Opportunity]:
        s = self.settings
        mids = [_mid(market, o.yes_instrument_id) for o in ev.outcomes]
        if any(m is None for m in mids):
            return []
        total = sum(m for m in mids if m is not None)
        out = []
        for o, m in zip(ev.outcomes, mids, strict=True):
            assert m is not None
            others = total - m
            books = [market.books.get(i) for i in (o.yes_instrument_id, o.no_instrument_id)]
            versions = [b.version if b is not None else -1 for b in books]
            newest = max(b.ts_ns for b in books if b is not None)
            st = self._state.get(o.yes_instrument_id)
            if st is None or st[0] != versions:
                self._state[o.yes_instrument_id] = [versions, others, 0]
                continue
            age_s = (ts_ns - newest) / 1e9
            if age_s < s.min_age_s or abs(others - st[1]) < float(s.move_threshold):
                st[2] = 0
                continue
            fair = dec(round(1 - others, 9))
            hits = []
            for iid, value in ((o.yes_instrument_id, fair), (o.no_instrument_id, 1 - fair)):
                book = market.books.get(iid)
                if book is None or not book.asks or not market.tradeable(iid)[0]:
                    continue
                limit = value - s.min_gap

                def keep(p: Decimal, f: Decimal, limit: Decimal = limit) -> bool:
                    return p + f <= limit

                walk = walk_asks(book.ask_levels(), market.fee_schedule(iid), keep=keep)
                if walk.quantity >= max(s.min_depth, Decimal("0.01")):
                    hits.append((iid, value, walk))
            st[2] = st[2] + 1 if hits else 0
            if st[2] < s.persistence_scans:
                continue
            for iid, value, walk in hits:
                profit = value * walk.quantity - walk.value - walk.fees
                side = "YES" if iid == o.yes_instrument_id else "NO"
                out.append(Opportunity(
                    opportunity_id=f"stale:{iid}:{newest}", scanner=self.name, ts_ns=ts_ns,
                    kind="stale_quote", legs=(Leg(iid, Side.BUY, walk.limit, walk.quantity),),
                    edge_per_unit=edge(profit, walk.quantity), max_size=walk.quantity,
                    expected_profit=profit, costs=walk.fees, risk_free=False,
                    event_id=ev.event_id,
                    lane=RESEARCH,
                    reason=lane_reason(RESEARCH, (
                        f"{side} of {o.name!r} quoted {age_s:.0f}s ago while the other "
                        f"outcomes moved {others - st[1]:+.4f}; fair {value} (1 - others' "
                        f"mids), {walk.quantity} asked up to {walk.limit}; held "
                        f"{st[2]} scans"))))
        return out


class SpikeScanner(Scanner):
    """Sudden moves on thin books, faded when they persist."""

    name: ClassVar[str] = "spike"

    def __init__(self, settings: PmScannersSettings | SpikeSettings | None = None) -> None:
        if isinstance(settings, PmScannersSettings):
            settings = settings.spike
        self.settings = settings or SpikeSettings()
        #: token -> [reference mid (EMA), last update ts_ns, consecutive spike scans]
        self._state: dict[str, list[float]] = {}

    def get_state(self) -> dict[str, Any]:
        """JSON-able state (EMA references and persistence counters)."""
        return {"tokens": {k: list(v) for k, v in self._state.items()}}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s output."""
        self._state = {k: list(v) for k, v in state.get("tokens", {}).items()}

    def scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """Persistent down-spikes on thin books, best first."""
        s = self.settings
        out: list[Opportunity] = []
        for iid, book in market.books.items():
            mid = _mid(market, iid)
            if mid is None:
                continue
            st = self._state.get(iid)
            if st is None:
                self._state[iid] = [mid, float(ts_ns), 0.0]
                continue
            ref, last, count = st
            ask_levels = book.ask_levels()
            top_size = float(ask_levels[0, 1])
            spiking = ref - mid >= float(s.min_move) and top_size <= float(s.max_depth)
            if not spiking:
                dt_s = max(ts_ns - last, 0) / 1e9
                st[0] = ref + (1 - math.exp(-dt_s / s.window_s)) * (mid - ref)
                st[1], st[2] = float(ts_ns), 0.0
                continue
            st[2] = count = count + 1
            if count < s.persistence_scans:
                continue
            ask = dec(ask_levels[0, 0])
            qty = dec(top_size)
            schedule = market.fee_schedule(iid)
            exit_value = dec(round(mid + float(s.reversion_fraction) * (ref - mid), 9))
            fees = schedule.fee(ask, qty, maker=False)
            profit = (exit_value - ask) * qty - fees
            if profit <= 0 or qty <= 0:
                continue
            out.append(Opportunity(
                opportunity_id=f"spike:{iid}:{book.ts_ns}", scanner=self.name, ts_ns=ts_ns,
                kind="spike_fade", legs=(Leg(iid, Side.BUY, ask, qty),),
                edge_per_unit=edge(profit, qty), max_size=qty, expected_profit=profit,
                costs=fees, risk_free=False,
                event_id=str(market.instruments[iid].meta.get("event_id", ""))
                if iid in market.instruments else "",
                lane=RESEARCH,
                reason=lane_reason(RESEARCH, (
                    f"mid {mid:.4f} fell {ref - mid:.4f} below its {s.window_s:g}s EMA "
                    f"{ref:.4f} on a thin ask ({top_size:g} shares) for {int(count)} scans; "
                    f"fade to {exit_value} ({s.reversion_fraction} reversion)"))))
        out.sort(key=lambda o: o.expected_profit, reverse=True)
        return out
