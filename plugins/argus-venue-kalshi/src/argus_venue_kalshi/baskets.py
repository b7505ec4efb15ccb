"""Baskets: every leg in one ``POST /portfolio/orders/batched``, exactly once.

Each leg with a limit price is sent **FOK** (a leg fills whole or not at all), under its
own client order id, in one batch (at most 20 orders; each counts one write against the
rate limit).  Kalshi answers per leg: an ``order`` (placed: acknowledged, and its fills
read by ``order_id``) or an ``error`` (refused: REJECTED).  All legs filled: their fills.
Some filled and others killed or refused: ``BasketIncomplete`` with the filled legs'
fills (the core evens the legs out with ordinary orders; nothing is unwound here).

Exactly once: an ambiguous answer (lost, late, 5xx, reset, a 2xx that is not JSON or
not the documented shape) is resolved by looking every leg up by client order id before
anything is re-sent.  Legs found are acknowledged; if the exchange refused the batch
before acting (429: its rate limiter answers before the engine), only the legs not
found are sent again, in a new batch with the same ids (refused every time: those legs
are rejected); otherwise the legs not found raise ``OrderUnknown`` (never re-sent) and
``executions()`` looks for them (``order_give_up_s``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import attrs
import httpx

from argus_core import (
    BasketIncomplete,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUnknown,
    OrderUpdate,
    TimeInForce,
    VenueError,
)
from argus_venue_kalshi import constants as C
from argus_venue_kalshi.execution import (
    REFUSED_BEFORE_ACTING,
    UNREACHABLE,
    KalshiExecution,
    names_other,
    wire_client_id,
)
from argus_venue_kalshi.rest import KalshiHttpError, KalshiMalformedAnswer, backoff_s
from argus_venue_kalshi.schemas import count


class KalshiBasketExecution(KalshiExecution):
    """:class:`.execution.KalshiExecution` with basket entry through the batched endpoint."""

    async def submit_basket(self, legs: Sequence[Order]) -> list[Fill]:
        """Send every leg in one batch, exactly once (see the module docstring)."""
        if not legs:
            raise VenueError("kalshi: empty basket")
        basket_id = legs[0].basket_id or legs[0].client_order_id
        tokens = self.rest.cost("POST", "/portfolio/orders/batched", len(legs))
        if len(legs) > C.BATCH_MAX_ORDERS or tokens > self.rest.writes.limit:
            raise VenueError(f"kalshi: basket {basket_id} has {len(legs)} legs ({tokens} "
                             f"tokens); a batch takes at most {C.BATCH_MAX_ORDERS} orders "
                             f"and {self.rest.writes.limit} write tokens per second at "
                             f"this tier")
        bodies = {leg.client_order_id: self.body(_fok(leg)) for leg in legs}
        for coid in bodies:
            self.learn(coid)
        placed, refused = await self._send_batch(basket_id, bodies)
        now = time.time_ns()
        for coid, why in refused.items():
            self._queue.put_nowait(OrderUpdate(coid, OrderStatus.REJECTED, now, reason=why))
        if len(refused) == len(legs):
            raise VenueError(f"kalshi: basket {basket_id} refused: " + "; ".join(
                f"leg {c}: {why}" for c, why in refused.items()))
        fills: list[Fill] = []
        short = []
        for leg in legs:
            coid = leg.client_order_id
            order = placed.get(coid)
            done = count(order, "fill_count", default=Decimal(0)) if order else Decimal(0)
            if done and order is not None:
                fills.extend(await self._fills_of(order))
            if done < leg.quantity:
                short.append(f"leg {coid} filled {done}/{leg.quantity}"
                             + (f" ({refused[coid]})" if coid in refused else ""))
        if not short or not fills:
            return fills
        raise BasketIncomplete(f"kalshi: basket {basket_id} incomplete: " + "; ".join(short),
                               fills)

    async def _send_batch(self, basket_id: str, bodies: dict[str, dict[str, Any]]
                          ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        """(core client id -> Kalshi order placed, core client id -> refusal) of every leg;
        ``OrderUnknown`` for legs whose fate cannot be told."""
        placed: dict[str, dict[str, Any]] = {}
        refused: dict[str, str] = {}
        pending = list(bodies)
        last = ""
        for attempt in range(self.settings.max_retries + 1):
            try:
                answer = await self.rest.send(
                    "POST", "/portfolio/orders/batched", signed=True, items=len(pending),
                    body={"orders": [bodies[c] for c in pending]})
                if not isinstance(answer.get("orders") or answer.get("responses"), list):
                    raise KalshiMalformedAnswer("kalshi: POST /portfolio/orders/batched: "
                                                "answer without a list of orders")
                legs = _leg_answers(answer, pending, bodies)
            except KalshiHttpError as exc:
                if not (exc.status == 409 or exc.status in REFUSED_BEFORE_ACTING
                        or exc.status >= 500):
                    for coid in pending:  # a 4xx for the whole batch: nothing placed
                        refused[coid] = str(exc)
                    return placed, refused
                pending = await self._adopt_found(pending, placed)
                if not pending:
                    return placed, refused
                if exc.status in REFUSED_BEFORE_ACTING:
                    last = str(exc)
                    await asyncio.sleep(backoff_s(exc, attempt + 1))
                    continue  # provably not placed: only the legs not found go again
                self._await(pending)
                raise OrderUnknown(f"kalshi: basket {basket_id}: HTTP {exc.status}; legs "
                                   f"{', '.join(pending)} not found", pending) from exc
            except (KalshiMalformedAnswer, httpx.TransportError) as exc:
                pending = await self._adopt_found(pending, placed)
                if not pending:
                    return placed, refused
                self._await(pending)
                raise OrderUnknown(f"kalshi: basket {basket_id}: {type(exc).__name__}; legs "
                                   f"{', '.join(pending)} not found", pending) from exc
            self._read_answer(legs, pending, placed, refused)
            return placed, refused
        for coid in pending:  # refused before acting every time, and never found
            refused[coid] = (f"not placed: refused before acting "
                             f"{self.settings.max_retries + 1} times ({last})")
        return placed, refused

    def _await(self, pending: list[str]) -> None:
        """Legs whose fate is unknown: ``executions()`` looks for them."""
        give_up = time.time() + self.settings.order_give_up_s
        for coid in pending:
            self.awaiting[coid] = give_up

    def _read_answer(self, legs: dict[str, dict[str, Any]], pending: list[str],
                     placed: dict[str, dict[str, Any]], refused: dict[str, str]) -> None:
        """Per-leg outcomes of the answer's items (``legs``: :func:`_leg_answers`)."""
        for coid, item in legs.items():
            order = item.get("order")
            if order:
                placed[coid] = order
                self._acknowledge(coid, order)
            else:
                err = item.get("error")
                err = err if isinstance(err, dict) else {"message": str(err or "")}
                refused[coid] = f"{err.get('code', '')}: {err.get('message', '')}".strip(": ")
        for coid in pending:
            if coid not in placed and coid not in refused:
                refused[coid] = "no answer for this leg in the batch response"

    async def _adopt_found(self, pending: list[str], placed: dict[str, dict[str, Any]]
                           ) -> list[str]:
        """Look every pending leg up by client order id; acknowledge those found and
        return the rest (``OrderUnknown`` when Kalshi cannot be asked)."""
        for attempt in range(self.settings.max_retries + 1):
            try:
                # each leg's market since its creation, read whole (not the history)
                orders = await self._listed(pending)
                break
            except UNREACHABLE:
                await asyncio.sleep(0.05 * 2 ** attempt)
        else:
            self._await(pending)
            raise OrderUnknown(f"kalshi: cannot ask for basket legs {', '.join(pending)}",
                               pending)
        by_wire = {o.get("client_order_id"): o for o in orders
                   if isinstance(o, dict) and isinstance(o.get("order_id"), str)
                   and o["order_id"]}
        left = []
        for coid in pending:
            found = by_wire.get(wire_client_id(coid))
            if found is None:
                left.append(coid)
            else:
                placed[coid] = found
                self._acknowledge(coid, found)
        return left

    async def _fills_of(self, order: dict[str, Any]) -> list[Fill]:
        """The fills of one placed leg (``GET /portfolio/fills?order_id=``, every page),
        marked booked so ``executions()`` does not report them again."""
        raws = await self.rest.pages("/portfolio/fills", "fills",
                                     {"order_id": order["order_id"]}, signed=True)
        out = []
        for raw in reversed(raws):
            fill = self._fill(raw, again=True)
            if fill is not None:
                self._booked.add(fill.fill_id)
                # the socket may have booked it first, with the formula's fee: that one
                # stands in the ledger until the poll corrects it
                self.booked_fees.setdefault(fill.fill_id, fill.fee)
                out.append(fill)
        return out


