"""Orders: core ``Order`` -> a locally built and signed CLOB V2 order via py-clob-client-v2.

:class:`PolymarketExecution` is live order entry for one account; its parts live in
their own modules:

* :mod:`.signing` — building and EIP-712 signing (py-clob-client-v2), tick / lot checks,
  the signature verified against the intent, the order hash (venue order id);
* :mod:`.clob` — the CLOB client over httpx and what a failed post means;
* :mod:`.sending` — sending one order (or a batch) exactly once;
* :mod:`.baskets` — FOK basket submission and ``BasketIncomplete``;
* :mod:`.tracking` — the order state, the report queue, trades -> fills;
* :mod:`.lookup` — asking the venue whether it holds an order we sent;
* :mod:`.feed` — ``executions()``: the trades poll, ended and ambiguous orders;
* :mod:`.user_channel` / :mod:`.user_events` — the websocket user channel: fills and order
  events as they happen;
* :mod:`.reconcile` — ``resume`` and ``open_orders`` after a restart;
* :mod:`.heartbeat` — the dead-man's switch for resting orders.

Where an order goes
-------------------
``PolymarketVenue.submit(order)`` -> :meth:`PolymarketExecution.submit`:

1. :meth:`PolymarketExecution.build` turns the core order into
   ``OrderArgsV2`` and signs it *locally* with py-clob-client-v2's
   ``OrderBuilder`` (EIP-712, exchange V2 domain, the negRisk exchange for
   negRisk markets).  Tick size and negRisk come from discovery, so building
   needs no network.  Before anything leaves the process,
   :func:`.signing.verify_signed_order` re-derives what was signed (token, side,
   amounts = price x size, signer recovered from the signature) and refuses
   an order whose signature does not say what we meant.  It also computes the
   order's EIP-712 hash: the venue order id the CLOB will give it, known
   *before* sending.
2. ``ClobClient.post_order`` / ``post_orders`` (L2 HMAC headers) sends it,
   exactly once (:mod:`.sending`).  Time in force: GTC, GTD (``expiration`` = now +
   ``gtd_lifetime_s``), IOC -> FAK, FOK -> FOK.
3. Resting orders keep the venue's dead-man's switch alive
   (:class:`.heartbeat.HeartbeatKeeper`, ``POST /v1/heartbeats``); if heartbeats fail,
   new resting orders are refused (fail closed) and the venue cancels what
   rests.

Exactly once: see :mod:`.sending`; baskets: see :mod:`.baskets`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from py_clob_client_v2.clob_types import OrderPayload
from py_clob_client_v2.exceptions import PolyApiException

from argus_core import VenueError
from argus_venue_polymarket.baskets import BasketSubmission
from argus_venue_polymarket.clob import ClobHttpClient
from argus_venue_polymarket.reconcile import Reconciliation

# Re-exported: tests/test_kill9_live.py reads it from this module.
from argus_venue_polymarket.signing import client_order_metadata
from argus_venue_polymarket.user_events import UserChannelFeed

__all__ = ["PolymarketExecution", "client_order_metadata"]

log = logging.getLogger(__name__)


class PolymarketExecution(BasketSubmission, Reconciliation, UserChannelFeed):
    """Live order entry for one account through py-clob-client-v2: ``submit`` /
    ``submit_basket`` (:mod:`.sending`, :mod:`.baskets`), ``executions()``
    (:mod:`.feed`, :mod:`.user_events`), ``resume`` / ``open_orders`` (:mod:`.reconcile`),
    ``cancel`` and ``close`` (here)."""

    async def cancel(self, client_order_id: str) -> None:
        """Cancel one order by our client order id.

        Confirmed only when the venue says so: its answer lists the order as cancelled,
        or — after an answer that was lost, late, a 5xx, a 429 or unreadable — ``GET
        /data/order/<id>`` shows it cancelled.  A refusal (``not_canceled``: it already
        filled, say) or an order still open raises ``VenueError`` naming the order."""
        vid = self.venue_ids.get(client_order_id)
        if vid is None:
            raise VenueError(f"polymarket: no venue order id known for {client_order_id}")
        await self.ensure_api_creds()
        self.cancelling.add(client_order_id)  # the user channel's CANCELLATION: ours
        try:
            await self._cancel(client_order_id, vid)
        finally:
            self.cancelling.discard(client_order_id)

    async def _cancel(self, client_order_id: str, vid: str) -> None:
        """:meth:`cancel` of order ``vid``, once its id is known."""
        why = ""
        try:
            resp = await asyncio.to_thread(self.client.cancel_order, OrderPayload(orderID=vid))
        except PolyApiException as exc:
            code = exc.status_code
            if code is not None and 400 <= code < 500 and code != 429:
                raise VenueError(f"polymarket: cancel {client_order_id} ({vid}) refused: "
                                 f"HTTP {code} {exc.error_msg}") from None
            resp, why = None, f"no usable answer ({exc.error_msg})"
        not_canceled = resp.get("not_canceled") if isinstance(resp, dict) else None
        canceled = resp.get("canceled") if isinstance(resp, dict) else None
        if not_canceled:
            raise VenueError(f"polymarket: cancel {client_order_id} ({vid}) refused: "
                             f"{not_canceled}")
        confirmed = isinstance(canceled, list) and vid.lower() in {
            str(c).lower() for c in canceled}
        if not confirmed:
            why = why or f"an answer that does not list it cancelled ({str(resp)[:80]!r})"
            status = await self._status_of(vid)
            if status not in ("CANCELED", "CANCELED_MARKET_RESOLVED"):
                raise VenueError(f"polymarket: cancel {client_order_id} ({vid}) not "
                                 f"confirmed: {why}; the venue shows the order "
                                 f"{status or 'unknown (it could not be asked)'}")
            log.warning("polymarket: cancel %s: %s; the venue shows it %s", client_order_id,
                        why, status)
        # Confirmed: CANCELLED goes out once the order's fills are all reported (the
        # watch compares them with the venue's size_matched), never before them.
        self.watched[client_order_id] = vid
        self._ending[client_order_id] = "cancelled at our request"
        self._wake.set()
        self._nudge.set()  # the poll task ends it (after its fills) at once
        if self.heartbeat is not None:
            self.heartbeat.resting.discard(client_order_id)

    async def _status_of(self, vid: str) -> str | None:
        """The venue's status of order ``vid`` (``GET /data/order/<id>``), None when it
        cannot be read."""
        try:
            row = await asyncio.to_thread(self.client.get_order, vid)
        except Exception as exc:  # the client raises its own exception types
            log.warning("polymarket: GET order %s failed (%s)", vid, type(exc).__name__)
            return None
        row = row.get("order", row) if isinstance(row, dict) else None
        if not isinstance(row, dict):
            return None
        return str(row.get("status") or "").upper() or None

    async def close(self) -> None:
        """Stop the heartbeat and the user channel, and close the HTTP connections."""
        channel, self._channel_task = self._channel_task, None
        if channel is not None and not channel.done():
            channel.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await channel
        if self.heartbeat is not None:
            await self.heartbeat.stop()
        if isinstance(self._client, ClobHttpClient):
            self._client.http.close()

