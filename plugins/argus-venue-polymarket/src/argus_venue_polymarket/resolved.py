"""Markets already closed when a stream starts: their ``Settlement`` events, and what the
run holds.

The websocket says ``market_resolved`` only to a subscriber, only tradeable markets are
subscribed, and the Gamma poll asks only about markets it follows: a market that resolved
while no process was running (a paper or live run stopped before the resolution and
started again after it) would never be settled, and a position held in it would stay on
the books at its last mark and on chain unredeemed.  ``stream()`` therefore settles, at
its start, every closed market it knows whose Gamma record says how it resolved
(:func:`settle_closed`): the discovered ones, and the markets the run holds that discovery
no longer lists (:func:`held_positions` reads them from the run's fills).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from argus_core import Settlement
from argus_venue_polymarket import constants as C
from argus_venue_polymarket.data import MAX_AHEAD_NS, resolution_settlements
from argus_venue_polymarket.schemas import GammaMarket

log = logging.getLogger(__name__)


def held_positions(fills: Iterable[Mapping[str, Any]]) -> dict[str, Decimal]:
    """Net quantity per Polymarket instrument id of a run's fills (rows of the core's
    ``Ledger.fills()``: ``instrument_id``, ``side``, ``quantity``), flat ones left out.
    Settlement fills are fills like any other: a settled position is flat."""
    net: dict[str, Decimal] = {}
    for fill in fills:
        iid = str(fill["instrument_id"])
        venue, _, token = iid.partition(":")
        if venue != C.VENUE or not token.isdigit():
            continue
        qty = Decimal(str(fill["quantity"]))
        net[iid] = net.get(iid, Decimal(0)) + (qty if fill["side"] == "buy" else -qty)
    return {iid: qty for iid, qty in net.items() if qty != 0}


def settle_closed(markets: Iterable[GammaMarket], now_ns: int, held: set[str]
                  ) -> tuple[list[Settlement], list[GammaMarket]]:
    """(settlements, pending) for the closed ``markets``: a resolved one's ``Settlement``
    per token, stamped with its ``closedTime`` (else, or when it is ahead of this machine's
    clock, ``now_ns``);
    one closed but not resolved (``umaResolutionStatus`` proposed / disputed, prices not
    final) is pending and said in the log (a warning when ``held`` names one of its
    instrument ids: its position waits for the resolution).  Open markets are left out."""
    settlements: list[Settlement] = []
    pending: list[GammaMarket] = []
    for market in markets:
        if not market.closed or len(market.token_ids) != 2:
            continue
        out = resolution_settlements(market, _closed_stamp(market, now_ns))
        if out:
            settlements.extend(out)
            continue
        pending.append(market)
        holds = any(f"{C.VENUE}:{t}" in held for t in market.token_ids)
        log.log(logging.WARNING if holds else logging.INFO,
                "polymarket: market %s (%s) is closed but not resolved (UMA status %r, "
                "outcomePrices %s): no settlement yet%s", market.market_id,
                market.question[:60], market.uma_resolution_status or "none",
                [str(p) for p in market.outcome_prices],
                "; this run holds it" if holds else "")
    return settlements, pending


def _closed_stamp(market: GammaMarket, now_ns: int) -> int:
    """A resolved market's settlement stamp: its ``closedTime``, or ``now_ns`` when it has
    none or one ahead of this machine's clock (damage: stamped so, the settlement moved the
    core's clock there and every book was stale by age for the rest of the run)."""
    closed = market.closed_ts_ns()
    return now_ns if closed is None or closed > time.time_ns() + MAX_AHEAD_NS else closed
