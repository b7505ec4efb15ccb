"""``[plugins.kraken]``: the venue's settings, validated into a frozen attrs class.

Example::

    [plugins.kraken]
    pairs = ["BTC/USD", "ETH/USD"]
    book_depth = 10
    channels = ["book", "trade", "ohlc"]
    api_key = "$env:KRAKEN_API_KEY"        # references only; inline secrets are refused
    api_secret = "$env:KRAKEN_API_SECRET"
    rest_url = "http://127.0.0.1:8080"      # point at a local server for offline tests
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from argus_core import Secret, to_decimal, url_scheme
from argus_venue_kraken import constants as C

_PAIR = re.compile(r"^[A-Z0-9.]{1,12}/[A-Z0-9.]{1,12}$")


def _check_pairs(instance: Any, attribute: attrs.Attribute[Any], value: list[str]) -> None:
    if not value:
        raise ValueError("pairs: list at least one pair, e.g. [\"BTC/USD\"]")
    for pair in value:
        if not isinstance(pair, str) or not _PAIR.match(pair):
            raise ValueError(f"pairs: {pair!r} is not a Kraken WebSocket v2 pair name "
                             f"like 'BTC/USD'")
    if len(set(value)) != len(value):
        raise ValueError("pairs: a pair is listed twice")


def _normalise_pairs(value: Any) -> Any:
    # WS v2 spells bitcoin BTC; accept Kraken's legacy XBT spelling and fix it up.
    if not isinstance(value, list):
        return value
    out = []
    for pair in value:
        if isinstance(pair, str) and "/" in pair:
            base, quote = pair.upper().split("/", 1)
            pair = f"{C.ASSET_ALIASES.get(base, base)}/{C.ASSET_ALIASES.get(quote, quote)}"
        out.append(pair)
    return out


def _check_channels(instance: Any, attribute: attrs.Attribute[Any], value: list[str]) -> None:
    for channel in value:
        if channel not in C.PUBLIC_CHANNELS:
            raise ValueError(f"channels: unknown channel {channel!r} "
                             f"(choose from {', '.join(C.PUBLIC_CHANNELS)})")


def _between(low: float, high: float, *, low_open: bool = False) -> Any:
    """A validator: ``low <= value <= high`` (``low < value`` when ``low_open``), naming the key.

    Written as "inside the range" tests so that NaN fails them too.
    """
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        above_low = value > low if low_open else value >= low
        if not (above_low and value <= high):
            bound = f"> {low}" if low_open else f">= {low}"
            if high != float("inf"):
                bound += f" and <= {high}"
            raise ValueError(f"{attribute.name}: must be {bound}, got {value!r}")
    return check


def _check_dead_man(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """0 (off) or whole seconds from ``DEAD_MAN_MIN_S`` to ``DEAD_MAN_MAX_S``, and long
    enough that each re-arm (every timeout / ``DEAD_MAN_REARMS``) gets its answer or gives
    up (``request_timeout_s``) before the next is due."""
    low, high = C.DEAD_MAN_MIN_S, C.DEAD_MAN_MAX_S
    if isinstance(value, bool) or not isinstance(value, int) or not (
            value == 0 or low <= value <= high):
        raise ValueError(f"{attribute.name}: must be 0 (off) or whole seconds from {low} to "
                         f"{high} (Kraken: less than 86400; it recommends 60), got {value!r}")


def _check_dead_man_vs_timeout(settings: KrakenSettings) -> None:
    """Cross-field: a re-arm must fit in the re-arm period (checked after both are set)."""
    timeout_s, request_s = settings.dead_man_timeout_s, settings.request_timeout_s
    if timeout_s and request_s > timeout_s / C.DEAD_MAN_REARMS:
        raise ValueError(
            f"dead_man_timeout_s: must be at least {C.DEAD_MAN_REARMS} x request_timeout_s "
            f"({C.DEAD_MAN_REARMS * request_s:g}): it is re-armed every "
            f"{timeout_s / C.DEAD_MAN_REARMS:g}s and a re-arm may take request_timeout_s "
            f"({request_s:g}s), so a slow one could let it expire; got {timeout_s}")


_non_negative = _between(0, float("inf"))
#: Fees in basis points: 0 to 1,000 (10 %), far above any Kraken tier.
_fee_bps = _between(0, 1000)


# Converters to an exact, finite Decimal whose error names the field: one named function
# each, so mypy's attrs plugin types the constructors (it cannot see through a factory).
def _dec_min_volume_usd(value: Any) -> Decimal:
    return to_decimal(value, field="min_volume_usd")


def _dec_maker_bps(value: Any) -> Decimal:
    return to_decimal(value, field="maker_bps")


def _dec_taker_bps(value: Any) -> Decimal:
    return to_decimal(value, field="taker_bps")


def _dec_volume_30d_usd(value: Any) -> Decimal:
    return to_decimal(value, field="volume_30d_usd")


def _expand_path(value: str | Path) -> Path:
    return Path(value).expanduser()


@attrs.frozen
class FeeTier:
    """One row of a volume fee schedule: from ``min_volume_usd`` (30-day) upwards."""

    min_volume_usd: Decimal = attrs.field(converter=_dec_min_volume_usd,
                                          validator=_non_negative)
    maker_bps: Decimal = attrs.field(converter=_dec_maker_bps, validator=_fee_bps)
    taker_bps: Decimal = attrs.field(converter=_dec_taker_bps, validator=_fee_bps)


def _default_tiers() -> list[FeeTier]:
    return [FeeTier(v, m, t) for v, m, t in C.DEFAULT_FEE_TIERS]


def _check_tiers(instance: Any, attribute: attrs.Attribute[Any], value: list[FeeTier]) -> None:
    volumes = [t.min_volume_usd for t in value]
    if volumes != sorted(volumes) or len(set(volumes)) != len(volumes):
        raise ValueError("fee_tiers: rows must be sorted by min_volume_usd with no repeats")


@attrs.frozen
class KrakenSettings:
    """Settings of the Kraken venue (``[plugins.kraken]``).

    Endpoints are configurable so the venue can be pointed at local servers;
    credentials are ``$env:``/``$file:`` references, read only when a private
    call needs them and never logged.
    """

    #: REST base URL (public ``/0/public/*`` and private ``/0/private/*`` live under it).
    rest_url: str = attrs.field(default=C.REST_URL, validator=url_scheme("http", "https"))
    #: Public WebSocket v2 endpoint.
    ws_url: str = attrs.field(default=C.WS_URL, validator=url_scheme("ws", "wss"))
    #: Authenticated WebSocket v2 endpoint (``executions``).
    ws_auth_url: str = attrs.field(default=C.WS_AUTH_URL, validator=url_scheme("ws", "wss"))
    #: Pairs in WS v2 spelling (``BTC/USD``); ``XBT/USD`` is accepted and normalised.
    pairs: list[str] = attrs.field(factory=lambda: ["BTC/USD"], converter=_normalise_pairs,
                                   validator=_check_pairs)
    #: Book depth to subscribe to (10, 25, 100, 500 or 1000 levels per side).
    book_depth: int = attrs.field(default=10, validator=attrs.validators.in_(C.BOOK_DEPTHS))
    #: Public channels to stream: any of book, ticker, trade, ohlc.
    channels: list[str] = attrs.field(factory=lambda: list(C.PUBLIC_CHANNELS),
                                      validator=_check_channels)
    #: Bar interval of the ``ohlc`` channel, in minutes.
    ohlc_interval_min: int = attrs.field(default=60,
                                         validator=attrs.validators.in_(C.OHLC_INTERVALS_MIN))
    #: API key reference (``$env:KRAKEN_API_KEY``); None disables private calls.
    api_key: Secret | None = None
    #: API private key reference (base64 text, as Kraken shows it).
    api_secret: Secret | None = None
    #: Base-tier fees in basis points (Kraken Pro: maker 0.25 %, taker 0.40 %).
    maker_bps: Decimal = attrs.field(default=Decimal(25), converter=_dec_maker_bps,
                                     validator=_fee_bps)
    taker_bps: Decimal = attrs.field(default=Decimal(40), converter=_dec_taker_bps,
                                     validator=_fee_bps)
    #: Volume tiers above the base tier; the row with the largest min_volume_usd
    #: not above ``volume_30d_usd`` applies.
    fee_tiers: list[FeeTier] = attrs.field(factory=_default_tiers, validator=_check_tiers)
    #: Your 30-day trading volume in USD, which picks the fee tier.
    volume_30d_usd: Decimal = attrs.field(default=Decimal(0), converter=_dec_volume_30d_usd,
                                          validator=_non_negative)
    #: Dead-man's switch timeout (CancelAllOrdersAfter) while orders rest; 0 disables.
    #: Whole seconds, 10 to 86399 (Kraken: less than 86400), re-armed every quarter of it.
    dead_man_timeout_s: int = attrs.field(default=60, validator=_check_dead_man)
    #: Verification tier for the local model of Kraken's rate-limit counters.
    rate_limit_tier: str = attrs.field(default="starter",
                                       validator=attrs.validators.in_(tuple(C.REST_RATE_TIERS)))
    #: File holding the last nonce (shared, locked, by every process using this key).
    nonce_path: Path = attrs.field(factory=lambda: Path("~/.argus/kraken-nonce").expanduser(),
                                   converter=_expand_path)
    #: Seconds to wait for a REST answer.
    request_timeout_s: float = attrs.field(default=10.0,
                                           validator=_between(0, 300, low_open=True))
    #: Retries for refused-but-harmless requests (rate limit, nonce, 5xx on idempotent calls),
    #: and how often an order proven never placed is sent again.
    max_retries: int = attrs.field(default=3, validator=_between(0, 20))
    #: AddOrder ``deadline``: Kraken's engine rejects the order if it gets there later than
    #: this after sending (Kraken allows 2 to 60 s).  After it (plus ``lookup_settle_s``) an
    #: order the look-up by ``cl_ord_id`` cannot find provably never existed.
    order_deadline_s: float = attrs.field(default=5.0, validator=_between(2, 60))
    #: Margin past the deadline before the second look-up counts as "never placed": clock
    #: skew between us and Kraken, and the time an order takes to show in OpenOrders.
    lookup_settle_s: float = attrs.field(default=2.0, validator=_between(0, 60))
    #: Reconnect backoff: full jitter over base * 2**attempt, capped at max.
    reconnect_base_s: float = attrs.field(default=0.5, validator=_between(0, 60, low_open=True))
    reconnect_max_s: float = attrs.field(default=30.0,
                                         validator=_between(0, 3600, low_open=True))
    #: Treat the socket as dead after this long without any frame (heartbeats come every ~1 s).
    heartbeat_timeout_s: float = attrs.field(default=10.0,
                                             validator=_between(0, 300, low_open=True))
    #: Stream fills from the authenticated ``executions`` channel when keys are set.
    private_stream: bool = True

    def __attrs_post_init__(self) -> None:
        _check_dead_man_vs_timeout(self)

    @property
    def has_credentials(self) -> bool:
        """Whether both key and secret references are configured."""
        return self.api_key is not None and self.api_secret is not None

    def fee_tier(self) -> tuple[Decimal, Decimal]:
        """(maker_bps, taker_bps) for the configured 30-day volume."""
        maker, taker = self.maker_bps, self.taker_bps
        for tier in self.fee_tiers:
            if self.volume_30d_usd >= tier.min_volume_usd:
                maker, taker = tier.maker_bps, tier.taker_bps
        return maker, taker
