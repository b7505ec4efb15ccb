"""The executions feed with the websocket user channel: :class:`UserChannelFeed`.

In live mode ``executions()`` follows the user channel (:mod:`.user_channel`) beside the
trades poll (:mod:`.feed`):

* a ``trade`` event becomes the fills the poll would make of the same trade (same fill ids
  ``<trade id>:<venue order id>``, so a fill seen on both is reported once here and booked
  once by the core), and a FAILED status the same bust; trades of orders whose post is
  undecided wait, as the poll's do, and are decided again at each turn of the poll task;
* an ``order`` event: CANCELLATION of a watched order (not one we are cancelling) ends
  it as CANCELLED once its fills are in, without waiting for the open-orders check; an
  UPDATE (or any event) saying more matched than we have reported asks for the trades poll
  at once (a ``trade`` frame was lost or is late); an event naming an order whose post
  stayed ambiguous wakes the look-up; PLACEMENT of our own order adds nothing (the post's
  answer reports it).

The poll stays the reconciler: after every (re)connect and every ``trades_reconcile_s``
while the channel is up, every ``trades_poll_s`` while it is down, and after a frame that
could not be read.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

from py_clob_client_v2.clob_types import ApiCreds

from argus_core import VenueError
from argus_venue_polymarket.feed import ExecutionsFeed
from argus_venue_polymarket.user_channel import UserChannel, ws_order, ws_trade

log = logging.getLogger(__name__)


class UserChannelFeed(ExecutionsFeed):
    """:class:`ExecutionsFeed` plus the user channel's events (see the module docstring)."""

    #: The user channel while ``executions()`` runs (None before, or when it is off).
    channel: UserChannel | None = None

    def channel_up(self) -> bool:
        """Whether the user channel is subscribed (the trades poll then slows down)."""
        return self.channel is not None and self.channel.up

    def start_channel(self) -> asyncio.Task[None] | None:
        """Start the user channel (``user_channel`` on and a URL known), else None."""
        s = self.settings
        url = s.user_channel_url()
        if url is None:
            if s.user_channel:
                log.warning("polymarket: no user channel: ws_url %s has no /ws/market path to "
                            "derive /ws/user from (set user_ws_url); fills come from GET "
                            "/data/trades every %gs", s.ws_url, s.trades_poll_s)
            return None
        self.channel = UserChannel(s, url, self._channel_creds, self.on_user_event,
                                   on_connected=self.reconcile_soon,
                                   on_malformed=self.reconcile_soon)
        return asyncio.get_running_loop().create_task(self.channel.run())

    async def _channel_creds(self) -> ApiCreds:
        await self.ensure_api_creds()
        creds = self.client.creds
        if creds is None:
            raise VenueError("polymarket: no L2 API credentials for the user channel")
        return creds

    async def on_user_event(self, event: dict[str, Any]) -> None:
        """One event of the user channel (``DataError`` when it is malformed)."""
        kind = str(event.get("event_type") or "").lower()
        if kind == "trade":
            await self._on_trade_event(event)
        elif kind == "order":
            self._on_order_event(event)
        # Other event types carry nothing about our fills.

    async def _on_trade_event(self, event: dict[str, Any]) -> None:
        creds = self.client.creds
        trade = ws_trade(event, our_key=creds.api_key if creds is not None else "",
                         ours=set(self.venue_ids.values()))
        await self._identify([trade])
        items, later = self._book_trades([trade])
        for undecided in later:
            self.deferred[undecided.trade_id] = undecided
        self._report(items, counted=True)

    def _on_order_event(self, event: dict[str, Any]) -> None:
        vid, kind, matched = ws_order(event)
        coid = next((c for c, v in self.venue_ids.items() if v == vid), None)
        if coid is None:
            if any(u.post.order_hash == vid for u in self.unknown.values()):
                self._nudge.set()  # the venue holds an ambiguous post: look it up now
            return
        if vid in self.ghosts and kind == "PLACEMENT":
            self.reconcile_soon()  # ended in the ledger, placed late: cancelled (``feed``)
        elif kind == "CANCELLATION" and coid in self.watched and coid not in self.cancelling:
            self.said_ended.add(coid)
            self.reconcile_soon()  # its last fills, if a trade frame went missing
        elif matched is not None and matched > self.reported.get(coid, Decimal(0)):
            self.reconcile_soon()
