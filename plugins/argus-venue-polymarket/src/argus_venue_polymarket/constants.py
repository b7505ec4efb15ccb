"""Polymarket constants: endpoints, contract addresses, ABI fragments, protocol limits.

Contract addresses are read from py-clob-client-v2 (``get_contract_config``)
wherever that package has them, so a Polymarket redeploy is a dependency bump,
not an edit here.  The NegRiskAdapter address is the one py-clob-client-v2 and
Polymarket's ``neg-risk-ctf-adapter`` ``addresses.json`` both list for Polygon.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

VENUE: Final = "polymarket"

GAMMA_URL: Final = "https://gamma-api.polymarket.com"
CLOB_URL: Final = "https://clob.polymarket.com"
WS_MARKET_URL: Final = "wss://ws-subscriptions-clob.polymarket.com/ws/market"
#: The authenticated user channel (this account's trades and orders).
WS_USER_URL: Final = "wss://ws-subscriptions-clob.polymarket.com/ws/user"
POLYGON_RPC_URL: Final = "https://polygon-rpc.com"

POLYGON: Final = 137
AMOY: Final = 80002

#: Gamma caps ``limit`` per page; larger values are silently truncated by the server.
GAMMA_MAX_PAGE: Final = 500
#: The most Gamma ``/events`` pages one discovery reads (``page_size`` each): past it the
#: listing is taken for one that never ends (a ``DataError``), never read for ever.
GAMMA_MAX_EVENT_PAGES: Final = 1000
#: Batch size for ``POST /books`` (the venue answers up to this many books per call).
BOOKS_BATCH: Final = 500

#: Outcome share and collateral (pUSD / USDC.e) amounts carry 6 decimals on chain.
TOKEN_DECIMALS: Final = 6
#: Order sizes are rounded to 2 decimals by the CLOB client (``RoundConfig.size``).
SIZE_DECIMALS: Final = 2
LOT_SIZE: Final = Decimal("0.01")

#: Tick sizes py-clob-client-v2 knows how to round for (``ROUNDING_CONFIG``).
KNOWN_TICK_SIZES: Final = ("0.1", "0.01", "0.005", "0.0025", "0.001", "0.0001")

ZERO_BYTES32: Final = "0x" + "00" * 32

#: Placeholder outcome titles used by augmented negRisk events before an outcome is named.
PLACEHOLDER_TITLE_PATTERN: Final = (
    r"^(?:other|person|player|team|candidate|option|company|country|party|individual|"
    r"movie|song|artist|club|nominee|model|coin|token)\s*[A-Z0-9]{0,3}$"
)

# --- ABI fragments used by settlement.py (only the functions we call) -------------------------
# Checked against the contracts' sources (see tests/fixtures/SOURCES.md): gnosis
# conditional-tokens-contracts ``contracts/ConditionalTokens.sol`` and Polymarket
# neg-risk-ctf-adapter ``src/NegRiskAdapter.sol``; tests recompute every selector.

#: gnosis ConditionalTokens: redeemPositions (selector 0x01b7037c), the ERC1155 balance and
#: approval, the resolution (payout vector) and the PayoutRedemption event.
CTF_ABI: Final = [
    {
        "name": "redeemPositions",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [
            {"name": "collateralToken", "type": "address"},
            {"name": "parentCollectionId", "type": "bytes32"},
            {"name": "conditionId", "type": "bytes32"},
            {"name": "indexSets", "type": "uint256[]"},
        ],
        "outputs": [],
    },
    {
        "name": "balanceOf",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}, {"name": "id", "type": "uint256"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {  # public mapping(bytes32 => uint) getter: non-zero once the condition has resolved
        "name": "payoutDenominator",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "", "type": "bytes32"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {  # public mapping(bytes32 => uint[]) getter: (conditionId, outcome index)
        "name": "payoutNumerators",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "", "type": "bytes32"}, {"name": "", "type": "uint256"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {  # ERC1155: the NegRiskAdapter pulls the position tokens, so it must be approved
        "name": "isApprovedForAll",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}, {"name": "operator", "type": "address"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "name": "PayoutRedemption",
        "type": "event",
        "anonymous": False,
        "inputs": [
            {"name": "redeemer", "type": "address", "indexed": True},
            {"name": "collateralToken", "type": "address", "indexed": True},
            {"name": "parentCollectionId", "type": "bytes32", "indexed": True},
            {"name": "conditionId", "type": "bytes32", "indexed": False},
            {"name": "indexSets", "type": "uint256[]", "indexed": False},
            {"name": "payout", "type": "uint256", "indexed": False},
        ],
    },
]

#: Polymarket NegRiskAdapter: redeemPositions (0xdbeccb23), convertPositions (0xc64748c4) and
#: its PayoutRedemption event.
NEG_RISK_ADAPTER_ABI: Final = [
    {
        "name": "redeemPositions",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [
            {"name": "_conditionId", "type": "bytes32"},
            {"name": "_amounts", "type": "uint256[]"},
        ],
        "outputs": [],
    },
    {
        "name": "convertPositions",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [
            {"name": "_marketId", "type": "bytes32"},
            {"name": "_indexSet", "type": "uint256"},
            {"name": "_amount", "type": "uint256"},
        ],
        "outputs": [],
    },
    {
        "name": "PayoutRedemption",
        "type": "event",
        "anonymous": False,
        "inputs": [
            {"name": "redeemer", "type": "address", "indexed": True},
            {"name": "conditionId", "type": "bytes32", "indexed": True},
            {"name": "amounts", "type": "uint256[]", "indexed": False},
            {"name": "payout", "type": "uint256", "indexed": False},
        ],
    },
]

REDEEM_CTF_SELECTOR: Final = "0x01b7037c"
REDEEM_NEG_RISK_SELECTOR: Final = "0xdbeccb23"
