"""Sending one order (or one batch) exactly once: :class:`OrderSender`.

Each order is signed (:mod:`.signing`) and its hash announced to the core before it is
posted with ``ClobClient.post_order`` / ``post_orders`` (L2 HMAC headers).  Time in
force: GTC, GTD (``expiration`` = now + ``gtd_lifetime_s``), IOC -> FAK, FOK -> FOK.

Exactly once
------------
Polymarket's docs promise no de-duplication of order posts, so an order is
never sent again unless the venue provably never saw it.  Every post ends in
one of three ways (:class:`.clob.PostOutcome`):

* **answered** (a well-formed ``200`` body, or a ``4xx`` refusal): that is the
  outcome;
* **ambiguous, ended**: a lost or malformed answer, a reset connection, ``502``
  / ``503``, ``429`` — the HTTP exchange is over, but the venue may have acted;
* **ambiguous, still running**: the client's timeout or a ``504`` — the venue
  may still act on the request after we stopped waiting.

After an ambiguous outcome the venue is asked for the order (:mod:`.lookup`) for up to
``order_settle_s`` (every ``order_lookup_interval_s``): ``GET
/data/order/<hash>``, then ``GET /data/orders`` for the token (by id or the
signed ``metadata``), then ``GET /data/trades`` for the token since the post
(an order that executed and left the book).  Found: the venue's record and
trades become the answer (fills under the trades' ids, the order watched until
it ends).  Not found after an *ended* exchange: the venue never took it, so the
**same signed order** (same salt, same hash) is sent again, at most
``order_max_attempts`` sends in all (``429``: after ``Retry-After``; one longer than
``clob.WAIT_CAP_S`` is not slept: the order is refused at once, not placed, and the
endpoint is held unsent until the wait is over).  A re-send the venue refuses as a
duplicate (``INVALID_ORDER_DUPLICATED``: it holds that order, listed late) is no
rejection: the order is looked up again and, not found, is ``OrderUnknown``.  Not found
while the request may still be running, or the venue could not be asked at
all: :class:`argus_core.errors.OrderUnknown` — never a blind re-send;
``executions()`` keeps looking for the order by its hash and reports what
became of it (or CANCELLED, never placed, after ``order_give_up_s``).  The
library's own ``retry_on_error`` (a blind re-post after a 5xx) stays off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs
from py_clob_client_v2.client import ClobClient
from py_clob_client_v2.clob_types import OrderType, PostOrdersV2Args

from argus_core import (
    Fill,
    Instrument,
    Liquidity,
    Order,
    OrderStatus,
    OrderUnknown,
    OrderUpdate,
    Side,
    VenueError,
)
from argus_venue_polymarket import constants as C
from argus_venue_polymarket.clob import WAIT_CAP_S, PostOutcome, post_outcome
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.instruments import fee_of
from argus_venue_polymarket.lookup import SKEW_S, FoundOrder, Unreachable, find_order
from argus_venue_polymarket.signing import SignedPost, exchange_address, order_terms, sign_order
from argus_venue_polymarket.tracking import LATE_PLACEMENT_WATCH_S, OrderTracker, UnknownOrder

log = logging.getLogger(__name__)

#: How the CLOB words a FOK/FAK order it killed (its ``errorMsg``): "order couldn't be fully
#: filled. FOK orders are fully filled or killed." / "no orders found to match with FAK
#: order. FAK orders are partially filled or killed if no match is found." (docs: "Error
#: codes"; FOK_ORDER_NOT_FILLED_ERROR).  Any other refusal is a rejection.
_KILL_WORDS = ("killed", "fok_order_not_filled", "no orders found to match")
#: How the CLOB words a post of an order it holds already (``INVALID_ORDER_DUPLICATED``).
_DUPLICATE_WORDS = ("duplicated", "invalid_order_duplicated")
#: How long a post waits for the core to record its hash (see ``_announce``).
_ANNOUNCE_S = 5.0


def _possible_fill(order: Order, resp: dict[str, Any]) -> bool:
    """Whether a matched answer's amounts make a fill the order could have: some shares,
    no more than ordered, at a price in (0, 1] no worse than its limit (a hundredth of a
    cent of rounding allowed).  Amounts of 100 cash for 1 share made a fill at 100."""
    making = Decimal(str(resp.get("makingAmount") or "0"))
    taking = Decimal(str(resp.get("takingAmount") or "0"))
    shares, cash = (taking, making) if order.side is Side.BUY else (making, taking)
    if shares <= 0 or cash <= 0:
        return shares == cash == 0  # nothing matched yet (a delayed match): no fill
    price, limit, slack = cash / shares, order.limit_price, Decimal("0.0001")
    return shares <= order.quantity and price <= 1 and (
        limit is None or (price <= limit + slack if order.side is Side.BUY
                          else price >= limit - slack))


def _is_amount(value: Any) -> bool:
    """Whether an answer's amount reads as a finite, non-negative number (absent: 0)."""
    try:
        amount = Decimal(str(value or "0"))
    except ArithmeticError:
        return False
    return amount.is_finite() and amount >= 0


