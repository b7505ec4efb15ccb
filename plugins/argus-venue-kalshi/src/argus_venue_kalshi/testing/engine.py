"""The local exchange's state: markets, bid-only books, orders, fills, a matching engine.

Prices are integer cents as Kalshi's legacy fields; every answer carries the
``_dollars`` / ``_fp`` strings too.  Outside liquidity is the book (bids on YES and on
NO); an order crossing it fills against it (taker, fee by Kalshi's formula); a GTC
remainder rests (not shown in the public book).  Every change to the book is
published to listeners as (ticker, side, price_cents, delta).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from argus_venue_kalshi import constants as C
from argus_venue_kalshi.fees import kalshi_fee
from argus_venue_kalshi.schemas import on_grid

FillListener = Callable[[dict[str, Any]], None]
LifecycleListener = Callable[[dict[str, Any]], None]


def _iso(ts_ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ns / 1e9)) + \
        f".{ts_ns % 1_000_000_000 // 1000:06d}Z"


#: A price in cents: an int for whole cents (as the legacy fields), else an exact Decimal.
Cents = int | Decimal


BookListener = Callable[[str, str, Cents, int], None]


def _cents(value: Decimal) -> Cents:
    return int(value) if value == value.to_integral() else value.normalize()


def _dollars(cents: Cents) -> str:
    return f"{Decimal(cents) / 100:.4f}"


def _effect(side: str, action: str) -> int:
    """+1 where a contract of ``side`` traded with ``action`` adds to a YES position (a
    YES bought, a NO sold), -1 where it adds to a NO position."""
    return 1 if (side == "yes") == (action == "buy") else -1


def _legacy(cents: Cents) -> int | None:
    """The legacy integer-cent field: None (null) for a sub-cent price it cannot hold."""
    return cents if isinstance(cents, int) else None


class Rejected(Exception):
    """A refusal the exchange answers with ``status`` and Kalshi's error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class LocalEngine:
    """Markets, books and orders of the local exchange."""

    def now_ns(self) -> int:
        """The exchange's clock (this machine's plus :attr:`clock_offset_s`)."""
        return time.time_ns() + int(self.clock_offset_s * 1e9)

    def __init__(self, taker_fee_rate: Decimal = Decimal("0.07")) -> None:
        self.markets: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        #: ticker -> {"yes": {cents: count}, "no": {cents: count}} (bids only).
        self.books: dict[str, dict[str, dict[Cents, int]]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.fills: list[dict[str, Any]] = []
        #: ``GET /portfolio/settlements`` objects, oldest first.
        self.settlements: list[dict[str, Any]] = []
        self.taker_fee_rate = taker_fee_rate
        #: How far the exchange's clock is ahead of this machine's (seconds; negative:
        #: behind): every time it stamps, and the REST ``Date`` header, follow it.
        self.clock_offset_s = 0.0
        self.listeners: list[BookListener] = []
        #: Called with every new fill (a ``GET /portfolio/fills`` object).
        self.fill_listeners: list[FillListener] = []
        #: Called with every ``market_lifecycle_v2`` message (``determined``, ``settled``).
        self.lifecycle_listeners: list[LifecycleListener] = []
        #: Contracts held from trades outside the local fills (signed: YES positive, NO
        #: negative), what a test sets to make the venue hold what the ledger does not.
        self.outside: dict[str, int] = {}
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)

    # -- set-up ----------------------------------------------------------------------
    def add_market(self, market: dict[str, Any], event: dict[str, Any] | None = None) -> None:
        """Serve ``market`` (a ``GET /markets`` object), optionally inside ``event``."""
        self.markets[market["ticker"]] = market
        self.books.setdefault(market["ticker"], {"yes": {}, "no": {}})
        if event is not None:
            self.events.setdefault(event["event_ticker"], event)

    def announce_market(self, ticker: str, event_type: str = "created") -> None:
        """Publish ``ticker``'s ``market_lifecycle_v2`` ``created`` (or ``activated``)
        event, as Kalshi does for a market it lists: ``market_ticker``, ``event_type``,
        ``open_ts`` / ``close_ts`` (unix seconds) and, for ``created``,
        ``additional_metadata`` (its title, sub-title, event ticker)."""
        market = self.markets[ticker]
        now = self.now_ns() // 10**9
        msg: dict[str, Any] = {"market_ticker": ticker, "event_type": event_type,
                               "open_ts": now, "close_ts": now + 86_400}
        if event_type == "created":
            msg["additional_metadata"] = {
                "name": market.get("title", ""), "title": market.get("title", ""),
                "yes_sub_title": market.get("yes_sub_title", ""),
                "event_ticker": market.get("event_ticker", "")}
        for listener in list(self.lifecycle_listeners):
            listener(msg)

    def set_level(self, ticker: str, side: str, cents: Cents, count: int) -> None:
        """Set one bid level of the outside book (0 removes it), publishing the delta."""
        ladder = self.books[ticker][side]
        delta = count - ladder.get(cents, 0)
        if count:
            ladder[cents] = count
        else:
            ladder.pop(cents, None)
        if delta:
            for listener in list(self.listeners):
                listener(ticker, side, cents, delta)

    def settle(self, ticker: str, result: str, *, value: Decimal | None = None,
               publish: bool = True, result_in_settled: bool = True) -> None:
        """Resolve ``ticker``: "yes" / "no"; "scalar" with ``value`` (what one YES pays, in
        dollars); "void" (every position returned at its cost); anything else is served
        as given, for malformed-payload tests.  The market becomes ``finalized`` with
        ``result`` (and ``settlement_value_dollars``) and ``settlement_ts``, the
        account's settlement of it is recorded, and (``publish``) the lifecycle channel
        sends ``determined`` then ``settled`` (carrying ``result`` only when
        ``result_in_settled``).  Called again, it amends the result."""
        held = {"yes": Decimal(0), "no": Decimal(0)}
        bought = {"yes": [Decimal(0), Decimal(0)], "no": [Decimal(0), Decimal(0)]}
        for fill in self.fills:
            if fill["ticker"] == ticker:
                qty = Decimal(fill["count"])
                held[fill["side"]] += qty if fill["action"] == "buy" else -qty
                if fill["action"] == "buy":
                    price = Decimal(fill[f"{fill['side']}_price_dollars"])
                    bought[fill["side"]][0] += qty
                    bought[fill["side"]][1] += qty * price
        # cost basis of what is held: the average buying price
        cost = {k: (bought[k][1] / bought[k][0] * held[k] if bought[k][0] else Decimal(0))
                for k in held}
        yes_pays = {"yes": Decimal(1), "no": Decimal(0)}.get(result, value)
        if result == "void":
            revenue = cost["yes"] + cost["no"]
        elif yes_pays is not None:
            revenue = held["yes"] * yes_pays + held["no"] * (1 - yes_pays)
        else:
            revenue = Decimal(0)
        now = self.now_ns()
        self.markets[ticker].update(status="finalized", result=result,
                                    settlement_ts=_iso(now))
        if result == "scalar" and value is not None:
            self.markets[ticker].update(settlement_value_dollars=f"{value:.4f}",
                                        expiration_value=f"{value * 100:.2f}")
        self.settlements.append({
            "ticker": ticker, "event_ticker": self.markets[ticker].get("event_ticker", ""),
            "market_result": result, "yes_count": int(held["yes"]),
            "yes_count_fp": f"{held['yes']:.2f}", "no_count": int(held["no"]),
            "no_count_fp": f"{held['no']:.2f}",
            "yes_total_cost_dollars": f"{cost['yes']:.4f}",
            "no_total_cost_dollars": f"{cost['no']:.4f}",
            "revenue": int((revenue * 100).to_integral_value()),
            "value": None if yes_pays is None else int(yes_pays * 100),
            "fee_cost": "0.0000", "settled_time": _iso(now)})
        if not publish:
            return
        settled: dict[str, Any] = {"market_ticker": ticker, "event_type": "settled",
                                   "settled_ts": now // 10**9}
        if result_in_settled:
            settled["result"] = result
        for msg in ({"market_ticker": ticker, "event_type": "determined", "result": result,
                     "determination_ts": now // 10**9}, settled):
            for listener in list(self.lifecycle_listeners):
                listener(msg)

    # -- views -----------------------------------------------------------------------
    def position(self, ticker: str) -> int:
        """The account's netted position in ``ticker``, as ``GET /portfolio/positions``
        states it: contracts, positive YES, negative NO (Kalshi nets the two: selling
        YES is buying NO); 0 once the market has settled."""
        if self.markets.get(ticker, {}).get("status") == "finalized":
            return 0
        return self.outside.get(ticker, 0) + sum(
            _effect(f["side"], f["action"]) * int(f["count"]) for f in self.fills
            if f["ticker"] == ticker)

    def positions(self) -> list[dict[str, Any]]:
        """``market_positions`` of ``GET /portfolio/positions`` (documented fields; the
        money fields in cents and their ``_dollars`` strings left at 0)."""
        out = []
        for ticker in self.markets:
            held = self.position(ticker)
            if held:
                out.append({"ticker": ticker, "position": held, "position_fp": f"{held}.00",
                            "market_exposure": 0, "market_exposure_dollars": "0.0000",
                            "realized_pnl": 0, "realized_pnl_dollars": "0.0000",
                            "fees_paid": 0, "fees_paid_dollars": "0.0000",
                            "total_traded": 0, "total_traded_dollars": "0.0000",
                            "resting_orders_count": 0,
                            "last_updated_ts": _iso(self.now_ns())})
        return out

    def orderbook_fp(self, ticker: str) -> dict[str, Any]:
        """``GET /markets/{ticker}/orderbook`` body: bids ascending, best last."""
        book = self.books[ticker]
        return {"orderbook_fp": {
            f"{side}_dollars": [[_dollars(p), f"{q}.00"] for p, q in sorted(book[side].items())]
            for side in ("yes", "no")}}

    def by_client_id(self, client_order_id: str) -> list[dict[str, Any]]:
        """Every order (open or closed) carrying ``client_order_id``."""
        return [o for o in self.orders.values() if o["client_order_id"] == client_order_id]

    # -- orders ----------------------------------------------------------------------
    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /portfolio/orders``: validate, match, rest or cancel the remainder."""
        ticker = body.get("ticker")
        if ticker not in self.markets:
            raise Rejected(404, "market_not_found", f"market {ticker!r} not found")
        side, action = body.get("side"), body.get("action")
        if side not in ("yes", "no") or action not in ("buy", "sell"):
            raise Rejected(400, "invalid_parameters", "side must be yes|no, action buy|sell")
        count = body.get("count")
        if not isinstance(count, int) or count < 1:
            raise Rejected(400, "invalid_parameters", "count must be a positive integer")
        price = self._price(ticker, side, body)
        coid = body.get("client_order_id") or ""
        if coid and any(o["status"] == "resting" for o in self.by_client_id(coid)):
            raise Rejected(409, "order_already_exists", "client_order_id is in use")
        tif = body.get("time_in_force") or "good_till_canceled"
        reduce_only = body.get("reduce_only", False)
        if not isinstance(reduce_only, bool):
            raise Rejected(400, "invalid_parameters", "reduce_only must be a boolean")
        # A reduce-only order never flips the position: it trades at most what the
        # position holds against it, and the rest is cancelled.  (Assumed: the
        # documentation says the flag prevents flipping, not how a larger count ends.)
        room = count
        if reduce_only:
            held = self.position(ticker)
            room = abs(held) if held * _effect(side, action) < 0 else 0
        fills = self._crossing(ticker, side, action, price, min(count, room))
        reason = ""
        if body.get("post_only") and fills:
            # Kalshi accepts a crossing post-only order and cancels it at once, saying
            # why in ``last_update_reason`` (docs changelog, June 4 2026)
            fills, reason = [], C.POST_ONLY_CROSS_CANCEL
        if tif == "fill_or_kill" and sum(q for _, q in fills) < count:
            fills = []
        now = self.now_ns()
        order_id = f"ord-{next(self._order_ids):06d}"
        order = {"order_id": order_id, "user_id": "local-user", "client_order_id": coid,
                 "ticker": ticker, "side": side, "action": action, "type": "limit",
                 "yes_price": _legacy(price if side == "yes" else 100 - price),
                 "no_price": _legacy(price if side == "no" else 100 - price),
                 "initial_count": count, "fill_count": 0, "remaining_count": count,
                 "status": "resting", "time_in_force": tif,
                 "created_time": _iso(now), "last_update_time": _iso(now)}
        order["yes_price_dollars"] = _dollars(price if side == "yes" else 100 - price)
        order["no_price_dollars"] = _dollars(price if side == "no" else 100 - price)
        self.orders[order_id] = order
        for level_price, qty in fills:
            self._fill(order, level_price, qty, now)
        if order["remaining_count"] == 0:
            order["status"] = "executed"
        elif tif != "good_till_canceled" or reason or room < count:
            order["status"] = "canceled"
        if reduce_only:
            order["reduce_only"] = True
        if reason:
            order["last_update_reason"] = reason
        self._fp(order)
        return order

    def _price(self, ticker: str, side: str, body: dict[str, Any]) -> Cents:
        """The order's price in cents: ``<side>_price_dollars`` (a fixed-point string,
        exact) or the legacy integer ``<side>_price`` (both given: they must match), on
        the market's grid (``price_ranges``, else whole cents)."""
        dollars, cents = body.get(f"{side}_price_dollars"), body.get(f"{side}_price")
        if cents is not None and (not isinstance(cents, int) or isinstance(cents, bool)):
            raise Rejected(400, "invalid_parameters", f"{side}_price must be whole cents")
        if dollars is not None:
            try:
                exact = Decimal(dollars) if isinstance(dollars, str) else None
            except InvalidOperation:
                exact = None
            if exact is None or not exact.is_finite() or exact != exact.quantize(
                    Decimal("0.0001")):
                raise Rejected(400, "invalid_parameters",
                               f"{side}_price_dollars must be a dollar string with at "
                               f"most 4 decimals")
            if cents is not None and exact * 100 != cents:
                raise Rejected(400, "invalid_parameters",
                               f"{side}_price and {side}_price_dollars differ")
        elif cents is not None:
            exact = Decimal(cents) / 100
        else:
            raise Rejected(400, "invalid_parameters", f"{side}_price_dollars is required")
        bands = [(Decimal(b["start"]), Decimal(b["end"]), Decimal(b["step"]))
                 for b in self.markets[ticker].get("price_ranges") or []] or \
            [(Decimal(0), Decimal(1), Decimal("0.01"))]
        if not on_grid(exact, tuple(bands)):
            raise Rejected(400, "invalid_price", f"price {exact} is not on the market's "
                                                 f"price grid")
        return _cents(exact * 100)

    def cancel(self, order_id: str) -> dict[str, Any]:
        """``DELETE /portfolio/orders/{order_id}``."""
        order = self.orders.get(order_id)
        if order is None:
            raise Rejected(404, "not_found", f"order {order_id} not found")
        if order["status"] != "resting":
            raise Rejected(400, "order_not_resting", f"order {order_id} is {order['status']}")
        reduced = order["remaining_count"]
        order.update(status="canceled", remaining_count=0,
                     last_update_time=_iso(self.now_ns()))
        self._fp(order)
        return {"order": order, "reduced_by": reduced}

    def _crossing(self, ticker: str, side: str, action: str, price: Cents, count: int
                  ) -> list[tuple[Cents, int]]:
        """(price in the order's side's cents, qty) the order takes, best first."""
        book = self.books[ticker]
        if action == "buy":  # a buy of `side` at p takes other-side bids q with 100-q <= p
            other = "no" if side == "yes" else "yes"
            levels = [(100 - q, n) for q, n in sorted(book[other].items(), reverse=True)]
            ok = [(p, n) for p, n in levels if p <= price]
        else:  # a sell of `side` at p takes same-side bids >= p
            ok = [(q, n) for q, n in sorted(book[side].items(), reverse=True) if q >= price]
        out, left = [], count
        for p, n in ok:
            if left == 0:
                break
            take = min(n, left)
            out.append((p, take))
            left -= take
        return out

    def _fill(self, order: dict[str, Any], price: Cents, qty: int, now: int) -> None:
        side, other = order["side"], "no" if order["side"] == "yes" else "yes"
        book_side, book_price = (other, 100 - price) if order["action"] == "buy" else (side, price)
        self.set_level(order["ticker"], book_side, book_price,
                       self.books[order["ticker"]][book_side][book_price] - qty)
        order["fill_count"] += qty
        order["remaining_count"] -= qty
        yes_price = price if side == "yes" else 100 - price
        fee = kalshi_fee(self.taker_fee_rate, Decimal(qty), Decimal(price) / 100)
        trade_id = f"trd-{next(self._trade_ids):06d}"
        self.fills.append({
            "fill_id": trade_id, "trade_id": trade_id, "order_id": order["order_id"],
            "client_order_id": order["client_order_id"], "ticker": order["ticker"],
            "market_ticker": order["ticker"], "side": side, "action": order["action"],
            "count": qty, "count_fp": f"{qty}.00", "yes_price": _legacy(yes_price),
            "no_price": _legacy(100 - yes_price), "yes_price_dollars": _dollars(yes_price),
            "no_price_dollars": _dollars(100 - yes_price), "is_taker": True,
            "fee_cost": f"{fee:.4f}", "created_time": _iso(now), "ts": now // 10**9})
        for listener in list(self.fill_listeners):
            listener(self.fills[-1])

    def fill_resting(self, order_id: str, qty: int, *, fee_cost: Any = "0.0000",
                     extra: int = 0) -> dict[str, Any]:
        """Another trader takes ``qty`` of a resting order at its price (a maker fill):
        ``fee_cost`` as Kalshi states it (``None`` leaves the field out; a negative one is
        a rebate); ``extra`` contracts beyond what the order has left (an overfill).
        Returns the fill (a ``GET /portfolio/fills`` object), also sent to listeners."""
        order = self.orders[order_id]
        side = order["side"]
        cents = _cents(Decimal(order[f"{side}_price_dollars"]) * 100)
        yes = cents if side == "yes" else 100 - cents
        now = self.now_ns()
        order["fill_count"] += qty + extra
        order["remaining_count"] = max(0, order["remaining_count"] - qty - extra)
        if order["remaining_count"] == 0:
            order["status"] = "executed"
        order["last_update_time"] = _iso(now)
        self._fp(order)
        trade_id = f"trd-{next(self._trade_ids):06d}"
        fill = {"fill_id": trade_id, "trade_id": trade_id, "order_id": order_id,
                "client_order_id": order["client_order_id"], "ticker": order["ticker"],
                "market_ticker": order["ticker"], "side": side, "action": order["action"],
                "count": qty + extra, "count_fp": f"{qty + extra}.00",
                "yes_price": _legacy(yes), "no_price": _legacy(100 - yes),
                "yes_price_dollars": _dollars(yes), "no_price_dollars": _dollars(100 - yes),
                "is_taker": False, "created_time": _iso(now), "ts": now // 10**9}
        if fee_cost is not None:
            fill["fee_cost"] = fee_cost
        self.fills.append(fill)
        for listener in list(self.fill_listeners):
            listener(fill)
        return fill

    @staticmethod
    def _fp(order: dict[str, Any]) -> None:
        for key in ("initial_count", "fill_count", "remaining_count"):
            order[f"{key}_fp"] = f"{order[key]}.00"
