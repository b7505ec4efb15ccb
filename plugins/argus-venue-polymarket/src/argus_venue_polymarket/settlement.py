"""On-chain settlement: redeem resolved positions and convert negRisk NO -> YES with web3.

Transactions are *built*, gas-estimated and *signed* locally; only
:meth:`SettlementClient.send` touches the network, and only in live mode.

* Binary (non-negRisk) markets redeem on the gnosis ConditionalTokens
  contract: ``redeemPositions(collateral, parentCollectionId=0, conditionId,
  indexSets=[1, 2])``.
* negRisk markets redeem through Polymarket's NegRiskAdapter:
  ``redeemPositions(conditionId, [yesAmount, noAmount])``.
* ``convertPositions(marketId, indexSet, amount)`` turns ``amount`` NO shares
  of each question in ``indexSet`` (bit i = question i) into YES shares of
  every other question plus (m - 1) x amount collateral.

Paper and backtest runs settle through the same ``Settlement`` market events
(price 1 for the winning token, 0 for the others) that the websocket's
``market_resolved`` produces live, so resolved markets close the same way in
every mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast

import attrs
from eth_account import Account
from eth_typing import ChecksumAddress
from py_clob_client_v2.config import get_contract_config
from web3 import Web3
from web3.exceptions import ContractLogicError

from argus_core import ConfigError, Instrument, Settlement, VenueError
from argus_venue_polymarket import constants as C
from argus_venue_polymarket.config import PolymarketSettings

_UNIT = Decimal(10) ** C.TOKEN_DECIMALS


def _bytes32(value: str, what: str) -> bytes:
    raw = value.removeprefix("0x")
    if len(raw) != 64:
        raise VenueError(f"polymarket: {what} {value!r} is not a 32-byte hex value")
    return bytes.fromhex(raw)


def to_base_units(amount: Decimal) -> int:
    """Shares / collateral -> 6-decimal integer units (exact, or ``VenueError``)."""
    units = amount * _UNIT
    if units != units.to_integral_value():
        raise VenueError(f"polymarket: amount {amount} has more than {C.TOKEN_DECIMALS} decimals")
    return int(units)


@attrs.frozen
class RedemptionPlan:
    """One redemption for a resolved market."""

    contract: str  # "ctf" | "neg_risk_adapter"
    condition_id: str
    amounts: tuple[int, int] = (0, 0)  # negRisk: (yes, no) base units


def plan_redemptions(positions: Mapping[str, Decimal], instruments: Mapping[str, Instrument]
                     ) -> list[RedemptionPlan]:
    """Which redemptions close ``positions`` (instrument id -> shares) in resolved markets.

    One plan per condition: negRisk markets through the adapter with both
    token amounts, others through the CTF with index sets [1, 2].
    """
    by_condition: dict[str, dict[str, Any]] = {}
    for iid, qty in positions.items():
        inst = instruments.get(iid)
        if inst is None or qty <= 0:
            continue
        cond = inst.meta.get("condition_id", "")
        entry = by_condition.setdefault(cond, {"neg_risk": bool(inst.meta.get("neg_risk")),
                                               "yes": 0, "no": 0})
        entry["yes" if inst.meta.get("is_yes") else "no"] += to_base_units(qty)
    plans = []
    for cond, e in sorted(by_condition.items()):
        if e["neg_risk"]:
            plans.append(RedemptionPlan("neg_risk_adapter", cond, (e["yes"], e["no"])))
        else:
            plans.append(RedemptionPlan("ctf", cond))
    return plans


class TransactionReverted(VenueError):
    """The contract refuses the call (a revert at gas estimation); the message is the
    reason the node gave ("execution reverted: ...")."""


def is_revert(exc: BaseException) -> bool:
    """A revert: web3's ``ContractLogicError`` from a node, or eth-tester's
    ``TransactionFailed`` ("execution reverted: ...") from a local chain."""
    return isinstance(exc, ContractLogicError) or "execution reverted" in str(exc).lower()


def revert_reason(exc: BaseException) -> str:
    """The reason of a revert as the node gave it."""
    if isinstance(exc, ContractLogicError) and exc.message:
        return str(exc.message)
    return str(exc)


def settlement_events(winning_token: str, token_ids: list[str], ts_ns: int,
                      reason: str = "") -> list[Settlement]:
    """Settlement events for a resolved market: winner at 1, every other token at 0."""
    return [Settlement(f"{C.VENUE}:{t}", ts_ns, 1 if t == winning_token else 0, reason)
            for t in token_ids]


class SettlementClient:
    """Builds, estimates, signs and (live only) sends settlement transactions."""

    def __init__(self, settings: PolymarketSettings, w3: Web3 | None = None) -> None:
        self.settings = settings
        self.w3 = w3 or Web3(Web3.HTTPProvider(settings.rpc_url,
                                               request_kwargs={"timeout":
                                                               settings.request_timeout_s}))
        cfg = get_contract_config(settings.chain_id)
        self.ctf_address = Web3.to_checksum_address(settings.conditional_tokens
                                                    or cfg.conditional_tokens)
        self.adapter_address = Web3.to_checksum_address(settings.neg_risk_adapter
                                                        or cfg.neg_risk_adapter)
        self.collateral = Web3.to_checksum_address(settings.collateral or cfg.collateral)
        self.ctf = self.w3.eth.contract(address=self.ctf_address, abi=C.CTF_ABI)
        self.adapter = self.w3.eth.contract(address=self.adapter_address,
                                            abi=C.NEG_RISK_ADAPTER_ABI)

    # --- calldata (pure) ------------------------------------------------------------------

    def redeem_ctf_calldata(self, condition_id: str) -> str:
        """``redeemPositions(collateral, 0x0, conditionId, [1, 2])`` on the CTF."""
        return self.ctf.encode_abi("redeemPositions", args=[
            self.collateral, b"\x00" * 32, _bytes32(condition_id, "conditionId"), [1, 2]])

    def redeem_neg_risk_calldata(self, condition_id: str, yes_amount: int, no_amount: int
                                 ) -> str:
        """``redeemPositions(conditionId, [yes, no])`` on the NegRiskAdapter."""
        return self.adapter.encode_abi("redeemPositions", args=[
            _bytes32(condition_id, "conditionId"), [yes_amount, no_amount]])

    def convert_calldata(self, market_id: str, index_set: int, amount: int) -> str:
        """``convertPositions(marketId, indexSet, amount)``: NO of the questions in
        ``indexSet`` -> YES of the others + collateral."""
        if index_set <= 0 or amount <= 0:
            raise VenueError("polymarket: convertPositions needs a non-empty index set and a "
                             "positive amount")
        return self.adapter.encode_abi("convertPositions", args=[
            _bytes32(market_id, "negRiskMarketID"), index_set, amount])

    def calldata_for(self, plan: RedemptionPlan) -> tuple[str, str]:
        """(contract address, calldata) for a redemption plan."""
        if plan.contract == "ctf":
            return self.ctf_address, self.redeem_ctf_calldata(plan.condition_id)
        return self.adapter_address, self.redeem_neg_risk_calldata(plan.condition_id,
                                                                   *plan.amounts)

    # --- transactions ---------------------------------------------------------------------

    def _account(self) -> Any:
        if self.settings.private_key is None:
            raise ConfigError("[plugins.polymarket] private_key is not set: settlement "
                              "transactions need a signer key reference")
        return Account.from_key(self.settings.private_key.reveal())

    def signer_address(self) -> str:
        """The address of the configured signer key (the key itself is never returned)."""
        return str(self._account().address)

    def build_transaction(self, to: str, data: str, *, sender: str | None = None,
                          gas_margin: float = 1.2, nonce: int | None = None) -> dict[str, Any]:
        """A complete EIP-1559 transaction: nonce (the sender's pending count unless given),
        fees and an estimated gas limit.  A reverting call raises
        :class:`TransactionReverted` with the revert reason; other estimation failures (the
        RPC, the network) ``VenueError``."""
        sender = sender or self._account().address
        tx: dict[str, Any] = {"from": sender, "to": to, "data": data, "value": 0,
                              "chainId": self.w3.eth.chain_id}
        try:
            gas = self.w3.eth.estimate_gas(tx)  # type: ignore[arg-type]
        except Exception as exc:  # web3 raises ValueError, Web3RPCError, connection errors...
            if is_revert(exc):
                raise TransactionReverted(revert_reason(exc)) from None
            raise VenueError(f"polymarket: gas estimation for {data[:10]} on {to} failed: "
                             f"{exc}") from None
        block = self.w3.eth.get_block("latest")
        base = int(block.get("baseFeePerGas", 0) or 0)
        tip = int(self.w3.eth.max_priority_fee)
        # cast: sender is a hex address string; web3 validates it at runtime.
        if nonce is None:
            nonce = self.w3.eth.get_transaction_count(cast(ChecksumAddress, sender), "pending")
        tx.update(gas=int(gas * gas_margin), nonce=nonce,
                  maxPriorityFeePerGas=tip, maxFeePerGas=2 * base + tip)
        return tx

    def sign(self, tx: dict[str, Any], private_key: str | None = None) -> bytes:
        """Sign ``tx`` locally; returns the raw transaction bytes."""
        key = private_key or self.settings.private_key.reveal()  # type: ignore[union-attr]
        unsigned = {k: v for k, v in tx.items() if k != "from"}
        return bytes(Account.sign_transaction(unsigned, key).raw_transaction)

    @staticmethod
    def tx_hash(raw_tx: bytes) -> str:
        """The hash a signed transaction will have (keccak of its raw bytes), known before
        it is sent, so it can be recorded first."""
        return "0x" + bytes(Web3.keccak(raw_tx)).hex()

    def send(self, raw_tx: bytes) -> str:
        """Broadcast a signed transaction (live only); returns its hash."""
        return "0x" + self.w3.eth.send_raw_transaction(raw_tx).hex().removeprefix("0x")
