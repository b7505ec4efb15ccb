"""Cancelling one resting order: :class:`OrderCanceller`.

``DELETE /order`` is idempotent (cancelling an order already cancelled changes nothing;
the venue then answers it ``not_canceled``), so unlike an order post a cancel whose answer
is unusable is simply sent again.  Every ``DELETE`` ends in one of three ways
(:class:`CancelAnswer`):

* **confirmed**: the answer lists the order in ``canceled``;
* **refused**: a ``4xx`` other than ``429``, or ``not_canceled`` (it filled first, say):
  ``VenueError`` naming the order, at once;
* **unusable**: a ``5xx``, a ``429``, a reset, a timeout, a body that is not the
  venue's shape.  The venue is asked (``GET /data/order/<id>``) what became of the order:
  ``CANCELED`` (or ``CANCELED_MARKET_RESOLVED``) confirms the cancel; ``MATCHED``, or an
  order the venue no longer holds, or ``INVALID``, ends the cancel with a ``VenueError``
  saying so (a fill racing the cancel is reported as the fill, by ``executions()``, never
  as a cancel); still open (or the venue could not be asked) -> the same ``DELETE`` again
  after a back-off (``order_lookup_interval_s`` doubling; a ``429``'s ``Retry-After`` when
  longer), at most ``order_max_attempts`` sends, then ``VenueError``.  A ``Retry-After``
  longer than :data:`.clob.WAIT_CAP_S` is not waited for: ``VenueError`` at once (the
  endpoint is held unsent until it ends; the core's engine owes the cancel and asks again).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import attrs
from py_clob_client_v2.client import ClobClient
from py_clob_client_v2.clob_types import OrderPayload
from py_clob_client_v2.exceptions import PolyApiException

from argus_core import VenueError
from argus_venue_polymarket.clob import WAIT_CAP_S, ClobRateLimited, ClobStatusError
from argus_venue_polymarket.lookup import Unreachable, order_row
from argus_venue_polymarket.tracking import OrderTracker

log = logging.getLogger(__name__)

#: ``GET /data/order/<id>`` statuses that confirm a cancel.
CANCELLED_STATUSES = frozenset({"CANCELED", "CANCELED_MARKET_RESOLVED"})
#: What a look-up answers for an order the venue no longer holds (a 404, an empty body).
GONE = "GONE"
#: Statuses after which a cancel has nothing left to do and is not confirmed: the order
#: filled, was invalidated, or is gone (filled or cancelled: ``executions()`` says which).
_ENDED_UNCANCELLED = {"MATCHED": "it filled before the cancel reached it",
                      "INVALID": "the venue invalidated it",
                      GONE: "the venue no longer holds it (filled or cancelled; "
                            "executions() reports which)"}


@attrs.frozen
class CancelAnswer:
    """What one ``DELETE /order`` said: ``confirmed``; ``refused`` (why: the venue said no);
    or neither: unusable, ``problem`` says why, with the ``Retry-After`` of a ``429`` in
    ``retry_after_s`` (``sent`` False: the request was held unsent by an earlier one's)."""

    confirmed: bool = False
    refused: str = ""
    problem: str = ""
    retry_after_s: float = 0.0
    sent: bool = True


def cancel_answer(vid: str, resp: Any = None, exc: Exception | None = None) -> CancelAnswer:
    """Classify the answer ``resp`` (or the failure ``exc``) of cancelling order ``vid``."""
    if isinstance(exc, PolyApiException):
        code = exc.status_code
        if code is not None and 400 <= code < 500 and code != 429:
            return CancelAnswer(refused=f"HTTP {code} {exc.error_msg}")
        wait = exc.retry_after_s if isinstance(exc, ClobStatusError | ClobRateLimited) else 0.0
        return CancelAnswer(problem=f"no usable answer ({exc.error_msg})", retry_after_s=wait,
                            sent=not isinstance(exc, ClobRateLimited))
    if exc is not None:
        return CancelAnswer(problem=f"no usable answer ({type(exc).__name__}: {exc})")
    not_canceled = resp.get("not_canceled") if isinstance(resp, dict) else None
    if not_canceled:
        return CancelAnswer(refused=str(not_canceled))
    canceled = resp.get("canceled") if isinstance(resp, dict) else None
    if isinstance(canceled, list) and vid.lower() in {str(c).lower() for c in canceled}:
        return CancelAnswer(confirmed=True)
    return CancelAnswer(problem=f"an answer that does not list it cancelled "
                                f"({str(resp)[:80]!r})")


async def delete_order(client: ClobClient, vid: str) -> CancelAnswer:
    """One ``DELETE /order`` of ``vid``, classified (:func:`cancel_answer`)."""
    try:
        resp = await asyncio.to_thread(client.cancel_order, OrderPayload(orderID=vid))
    except Exception as exc:  # the client raises its own exception types
        return cancel_answer(vid, exc=exc)
    return cancel_answer(vid, resp)


class OrderCanceller(OrderTracker):
    """``cancel()``: one order cancelled, ``DELETE /order`` sent again after an unusable
    answer (see the module docstring)."""

    async def cancel(self, client_order_id: str) -> None:
        """Cancel one order by our client order id.

        Confirmed only when the venue says so: its answer lists the order as cancelled,
        or — after an answer that was lost, late, a 5xx, a 429 or unreadable — ``GET
        /data/order/<id>`` shows it cancelled.  Still open after an unusable answer: the
        ``DELETE`` is sent again (at most ``order_max_attempts`` sends).  A refusal
        (``not_canceled``: it already filled, say), an order that filled or left the venue
        meanwhile, one still open after every send, or a ``Retry-After`` over
        ``WAIT_CAP_S`` raises ``VenueError`` naming the order."""
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
        s = self.settings
        what = f"polymarket: cancel {client_order_id} ({vid})"
        for attempt in range(1, s.order_max_attempts + 1):
            answer = await delete_order(self.client, vid)
            if answer.refused:
                raise VenueError(f"{what} refused: {answer.refused}")
            if answer.confirmed:
                break
            if answer.retry_after_s > WAIT_CAP_S:  # not slept in line: see WAIT_CAP_S
                raise VenueError(f"{what} not confirmed: rate limited for another "
                                 f"{answer.retry_after_s:.0f}s ({answer.problem}); "
                                 f"{'not sent' if not answer.sent else 'not acted on'}")
            status = await self._status_of(vid)
            if status in CANCELLED_STATUSES:
                log.warning("%s: %s; the venue shows it %s", what, answer.problem, status)
                break
            if status in _ENDED_UNCANCELLED:
                raise VenueError(f"{what} not confirmed: {answer.problem}; "
                                 f"{_ENDED_UNCANCELLED[status]} (the venue shows it {status})")
            shown = status or "unknown (it could not be asked)"
            if attempt == s.order_max_attempts:
                raise VenueError(f"{what} not confirmed after {attempt} sends: "
                                 f"{answer.problem}; the venue shows the order {shown}")
            log.warning("%s: %s; the venue shows it %s: sending the cancel again", what,
                        answer.problem, shown)
            # Back off (429: as told, never sooner than our own back-off).
            await asyncio.sleep(max(answer.retry_after_s,
                                    s.order_lookup_interval_s * 2 ** (attempt - 1)))
        # Confirmed: CANCELLED goes out once the order's fills are all reported (the
        # watch compares them with the venue's size_matched), never before them.
        self.watched[client_order_id] = vid
        self._ending[client_order_id] = "cancelled at our request"
        self._wake.set()
        self._nudge.set()  # the poll task ends it (after its fills) at once
        if self.heartbeat is not None:
            self.heartbeat.resting.discard(client_order_id)

    async def _status_of(self, vid: str) -> str | None:
        """The venue's status of order ``vid`` (``GET /data/order/<id>``): :data:`GONE` when
        it holds no such order (a 404, an empty answer), None when it cannot be asked."""
        try:
            answer = await asyncio.to_thread(self.client.get_order, vid)
        except PolyApiException as exc:
            if exc.status_code == 404:
                return GONE
            log.warning("polymarket: GET order %s failed (HTTP %s, %s)", vid, exc.status_code,
                        type(exc).__name__)
            return None
        except Exception as exc:  # the client raises its own exception types
            log.warning("polymarket: GET order %s failed (%s)", vid, type(exc).__name__)
            return None
        try:
            row = order_row(answer, vid)
        except Unreachable as exc:
            log.warning("polymarket: %s", exc)
            return None
        if row is None:
            return GONE
        return str(row.get("status") or "").upper() or None
