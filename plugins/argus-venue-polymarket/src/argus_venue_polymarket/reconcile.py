"""Reconciliation after a restart: :class:`Reconciliation` takes over this run's orders
and booked fills from the ledger (:meth:`Reconciliation.resume`) and maps the venue's open
orders back to core client order ids (:meth:`Reconciliation.open_orders`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs
from py_clob_client_v2.clob_types import OpenOrderParams, OrderType
from py_clob_client_v2.exceptions import PolyApiException

from argus_core import (
    DataError,
    KnownOrder,
    Order,
    OrderStatus,
    OrderUpdate,
    Side,
    TimeInForce,
    VenueError,
    VenueResume,
    to_decimal,
)
from argus_core import OrderType as CoreOrderType
from argus_venue_polymarket import constants as C
from argus_venue_polymarket.instruments import token_of
from argus_venue_polymarket.lookup import SKEW_S
from argus_venue_polymarket.signing import CLOB_ORDER_TYPE, SentOrder, client_order_metadata
from argus_venue_polymarket.tracking import (
    LATE_PLACEMENT_WATCH_S,
    FeeCheck,
    OrderTracker,
    UnknownOrder,
)

#: ``metadata`` values that say nothing (absent, or the zero bytes32 of an order signed
#: without it).
_NO_METADATA = frozenset({"", "0x" + "00" * 32})


@attrs.frozen
class OpenRow:
    """One ``GET /data/orders`` row, read strictly: a value we act on that is unreadable
    is a ``VenueError`` naming the row (before, a bare ``InvalidOperation`` or
    ``AttributeError``, and a side that was neither BUY nor SELL read as SELL)."""

    vid: str
    token: str
    side: str
    price: Decimal
    size: Decimal
    matched: Decimal
    order_type: str
    metadata: str

    @classmethod
    def parse(cls, raw: Any, where: str) -> OpenRow:
        """Validate one row (``where`` names it in errors)."""
        if not isinstance(raw, dict) or not raw.get("id"):
            raise VenueError(f"polymarket: {where}: not an order ({str(raw)[:80]!r})")
        where = f"{where} ({str(raw['id'])[:70]})"
        side = str(raw.get("side", "")).upper()
        if side not in ("BUY", "SELL"):
            raise VenueError(f"polymarket: {where}: side {raw.get('side')!r:.20} is not BUY "
                             f"or SELL")
        try:
            price = to_decimal(raw.get("price"), field="price")
            size = to_decimal(raw.get("original_size") or raw.get("size") or "0",
                              field="original_size")
            matched = to_decimal(raw.get("size_matched") or "0", field="size_matched")
        except DataError as exc:
            raise VenueError(f"polymarket: {where}: {exc}") from None
        if size > 0 and not Decimal(0) < price < Decimal(1):
            raise VenueError(f"polymarket: {where}: price {price} is not in (0, 1)")
        return cls(str(raw["id"]), str(raw.get("asset_id", "")), side, price, size, matched,
                   str(raw.get("order_type") or ""), str(raw.get("metadata") or ""))


class Reconciliation(OrderTracker):
    """The way back after a restart: the ledger's orders and fills, and the venue's open
    orders mapped to them (by venue order id, signed ``metadata``, or a unique match)."""

    def resume(self, known: VenueResume) -> int:
        """Know this run's orders and booked fills (the ledger's, handed over by the core):
        the way back after a restart.  Returns how many orders it knows.

        Open orders map back to these client ids by venue order id or the signed
        ``metadata`` (keccak of the client order id); booked fill ids are not reported
        again (``<venue order id>:0``: the post answer already reported that order's taker
        matches); each order's filled quantity is what was reported already, so an order
        that leaves the book is ended only after any fills still missing; orders still
        open are watched again (resting ones kept alive by the heartbeat); the first
        trades poll starts at the newest booked fill.  Orders still pending (the previous
        process stopped mid-post) are looked for by the hash recorded before their post
        (``executions()``: found -> reported like an answer; no trace after
        ``order_give_up_s`` -> CANCELLED, never placed); one with no hash recorded was
        never sent (its hash is recorded first), and is CANCELLED after ``order_give_up_s``
        unless the venue's open orders or trades name it by ``metadata`` meanwhile.
        """
        if self._consumer == "none":
            self._consumer = "expected"  # the core resumes a venue, then consumes executions()
        now = time.time()
        since_s = int(now) - self.settings.trades_lookback_s
        if known.newest_fill_ts_ns is not None:
            self.resume_after_s = int(known.newest_fill_ts_ns // 1_000_000_000) - SKEW_S
            since_s = min(since_s, self.resume_after_s)
        give_up = now + self.settings.order_give_up_s
        for k in known.orders:
            order, coid = k.order, k.order.client_order_id
            self.known_orders[coid] = order
            self.reported[coid] = max(self.reported.get(coid, Decimal(0)), k.filled_quantity)
            pending = order.status is OrderStatus.PENDING
            if not k.venue_order_id:
                if pending:
                    self.unidentified[coid] = give_up
                continue
            if order.status in (OrderStatus.CANCELLED, OrderStatus.REJECTED) and \
                    not k.filled_quantity:
                # ended unfilled (given up as never placed, say): a post held on the way
                # around the restart may still be placed; found open, it is cancelled
                # (``feed``).  Watched from now: an order's time is the market's, not ours.
                self.ghosts[k.venue_order_id] = (coid, now + LATE_PLACEMENT_WATCH_S)
            if pending:
                order_type = (OrderType.FOK if order.basket_id
                              else CLOB_ORDER_TYPE[order.time_in_force])
                self.unknown[coid] = UnknownOrder(SentOrder(order, order_type, k.venue_order_id),
                                                  since_s, "pending when the previous process "
                                                  "stopped", give_up)
            self.venue_ids.setdefault(coid, k.venue_order_id)
            if order.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
                self.watched[coid] = k.venue_order_id
                if order.time_in_force in (TimeInForce.GTC, TimeInForce.GTD):
                    self._heartbeat().resting.add(coid)
        kept = {k.order.client_order_id: k for k in known.orders}
        for fill_id, coid in known.fill_ids.items():
            head, _, tail = fill_id.partition(":")
            if head.startswith("0x") and tail == "0":
                self.taker_reported.add(head)
                self.venue_ids.setdefault(coid, head)
                self._resume_fee_check(head, kept.get(coid), known.fill_fees.get(fill_id))
            elif tail.startswith("0x") and ":" not in tail:
                self._seen_trades.setdefault(fill_id, 0)  # a trades-feed fill id
                self.venue_ids.setdefault(coid, tail)
        return len(known.orders)

    def _resume_fee_check(self, vid: str, k: KnownOrder | None, fee: Decimal | None) -> None:
        """After a restart, check the fee of the post answer's fill ``<vid>:0`` against the
        venue's per-trade fees (:meth:`_fee_checks_of`) when its taker trades can be known
        complete: its order is FOK/FAK (it never rests, so its filled quantity is the
        fill's, net of the busts booked).  A resting order's fill (later maker fills count
        in its filled quantity) keeps its fee as booked: a sweep's is logged
        (``unchecked_answers``)."""
        if k is None or fee is None:
            return
        order = k.order
        order_type = OrderType.FOK if order.basket_id else CLOB_ORDER_TYPE[order.time_in_force]
        if order_type in (OrderType.FOK, OrderType.FAK) and k.filled_quantity > 0:
            self.fee_checks[vid] = FeeCheck(fee, (), k.filled_quantity, net_of_busts=True)
        else:
            self.unchecked_answers[vid] = None

    def _client_id_of_open(self, row: OpenRow, by_vid: Mapping[str, str],
                           by_meta: Mapping[str, str]) -> str | None:
        """The core client order id of one ``GET /data/orders`` row, or None."""
        if row.vid in by_vid:
            return by_vid[row.vid]
        if row.metadata in by_meta:
            return by_meta[row.metadata]
        if row.metadata not in _NO_METADATA:
            # Every order we sign carries keccak(client order id): another's metadata is
            # another client's order on the account (a person trading by hand), never ours.
            return None
        # No metadata in the row: an order of ours still pending with no hash recorded
        # whose token, side, price and size all agree is it, if exactly one does (never
        # guess between two).  Only a pending one: before, an order the ledger had
        # rejected or cancelled was matched, and the core then cancelled the person's
        # order as a late placement of it.
        known = set(by_vid.values())
        candidates = [o.client_order_id for o in self.known_orders.values()
                      if o.client_order_id in self.unidentified
                      and o.client_order_id not in known
                      and token_of(o.instrument_id) == row.token
                      and o.side.value.upper() == row.side and o.limit_price == row.price
                      and o.quantity == row.size]
        return candidates[0] if len(candidates) == 1 else None

    async def _read_open_orders(self) -> list[Any]:
        """``GET /data/orders`` (every page), asked again after a 5xx, a 429, a broken
        connection or an unreadable answer (a read: asking again is harmless), up to
        ``order_max_attempts`` times; then ``VenueError`` naming what failed (the core's
        start-up reconciliation stops on it rather than on a bare library error)."""
        attempts = self.settings.order_max_attempts
        for attempt in range(attempts):
            try:
                rows = await asyncio.to_thread(self.client.get_open_orders, OpenOrderParams())
                if not isinstance(rows, list):
                    raise TypeError(f"expected a list, got {type(rows).__name__}")
                return rows
            except PolyApiException as exc:
                code = exc.status_code
                if code is not None and code < 500 and code != 429:
                    raise VenueError(f"polymarket: GET /data/orders refused: {exc}") from exc
                why = str(exc)
            except (TypeError, KeyError, ValueError, AttributeError, IndexError) as exc:
                why = f"unreadable answer ({type(exc).__name__}: {exc})"
            if attempt + 1 < attempts:
                await asyncio.sleep(self.settings.order_lookup_interval_s * 2 ** attempt)
        raise VenueError(f"polymarket: could not list open orders (GET /data/orders failed "
                         f"{attempts} times, last: {why[:200]})")

    async def open_orders(self) -> list[Order]:
        """Open orders on the venue as core orders.

        Client ids come back from the venue order id (orders this process sent), or the
        signed ``metadata`` of an order this run placed before a restart (see
        :meth:`resume`); what neither explains is reported as ``pm:<venue order id>``.
        Resting orders found here are covered by the heartbeat again (after a restart
        nothing else would keep the dead-man's switch alive).
        """
        await self.ensure_api_creds()
        rows = await self._read_open_orders()
        by_meta = {client_order_metadata(c): c for c in (*self._orders, *self.known_orders)}
        by_vid = {v: c for c, v in self.venue_ids.items()}
        out, listed = [], set()
        for i, raw in enumerate(rows):
            row = OpenRow.parse(raw, f"GET /data/orders row {i}")
            if row.vid in listed:
                continue  # listed twice (pages overlapping): one order
            listed.add(row.vid)
            cid = self._client_id_of_open(row, by_vid, by_meta)
            if cid is None:
                cid = f"pm:{row.vid}"
            else:
                if self.venue_ids.get(cid) != row.vid or cid in self.unknown:  # a restart
                    self._report([OrderUpdate(cid, OrderStatus.OPEN, time.time_ns(), row.vid)])
                self.unknown.pop(cid, None)  # found: nothing left to look for
                self.unidentified.pop(cid, None)
                self.venue_ids[cid] = row.vid
                by_vid[row.vid] = cid
                self.watched[cid] = row.vid
            if row.size <= 0:
                continue
            out.append(Order(cid, C.VENUE, f"{C.VENUE}:{row.token}",
                             Side.BUY if row.side == "BUY" else Side.SELL,
                             row.size, row.price, CoreOrderType.LIMIT,
                             TimeInForce.GTD if row.order_type == "GTD" else TimeInForce.GTC,
                             status=(OrderStatus.PARTIALLY_FILLED if row.matched > 0
                                     else OrderStatus.OPEN)))
        ours = {o.client_order_id for o in out if not o.client_order_id.startswith("pm:")}
        if ours or self.heartbeat is not None:
            hb = self._heartbeat()
            hb.resting = ours
            hb.ensure_running()
        return out
