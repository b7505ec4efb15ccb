"""Kraken's fixed facts: endpoints, asset aliases, rate-limit tiers, fee tiers, error codes.

Sources (public Kraken documentation, see the plugin README):
REST rate limits (docs.kraken.com/api/docs/guides/spot-rest-ratelimits), trading
engine limits (support article 360045239571), WebSocket v2 book channel and
checksum guide, the Kraken Pro fee schedule.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

VENUE: Final = "kraken"

REST_URL: Final = "https://api.kraken.com"
WS_URL: Final = "wss://ws.kraken.com/v2"
WS_AUTH_URL: Final = "wss://ws-auth.kraken.com/v2"

PUBLIC_PREFIX: Final = "/0/public/"
PRIVATE_PREFIX: Final = "/0/private/"

#: Depths the v2 ``book`` channel accepts.
BOOK_DEPTHS: Final = (10, 25, 100, 500, 1000)
#: The checksum always covers the top 10 levels per side, whatever the depth.
CHECKSUM_LEVELS: Final = 10
#: OHLC intervals (minutes) REST and WS v2 accept.
OHLC_INTERVALS_MIN: Final = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
#: Public channels the venue stream knows how to normalise.
PUBLIC_CHANNELS: Final = ("book", "ticker", "trade", "ohlc")

#: Legacy X/Z-prefixed asset codes (REST ``base``/``quote`` and pair keys like XXBTZUSD).
LEGACY_ASSETS: Final = {
    "XETC": "ETC", "XETH": "ETH", "XLTC": "LTC", "XMLN": "MLN", "XREP": "REP",
    "XXBT": "BTC", "XXDG": "DOGE", "XXLM": "XLM", "XXMR": "XMR", "XXRP": "XRP",
    "XZEC": "ZEC", "ZAUD": "AUD", "ZCAD": "CAD", "ZEUR": "EUR", "ZGBP": "GBP",
    "ZJPY": "JPY", "ZUSD": "USD",
}
#: Kraken's own names for assets that the rest of the world (and WS v2) spells differently.
ASSET_ALIASES: Final = {"XBT": "BTC", "XDG": "DOGE"}
#: Reverse: the spelling REST ``altname``s use.
REST_ASSET_NAMES: Final = {"BTC": "XBT", "DOGE": "XDG"}

#: REST call counter per verification tier: (max counter, decay per second).
REST_RATE_TIERS: Final = {
    "starter": (15.0, 0.33),
    "intermediate": (20.0, 0.5),
    "pro": (20.0, 1.0),
}
#: Ledger / trade-history calls cost 2, every other private call 1 (AddOrder and
#: CancelOrder count on the trading-engine limiter instead).
REST_CALL_COST: Final = {"TradesHistory": 2, "QueryTrades": 2, "Ledgers": 2, "QueryLedgers": 2}
REST_EXEMPT: Final = frozenset({"AddOrder", "CancelOrder", "CancelAll", "CancelAllOrdersAfter",
                                "AddOrderBatch", "EditOrder", "AmendOrder"})

#: Trading-engine counter per pair: (threshold, decay per second).
TRADING_RATE_TIERS: Final = {
    "starter": (60.0, 1.0),
    "intermediate": (125.0, 2.34),
    "pro": (180.0, 3.75),
}
#: Cancel penalty by resting age (seconds, upper bound exclusive) -> counter points.
CANCEL_PENALTY: Final = ((5.0, 8.0), (10.0, 6.0), (15.0, 5.0), (45.0, 4.0), (90.0, 2.0),
                         (300.0, 1.0))

#: Kraken Pro spot fee schedule above the base tier: (30-day USD volume, maker bps, taker bps).
#: The base tier (below $10,000) is the settings' maker_bps / taker_bps (25 / 40).
DEFAULT_FEE_TIERS: Final = (
    (Decimal(10_000), Decimal(20), Decimal(35)),
    (Decimal(50_000), Decimal(14), Decimal(24)),
    (Decimal(100_000), Decimal(12), Decimal(22)),
    (Decimal(250_000), Decimal(10), Decimal(20)),
    (Decimal(500_000), Decimal(8), Decimal(18)),
    (Decimal(1_000_000), Decimal(6), Decimal(16)),
    (Decimal(5_000_000), Decimal(4), Decimal(14)),
    (Decimal(10_000_000), Decimal(2), Decimal(12)),
    (Decimal(100_000_000), Decimal(0), Decimal(10)),
)

#: Error codes that mean "the request was refused, nothing happened; try again later".
RATE_LIMIT_ERRORS: Final = ("EAPI:Rate limit exceeded", "EOrder:Rate limit exceeded",
                            "EService:Throttled", "EGeneral:Too many requests")
NONCE_ERRORS: Final = ("EAPI:Invalid nonce",)
#: Transient server-side conditions worth a retry for idempotent calls.
RETRYABLE_ERRORS: Final = ("EService:Unavailable", "EService:Busy", "EGeneral:Temporary lockout")

#: AddOrder refusals Kraken documents as "the request was not processed" (authentication,
#: validation, funds, market state): the order provably does not exist, so it is rejected
#: without a look-up.  Every other failure of an AddOrder (HTTP 5xx, timeouts, resets,
#: unreadable bodies, ``EService:Unavailable`` / ``Busy`` / ``Deadline elapsed``,
#: ``EGeneral:Internal error``, rate limits, codes not listed here) is ambiguous and is
#: resolved by looking the order up by ``cl_ord_id`` (see ``execution``).
ORDER_NOT_PLACED_ERRORS: Final = (
    "EAPI:Invalid key", "EAPI:Invalid signature", "EAPI:Invalid nonce", "EAPI:Bad request",
    "EAPI:Feature disabled", "EGeneral:Invalid arguments", "EGeneral:Permission denied",
    "EGeneral:Temporary lockout", "EAccount:Invalid permissions", "EAuth:Account temporary "
    "disabled", "EAuth:Account unconfirmed", "EQuery:Unknown asset pair",
    "EOrder:Insufficient funds", "EOrder:Insufficient margin", "EOrder:Order minimum not met",
    "EOrder:Cost minimum not met", "EOrder:Tick size check failed", "EOrder:Invalid price",
    "EOrder:Orders limit exceeded", "EOrder:Positions limit exceeded",
    "EOrder:Margin allowance exceeded", "EOrder:Trading agreement required",
    "EService:Market in cancel_only mode", "EService:Market in post_only mode",
)

#: What to tell the user for the common error codes.
ERROR_REMEDIES: Final = {
    "EAPI:Invalid key": "check api_key in [plugins.kraken] points at the right key",
    "EAPI:Invalid signature": "check api_secret is the base64 private key of that API key",
    "EAPI:Invalid nonce": "another client may share this API key; give each process the same "
                          "nonce_path or raise the key's nonce window",
    "EAPI:Rate limit exceeded": "slow down; lower the request rate or set rate_limit_tier to "
                                "your account's verification tier",
    "EGeneral:Invalid arguments": "the request's parameters were refused; check pair, volume "
                                  "and price against the pair's lot and tick size",
    "EGeneral:Permission denied": "the API key lacks the permission for this call",
    "EOrder:Insufficient funds": "the account balance does not cover this order",
    "EOrder:Order minimum not met": "the volume is below the pair's ordermin",
    "EQuery:Unknown asset pair": "the pair name is not a Kraken pair; see AssetPairs",
}

#: Client order ids: free text of at most 18 characters, or a UUID.
CL_ORD_ID_FREE_TEXT_MAX: Final = 18

#: CancelAllOrdersAfter ``timeout``: whole seconds, "less than 86400" (Kraken's docs); 0
#: disarms.  Kraken recommends a 60 s timeout re-armed every 15 to 30 s.
DEAD_MAN_MAX_S = 86399
#: Our floor for an armed switch: it is re-armed every quarter of the timeout and Kraken's
#: trigger time has whole-second precision, so a few seconds left no room for a slow
#: re-arm (1-4 s was accepted and re-armed about once per timeout).
DEAD_MAN_MIN_S = 10
#: Re-arms per timeout (Kraken: every 15 s for a 60 s timeout): three more tries fall
#: inside every countdown.
DEAD_MAN_REARMS = 4
