"""``[plugins.kalshi]``: the venue's settings, validated into a frozen attrs class.

Example::

    [plugins.kalshi]
    markets = ["KXHIGHNY-24JAN01-T60"]         # market tickers to trade
    event_tickers = ["KXHIGHNY-24JAN01"]       # or whole events (every market of each)
    api_key_id = "$env:KALSHI_API_KEY_ID"      # references only; inline values are refused
    private_key = "$file:~/.kalshi/key.pem"    # the RSA private key (PEM) Kalshi gave you
    rest_url = "http://127.0.0.1:8080"         # point at a local exchange for offline tests
"""

from __future__ import annotations

import re
import urllib.parse
from decimal import Decimal
from typing import Any

import attrs

from argus_core import Secret, to_decimal, url_scheme
from argus_venue_kalshi import constants as C

#: Market and event tickers: upper-case letters, digits, '-', '.', '_'.
_TICKER = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,99}$")


def _tickers(instance: Any, attribute: attrs.Attribute[Any], value: list[str]) -> None:
    for ticker in value:
        if not isinstance(ticker, str) or not _TICKER.match(ticker):
            raise ValueError(f"{attribute.name}: {ticker!r} is not a Kalshi ticker like "
                             f"'KXHIGHNY-24JAN01-T60'")
    if len(set(value)) != len(value):
        raise ValueError(f"{attribute.name}: a ticker is listed twice")


def _endpoint(parts: urllib.parse.SplitResult, name: str) -> str:
    """The endpoint as safe to show (scheme, host, port and path: never a user name or
    password); a ``ValueError`` naming ``name`` when it carries either (httpx would send
    them as basic auth, and every error naming the URL would print them)."""
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{name}: must not carry a user name or password (Kalshi signs "
                         f"requests with api_key_id and private_key)")
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}" \
           f"{parts.path}"


def _origin(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    """``rest_url`` is an origin: the venue appends (and signs) ``/trade-api/v2/...``
    itself, so a path (the docs' base URL ends in ``/trade-api/v2``) would be sent twice
    and every request answered 404 or 401."""
    parts = urllib.parse.urlsplit(value)
    shown = _endpoint(parts, attribute.name)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{attribute.name}: {shown!r} has a path or query; give the origin "
                         f"only (like {C.REST_URL!r}): the venue appends {C.API_PREFIX} "
                         f"itself")


