"""The book and the orders the Kraken order tests share (a uniquely named module: every
plugin has a ``conftest``, so tests import these from here; the ``exchange`` fixture that
sets :data:`BIDS` and :data:`ASKS` is in this folder's ``conftest``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from argus_venue_kraken.execution import cl_ord_id_for
from argus_venue_kraken.testing import LocalKrakenRest

from argus_core.models import Order, OrderType, Side, TimeInForce

#: BTC/USD at the local exchange: a market buy of up to 0.4 fills at 37,500.
BIDS = [(Decimal("37400.0"), Decimal("1.0"))]
ASKS = [(Decimal("37500.0"), Decimal("0.4")), (Decimal("37510.5"), Decimal("2.0"))]


def market(cid: str, qty: str = "0.1") -> Order:
    """A market buy of BTC/USD (IOC) with client id ``cid``."""
    return Order(cid, "kraken", "kraken:BTC/USD", Side.BUY, Decimal(qty), None,
                 OrderType.MARKET, TimeInForce.IOC, "s", 0)


def resting(cid: str, qty: str = "0.5") -> Order:
    """A GTC limit buy of BTC/USD at 37,000, below the book, so it rests."""
    return Order(cid, "kraken", "kraken:BTC/USD", Side.BUY, Decimal(qty), Decimal("37000.0"),
                 OrderType.LIMIT, TimeInForce.GTC, "s", 0)


def held(exchange: LocalKrakenRest, cid: str) -> dict[str, dict[str, Any]]:
    """Kraken's orders (open or closed, by txid) that carry ``cid``'s wire id."""
    wire = cl_ord_id_for(cid)
    return {t: o for t, o in {**exchange.closed, **exchange.orders}.items()
            if o.get("cl_ord_id") == wire}
