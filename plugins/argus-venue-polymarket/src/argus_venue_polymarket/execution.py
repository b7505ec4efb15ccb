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
* :mod:`.cancelling` — ``cancel()``: an unusable answer's ``DELETE`` sent again;
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

from argus_venue_polymarket.baskets import BasketSubmission
from argus_venue_polymarket.cancelling import OrderCanceller
from argus_venue_polymarket.clob import ClobHttpClient
from argus_venue_polymarket.reconcile import Reconciliation

# Re-exported: tests/test_kill9_live.py reads it from this module.
from argus_venue_polymarket.signing import client_order_metadata
from argus_venue_polymarket.user_events import UserChannelFeed

__all__ = ["PolymarketExecution", "client_order_metadata"]


class PolymarketExecution(BasketSubmission, Reconciliation, UserChannelFeed, OrderCanceller):
    """Live order entry for one account through py-clob-client-v2: ``submit`` /
    ``submit_basket`` (:mod:`.sending`, :mod:`.baskets`), ``executions()``
    (:mod:`.feed`, :mod:`.user_events`), ``resume`` / ``open_orders`` (:mod:`.reconcile`),
    ``cancel`` (:mod:`.cancelling`) and ``close`` (here)."""

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

