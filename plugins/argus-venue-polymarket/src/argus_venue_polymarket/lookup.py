"""Look-ups: does the venue hold an order we sent?  Asked after an ambiguous post, for
orders pending at a restart, and for basket legs answered "delayed".

:func:`find_order` tries ``GET /data/order/<hash>``, then ``GET /data/orders`` for the
token (by id or the signed ``metadata``), then ``GET /data/trades`` for the token since
the post (an order that executed and left the book).

"Not found" is only ever what the venue *said*: a 404 or an empty answer to ``GET
/data/order/<hash>`` (the CLOB answers nothing for an order it does not hold open), and
lists that were read whole.  Anything else — a refusal (401, 403, 429, 5xx), a dropped
connection, a body cut short or of the wrong shape — is :class:`Unreachable`: the venue
could not be asked, so nothing may be concluded (a re-send could place the order twice).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs
from py_clob_client_v2.client import ClobClient
from py_clob_client_v2.clob_types import OpenOrderParams, TradeParams
from py_clob_client_v2.exceptions import PolyApiException

from argus_core import DataError
from argus_venue_polymarket.instruments import token_of
from argus_venue_polymarket.schemas import ClobTrade
from argus_venue_polymarket.signing import SentOrder, client_order_metadata

#: Seconds of clock skew allowed when asking ``GET /data/trades?after=`` about a post.
SKEW_S = 60
#: How much further back a look-up's trades query reaches.  The venue dates trades on its
#: own clock: one more than ``SKEW_S`` behind ours hid a fill that had left the book, the
#: order read as never placed and was posted again (a second fill).  A look-up matches
#: trades by our order id, so the wider window costs only our own trades of one token.
LOOKUP_SKEW_S = 3600


class Unreachable(Exception):
    """The venue could not be asked about an order (transport failure, 5xx, 429)."""


@attrs.frozen
class FoundOrder:
    """What the venue holds of an order we sent: its record and/or its trades."""

    venue_order_id: str
    row: Mapping[str, Any] | None = None
    trades: tuple[ClobTrade, ...] = ()


async def find_order(client: ClobClient, post: SentOrder, since_s: int) -> FoundOrder | None:
    """Does the venue hold ``post``?  ``GET /data/order/<hash>``; the token's open orders
    (by id or signed ``metadata``); the token's trades since the post (an order that
    executed and left the book).  ``Unreachable`` when it could not be asked."""
    vid = post.order_hash
    token = token_of(post.order.instrument_id)

    async def ask(call: Callable[[], Any], what: str, *, missing_ok: bool = False) -> Any:
        """The answer of ``call``; None for a 404 when ``missing_ok``; ``Unreachable`` for
        every other failure (the library indexes the pages it reads, so a body of the
        wrong shape surfaces as a TypeError / KeyError)."""
        try:
            return await asyncio.to_thread(call)
        except PolyApiException as exc:
            if missing_ok and exc.status_code == 404:
                return None  # the venue answered that it has no such order
            raise Unreachable(f"{what}: {exc}") from exc
        except (TypeError, KeyError, ValueError, AttributeError, IndexError) as exc:
            raise Unreachable(f"{what}: unreadable answer ({type(exc).__name__}: "
                              f"{exc})") from exc

    def rows_of(answer: Any, what: str) -> list[Any]:
        if not isinstance(answer, list):
            raise Unreachable(f"{what}: expected a list, got {type(answer).__name__}")
        return answer

    async def trades_of(order_id: str) -> tuple[ClobTrade, ...]:
        raw = rows_of(await ask(lambda: client.get_trades(
            TradeParams(asset_id=token, after=since_s - LOOKUP_SKEW_S)), "GET /data/trades"),
            "GET /data/trades")
        out = []
        for i, item in enumerate(raw):
            with contextlib.suppress(DataError):
                t = ClobTrade.parse(item, where=f"GET /data/trades item {i}:")
                if t.taker_order_id == order_id or any(m.order_id == order_id
                                                       for m in t.maker_orders):
                    out.append(t)
        return tuple(out)

    def matched(r: Mapping[str, Any]) -> bool:
        with contextlib.suppress(ArithmeticError):
            return Decimal(str(r.get("size_matched") or "0")) > 0
        return True

    row = order_row(await ask(lambda: client.get_order(vid), f"GET /data/order/{vid}",
                               missing_ok=True), vid)
    if row is None:
        meta = client_order_metadata(post.client_order_id)
        rows = rows_of(await ask(lambda: client.get_open_orders(OpenOrderParams(
            asset_id=token)), "GET /data/orders"), "GET /data/orders")
        row = next((r for r in rows if isinstance(r, dict) and (
            str(r.get("id")) == vid or r.get("metadata") == meta)), None)
    if row:
        found_id = str(row.get("id") or vid)
        return FoundOrder(found_id, row, await trades_of(found_id) if matched(row) else ())
    trades = await trades_of(vid)
    return FoundOrder(vid, None, trades) if trades else None


def order_row(answer: Any, vid: str) -> Mapping[str, Any] | None:
    """The order record of a ``GET /data/order/<id>`` answer; None when the venue holds
    no such order (a 404, an empty body, ``null``, ``{}``); ``Unreachable`` for an answer
    that is neither (a body cut short, an object that is not an order)."""
    if answer is None or answer == "" or answer == {}:
        return None
    row = answer.get("order", answer) if isinstance(answer, dict) else answer
    if row is None or row == {}:
        return None
    if isinstance(row, dict) and row.get("id"):
        return row
    raise Unreachable(f"GET /data/order/{vid}: unreadable answer {str(answer)[:80]!r}")