def killed_by_venue(order_type: str, resp: Mapping[str, Any]) -> bool:
    """True when a refused post (``success: false``) is the venue killing a FOK/FAK order
    that could not (fully) match — the order's defined outcome, not a rejection."""
    msg = str(resp.get("errorMsg") or "").lower()
    return order_type in (OrderType.FOK, OrderType.FAK) and any(w in msg for w in _KILL_WORDS)


def said_duplicate(resp: Any) -> bool:
    """True when a refused post (``success: false``) says the venue holds the order already:
    a re-send of the same signed order, which it refuses ``INVALID_ORDER_DUPLICATED`` ("order
    ... is invalid. Duplicated. Same order has already been placed"; docs "Error codes").
    That is proof the order was placed, never a rejection."""
    if not isinstance(resp, Mapping) or resp.get("success") is not False:
        return False
    return any(w in str(resp.get("errorMsg") or "").lower() for w in _DUPLICATE_WORDS)


@attrs.define
class SendResult:
    """What one exactly-once send decided, per client order id."""

    fills: dict[str, list[Fill]] = attrs.Factory(dict)
    unknown: dict[str, str] = attrs.Factory(dict)  # undecidable -> why
    unplaced: dict[str, str] = attrs.Factory(dict)  # provably never placed -> why


