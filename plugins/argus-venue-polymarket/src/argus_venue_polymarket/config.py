"""``[plugins.polymarket]`` settings, validated into :class:`PolymarketSettings`.

Every endpoint is configurable so the venue can be pointed at a local server
(tests, the offline example's replay server).  Credentials are secret
*references* (``$env:POLY_PRIVATE_KEY``), never values.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from argus_core import Secret
from argus_venue_polymarket import constants as C


def _url(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if not value.startswith(("http://", "https://", "ws://", "wss://")):
        raise ValueError(f"{attribute.name}: {value!r} is not an http(s):// or ws(s):// URL")


Number = int | float | Decimal


def _range(low: Number, high: Number, *, low_open: bool = False,
           optional: bool = False) -> Callable[[object, attrs.Attribute, Any], None]:
    """An attrs validator: ``low <= value <= high`` (``low < value`` with ``low_open``); the
    error names the key and the allowed range, so a bad config says what to write."""
    def check(instance: object, attribute: attrs.Attribute, value: Any) -> None:
        if value is None and optional:
            return
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise ValueError(f"{attribute.name}: must be a number, got {value!r}")
        left = "(" if low_open else "["
        if value != value:  # NaN compares unequal to itself (and a Decimal NaN raises on <)
            raise ValueError(f"{attribute.name}: must be in {left}{low}, {high}], got NaN")
        if (value <= low if low_open else value < low) or value > high:
            raise ValueError(f"{attribute.name}: must be in {left}{low}, {high}], got {value!r}")
    return check


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
            left to trade; a run over a fixed set of markets then finishes by itself).  A
            run that follows markets listed later (rolling up/down markets) sets it false.
        discovery_poll_s: how often ``stream()`` runs discovery again to follow markets
            listed after the start (and learn of markets that stopped taking orders); a
            ``new_market`` frame of the market channel asks for its event at once (at
            most every 5 s).
            0 disables it: the markets followed are those discovered at the start.
        trades_poll_s: how often ``executions()`` polls ``GET /data/trades`` (live mode)
            while the user channel is down (or off).
        user_channel: live mode follows the CLOB's authenticated websocket user channel
            (``trade`` and ``order`` events: fills at once); the trades poll stays as the
            reconciler.
        user_ws_url: the user channel's URL; None: ``ws_url`` with its ``/ws/market`` path
            replaced by ``/ws/user`` (a ``ws_url`` without that path needs it set).
        trades_reconcile_s: how often ``GET /data/trades`` runs while the user channel is up
            (it also runs after every (re)connect); None: 15 x ``trades_poll_s`` (30 s).
        trades_lookback_s: how far back the first ``GET /data/trades`` poll looks (after a
            restart: from the newest booked fill, if that is older).
        order_settle_s: after an ambiguous order post (timeout, lost or malformed answer, 5xx,
            429, reset) the venue is asked for the order (by its hash, open orders, trades)
            for up to this long before deciding; the venue may act late or list it late.
        order_lookup_interval_s: the pause between those look-ups.
        order_max_attempts: sends of one signed order at most; a re-send happens only when
            the venue provably never saw the previous one (see ``execution``).
        order_give_up_s: an order whose outcome stayed unknown (``OrderUnknown``) is looked
            for by ``executions()`` this long; then it is reported CANCELLED as never placed.
        conditional_tokens: ConditionalTokens (CTF) address (None: py-clob-client-v2's for
            the chain); with ``neg_risk_adapter`` and ``collateral``, what redemption calls.
        redeem: live mode redeems resolved positions on chain (see ``redemption``); paper and
            replay record the same payouts as ``simulated``.
        redeem_delay_s: wait this long after a market's first settlement fill before redeeming,
            so every token of the resolution goes into one transaction.
        redeem_poll_s: how often the worker asks the chain for a receipt, or whether a
            condition the venue reported resolved has its payouts on chain yet.
        redeem_receipt_timeout_s: a sent transaction with no receipt after this long is
            replaced (same nonce, fees bumped by ``redeem_fee_bump``).
        redeem_resolve_timeout_s: give up (a ``failed`` row) when the condition's payouts are
            still not on chain this long after the venue reported the resolution.
        redeem_max_attempts: signed transactions per redemption at most (retries after nonce,
            underpriced-replacement and gas errors, and replacements, included).
        redeem_fee_bump: fee multiplier per retry after an underpriced / fee / stuck answer
            (at least 1.1: nodes refuse a replacement under +10 %).
        redeem_max_fee_gwei: cap on ``maxFeePerGas``; a retry that would exceed it fails the
            redemption instead.
        redeem_gas_margin: gas limit = estimate x this (x 1.25 more after a gas-limit error).
        redeem_shutdown_wait_s: at the end of a run, wait this long for redemptions under
            way; what is left is resumed at the next start of the run.

    Every numeric setting is range-checked; the error names the key and the range.
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
    page_size: int = attrs.field(default=100, validator=_range(1, C.GAMMA_MAX_PAGE))
    max_events: int | None = attrs.field(default=None,
                                         validator=_range(1, 1_000_000, optional=True))
    event_filters: dict[str, str] = attrs.Factory(dict)
    books_batch_size: int = attrs.field(default=C.BOOKS_BATCH, validator=_range(1, C.BOOKS_BATCH))
    tokens_per_ws_connection: int = attrs.field(default=500, validator=_range(1, 10_000))
    ws_ping_interval_s: float = attrs.field(default=10.0, validator=_range(0, 60, low_open=True))
    ws_stale_after_s: float = attrs.field(default=30.0, validator=_range(0, 600, low_open=True))
    reconnect_min_s: float = attrs.field(default=0.5, validator=_range(0, 60, low_open=True))
    reconnect_max_s: float = attrs.field(default=30.0, validator=_range(0, 3600, low_open=True))
    request_timeout_s: float = attrs.field(default=10.0, validator=_range(0, 120, low_open=True))
    default_fee_rate: Decimal = attrs.field(default=Decimal("0"), validator=_range(0, 1))
    default_fee_exponent: Decimal = attrs.field(default=Decimal("1"), validator=_range(0, 10))
    fee_rate_override: Decimal | None = attrs.field(default=None,
                                                    validator=_range(0, 1, optional=True))
    heartbeat_interval_s: float = attrs.field(default=5.0, validator=_range(0, 60, low_open=True))
    rpc_url: str = attrs.field(default=C.POLYGON_RPC_URL, validator=_url)
    neg_risk_adapter: str | None = None
    collateral: str | None = None
    verify_book_hash: bool = True
    settlement_poll_s: float = attrs.field(default=30.0, validator=_range(0, 86_400))
    end_when_resolved: bool = True
    discovery_poll_s: float = attrs.field(default=60.0, validator=_range(0, 86_400))
    trades_poll_s: float = attrs.field(default=2.0, validator=_range(0, 300, low_open=True))
    user_channel: bool = True
    user_ws_url: str | None = attrs.field(default=None, validator=attrs.validators.optional(_url))
    trades_reconcile_s: float | None = attrs.field(
        default=None, validator=_range(0, 3600, low_open=True, optional=True))
    trades_lookback_s: int = attrs.field(default=3600, validator=_range(0, 30 * 86_400))
    order_settle_s: float = attrs.field(default=5.0, validator=_range(0, 120, low_open=True))
    order_lookup_interval_s: float = attrs.field(default=0.5,
                                                 validator=_range(0, 10, low_open=True))
    order_max_attempts: int = attrs.field(default=3, validator=_range(1, 10))
    order_give_up_s: float = attrs.field(default=300.0, validator=_range(0, 86_400, low_open=True))
    conditional_tokens: str | None = None
    redeem: bool = True
    redeem_delay_s: float = attrs.field(default=2.0, validator=_range(0, 3600))
    redeem_poll_s: float = attrs.field(default=2.0, validator=_range(0, 300, low_open=True))
    redeem_receipt_timeout_s: float = attrs.field(default=180.0,
                                                  validator=_range(0, 86_400, low_open=True))
    redeem_resolve_timeout_s: float = attrs.field(default=6 * 3600.0,
                                                  validator=_range(0, 30 * 86_400))
    redeem_max_attempts: int = attrs.field(default=5, validator=_range(1, 20))
    redeem_fee_bump: Decimal = attrs.field(default=Decimal("1.25"),
                                           validator=_range(Decimal("1.1"), 10))
    redeem_max_fee_gwei: Decimal = attrs.field(default=Decimal("1000"),
                                               validator=_range(0, 1_000_000, low_open=True))
    redeem_gas_margin: Decimal = attrs.field(default=Decimal("1.2"), validator=_range(1, 10))
    redeem_shutdown_wait_s: float = attrs.field(default=120.0, validator=_range(0, 3600))

    def user_channel_url(self) -> str | None:
        """Where the user channel is: ``user_ws_url``, else ``ws_url`` with ``/ws/market``
        replaced by ``/ws/user``; None when neither says (or ``user_channel`` is off)."""
        if not self.user_channel:
            return None
        if self.user_ws_url:
            return self.user_ws_url
        base = self.ws_url.rstrip("/")
        return base[: -len("/ws/market")] + "/ws/user" if base.endswith("/ws/market") else None

    def reconcile_interval_s(self) -> float:
        """The trades poll's interval while the user channel is up."""
        return self.trades_reconcile_s if self.trades_reconcile_s is not None else \
            15 * self.trades_poll_s

    def __attrs_post_init__(self) -> None:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must be <= reconnect_max_s")
        creds = (self.api_key, self.api_secret, self.api_passphrase)
        if any(c is not None for c in creds) and not all(c is not None for c in creds):
            raise ValueError("api_key, api_secret and api_passphrase go together: set all three "
                             "or none (then they are derived from private_key)")
