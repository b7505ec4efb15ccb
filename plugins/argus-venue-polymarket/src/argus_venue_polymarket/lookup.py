"""Look-ups: does the venue hold an order we sent?  Asked after an ambiguous post, for
orders pending at a restart, and for basket legs answered "delayed".

:func:`find_order` tries ``GET /data/order/<hash>``, then ``GET /data/orders`` for the
token (by id or the signed ``metadata``), then ``GET /data/trades`` for the token since
the post (an order that executed and left the book).
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

    async def ask(call: Callable[[], Any]) -> Any:
        try:
            return await asyncio.to_thread(call)
        except PolyApiException as exc:
            code = exc.status_code
            if code is None or code >= 500 or code == 429:
                raise Unreachable(str(exc)) from exc
            return None  # 4xx: the venue answered that it has no such thing

    async def trades_of(order_id: str) -> tuple[ClobTrade, ...]:
        raw = await ask(lambda: client.get_trades(TradeParams(asset_id=token,
                                                              after=since_s)))
        out = []
        for i, item in enumerate(raw or []):
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

    row = await ask(lambda: client.get_order(vid))
    row = row.get("order", row) if isinstance(row, dict) else None
    if not (row and row.get("id")):
        meta = client_order_metadata(post.client_order_id)
        rows = await ask(lambda: client.get_open_orders(OpenOrderParams(asset_id=token)))
        row = next((r for r in rows or [] if isinstance(r, dict) and (
            str(r.get("id")) == vid or r.get("metadata") == meta)), None)
    if row:
        found_id = str(row.get("id") or vid)
        return FoundOrder(found_id, row, await trades_of(found_id) if matched(row) else ())
    trades = await trades_of(vid)
    return FoundOrder(vid, None, trades) if trades else None
