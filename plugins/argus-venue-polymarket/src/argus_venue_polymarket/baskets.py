"""Baskets: :class:`BasketSubmission` sends a multi-leg basket as one batch of FOK orders.

:meth:`BasketSubmission.submit_basket` sends every leg as **FOK at the
scanner's walked limit price** in one ``POST /orders`` batch, exactly once
(the same rules per leg).  All legs filled: their fills.  Some legs executed
and others were killed: ``BasketIncomplete`` carrying the executed legs' fills
(under the legs' own client order ids); the killed legs are reported CANCELLED
through ``executions()``.  A leg answered ``"delayed"`` (a market's matching delay) is
waited for, up to ``order_settle_s``, before the basket is judged.  The venue never
unwinds anything itself: the core flattens the excess with ordinary ledgered orders
(LIMIT IOC -> FAK, ``reduce_only``) that come through
:meth:`.sending.OrderSender.submit` like any other order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from decimal import Decimal

import attrs

from argus_core import (
    BasketIncomplete,
    Fill,
    Order,
    OrderStatus,
    OrderUnknown,
    OrderUpdate,
    TimeInForce,
    VenueError,
)
from argus_core import OrderType as CoreOrderType
from argus_venue_polymarket.lookup import SKEW_S, Unreachable, find_order
from argus_venue_polymarket.sending import OrderSender, SendResult
from argus_venue_polymarket.signing import SignedPost

log = logging.getLogger(__name__)


class BasketSubmission(OrderSender):
    """Multi-leg basket submission on top of :class:`.sending.OrderSender`: one FOK batch,
    judged once every leg's outcome is known; ``BasketIncomplete`` when only some legs
    executed."""

    async def _await_delayed(self, posts: Sequence[SignedPost], result: SendResult) -> None:
        """Legs answered ``"delayed"`` (a market's matching delay) are matched or killed
        seconds later: wait for that, up to ``order_settle_s``, before the basket is judged,
        so the core never unwinds legs while another may still fill.  A leg still delayed
        then counts as unfilled (logged); its fills, if any, come through ``executions()``."""
        s = self.settings
        waiting = [p for p in posts if p.client_order_id in self.watched
                   and p.client_order_id not in self._ending
                   and not result.fills.get(p.client_order_id)]
        if not waiting:
            return
        hashes = {self.venue_ids.get(p.client_order_id, p.order_hash) for p in waiting}
        self._in_flight |= hashes  # their trades are booked here, not by the feed meanwhile
        since_s = int(time.time()) - SKEW_S
        loop = asyncio.get_running_loop()
        deadline = loop.time() + s.order_settle_s
        try:
            while waiting and loop.time() < deadline:
                await asyncio.sleep(s.order_lookup_interval_s)
                for p in list(waiting):
                    try:
                        found = await find_order(self.client, p, since_s)
                    except Unreachable:
                        continue
                    status = str((found.row or {}).get("status", "")).upper() if found else ""
                    if found is None or status in ("LIVE", "DELAYED"):
                        continue
                    result.fills[p.client_order_id] = [*result.fills.get(p.client_order_id, []),
                                                       *self._adopt_found(p, found)]
                    waiting.remove(p)
        finally:
            self._in_flight -= hashes
        for p in waiting:
            log.error("polymarket: basket leg %s still delayed after %gs; counted as unfilled",
                      p.client_order_id, s.order_settle_s)

    async def submit_basket(self, legs: Sequence[Order]) -> list[Fill]:
        """Send every leg FOK in one batch, exactly once; the legs' fills when complete.

        Legs executed and others killed: ``BasketIncomplete`` with the executed legs'
        fills (the core unwinds them with ordinary orders; nothing is unwound here).  No
        leg executed: no fills (each leg CANCELLED / REJECTED through ``executions()``).
        ``OrderUnknown`` naming the legs the venue could not be asked about.
        """
        if not legs:
            raise VenueError("polymarket: empty basket")
        basket_id = legs[0].basket_id or legs[0].client_order_id
        posts = [self.build(attrs.evolve(o, time_in_force=TimeInForce.FOK,
                                         order_type=CoreOrderType.LIMIT)) for o in legs]
        await self.ensure_api_creds()
        result = await self._send(posts, batch=True)
        if result.unknown:
            raise OrderUnknown(f"polymarket: basket {basket_id}: " + "; ".join(
                f"leg {c}: {why}" for c, why in result.unknown.items()), list(result.unknown))
        now = time.time_ns()
        for coid, why in result.unplaced.items():
            self._report([OrderUpdate(coid, OrderStatus.REJECTED, now, None, why)])
        await self._await_delayed(posts, result)
        fills = [f for p in posts for f in result.fills.get(p.client_order_id, [])]
        filled = {p.client_order_id: sum((f.quantity for f in result.fills.get(
            p.client_order_id, [])), Decimal(0)) for p in posts}
        if all(filled[p.client_order_id] >= p.order.quantity for p in posts):
            return fills
        if not fills:
            log.warning("polymarket: basket %s: no leg executed", basket_id)
            return []
        short = [f"leg {p.client_order_id} filled {filled[p.client_order_id]}/"
                 f"{p.order.quantity}" for p in posts if filled[p.client_order_id] <
                 p.order.quantity]
        log.error("polymarket: basket %s incomplete (%s)", basket_id, "; ".join(short))
        raise BasketIncomplete(f"polymarket: basket {basket_id} incomplete: "
                               + "; ".join(short), fills)