def _fok(leg: Order) -> Order:
    """A leg with a limit price as a FOK limit order (a market leg stays an IOC)."""
    if leg.limit_price is None:
        return leg
    return attrs.evolve(leg, order_type=OrderType.LIMIT, time_in_force=TimeInForce.FOK)


def _leg_answers(answer: dict[str, Any], pending: list[str],
                 bodies: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Core client id -> its leg's item in a batch answer, matched by client order id
    (by position only for an item naming none).  ``KalshiMalformedAnswer`` when an item
    names an order that is not one of the legs sent (another client id or market), two
    ids that disagree, or a leg twice: such an answer is another request's, and adopting
    it would map another order's fills to a leg, so every leg is looked up instead."""
    items = answer.get("orders") or answer.get("responses") or []
    by_wire = {wire_client_id(c): c for c in pending}
    out: dict[str, dict[str, Any]] = {}
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        order = item.get("order") or {}
        if not isinstance(order, dict):
            raise KalshiMalformedAnswer(f"kalshi: POST /portfolio/orders/batched: item "
                                        f"{position}'s order is not an object")
        named = {str(w) if isinstance(w, str) else repr(w)[:40]
                 for w in (item.get("client_order_id"), order.get("client_order_id"))
                 if w is not None}
        if order and not (isinstance(order.get("order_id"), str) and order["order_id"]):
            raise KalshiMalformedAnswer(f"kalshi: POST /portfolio/orders/batched: item "
                                        f"{position}'s order has no order id")
        if len(named) > 1 or not named <= by_wire.keys():
            raise KalshiMalformedAnswer(f"kalshi: POST /portfolio/orders/batched: item "
                                        f"{position} names client order id(s) "
                                        f"{sorted(map(str, named))!r:.120}, not a leg sent")
        coid = by_wire[next(iter(named))] if named else (
            pending[position] if position < len(pending) else None)
        if coid is None:
            continue
        other = names_other(order, wire_client_id(coid), bodies[coid]["ticker"])
        if other or coid in out:
            raise KalshiMalformedAnswer(f"kalshi: POST /portfolio/orders/batched: item "
                                        f"{position} for leg {coid}: "
                                        f"{other or 'the leg answered twice'}")
        out[coid] = item
    return out