class OrderSender(OrderTracker):
    """Signs and sends orders exactly once (see the module docstring) and books what the
    venue answers: OPEN with the venue order id, the fills, CANCELLED / REJECTED."""

    def __init__(self, settings: PolymarketSettings,
                 instruments: Callable[[str], Instrument | None], *,
                 gtd_lifetime_s: int = 300, client: ClobClient | None = None) -> None:
        super().__init__(settings, instruments, client=client)
        self.gtd_lifetime_s = gtd_lifetime_s

    # --- building -------------------------------------------------------------------------

    def exchange_address(self, neg_risk: bool) -> str:
        """The V2 exchange that verifies our signatures (negRisk exchange for negRisk markets)."""
        return exchange_address(self.settings.chain_id, neg_risk)

    def build(self, order: Order) -> SignedPost:
        """Build, sign and verify ``order``: the signed order, its CLOB order type and its
        hash (the venue order id it will have)."""
        terms = order_terms(order, self._instrument(order.instrument_id))
        return sign_order(order, terms, self.client.builder, chain_id=self.settings.chain_id,
                          gtd_lifetime_s=self.gtd_lifetime_s)

    # --- answers ----------------------------------------------------------------------------

    def _post_reports(self, order: Order, order_type: str, resp: Mapping[str, Any],
                      fills: Sequence[Fill]) -> list[Fill | OrderUpdate]:
        """What one order's post answer tells the core: acknowledged (OPEN with the venue
        order id), the matches it reports, and — for a FOK/FAK order not fully matched —
        CANCELLED for the rest (a killed order: CANCELLED; any other refusal: REJECTED).
        An order that may still trade (resting, or "delayed") is watched instead."""
        coid, now = order.client_order_id, time.time_ns()
        vid = str(resp.get("orderID") or "") or None
        msg = str(resp.get("errorMsg") or "")
        if not resp.get("success", True):
            if killed_by_venue(order_type, resp):
                return [OrderUpdate(coid, OrderStatus.CANCELLED, now, vid,
                                    f"{order_type} order killed: {msg}")]
            return [OrderUpdate(coid, OrderStatus.REJECTED, now, vid, msg or "refused")]
        out: list[Fill | OrderUpdate] = []
        if vid:
            out.append(OrderUpdate(coid, OrderStatus.OPEN, now, vid))
        out.extend(fills)
        filled = sum((f.quantity for f in fills), Decimal(0))
        status = str(resp.get("status", "")).lower()
        if filled >= order.quantity:
            return out
        if vid and (order_type in (OrderType.GTC, OrderType.GTD) or status != "matched"):
            self.watched[coid] = vid  # rests (or the match is delayed): its end comes later
        else:
            out.append(OrderUpdate(coid, OrderStatus.CANCELLED, now, vid, msg or (
                f"{order_type} order matched {filled} of {order.quantity}; the venue killed "
                f"the rest")))
        return out

    # --- sending, exactly once --------------------------------------------------------------

    def _fills_from(self, order: Order, resp: dict[str, Any]) -> list[Fill]:
        """Fills the post response reports (``status == "matched"``, making/taking amounts)."""
        if not isinstance(resp, dict) or str(resp.get("status", "")).lower() != "matched":
            return []
        making = Decimal(str(resp.get("makingAmount") or "0"))
        taking = Decimal(str(resp.get("takingAmount") or "0"))
        shares, cash = (taking, making) if order.side is Side.BUY else (making, taking)
        if shares <= 0 or cash <= 0:
            return []
        inst = self._instrument(order.instrument_id)
        price = cash / shares
        fee = fee_of(inst).fee(shares, price) if inst else Decimal(0)
        vid = str(resp.get("orderID") or "")
        return [Fill(f"{vid or order.client_order_id}:0", order.client_order_id, C.VENUE,
                     order.instrument_id, order.side, price, shares, fee, Liquidity.TAKER,
                     time.time_ns())]

    @staticmethod
    def _well_formed(answer: Any, posts: Sequence[SignedPost], batch: bool
                     ) -> list[dict[str, Any]] | None:
        """The per-order answers of a post, or None when the body is not the venue's shape
        (then the outcome is ambiguous: the venue may have acted): each answer an object
        with ``success``; a refusal that does not say "matched"; a success names its
        ``orderID``, and a ``matched`` one carries amounts that are numbers making a fill
        the order could have (a fill is booked from them)."""
        items = answer if batch else [answer]
        if not isinstance(items, list) or len(items) != len(posts):
            return None
        if not all(isinstance(a, dict) and "success" in a for a in items):
            return None
        for a, post in zip(items, posts, strict=True):
            matched = str(a.get("status", "")).lower() == "matched"
            if a.get("success") is not True:
                # "true", 1, null...; or a refusal that says it matched (success false, status
                # matched, amounts: the venue traded, and a REJECTED would lose the fill)
                if a.get("success") is not False or matched:
                    return None
                continue
            if not isinstance(a.get("orderID"), str) or not a["orderID"]:
                return None
            if matched and not (all(_is_amount(a.get(k)) for k in ("makingAmount",
                                                                     "takingAmount"))
                                and _possible_fill(post.order, a)):
                return None
        return items

    def _accept(self, post: SignedPost, resp: dict[str, Any]) -> list[Fill]:
        """Book one order's answer: its venue id, the fills it reports and the updates
        ``executions()`` will send (OPEN, fills, CANCELLED / REJECTED); returns the fills."""
        order, coid = post.order, post.client_order_id
        vid = str(resp.get("orderID") or "")
        if vid:
            if vid.lower() != post.order_hash.lower():
                log.warning("polymarket: order %s answered id %s, not its hash %s", coid, vid,
                            post.order_hash)
            self.venue_ids[coid] = vid
        fills = self._fills_from(order, resp)
        trade_ids = tuple(str(t) for t in resp.get("tradeIDs") or ())
        if fills:
            # The post response already reported this order's immediate (taker) matches;
            # the trades feed must not report them again under the trades' ids.
            self.taker_reported.add(self.venue_ids.get(coid, ""))
            self.answer_trades[self.venue_ids.get(coid, "")] = trade_ids
        self._report(self._post_reports(order, post.order_type, resp, fills))
        if fills:
            vid = self.venue_ids.get(coid, "")
            if len(trade_ids) != 1:
                # Several trades (a sweep): booked with the fee of the average price, the
                # venue charges each trade's; corrected once every trade is read (at once
                # when they were read before this answer), before any bust of a part.
                self._report(self._open_fee_check(vid, fills[0], trade_ids))
            # a trade of it read FAILED before this answer: bust what it booked
            self._report(self.bust_failed_of(vid))
        if not resp.get("success", True):
            log.warning("polymarket: order %s not placed: %s", coid,
                        resp.get("errorMsg") or resp)
            return []
        if post.order_type in (OrderType.GTC, OrderType.GTD) and coid in self.watched:
            hb = self._heartbeat()
            hb.resting.add(coid)
            hb.ensure_running()
        return fills

    def _accept_answers(self, posts: Sequence[SignedPost], answer: Any, batch: bool,
                        result: SendResult) -> list[SignedPost]:
        """Book each order's answer into ``result``; returns the posts the venue refused as
        duplicates (it holds them already: :func:`said_duplicate`), which are not booked."""
        answers = self._well_formed(answer, posts, batch)
        if answers is None:  # a 4xx refusal of the whole batch
            answers = [answer] * len(posts)
        held = []
        for p, resp in zip(posts, answers, strict=True):
            if said_duplicate(resp):
                log.warning("polymarket: the venue says it holds %s (%s) already: %s; asking "
                            "it for the order", p.client_order_id, p.order_hash,
                            str(resp.get("errorMsg"))[:200])
                held.append(p)
            else:
                result.fills[p.client_order_id] = self._accept(p, resp)
        return held

    async def _post(self, posts: Sequence[SignedPost], batch: bool) -> PostOutcome:
        """One ``POST /order`` (or ``/orders``) of ``posts``, classified."""
        client = self.client
        if batch:
            args = [PostOrdersV2Args(order=p.signed, orderType=p.order_type) for p in posts]

            def call() -> Any:
                return client.post_orders(args)
        else:
            def call() -> Any:
                return client.post_order(posts[0].signed, posts[0].order_type)

        try:
            answer = await asyncio.to_thread(call)
        except Exception as exc:  # the client raises its own exception types
            return post_outcome(exc)
        if self._well_formed(answer, posts, batch) is None:
            return PostOutcome(problem=f"malformed answer {answer!r:.200}")
        return PostOutcome(answer=answer)

    async def _settle(self, posts: Sequence[SignedPost], outcome: PostOutcome, since_s: int
                      ) -> dict[str, FoundOrder | None] | None:
        """Ask the venue about ``posts`` after an ambiguous post, for up to
        ``order_settle_s`` (one clean answer is enough when the venue refused the request).
        Returns hash -> what it holds (None: nothing), or None if it could not be asked."""
        s = self.settings
        loop = asyncio.get_running_loop()
        start = loop.time()
        found: dict[str, FoundOrder | None] | None = None
        while True:
            try:
                found = {p.order_hash: await find_order(self.client, p, since_s) for p in posts}
            except Unreachable as exc:
                log.warning("polymarket: could not ask the venue about %s: %s",
                            ", ".join(p.client_order_id for p in posts), exc)
                found = None
            elapsed = loop.time() - start
            if found is not None and (all(found.values()) or outcome.refused):
                return found
            if elapsed >= s.order_settle_s:
                return found
            await asyncio.sleep(min(s.order_lookup_interval_s, s.order_settle_s - elapsed))

    async def _announce(self, posts: Sequence[SignedPost]) -> str | None:
        """Tell the core each order's hash before it is sent (a PENDING update with the
        venue order id), and wait until ``executions()``'s consumer has taken it: after a
        crash mid-post the ledger then holds the hash, and a restarted venue asks the
        exchange for exactly that order.  Returns why the posts must not go out (the
        consumer stopped, or did not take the hashes within ``_ANNOUNCE_S``: a post whose
        hash is not recorded could not be found again after a crash), None to send.  A
        venue used bare (no ``resume``, no consumer: nothing records anything) sends."""
        if self._consumer == "none":
            return None
        if self._consumer == "ended":
            return "not sent: the executions stream has stopped, so its hash cannot be recorded"
        now = time.time_ns()
        loop = asyncio.get_running_loop()
        updates, taken = [], []
        for p in posts:
            update = OrderUpdate(p.client_order_id, OrderStatus.PENDING, now, p.order_hash,
                                 "signed; being sent")
            updates.append(update)
            taken.append(self._durable.setdefault(id(update), loop.create_future()))
            self._report([update])
        try:
            async with asyncio.timeout(_ANNOUNCE_S):
                if all(await asyncio.gather(*taken)):
                    return None
            why = "the executions stream stopped before it recorded its hash"
        except TimeoutError:
            why = f"the core did not record its hash within {_ANNOUNCE_S:g}s"
        for update in updates:
            self._durable.pop(id(update), None)
            with contextlib.suppress(ValueError):
                self._reports.remove(update)  # not taken: the ledger need not hear of it
        log.error("polymarket: not sending %s: %s", ", ".join(p.client_order_id for p in posts),
                  why)
        return f"not sent: {why}"

    async def _send(self, posts: Sequence[SignedPost], batch: bool) -> SendResult:
        """Send ``posts`` (one order, or one batch) exactly once: see the module docstring.

        The hashes are known before sending: the core records them first
        (:meth:`_announce`), and trades of these orders map to their client ids at once
        (they wait in the trades feed while the post is undecided)."""
        s = self.settings
        refused = await self._announce(posts)
        if refused is not None:
            return SendResult(unplaced={p.client_order_id: refused for p in posts})
        for p in posts:
            self._orders[p.client_order_id] = p.order
            self.venue_ids[p.client_order_id] = p.order_hash
        hashes = {p.order_hash for p in posts}
        self._in_flight |= hashes
        self.posts_in_flight += 1
        since_s = int(time.time()) - SKEW_S
        result = SendResult()
        pending = list(posts)
        try:
            for attempt in range(1, s.order_max_attempts + 1):
                outcome = await self._post(pending, batch)
                if outcome.answer is not None:
                    pending = self._accept_answers(pending, outcome.answer, batch, result)
                    if not pending:
                        return result
                    # The venue holds these already (a re-send it refused as a duplicate):
                    # looked up, and never sent again (the venue may list them late).
                    outcome = PostOutcome(problem="the venue says it holds the order already "
                                                  "(refused as a duplicate)", ended=False)
                ids = ", ".join(p.client_order_id for p in pending)
                log.warning("polymarket: post %d of %s ambiguous: %s; asking the venue",
                            attempt, ids, outcome.problem)
                found = await self._settle(pending, outcome, since_s)
                if found is None:  # could not ask: never re-send blind
                    for p in pending:
                        result.unknown[p.client_order_id] = (
                            f"{outcome.problem}; the venue could not be asked whether it "
                            f"holds the order")
                    break
                for p in pending:
                    hit = found.get(p.order_hash)
                    if hit is not None:
                        result.fills[p.client_order_id] = self._adopt_found(p, hit)
                pending = [p for p in pending if found.get(p.order_hash) is None]
                if not pending:
                    return result
                if not outcome.ended:  # the venue may still act on it: no proof it never will
                    for p in pending:
                        result.unknown[p.client_order_id] = (
                            f"{outcome.problem}; not found at the venue within "
                            f"{s.order_settle_s:g}s, and the request may still be acted on")
                    break
                if outcome.retry_after_s > WAIT_CAP_S:  # not slept in line: see WAIT_CAP_S
                    for p in pending:
                        result.unplaced[p.client_order_id] = (
                            f"not placed: rate limited for another "
                            f"{outcome.retry_after_s:.0f}s ({outcome.problem})")
                    break
                if attempt == s.order_max_attempts:
                    for p in pending:
                        result.unplaced[p.client_order_id] = (
                            f"not placed after {attempt} sends: {outcome.problem}")
                    break
                # Provably never seen: the same signed order (same salt, same hash) again.
                log.warning("polymarket: %s not at the venue after '%s'; sending it again",
                            ids, outcome.problem)
                # Back off (429: as told, never sooner than our own back-off).
                await asyncio.sleep(max(outcome.retry_after_s,
                                        s.order_lookup_interval_s * 2 ** (attempt - 1)))
        finally:
            self.posts_in_flight -= 1
            self._in_flight -= hashes
        now = time.time()
        for p in posts:
            problem = result.unknown.get(p.client_order_id)
            if problem is not None:  # executions() keeps looking for it
                self.unknown[p.client_order_id] = UnknownOrder(p, since_s, problem,
                                                               now + s.order_give_up_s)
            elif p.client_order_id in result.unplaced:  # sent, never seen: unless it
                self.ghosts[p.order_hash] = (  # lands late (then cancelled: feed)
                    p.client_order_id, now + LATE_PLACEMENT_WATCH_S)
        self._wake.set()
        return result

    async def submit(self, order: Order) -> list[Fill]:
        """Sign and send one order exactly once; returns the fills known at once.

        The answer is also queued for ``executions()``: OPEN with the venue order id, the
        fills, and CANCELLED for a FOK/FAK order's unmatched rest; a killed order
        (CANCELLED) or a refused one (REJECTED with the venue's ``errorMsg``) returns no
        fills.  ``OrderUnknown`` when the venue could not say whether it holds the order;
        ``VenueError`` when it provably never took it after ``order_max_attempts`` sends.
        """
        post = self.build(order)
        resting = post.order_type in (OrderType.GTC, OrderType.GTD)
        if resting and self.heartbeat is not None and not await self.heartbeat.recovered():
            raise VenueError("polymarket: heartbeats are failing; refusing a resting order "
                             "(the venue would cancel it)")
        await self.ensure_api_creds()
        result = await self._send([post], batch=False)
        coid = order.client_order_id
        if coid in result.unknown:
            raise OrderUnknown(f"polymarket: order {coid} ({post.order_hash}): "
                               f"{result.unknown[coid]}", [coid])
        if coid in result.unplaced:
            raise VenueError(f"polymarket: order {coid} {result.unplaced[coid]}")
        return result.fills.get(coid, [])
