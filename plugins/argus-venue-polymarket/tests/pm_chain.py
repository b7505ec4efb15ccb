"""A local chain for redemption tests: eth-tester (py-evm) behind web3, with the contracts
redemption calls deployed from ``contracts/*.vy`` (Vyper, compiled here: the real functions'
signatures, revert strings and payout rules; see ``fixtures/SOURCES.md``) and scripted
refusals of ``eth_sendRawTransaction`` with the node's own messages.

Loaded by path (the suite imports test modules with ``--import-mode=importlib``) through
the ``local_chain`` fixture in ``conftest.py``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.testing import HARDHAT_ADDRESS, HARDHAT_KEY
from eth_account import Account
from web3 import EthereumTesterProvider, Web3

from argus_core import Instrument, Secret

CONTRACTS = Path(__file__).parent / "contracts"
UNIT = 10 ** 6


@functools.cache
def compiled(name: str) -> tuple[list[dict[str, Any]], str]:
    """(abi, bytecode) of ``contracts/<name>.vy``: compiled by Vyper, cached in the temp
    directory under the source's and the compiler's hash (compiling takes seconds)."""
    import vyper
    from vyper.compiler import compile_code

    source = (CONTRACTS / f"{name}.vy").read_text()
    key = hashlib.sha256(f"{vyper.__version__}\n{source}".encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / f"argus-pm-vyper-{name}-{key}.json"
    if cache.exists():
        abi, bytecode = json.loads(cache.read_text())
        return abi, bytecode
    out = compile_code(source, output_formats=["abi", "bytecode"])
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps([out["abi"], out["bytecode"]]))
    tmp.replace(cache)  # atomic: parallel workers never read half a file
    return out["abi"], out["bytecode"]


#: A node refusal: the JSON-RPC error message, and what happens first (e.g. another
#: transaction takes the nonce).
Fault = tuple[str, Callable[[], None] | None]


class ScriptedProvider(EthereumTesterProvider):
    """eth-tester whose ``eth_sendRawTransaction`` answers the queued faults first, as a
    node does (a JSON-RPC error object), then sends for real.  ``sent`` counts the raw
    transactions that reached the chain; ``drop_sends`` accepts and forgets them (a node
    that lost the transaction: the process never learns)."""

    def __init__(self) -> None:
        super().__init__()
        self.faults: list[Fault] = []
        self.sent: list[str] = []
        #: method -> how many more calls fail as if the connection dropped
        self.down: dict[str, int] = {}

    def make_request(self, method: Any, params: Any) -> Any:
        if self.down.get(method, 0) > 0:
            self.down[method] -= 1
            raise ConnectionError(f"connection refused ({method})")
        if method == "eth_sendRawTransaction":
            if self.faults:
                message, before = self.faults.pop(0)
                if before is not None:
                    before()
                return {"jsonrpc": "2.0", "id": 1,
                        "error": {"code": -32000, "message": message}}
            self.sent.append(str(params[0]))
        return super().make_request(method, params)


class LocalChain:
    """Collateral, WrappedCollateral, ConditionalTokens and NegRiskAdapter on eth-tester;
    the Hardhat throwaway key's address holds the positions and redeems them."""

    def __init__(self) -> None:
        self.provider = ScriptedProvider()
        self.w3 = Web3(self.provider)
        self.tester = self.provider.ethereum_tester
        self.deployer = self.w3.eth.accounts[0]
        self.owner = HARDHAT_ADDRESS
        self.tester.add_account(HARDHAT_KEY)
        self.w3.eth.send_transaction({"from": self.deployer, "to": self.owner,
                                      "value": 10 ** 19})
        self.col = self.deploy("Token", "0x" + "00" * 20)
        self.wcol = self.deploy("Token", self.col.address)
        self.ctf = self.deploy("ConditionalTokens")
        self.adapter = self.deploy("NegRiskAdapter", self.ctf.address, self.wcol.address)

    def deploy(self, name: str, *args: Any) -> Any:
        abi, bytecode = compiled(name)
        factory = self.w3.eth.contract(abi=abi, bytecode=bytecode)
        tx = factory.constructor(*args).transact({"from": self.deployer})
        address = self.w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
        return self.w3.eth.contract(address=address, abi=abi)

    def transact(self, call: Any, sender: str | None = None) -> Any:
        tx = call.transact({"from": sender or self.deployer})
        return self.w3.eth.wait_for_transaction_receipt(tx)

    def settings(self, **overrides: Any) -> PolymarketSettings:
        """Venue settings pointing redemption at this chain's contracts (key by ``$env``)."""
        base: dict[str, Any] = {
            "private_key": Secret("$env:PM_CHAIN_KEY"),
            "conditional_tokens": self.ctf.address, "neg_risk_adapter": self.adapter.address,
            "collateral": self.col.address, "redeem_delay_s": 0.0, "redeem_poll_s": 0.02,
            "redeem_receipt_timeout_s": 2.0, "redeem_shutdown_wait_s": 10.0}
        return PolymarketSettings(**(base | overrides))

    # -- markets ---------------------------------------------------------------------

    def market(self, condition: str, yes: str, no: str, held: dict[str, Decimal], *,
               neg_risk: bool, approve: bool = True) -> dict[str, Instrument]:
        """Prepare a binary condition (YES / NO position ids), back it with collateral and
        give the owner ``held`` shares; returns the venue's instruments of both tokens."""
        cond = bytes.fromhex(condition.removeprefix("0x"))
        backing = self.wcol if neg_risk else self.col
        self.transact(self.ctf.functions.prepareCondition(backing.address, cond,
                                                          [int(yes), int(no)]))
        units = sum(int(q * UNIT) for q in held.values())
        self.transact(backing.functions.mint(self.ctf.address, units))
        if neg_risk:
            self.transact(self.adapter.functions.registerCondition(cond, int(yes), int(no)))
            self.transact(self.col.functions.mint(self.wcol.address, units))
            if approve:
                self.transact(self.ctf.functions.setApprovalForAll(self.adapter.address, True),
                              self.owner)
        for token, qty in held.items():
            self.transact(self.ctf.functions.mint(self.owner, int(token), int(qty * UNIT)))
        return {f"polymarket:{t}": Instrument("polymarket", t, kind="binary", meta={
            "condition_id": condition, "neg_risk": neg_risk, "is_yes": t == yes,
            "tradeable": True}) for t in (yes, no)}

    def resolve(self, condition: str, payouts: list[int]) -> None:
        """The oracle reports the payout vector (YES, NO)."""
        self.transact(self.ctf.functions.reportPayouts(
            bytes.fromhex(condition.removeprefix("0x")), payouts))

    # -- what the chain says ---------------------------------------------------------

    def collateral(self) -> Decimal:
        """The owner's collateral balance (pUSD)."""
        return Decimal(self.col.functions.balanceOf(self.owner).call()) / UNIT

    def shares(self, token: str) -> Decimal:
        """The owner's position tokens."""
        return Decimal(self.ctf.functions.balanceOf(self.owner, int(token)).call()) / UNIT

    def redeem_transactions(self) -> list[Any]:
        """Mined transactions of the owner to the CTF or the adapter (redemptions)."""
        out = []
        targets = {self.ctf.address, self.adapter.address}
        for n in range(self.w3.eth.block_number + 1):
            for tx_hash in self.w3.eth.get_block(n)["transactions"]:
                tx = self.w3.eth.get_transaction(tx_hash)
                if tx["from"] == self.owner and tx["to"] in targets and \
                        bytes(tx["input"])[:4].hex() in ("01b7037c", "dbeccb23"):
                    out.append(tx)
        return out

    def burn_nonce(self) -> None:
        """Another transaction of the owner takes its next nonce (a self-transfer)."""
        nonce = self.w3.eth.get_transaction_count(self.owner, "pending")
        signed = Account.sign_transaction({
            "to": self.owner, "value": 1, "gas": 21_000, "nonce": nonce,
            "maxFeePerGas": 10 ** 10, "maxPriorityFeePerGas": 10 ** 9,
            "chainId": self.w3.eth.chain_id}, HARDHAT_KEY)
        EthereumTesterProvider.make_request(self.provider, "eth_sendRawTransaction",
                                            ["0x" + bytes(signed.raw_transaction).hex()])
