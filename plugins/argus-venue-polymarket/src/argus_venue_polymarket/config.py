"""``[plugins.polymarket]`` settings, validated into :class:`PolymarketSettings`.

Every endpoint is configurable so the venue can be pointed at a local server
(tests, the offline example's replay server).  Credentials are secret
*references* (``$env:POLY_PRIVATE_KEY``), never values.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from argus_core.secrets import Secret
from argus_venue_polymarket import constants as C


def _url(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if not value.startswith(("http://", "https://", "ws://", "wss://")):
        raise ValueError(f"{attribute.name}: {value!r} is not an http(s):// or ws(s):// URL")


def _positive(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name}: must be > 0, got {value}")


@attrs.frozen
class PolymarketSettings:
    """Settings of the Polymarket venue.

    Attributes:
        gamma_url: Gamma markets API (event discovery).
        clob_url: CLOB REST API (books, orders, heartbeats).
        ws_url: CLOB websocket *market* channel.
        chain_id: 137 (Polygon) or 80002 (Amoy); selects the exchange contracts.
        private_key: signer key reference (``$env:POLY_PRIVATE_KEY``); needed for live orders
            and settlement transactions only.
        api_key / api_secret / api_passphrase: L2 API credentials; when absent they are
            derived from ``private_key`` (``GET /auth/derive-api-key``) on first live use.
        funder: address holding the funds (proxy / Safe wallets); default the signer.
        signature_type: 0 EOA, 1 POLY_PROXY, 2 POLY_GNOSIS_SAFE, 3 POLY_1271.
        page_size: Gamma ``/events`` page size (``limit``); pages until a short page.
        max_events: stop discovery after this many events (None: all).
        event_filters: extra Gamma query parameters (e.g. ``{tag_id = "100381"}``).
        books_batch_size: token ids per ``POST /books`` request.
        tokens_per_ws_connection: websocket sharding; one connection per this many tokens.
        ws_ping_interval_s: the text ``PING`` keep-alive the venue expects (10 s).
        ws_stale_after_s: no frame for this long marks the connection's books stale.
        reconnect_min_s / reconnect_max_s: bounds of the jittered exponential backoff.
        request_timeout_s: HTTP timeout.
        default_fee_rate / default_fee_exponent: fee curve for markets whose Gamma payload
            has no ``feeSchedule`` (fee per share = rate * (p * (1 - p)) ** exponent).
        fee_rate_override: when set, replaces every market's fee rate (stress tests).
        heartbeat_interval_s: dead-man's-switch heartbeat period while orders rest.
        rpc_url: Polygon JSON-RPC endpoint for redemption / conversion transactions.
        neg_risk_adapter: NegRiskAdapter address (None: py-clob-client-v2's for the chain).
        collateral: collateral token for CTF redemption (None: py-clob-client-v2's pUSD).
        verify_book_hash: check each REST/websocket book snapshot's ``hash``.
        settlement_poll_s: how often ``stream()`` asks Gamma (``GET /markets?condition_ids=``)
            whether a followed market has resolved; each resolution becomes ``Settlement``
            events (1 / 0 per token, 0.5 for a 50-50).  0 disables the poll (the websocket's
            ``market_resolved`` still settles).
        end_when_resolved: end ``stream()`` once every followed token has settled (nothing is
            left to trade; a run over a fixed set of markets then finishes by itself).
        trades_poll_s: how often ``executions()`` polls ``GET /data/trades`` (live mode).
        trades_lookback_s: how far back the first ``GET /data/trades`` poll looks.
    """

    gamma_url: str = attrs.field(default=C.GAMMA_URL, validator=_url)
    clob_url: str = attrs.field(default=C.CLOB_URL, validator=_url)
    ws_url: str = attrs.field(default=C.WS_MARKET_URL, validator=_url)
    chain_id: int = attrs.field(default=C.POLYGON,
                                validator=attrs.validators.in_((C.POLYGON, C.AMOY)))
    private_key: Secret | None = None
    api_key: Secret | None = None
    api_secret: Secret | None = None
    api_passphrase: Secret | None = None
    funder: str | None = None
    signature_type: int = attrs.field(default=0, validator=attrs.validators.in_((0, 1, 2, 3)))
    page_size: int = attrs.field(default=100, validator=[attrs.validators.ge(1),
                                                         attrs.validators.le(C.GAMMA_MAX_PAGE)])
    max_events: int | None = None
    event_filters: dict[str, str] = attrs.Factory(dict)
    books_batch_size: int = attrs.field(default=C.BOOKS_BATCH,
                                        validator=[attrs.validators.ge(1),
                                                   attrs.validators.le(C.BOOKS_BATCH)])
    tokens_per_ws_connection: int = attrs.field(default=500, validator=attrs.validators.ge(1))
    ws_ping_interval_s: float = attrs.field(default=10.0, validator=_positive)
    ws_stale_after_s: float = attrs.field(default=30.0, validator=_positive)
    reconnect_min_s: float = attrs.field(default=0.5, validator=_positive)
    reconnect_max_s: float = attrs.field(default=30.0, validator=_positive)
    request_timeout_s: float = attrs.field(default=10.0, validator=_positive)
    default_fee_rate: Decimal = Decimal("0")
    default_fee_exponent: Decimal = Decimal("1")
    fee_rate_override: Decimal | None = None
    heartbeat_interval_s: float = attrs.field(default=5.0, validator=_positive)
    rpc_url: str = attrs.field(default=C.POLYGON_RPC_URL, validator=_url)
    neg_risk_adapter: str | None = None
    collateral: str | None = None
    verify_book_hash: bool = True
    settlement_poll_s: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    end_when_resolved: bool = True
    trades_poll_s: float = attrs.field(default=2.0, validator=_positive)
    trades_lookback_s: int = attrs.field(default=3600, validator=attrs.validators.ge(0))

    def __attrs_post_init__(self) -> None:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must be <= reconnect_max_s")
        if self.default_fee_rate < 0 or self.default_fee_exponent < 0:
            raise ValueError("default_fee_rate and default_fee_exponent must be >= 0")
        creds = (self.api_key, self.api_secret, self.api_passphrase)
        if any(c is not None for c in creds) and not all(c is not None for c in creds):
            raise ValueError("api_key, api_secret and api_passphrase go together: set all three "
                             "or none (then they are derived from private_key)")