def _ws_path(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    """``ws_url``'s path is Kalshi's websocket path: the handshake is signed over
    ``/trade-api/ws/v2``, so another path is refused (401) or not found."""
    parts = urllib.parse.urlsplit(value)
    shown = _endpoint(parts, attribute.name)
    if parts.path.rstrip("/") != C.WS_PATH or parts.query or parts.fragment:
        raise ValueError(f"{attribute.name}: {shown!r} must end in the path {C.WS_PATH} "
                         f"(like {C.WS_URL!r}): the handshake is signed over it")


def _between(low: float, high: float, *, low_open: bool = False) -> Any:
    """``low <= value <= high`` (``low < value`` when ``low_open``); NaN fails too."""
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        above_low = value > low if low_open else value >= low
        if not (above_low and value <= high):
            bound = f"> {low}" if low_open else f">= {low}"
            raise ValueError(f"{attribute.name}: must be {bound} and <= {high}, got {value!r}")
    return check


def _dec_taker(value: Any) -> Decimal:
    return to_decimal(value, field="taker_fee_rate")


def _dec_maker(value: Any) -> Decimal:
    return to_decimal(value, field="maker_fee_rate")


def _dec_index_taker(value: Any) -> Decimal:
    return to_decimal(value, field="index_taker_fee_rate")


_fee_rate = _between(0, 1)


def _per_second(instance: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    top = max(w for _, w in C.RATE_LIMIT_TIERS.values())
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or not 1 <= value <= top):
        raise ValueError(f"{attribute.name}: must be a whole number of requests per second "
                         f"from 1 to {top} (Kalshi's tiers: basic 20 reads / 10 writes, "
                         f"prime {top}), got {value!r}; leave it out to use "
                         f"rate_limit_tier's")


@attrs.frozen
class KalshiSettings:
    """Settings of the Kalshi venue (``[plugins.kalshi]``).

    Endpoints are configurable so the venue can be pointed at a local exchange; the API
    key id and the RSA private key are ``$env:``/``$file:`` references, read only when a
    signed call needs them and never logged.
    """

    #: REST origin; paths under ``/trade-api/v2`` are appended (and signed) as Kalshi's.
    #: An origin only (no path: ``https://api.elections.kalshi.com``, not the docs'
    #: ``.../trade-api/v2``), without a user name or password.
    rest_url: str = attrs.field(default=C.REST_URL,
                                validator=[url_scheme("http", "https"), _origin])
    #: Websocket endpoint (its handshake is signed over ``/trade-api/ws/v2``, the path it
    #: must have).
    ws_url: str = attrs.field(default=C.WS_URL, validator=[url_scheme("ws", "wss"), _ws_path])
    #: Market tickers to trade.
    markets: list[str] = attrs.field(factory=list, validator=_tickers)
    #: Event tickers: every market of each event is traded.
    event_tickers: list[str] = attrs.field(factory=list, validator=_tickers)
    #: API key id reference (``$env:KALSHI_API_KEY_ID``); None disables signed calls.
    api_key_id: Secret | None = None
    #: RSA private key reference (``$file:~/.kalshi/key.pem``; PEM, PKCS#1 or PKCS#8).
    private_key: Secret | None = None
    #: Taker fee multiplier of the fee schedule (0.07).
    taker_fee_rate: Decimal = attrs.field(default=C.TAKER_FEE_RATE, converter=_dec_taker,
                                          validator=_fee_rate)
    #: Taker multiplier of the S&P 500 / Nasdaq-100 series (0.035).
    index_taker_fee_rate: Decimal = attrs.field(default=C.INDEX_TAKER_FEE_RATE,
                                                converter=_dec_index_taker,
                                                validator=_fee_rate)
    #: Maker multiplier on series listed in ``maker_fee_series`` (0.0175); makers pay
    #: nothing elsewhere.
    maker_fee_rate: Decimal = attrs.field(default=C.MAKER_FEE_RATE, converter=_dec_maker,
                                          validator=_fee_rate)
    #: Series tickers whose markets charge maker fees.
    maker_fee_series: list[str] = attrs.field(factory=list, validator=_tickers)
    #: Fee rounding per fill: "cent" (members through a broker/FCM and retail) or
    #: "centicent" (direct members).
    fee_rounding: str = attrs.field(default="cent",
                                    validator=attrs.validators.in_(tuple(C.FEE_ROUNDING)))
    #: Access tier ("basic", "advanced", "premier", "prime"): the per-second read and write
    #: limits the venue keeps to (docs getting_started/rate_limits).
    rate_limit_tier: str = attrs.field(default="basic",
                                       validator=attrs.validators.in_(tuple(C.RATE_LIMIT_TIERS)))
    #: Items per page of Kalshi's paged lists (``limit``; Kalshi's default is 100, its
    #: portfolio lists take at most 200).
    page_limit: int = attrs.field(default=100, validator=_between(1, 200))
    #: Reads per second at the default cost of 10 tokens (the read budget is 10x this),
    #: overriding the tier's (None: the tier's); 1..400.
    reads_per_s: int | None = attrs.field(default=None, validator=_per_second)
    #: Writes per second at the default cost (the write budget is 10x this; an order
    #: costs what ``GET /account/endpoint_costs`` says, a batch per order), overriding
    #: the tier's (None: the tier's); 1..400.
    writes_per_s: int | None = attrs.field(default=None, validator=_per_second)
    #: Seconds to wait for a REST answer.
    request_timeout_s: float = attrs.field(default=10.0, validator=_between(0, 300, low_open=True))
    #: Retries of refused-but-harmless requests (429, 5xx on reads) and of look-ups.
    max_retries: int = attrs.field(default=3, validator=_between(0, 20))
    #: Reconnect backoff: full jitter over base * 2**attempt, capped at max.
    reconnect_base_s: float = attrs.field(default=0.5, validator=_between(0, 60, low_open=True))
    reconnect_max_s: float = attrs.field(default=30.0, validator=_between(0, 3600, low_open=True))
    #: Treat the socket as dead after this long without a frame (Kalshi pings every 10 s).
    heartbeat_timeout_s: float = attrs.field(default=30.0,
                                             validator=_between(0, 300, low_open=True))
    #: Also take fills from the websocket's private ``fill`` channel (needs credentials);
    #: the REST poll runs either way.
    ws_fills: bool = True
    #: Seconds between polls of fills and orders for ``executions()``.
    poll_interval_s: float = attrs.field(default=1.0, validator=_between(0, 60, low_open=True))
    #: An order whose send stayed ambiguous (``OrderUnknown``), or that a restart found
    #: pending and Kalshi does not list yet, is looked for by every poll for this long
    #: (Kalshi's lists can lag its engine); found: acknowledged; still unseen after it:
    #: CANCELLED, never placed.
    order_give_up_s: float = attrs.field(default=60.0,
                                         validator=_between(0, 3600, low_open=True))
    #: How often ``stream()`` asks ``GET /markets?tickers=`` whether a followed market has
    #: settled (status ``finalized`` / ``settled``; result yes / no / scalar / void) or
    #: had its result amended; each settles once as ``Settlement`` events.  0 turns the
    #: poll off (the websocket ``market_lifecycle_v2`` channel's ``settled`` event still
    #: settles).
    settlement_poll_s: float = attrs.field(default=30.0, validator=_between(0, 86_400))
    #: How often ``stream()`` reads every market of each configured event
    #: (``GET /markets?event_ticker=``, every page) to follow markets Kalshi added to
    #: the event since the start (their instruments, updated event and books join the
    #: stream); a ``created`` / ``activated`` lifecycle event of such a market has it
    #: looked up at once (``GET /markets/{ticker}``) either way.  0 turns the poll off.
    discovery_poll_s: float = attrs.field(default=60.0, validator=_between(0, 86_400))
    #: End ``stream()`` once every followed market has settled (for runs that should stop
    #: with their markets); otherwise it runs until cancelled.
    end_when_resolved: bool = False

    @property
    def limits_per_s(self) -> tuple[int, int]:
        """(reads, writes) per second: the overrides, else ``rate_limit_tier``'s."""
        reads, writes = C.RATE_LIMIT_TIERS[self.rate_limit_tier]
        return (self.reads_per_s or reads, self.writes_per_s or writes)

    @property
    def has_credentials(self) -> bool:
        """Whether both the key id and the private key references are configured."""
        return self.api_key_id is not None and self.private_key is not None
