"""The executions feed: :class:`ExecutionsFeed` yields this account's fills and order
updates as they happen.

What order answers reported comes out at once, and so does what the user channel pushes
(:mod:`.user_events`); ``GET /data/trades`` is polled for everything else (resting
orders' maker fills, late taker matches, and a booked trade that ended FAILED on chain: a
``FillCorrection(bust=True)``; MINED / CONFIRMED change nothing, RETRYING is logged),
then orders that left the book are ended (:meth:`ExecutionsFeed.poll_ended`) and orders
whose post stayed ambiguous are looked for again (:meth:`ExecutionsFeed.poll_unknown`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

from py_clob_client_v2.clob_types import OpenOrderParams, TradeParams
from py_clob_client_v2.exceptions import PolyApiException

from argus_core import (
    DataError,
    Fill,
    FillCorrection,
    OrderStatus,
    OrderUpdate,
    VenueError,
)
from argus_venue_polymarket.cancelling import delete_order
from argus_venue_polymarket.lookup import Unreachable, find_order
from argus_venue_polymarket.schemas import ClobTrade
from argus_venue_polymarket.signing import client_order_metadata
from argus_venue_polymarket.tracking import LATE_PLACEMENT_WATCH_S, OrderTracker

log = logging.getLogger(__name__)

_SEEN_TRADES_MAX = 100_000
#: Why an order the venue no longer holds open ended, by its ``GET /data/order`` status.
_ENDED = {"CANCELED": "cancelled at the venue",
          "CANCELED_MARKET_RESOLVED": "cancelled at the venue: the market resolved",
          "INVALID": "invalidated by the venue"}
#: Failed ``GET /data/order`` look-ups of an ended order after which one the venue said
#: ended is reported CANCELLED unread (one merely missing from open orders never is).
_LOOKUPS_BEFORE_GIVING_UP = 5
_LOOKUP_BACKOFF_CAP_S = 60.0  # the longest wait between look-ups of an unreadable order


class ExecutionsFeed(OrderTracker):
    """Fills and order updates of this account's orders: the trades poll, ended orders,
    ambiguous posts looked for again, and the ``executions()`` stream that yields them."""

    async def _identify(self, trades: Sequence[ClobTrade]) -> None:
        """Map venue order ids of our trades that this process never sent back to core ids.

        After a restart an order the previous process sent (say a FOK leg executed while
        it was down) is known only by its venue id.  ``GET /data/order/<id>`` returns the
        order with the ``metadata`` it was signed with (keccak of the core client order
        id): matched against the ledger's orders (``resume``), that names it.  Each id is asked
        about once; one that matches nothing stays unknown (the core flags its fills).
        """
        if not self.known_orders or self.posts_in_flight:
            return
        our_key = self.client.creds.api_key if self.client.creds is not None else ""
        known = set(self.venue_ids.values())
        wanted = []
        for trade in trades:
            if trade.trader_side == "TAKER":
                wanted.append(trade.taker_order_id)
            wanted.extend(m.order_id for m in trade.maker_orders if our_key and m.owner == our_key)
        by_meta = {client_order_metadata(c): c for c in self.known_orders
                   if c not in self.venue_ids}
        for vid in dict.fromkeys(wanted):
            if not vid or vid in known or vid in self._looked_up or not by_meta:
                continue
            self._looked_up.add(vid)
            try:
                row = await asyncio.to_thread(self.client.get_order, vid)
            except Exception as exc:  # the client raises its own exception types
                log.warning("polymarket: GET order %s failed (%s); its fills stay unmapped",
                            vid, type(exc).__name__)
                continue
            row = row.get("order", row) if isinstance(row, dict) else {}
            coid = by_meta.pop(str(row.get("metadata") or ""), None)
            if coid is not None:
                self.unidentified.pop(coid, None)
                self.venue_ids[coid] = vid
                # the venue order id, for the ledger (the order is no longer open: the
                # runner only records the id)
                self._report([OrderUpdate(coid, OrderStatus.OPEN, time.time_ns(), vid)])
                log.info("polymarket: venue order %s is %s (placed before a restart)", vid, coid)

    async def poll_trades(self, after_s: int) -> list[Fill | FillCorrection]:
        """One ``GET /data/trades?after=`` (py-clob-client-v2 ``get_trades``: L2 headers,
        ``next_cursor`` paging): new fills only, each fill id reported once, and a bust
        for each reported fill whose trade ended FAILED on chain (:meth:`_busts`)."""
        await self.ensure_api_creds()
        rows = await asyncio.to_thread(self.client.get_trades, TradeParams(after=after_s))
        trades = []
        for i, raw in enumerate(rows):
            try:
                trades.append(ClobTrade.parse(raw, where=f"GET /data/trades item {i}:"))
            except (DataError, TypeError, ValueError, KeyError, AttributeError,
                    ArithmeticError) as exc:  # one item, not the page (a number for a list)
                log.warning("polymarket: skipping malformed trade: %s: %s",
                            type(exc).__name__, exc)
        await self._identify(trades)
        out, _undecided = self._book_trades(trades)
        return out

    def _book_trades(self, trades: Sequence[ClobTrade]
                     ) -> tuple[list[Fill | FillCorrection], list[ClobTrade]]:
        """New fills and busts of ``trades`` (from the poll or the user channel: the same
        fill ids either way), each fill id once, and the trades with a fill left for later
        (its order's post is undecided, or may be an answer still on its way)."""
        # Trades of orders whose post is undecided (in flight, or unknown) wait: the answer
        # or the look-up reports them, after the order's OPEN, under the same fill ids.
        held = self._in_flight | {u.post.order_hash for u in self.unknown.values()}
        self.failed_waiting = {t: trade for t, trade in self.failed_waiting.items()
                               if trade.taker_order_id in self._in_flight}  # answered
        # A post answer's sweep fill gets its per-trade fee once its trades are read (before
        # any bust of a part of it in the same trades: that part's fee is then refunded whole).
        out: list[Fill | FillCorrection] = [*self._note_taker_trades(trades, held)]
        later: list[ClobTrade] = []
        for trade in trades:
            if trade.status == "FAILED":
                out.extend(self._busts(trade))
                if trade.trader_side == "TAKER" and trade.taker_order_id in self._in_flight:
                    # its post's answer may still book it (``<hash>:0``): busted then
                    self.failed_waiting[trade.trade_id] = trade
            if not self.bookable(trade):  # a FAILED trade stays unbooked (older copies too)
                continue
            if trade.status == "RETRYING" and trade.trade_id not in self._retrying:
                self._retrying.add(trade.trade_id)
                log.warning("polymarket: trade %s is RETRYING on chain (booked when matched; "
                            "a FAILED would undo it)", trade.trade_id)
            for fill in self.fills_of_trade(trade):
                if fill.fill_id in self._seen_trades:
                    continue
                if fill.fill_id.rpartition(":")[2] in held or (
                        fill.client_order_id.startswith("pm:") and self.posts_in_flight):
                    # Its post is undecided (the answer or the look-up books it), or it is
                    # possibly an order whose post response has not arrived yet (the trade
                    # can be listed first): decide later, once its id is known.
                    later.append(trade)
                    continue
                self._seen_trades[fill.fill_id] = self.match_s(trade)
                self._count(fill)
                out.append(fill)
        return out, later

    async def poll_ended(self, *, full: bool = True) -> list[OrderUpdate]:
        """CANCELLED for each watched order that has left the book without filling fully.

        An order we cancelled (confirmed), one the user channel said was cancelled, or
        (``full``) one ``GET /data/orders`` no longer lists, is looked up (``GET
        /data/order/<id>``): still LIVE/DELAYED -> watched on; fully
        matched -> its fills say FILLED, nothing to add; otherwise CANCELLED with why
        (our cancel, the venue's status, a GTD's expiry) — but only once the fills of its
        ``size_matched`` have all been reported, so the update follows them.  A look-up
        that fails is tried again; after five, an order the venue said ended (our cancel
        confirmed, the user channel) is CANCELLED unread, and one merely missing from open
        orders stays watched, asked about at most every minute: it may be live.
        """
        if not self.watched and not self.ghosts:
            return []
        ended = {c: r for c, r in self._ending.items() if c in self.watched}
        ended.update({c: "" for c in self.said_ended if c in self.watched and c not in ended})
        unexplained = [c for c in self.watched if c not in ended]
        if (unexplained or self.ghosts) and full:
            try:
                rows = await asyncio.to_thread(self.client.get_open_orders, OpenOrderParams())
            except Exception as exc:  # the client raises its own exception types
                log.warning("polymarket: open orders poll failed (%s); retrying",
                            type(exc).__name__)
                rows = None
            if rows is not None:
                listed = {str(r.get("id", "")) for r in rows if isinstance(r, dict)}
                for vid in listed:  # listed after all: its failed look-ups are over
                    self._lookup_failures.pop(vid, None)
                    self._lookup_after.pop(vid, None)
                ended.update({c: "" for c in unexplained if self.watched[c] not in listed})
                await self._cancel_ghosts(listed)
        out = []
        now = time.monotonic()
        for coid, reason in ended.items():
            if self._lookup_after.get(self.watched[coid], 0.0) > now:
                continue  # its look-ups keep failing: asked about again later
            update = await self._ended_update(coid, self.watched[coid], reason)
            if update is not None:
                out.append(update)
        return out

    async def _cancel_ghosts(self, listed: set[str]) -> None:
        """Cancel each order the ledger has ended (given up as never placed, say) that the
        venue lists open after all: a post held on the way past ``order_give_up_s`` and
        placed late.  The strategy was told the order ended, so it must not rest; a fill
        it took first is still booked to it (its hash stays mapped).  An unusable answer
        leaves it for the next poll; a refusal (it filled or ended meanwhile) ends the
        watch, the trades poll saying what it did."""
        now = time.time()
        if now >= self._ghosts_pruned_at + 60:  # expired watches, once a minute
            self._ghosts_pruned_at = now
            self.ghosts = {v: w for v, w in self.ghosts.items() if w[1] > now}
        for vid in listed & self.ghosts.keys():
            coid = self.ghosts[vid][0]
            log.error("polymarket: order %s (%s), which the ledger has ended, is open at "
                      "the venue (its post was placed late): cancelling it", coid, vid)
            answer = await delete_order(self.client, vid)
            if answer.confirmed or answer.refused:
                self.ghosts.pop(vid, None)
            else:
                log.warning("polymarket: cancel of late-placed order %s: %s; asked again at "
                            "the next poll", coid, answer.problem)

    async def _ended_update(self, coid: str, vid: str, reason: str) -> OrderUpdate | None:
        """The CANCELLED update of one order that left the book, None while undecided or
        when it filled (see :meth:`poll_ended`)."""
        try:
            row = await asyncio.to_thread(self.client.get_order, vid)
            row = row.get("order", row) if isinstance(row, dict) else {}
            matched = Decimal(str(row.get("size_matched") or "0"))
            size = Decimal(str(row.get("original_size") or "0"))
        except Exception as exc:  # the client raises its own exception types
            failures = self._lookup_failures[vid] = self._lookup_failures.get(vid, 0) + 1
            venue_said = coid in self._ending or coid in self.said_ended
            if failures < _LOOKUPS_BEFORE_GIVING_UP or not venue_said:
                # Only missing from an open-orders answer (the venue may list a
                # just-placed order late): the order may be live, so it is never said
                # cancelled unread; it stays watched and is asked about again, less often.
                if failures >= _LOOKUPS_BEFORE_GIVING_UP:
                    self._lookup_after[vid] = time.monotonic() + min(
                        _LOOKUP_BACKOFF_CAP_S, 2.0 ** (failures - _LOOKUPS_BEFORE_GIVING_UP))
                (log.error if failures == _LOOKUPS_BEFORE_GIVING_UP else log.warning)(
                    "polymarket: GET order %s failed %d times (%s); it stays watched",
                    vid, failures, type(exc).__name__)
                return None
            # The venue said it ended (our cancel confirmed, or its own word) and cannot
            # say more: CANCELLED rather than wait forever (a later fill is still booked).
            self._forget(coid)
            return OrderUpdate(coid, OrderStatus.CANCELLED, time.time_ns(), vid,
                               (reason or "cancelled at the venue") +
                               f"; its final state could not be read ({type(exc).__name__})")
        self._lookup_failures.pop(vid, None)
        self._lookup_after.pop(vid, None)
        status = str(row.get("status", "")).upper()
        if status in ("LIVE", "DELAYED") or self.reported.get(coid, Decimal(0)) < matched:
            return None  # still open, or its fills are not all reported yet
        self._forget(coid)
        if size > 0 and matched >= size:
            return None
        if not reason:
            try:
                expiry = int(str(row.get("expiration") or "0"))
            except ValueError:  # unreadable ("1.7e9"): it only words the reason
                expiry = 0
            if row.get("order_type") == "GTD" and 0 < expiry <= time.time():
                reason = f"GTD order expired at {expiry}"
            else:
                reason = _ENDED.get(status, f"no longer open at the venue (status {status!r})")
        return OrderUpdate(coid, OrderStatus.CANCELLED, time.time_ns(), vid,
                           f"{reason}; {matched} of {size} matched")

    async def poll_unknown(self) -> None:
        """Look again for each order whose post stayed ambiguous (``OrderUnknown``) or that
        was pending at a restart: found -> reported like an answer (OPEN, fills, then its
        end); after ``order_give_up_s`` with no trace -> CANCELLED, never placed (its hash
        stays mapped, so a fill that still turns up is booked to it).  A pending order
        with no hash recorded is CANCELLED then unless it was identified meanwhile."""
        now = time.time()
        for coid, give_up_at in list(self.unidentified.items()):
            if coid in self.venue_ids:
                del self.unidentified[coid]  # named by open orders or trades meanwhile
            elif now >= give_up_at:
                del self.unidentified[coid]
                self._report([OrderUpdate(
                    coid, OrderStatus.CANCELLED, time.time_ns(), None,
                    "never placed: pending at a restart with no venue order id recorded (a "
                    "hash is recorded before every post), and no open order or trade of "
                    f"the venue names it after {self.settings.order_give_up_s:g}s")])
        for coid, u in list(self.unknown.items()):
            try:
                found = await find_order(self.client, u.post, u.since_s)
            except Unreachable as exc:
                log.warning("polymarket: still cannot ask about order %s: %s", coid, exc)
                continue
            if found is not None:
                del self.unknown[coid]
                self._adopt_found(u.post, found)
            elif time.time() >= u.give_up_at_s:
                del self.unknown[coid]
                self.venue_ids.setdefault(coid, u.post.order_hash)
                self.ghosts[u.post.order_hash] = (coid, time.time() + LATE_PLACEMENT_WATCH_S)
                # The hash is this order's venue id whether or not the post got through (a
                # kill can leave it placed and later cancelled by the heartbeat): record it.
                self._report([OrderUpdate(
                    coid, OrderStatus.CANCELLED, time.time_ns(), u.post.order_hash,
                    f"never placed: no trace at the venue {self.settings.order_give_up_s:g}s "
                    f"after an ambiguous post ({u.problem})")])

    def channel_up(self) -> bool:
        """Whether fills arrive as they happen (the user channel is subscribed); the trades
        poll then runs every ``trades_reconcile_s`` instead of ``trades_poll_s``."""
        return False

    def start_channel(self) -> asyncio.Task[None] | None:
        """Start what pushes fills as they happen (none here); see ``UserChannelFeed``."""
        return None

    def reconcile_soon(self) -> None:
        """Run the trades poll (and the open-orders check) at the poll task's next turn."""
        self._reconcile_wanted = True
        self._nudge.set()

    async def executions(self, poll_s: float, lookback_s: int
                         ) -> AsyncIterator[Fill | OrderUpdate | FillCorrection]:
        """This account's fills and order updates as they happen, in venue order: what
        order answers reported (at once), the user channel's events (at once, when it is
        up), ``GET /data/trades`` every ``poll_s`` while the channel is down (every
        ``trades_reconcile_s`` and after each (re)connect while it is up; re-reading a
        minute of overlap each time: trades can appear late; de-duplicated by fill id),
        then :meth:`poll_ended` for orders that left the book and :meth:`poll_unknown`
        for orders whose post stayed ambiguous.  After a restart the first poll starts at
        the newest booked fill when that is older than ``lookback_s``.

        The polls run in a task of their own: a round of look-ups (hundreds of orders left
        pending by a kill) never delays what a post announces (its hash, which must be
        recorded before the post goes out).  Once the consumer stops no order is sent."""
        after = int(time.time()) - lookback_s
        if self.resume_after_s is not None:
            after = min(after, self.resume_after_s)
        if self.heartbeat is not None:
            self.heartbeat.ensure_running()  # orders resting since before a restart
        self._consumer = "running"
        poller = asyncio.get_running_loop().create_task(self._poll_forever(poll_s, after))
        # a poller that dies wakes the consumer, which raises its error (it sat silent
        # before: no fill booked again, no halt, until something else woke the consumer)
        poller.add_done_callback(lambda _: self._wake.set())
        channel = self._channel_task = self.start_channel()
        try:
            while True:
                self._wake.clear()
                while self._reports:
                    item = self._reports.popleft()
                    yield item
                    self._delivered(item)  # the consumer has recorded it
                if poller.done():
                    poller.result()  # its error, if it died of one
                    return
                await self._wake.wait()
        finally:
            self._consumer = "ended"
            for task in (poller, channel):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            for taken in self._durable.values():
                if not taken.done():
                    taken.set_result(False)  # nobody will record them now: not sent
            self._durable.clear()

    async def _poll_forever(self, poll_s: float, after: int) -> None:
        """The polls of :meth:`executions`: what they find is queued in venue order (an
        order's fills before its end).  Every ``poll_s``: the trades poll and the
        open-orders check while the user channel is down, otherwise when due
        (``trades_reconcile_s``) or asked for (:meth:`reconcile_soon`); the channel's
        trades left for later; ended orders; ambiguous posts."""
        next_full = 0.0
        while True:
            self._nudge.clear()
            now = time.monotonic()
            full = self._reconcile_wanted or not self.channel_up() or now >= next_full
            if full:
                self._reconcile_wanted = False
                next_full = now + self.settings.reconcile_interval_s()
                self._report(await self._poll_trades_logged(after), counted=True)
            if self.deferred:
                items, later = self._book_trades(list(self.deferred.values()))
                self.deferred = {t.trade_id: t for t in later}
                self._report(items, counted=True)
            self._report(await self.poll_ended(full=full))
            await self.poll_unknown()
            if self._seen_trades:
                after = max(after, max(self._seen_trades.values()) - 60)
                # Remember a bounded number of fill ids (oldest forgotten first); the
                # runner de-duplicates against the ledger as well.
                excess = len(self._seen_trades) - _SEEN_TRADES_MAX
                for key in list(itertools.islice(self._seen_trades, max(excess, 0))):
                    del self._seen_trades[key]
            with contextlib.suppress(TimeoutError):  # not wait_for: it can lose a cancel
                async with asyncio.timeout(poll_s):
                    await self._nudge.wait()

    async def _poll_trades_logged(self, after: int) -> list[Fill | FillCorrection]:
        """:meth:`poll_trades`, a failure logged (nothing found this time)."""
        try:
            return await self.poll_trades(after)
        except (VenueError, DataError, PolyApiException) as exc:
            log.warning("polymarket: trades poll failed: %s", exc)
        except (TypeError, KeyError, ValueError, AttributeError, ArithmeticError) as exc:
            # the library indexes each page: a body cut short or of the wrong shape
            log.warning("polymarket: trades poll answered something unreadable (%s: "
                        "%s); polling again", type(exc).__name__, exc)
        return []
