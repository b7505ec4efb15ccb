"""Kalshi's fixed facts: endpoints, paths, fee multipliers, order vocabulary, rate limits.

Sources (public Kalshi documentation, see ``tests/payloads/SOURCES.md``):
docs.kalshi.com getting_started/quick_start_authenticated_requests (signing),
getting_started/quick_start_websockets (websocket URL and handshake signing),
getting_started/orderbook_responses (bids-only books), getting_started/fee_rounding and
the Kalshi fee schedule (fee formula), getting_started/rate_limits (tiers).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

VENUE: Final = "kalshi"

REST_URL: Final = "https://api.elections.kalshi.com"
WS_URL: Final = "wss://api.elections.kalshi.com/trade-api/ws/v2"
DEMO_REST_URL: Final = "https://demo-api.kalshi.co"
DEMO_WS_URL: Final = "wss://demo-api.kalshi.co/trade-api/ws/v2"

#: Every REST path starts here; the signature covers the full path from this prefix on.
API_PREFIX: Final = "/trade-api/v2"
#: The websocket handshake is signed over ``timestamp + "GET" + WS_PATH``.
WS_PATH: Final = "/trade-api/ws/v2"

#: Headers of a signed request.
HEADER_KEY: Final = "KALSHI-ACCESS-KEY"
HEADER_SIGNATURE: Final = "KALSHI-ACCESS-SIGNATURE"
HEADER_TIMESTAMP: Final = "KALSHI-ACCESS-TIMESTAMP"

#: Binary contracts pay $1; prices are dollars in (0, 1), historically whole cents.
CENT: Final = Decimal("0.01")
PAYOUT: Final = Decimal(1)

#: Price grids by ``price_level_structure`` (docs getting_started/fixed_point_migration):
#: (start, end, step) bands in dollars.  A market's ``price_ranges`` is the source of
#: truth; this table serves a market that names its structure without the ranges.
_EDGES = {"whole": "0.01", "half": "0.005", "quint": "0.002", "deci": "0.001",
          "centi": "0.0001"}


def _bands(center: str, edge: str, low: str = "0.10", high: str = "0.90"
           ) -> tuple[tuple[Decimal, Decimal, Decimal], ...]:
    c, e = Decimal(_EDGES[center]), Decimal(_EDGES[edge])
    if c == e:
        return ((Decimal(0), Decimal(1), c),)
    return ((Decimal(0), Decimal(low), e), (Decimal(low), Decimal(high), c),
            (Decimal(high), Decimal(1), e))


PRICE_LEVEL_STRUCTURES: Final = {
    "linear_cent": _bands("whole", "whole"),
    "deci_cent": _bands("deci", "deci"),
    "tapered_deci_cent": _bands("whole", "deci"),
    **{f"center_{c}_edge_{e}_cent": _bands(c, e) for c, e in (
        ("whole", "half"), ("whole", "quint"), ("half", "half"), ("half", "quint"),
        ("half", "deci"), ("quint", "quint"), ("quint", "deci"), ("centi", "centi"))},
    "center_deci_edge_centi_cent": _bands("deci", "centi", "0.01", "0.99"),
}
#: Fixed-point dollar strings carry at most this many decimals in requests.
PRICE_DECIMALS: Final = 4

#: Fee multipliers of the fee schedule: ``fee = round_up(rate * C * P * (1 - P))``.
TAKER_FEE_RATE: Final = Decimal("0.07")
#: Markets with maker fees (certain sports and economics series) charge makers this.
MAKER_FEE_RATE: Final = Decimal("0.0175")
#: The S&P 500 and Nasdaq-100 series (INX*, NASDAQ100*) charge takers half the rate.
INDEX_TAKER_FEE_RATE: Final = Decimal("0.035")
INDEX_SERIES_PREFIXES: Final = ("INX", "NASDAQ100", "KXINX", "KXNASDAQ100")

#: Fee rounding: non-direct members round every fill's fee up to the cent; direct members
#: to the centicent ($0.0001) (docs: getting_started/fee_rounding).
FEE_ROUNDING: Final = {"cent": Decimal("0.01"), "centicent": Decimal("0.0001")}

#: Order vocabulary of ``POST /portfolio/orders``.
TIME_IN_FORCE: Final = {"gtc": "good_till_canceled", "ioc": "immediate_or_cancel",
                        "fok": "fill_or_kill", "post_only": "good_till_canceled"}
#: ``last_update_reason`` of a post-only order Kalshi cancelled because it would have
#: crossed the book (docs changelog, June 4 2026: "Post Only Cross Cancel").
POST_ONLY_CROSS_CANCEL: Final = "PostOnlyCrossCancel"
#: Order statuses Kalshi reports.
STATUS_RESTING: Final = "resting"
STATUS_CANCELED: Final = "canceled"
STATUS_EXECUTED: Final = "executed"

#: Market statuses that trade.
OPEN_MARKET_STATUSES: Final = ("open", "active")

#: Rate limits per second by access tier: (reads, writes) (docs: rate limits and tiers).
RATE_LIMIT_TIERS: Final = {
    "basic": (20, 10),
    "advanced": (30, 30),
    "premier": (100, 100),
    "prime": (400, 400),
}

#: Orders per ``POST /portfolio/orders/batched`` (docs: batch create orders).
BATCH_MAX_ORDERS: Final = 20

#: Client order ids: at most 64 characters of ``[-\w:+=/]`` (FIX ClOrdID rules; the REST
#: field has the same uniqueness role).
CLIENT_ORDER_ID_MAX: Final = 64

#: The websocket channel of market lifecycle events (docs: websockets/market & event
#: lifecycle): ``determined`` carries the result, ``settled`` follows the payout.
WS_LIFECYCLE_CHANNEL: Final = "market_lifecycle_v2"
#: The websocket's error code for a private channel asked for on an unauthenticated
#: connection (``orderbook_delta`` and ``fill`` are private).
WS_ERROR_AUTH_REQUIRED: Final = 9
