"""Redemption of resolved positions (``redemption.py``) on a local chain: eth-tester with the
ConditionalTokens / NegRiskAdapter functions redemption calls (``contracts/*.vy``), the
worker driven the way the run drives it (settlement fills through ``on_fill``), every step
read back from the ``pm_redemptions`` rows of a real ledger file."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argus_venue_polymarket import constants as C
from argus_venue_polymarket.redemption import Redemptions, classify_send_error, register
from argus_venue_polymarket.settlement import SettlementClient
from argus_venue_polymarket.testing import HARDHAT_ADDRESS, HARDHAT_KEY
from web3 import Web3

from argus_core import Fill, Instrument, Ledger, Liquidity, Migrations, Side

COND_A = "0x" + "a1" * 32
COND_B = "0x" + "b2" * 32
YES_A, NO_A = str(2 ** 255 + 11), str(2 ** 255 + 12)  # position ids are uint256
YES_B, NO_B = "48331043336612883890938759509493159234755048973500640148014422747788308965732", \
    "71321045679252212594626385532706912750332728571942532289631379312455583992563"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """A run ledger file with the plugin's migration set applied."""
    migrations = Migrations()
    register(migrations)
    led = Ledger(tmp_path / "argus.db", migrations)
    try:
        yield led
    finally:
        led.close()


def _fill(token: str, qty: str, price: int | str, n: int = 1) -> Fill:
    """The settlement fill the core books for a resolution (``ExecutionEngine.settle``)."""
    iid = f"polymarket:{token}"
    coid = f"settle-run1-{iid}-{n}"
    return Fill(f"{coid}-1", coid, "polymarket", iid, Side.SELL, Decimal(str(price)),
                Decimal(qty), Decimal(0), Liquidity.SETTLEMENT, 1_700_000_000_000_000_000 + n)


def _rows(ledger: Ledger, condition: str | None = None) -> list[dict[str, Any]]:
    sql = "select * from pm_redemptions"
    if condition:
        return ledger.query(sql + " where condition_id = ? order by seq", (condition,))
    return ledger.query(sql + " order by seq")


def _steps(ledger: Ledger, condition: str) -> list[str]:
    return [r["step"] for r in _rows(ledger, condition)]


def _make(chain: Any, ledger: Ledger, instruments: dict[str, Instrument], mode: str = "live",
          **settings: Any) -> Redemptions:
    s = chain.settings(**settings)
    return Redemptions(s, mode, ledger, instruments.get, lambda: SettlementClient(s, chain.w3))


def _until(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _run(r: Redemptions, *fills: Fill) -> None:
    r.start()
    for f in fills:
        r.on_fill(f)
    r.close()  # waits for what is under way (redeem_shutdown_wait_s)
    assert r.errors == []


# --- the happy paths ---------------------------------------------------------------------------

def test_a_plain_ctf_position_is_redeemed_once_and_every_step_is_a_row(
        local_chain: Any, ledger: Ledger) -> None:
    chain = local_chain
    inst = chain.market(COND_A, YES_A, NO_A, {YES_A: Decimal("150")}, neg_risk=False)
    chain.resolve(COND_A, [1, 0])
    before = chain.collateral()
    _run(_make(chain, ledger, inst), _fill(YES_A, "150", 1))

    assert chain.collateral() - before == Decimal("150")  # the payout, once
    assert chain.shares(YES_A) == 0
    (tx,) = chain.redeem_transactions()
    assert tx["to"] == chain.ctf.address and bytes(tx["input"])[:4].hex() == "01b7037c"
    _fn, args = chain.ctf.decode_function_input(tx["input"])
    assert args["indexSets"] == [1, 2] and args["collateralToken"] == chain.col.address
    rows = _rows(ledger, COND_A)
    assert [r["step"] for r in rows] == ["queued", "signed", "sent", "mined"]
    assert {r["contract"] for r in rows} == {"ctf"}
    queued, signed, sent, mined = rows
    assert json.loads(queued["tokens_json"]) == {YES_A: {"is_yes": True, "quantity": "150",
                                                         "price": "1"}}
    assert queued["fill_id"] == _fill(YES_A, "150", 1).fill_id
    assert signed["tx_hash"] == sent["tx_hash"] == mined["tx_hash"] == "0x" + bytes(
        tx["hash"]).hex()
    assert signed["nonce"] == tx["nonce"] and json.loads(signed["tokens_json"]) == {
        YES_A: 150_000_000}
    assert (Decimal(mined["payout"]), Decimal(mined["expected_payout"])) == (150, 150)
    assert mined["block_number"] == tx["blockNumber"] and mined["gas"] > 0
    # the key never reaches the ledger
    assert not any(HARDHAT_KEY[2:] in json.dumps(r) for r in _rows(ledger))


def test_a_neg_risk_position_is_redeemed_through_the_adapter_with_both_amounts(
        local_chain: Any, ledger: Ledger) -> None:
    chain = local_chain
    inst = chain.market(COND_B, YES_B, NO_B, {YES_B: Decimal("120.5"), NO_B: Decimal("30")},
                        neg_risk=True)
    chain.resolve(COND_B, [0, 1])  # NO won
    before = chain.collateral()
    _run(_make(chain, ledger, inst, redeem_delay_s=0.3),
         _fill(YES_B, "120.5", 0, 1), _fill(NO_B, "30", 1, 2))

    assert chain.collateral() - before == Decimal("30")
    assert chain.shares(YES_B) == chain.shares(NO_B) == 0
    (tx,) = chain.redeem_transactions()  # both tokens in one transaction (redeem_delay_s)
    assert tx["to"] == chain.adapter.address
    fn, args = chain.adapter.decode_function_input(tx["input"])
    assert fn.fn_name == "redeemPositions" and args["_amounts"] == [120_500_000, 30_000_000]
    assert _steps(ledger, COND_B) == ["queued", "queued", "signed", "sent", "mined"]
    mined = _rows(ledger, COND_B)[-1]
    assert mined["contract"] == "neg_risk_adapter" and Decimal(mined["payout"]) == 30


def test_paper_records_simulated_redemptions_with_the_settlement_cash(
        local_chain: Any, ledger: Ledger) -> None:
    chain = local_chain
    inst = chain.market(COND_B, YES_B, NO_B, {YES_B: Decimal("10")}, neg_risk=True)
    r = _make(chain, ledger, inst, mode="paper")
    _run(r, _fill(YES_B, "10", 1), _fill(NO_B, "4", 0, 2))
    rows = _rows(ledger, COND_B)
    assert [x["step"] for x in rows] == ["queued", "simulated", "queued", "simulated"]
    assert [Decimal(x["payout"]) for x in rows if x["step"] == "simulated"] == [10, 0]
    assert all("no chain" in x["detail"] for x in rows if x["step"] == "simulated")
    assert chain.redeem_transactions() == [] and chain.provider.sent == []


# --- faults: the node refuses, the chain is not ready, the contract reverts --------------------

def test_nonce_too_low_re_reads_the_nonce_then_redeems_once(local_chain: Any,
                                                            ledger: Ledger) -> None:
    chain = local_chain
    inst = chain.market(COND_A, YES_A, NO_A, {YES_A: Decimal("40")}, neg_risk=False)
    chain.resolve(COND_A, [1, 0])
    before = chain.collateral()
    # another transaction of ours takes the nonce first; the node then refuses (geth's words)
    chain.provider.faults.append(("nonce too low: next nonce 1, tx nonce 0", chain.burn_nonce))
    _run(_make(chain, ledger, inst), _fill(YES_A, "40", 1))

    rows = _rows(ledger, COND_A)
    assert [r["step"] for r in rows] == ["queued", "signed", "retry", "signed", "sent", "mined"]
    first, retry, second = rows[1], rows[2], rows[3]
    assert "nonce too low" in retry["detail"] and retry["tx_hash"] == first["tx_hash"]
    assert (first["nonce"], second["nonce"]) == (0, 1)  # re-read from the chain
    (tx,) = chain.redeem_transactions()
    assert tx["nonce"] == 1 and "0x" + bytes(tx["hash"]).hex() == rows[-1]["tx_hash"]
    assert chain.collateral() - before == 40


@pytest.mark.parametrize("message", [
    "max fee per gas less than block base fee: address 0xf39F, maxFeePerGas: 1, baseFee: 7",
    "replacement transaction underpriced",
    "intrinsic gas too low: gas 21000, minimum needed 53000",
])
def test_fee_and_gas_refusals_bump_within_the_cap_and_keep_the_nonce(
        local_chain: Any, ledger: Ledger, message: str) -> None:
    chain = local_chain
    inst = chain.market(COND_A, YES_A, NO_A, {YES_A: Decimal("7")}, neg_risk=False)
    chain.resolve(COND_A, [1, 0])
    before = chain.collateral()
    chain.provider.faults.append((message, None))
    _run(_make(chain, ledger, inst), _fill(YES_A, "7", 1))

    rows = _rows(ledger, COND_A)
    assert [r["step"] for r in rows] == ["queued", "signed", "retry", "signed", "sent", "mined"]
    first, retry, second = rows[1], rows[2], rows[3]
    assert message.split(":")[0] in retry["detail"]
    assert first["nonce"] == second["nonce"] == 0  # a replacement, not a second transaction
    assert int(second["max_fee_per_gas"]) >= int(int(first["max_fee_per_gas"]) * 1.25) - 1
    assert int(second["max_priority_fee_per_gas"]) > int(first["max_priority_fee_per_gas"])
    if "gas too low" in message:
        assert second["gas"] > first["gas"]
    assert len(chain.redeem_transactions()) == 1 and chain.collateral() - before == 7


def test_a_bump_over_the_fee_cap_fails_instead_of_sending(local_chain: Any,
                                                         ledger: Ledger) -> None:
    chain = local_chain
    inst = chain.market(COND_A, YES_A, NO_A, {YES_A: Decimal("7")}, neg_risk=False)
    chain.resolve(COND_A, [1, 0])
    chain.provider.faults.append(("transaction underpriced", None))
    # the first transaction's fee cap is already clamped to 1 gwei: no room for a bump
    _run(_make(chain, ledger, inst, redeem_max_fee_gwei=Decimal("1")), _fill(YES_A, "7", 1))
    steps = _steps(ledger, COND_A)
    assert steps == ["queued", "signed", "retry", "failed"]
    assert int(_rows(ledger, COND_A)[1]["max_fee_per_gas"]) == 10 ** 9
    assert "redeem_max_fee_gwei" in _rows(ledger, COND_A)[-1]["detail"]
    assert chain.redeem_transactions() == [] and chain.shares(YES_A) == 7


def test_a_revert_is_recorded_with_its_reason_and_nothing_is_sent(local_chain: Any,
                                                                  ledger: Ledger) -> None:
    chain = local_chain  # the adapter was never approved on the CTF: it cannot take the tokens
    inst = chain.market(COND_B, YES_B, NO_B, {YES_B: Decimal("5")}, neg_risk=True,
                        approve=False)
    chain.resolve(COND_B, [1, 0])
    _run(_make(chain, ledger, inst), _fill(YES_B, "5", 1))
    rows = _rows(ledger, COND_B)
    assert [r["step"] for r in rows] == ["queued", "failed"]
    assert "ERC1155: need operator approval for 3rd party transfers." in rows[-1]["detail"]
    assert chain.provider.sent == [] and chain.shares(YES_B) == 5


def test_waits_for_the_resolution_on_chain_then_redeems(local_chain: Any,
                                                        ledger: Ledger) -> None:
    chain = local_chain
    inst = chain.market(COND_A, YES_A, NO_A, {YES_A: Decimal("3")}, neg_risk=False)
    r = _make(chain, ledger, inst)
    r.start()
    r.on_fill(_fill(YES_A, "3", 1))
    _until(lambda: "waiting" in _steps(ledger, COND_A), "the waiting row")
    time.sleep(0.2)  # polls on, records it once
    chain.resolve(COND_A, [1, 0])
    _until(lambda: "mined" in _steps(ledger, COND_A), "the redemption")  # its next poll
    r.close()
    # The resolution's own transaction can take the nonce the redeemer read just before
    # (a loaded machine): one "retry" row then, and the redemption goes through after it.
    steps = _steps(ledger, COND_A)
    assert [s for s in steps if s != "retry"] == ["queued", "waiting", "signed", "sent",
                                                  "mined"]
    assert steps.count("retry") <= 1
    assert chain.shares(YES_A) == 0


def test_nothing_left_on_chain_is_skipped_without_a_transaction(local_chain: Any,
                                                               ledger: Ledger) -> None:
    chain = local_chain
    inst = chain.market(COND_A, YES_A, NO_A, {}, neg_risk=False)  # redeemed by hand already
    chain.resolve(COND_A, [1, 0])
    _run(_make(chain, ledger, inst), _fill(YES_A, "3", 1))
    assert _steps(ledger, COND_A) == ["queued", "skipped"]
    assert chain.provider.sent == []


@pytest.mark.parametrize("mined_while_down", [True, False])
def test_a_restart_after_the_send_before_the_receipt_never_sends_again(
        local_chain: Any, ledger: Ledger, mined_while_down: bool) -> None:
    chain = local_chain
    inst = chain.market(COND_A, YES_A, NO_A, {YES_A: Decimal("25")}, neg_risk=False)
    chain.resolve(COND_A, [1, 0])
    before = chain.collateral()
    chain.tester.disable_auto_mine_transactions()  # the transaction waits in the pool
    first = _make(chain, ledger, inst, redeem_receipt_timeout_s=60.0)
    first.start()
    first.on_fill(_fill(YES_A, "25", 1))
    _until(lambda: "sent" in _steps(ledger, COND_A), "the sent row")
    first.close(0)  # the process stops while the receipt is awaited
    assert _steps(ledger, COND_A) == ["queued", "signed", "sent"]
    if mined_while_down:
        chain.tester.mine_blocks(1)
    second = _make(chain, ledger, inst, redeem_receipt_timeout_s=60.0)
    second.start()  # resumes from the rows: looks the recorded hash up first
    if not mined_while_down:
        time.sleep(0.3)
        chain.tester.mine_blocks(1)
    second.close()
    assert second.errors == []
    assert _steps(ledger, COND_A) == ["queued", "signed", "sent", "mined"]
    assert len(chain.provider.sent) == 1 and len(chain.redeem_transactions()) == 1
    assert chain.collateral() - before == 25
    third = _make(chain, ledger, inst)  # a later start has nothing left to do
    third.start()
    third.close()
    assert len(_rows(ledger, COND_A)) == 4 and len(chain.provider.sent) == 1


def test_a_transaction_the_node_lost_is_replaced_with_the_same_nonce(
        local_chain: Any, ledger: Ledger) -> None:
    """Signed and recorded, then the process stops before (or while) broadcasting: the next
    start finds no trace of the hash, the tokens still held, and sends a replacement with
    the recorded nonce (so the lost one, should it reappear, could never mine as well)."""
    chain = local_chain
    inst = chain.market(COND_A, YES_A, NO_A, {YES_A: Decimal("9")}, neg_risk=False)
    chain.resolve(COND_A, [1, 0])
    chain.provider.faults.append(("connection reset by peer", None))  # an ambiguous send
    first = _make(chain, ledger, inst, redeem_poll_s=5.0)
    first.start()
    first.on_fill(_fill(YES_A, "9", 1))
    _until(lambda: "retry" in _steps(ledger, COND_A), "the retry row")
    first.close(0)
    second = _make(chain, ledger, inst)
    second.start()
    second.close()
    rows = _rows(ledger, COND_A)
    assert [r["step"] for r in rows] == ["queued", "signed", "retry", "signed", "sent",
                                         "mined"]
    assert rows[1]["nonce"] == rows[3]["nonce"] == 0
    assert int(rows[3]["max_fee_per_gas"]) > int(rows[1]["max_fee_per_gas"])
    assert len(chain.redeem_transactions()) == 1 and chain.shares(YES_A) == 0


def test_send_errors_are_classified_by_the_nodes_messages() -> None:
    assert classify_send_error("nonce too low: next nonce 5, tx nonce 4") == "nonce"
    assert classify_send_error("replacement transaction underpriced") == "underpriced"
    assert classify_send_error("transaction underpriced: tip needed 30000000000") == "gas"
    assert classify_send_error("max fee per gas less than block base fee") == "gas"
    assert classify_send_error("intrinsic gas too low") == "gas"
    assert classify_send_error("already known") == "known"
    assert classify_send_error("insufficient funds for gas * price + value") == "funds"
    assert classify_send_error("connection reset by peer") == "other"


def test_the_abis_are_the_contracts_real_selectors() -> None:
    """Selectors recomputed from the source signatures (fixtures/SOURCES.md)."""
    def selector(signature: str) -> str:
        return "0x" + bytes(Web3.keccak(text=signature))[:4].hex()

    assert selector("redeemPositions(address,bytes32,bytes32,uint256[])") == \
        C.REDEEM_CTF_SELECTOR
    assert selector("redeemPositions(bytes32,uint256[])") == C.REDEEM_NEG_RISK_SELECTOR
    assert selector("convertPositions(bytes32,uint256,uint256)") == "0xc64748c4"
    w3 = Web3()
    ctf = w3.eth.contract(abi=C.CTF_ABI)
    names = {f["name"]: [i["type"] for i in f["inputs"]] for f in C.CTF_ABI}
    assert names == {"redeemPositions": ["address", "bytes32", "bytes32", "uint256[]"],
                     "balanceOf": ["address", "uint256"], "payoutDenominator": ["bytes32"],
                     "payoutNumerators": ["bytes32", "uint256"],
                     "isApprovedForAll": ["address", "address"],
                     "PayoutRedemption": ["address", "address", "bytes32", "bytes32",
                                          "uint256[]", "uint256"]}
    assert ctf.events.PayoutRedemption.topic == "0x" + bytes(Web3.keccak(
        text="PayoutRedemption(address,address,bytes32,bytes32,uint256[],uint256)")).hex()
    adapter = w3.eth.contract(abi=C.NEG_RISK_ADAPTER_ABI)
    assert adapter.events.PayoutRedemption.topic == "0x" + bytes(Web3.keccak(
        text="PayoutRedemption(address,bytes32,uint256[],uint256)")).hex()
    assert HARDHAT_ADDRESS  # the redeemer of every chain test


def test_a_settlement_fill_booked_but_never_queued_is_redeemed_at_the_next_start(
        local_chain: Any, ledger: Ledger) -> None:
    """The process died between committing the settlement fill and ``on_fill``: the next
    start finds the fill in the run's ledger with no ``queued`` row and redeems it."""
    from argus_core import Order, OrderStatus, OrderType, TimeInForce

    chain = local_chain
    inst = chain.market(COND_A, YES_A, NO_A, {YES_A: Decimal("12")}, neg_risk=False)
    chain.resolve(COND_A, [1, 0])
    fill = _fill(YES_A, "12", 1)
    ledger.start_run("run1", "live", 0, "{}")
    with ledger.transaction():
        ledger.insert_order(Order(fill.client_order_id, "polymarket", fill.instrument_id,
                                  Side.SELL, Decimal(12), None, OrderType.MARKET,
                                  TimeInForce.IOC, "settlement", fill.ts_ns,
                                  OrderStatus.FILLED), "run1")
        ledger.insert_fill(fill)
    other = _fill(YES_B, "1", 1, 2)  # a fill of an instrument the venue does not know
    r = _make(chain, ledger, inst)
    r.start()
    r.on_fill(other)
    r.close()
    assert _steps(ledger, COND_A) == ["queued", "signed", "sent", "mined"]
    assert _rows(ledger, COND_A)[0]["fill_id"] == fill.fill_id
    assert chain.shares(YES_A) == 0
    (unknown,) = _rows(ledger, "unknown")
    assert unknown["step"] == "failed" and "is not known to the venue" in unknown["detail"]


def test_an_rpc_that_is_down_is_retried_then_the_redemption_goes_through(
        local_chain: Any, ledger: Ledger) -> None:
    chain = local_chain
    inst = chain.market(COND_A, YES_A, NO_A, {YES_A: Decimal("2")}, neg_risk=False)
    chain.resolve(COND_A, [1, 0])
    chain.provider.down["eth_call"] = 2  # the first two reads of the chain fail
    _run(_make(chain, ledger, inst), _fill(YES_A, "2", 1))
    rows = _rows(ledger, COND_A)
    assert [r["step"] for r in rows] == ["queued", "retry", "retry", "signed", "sent", "mined"]
    assert "connection refused" in rows[1]["detail"] and "error 1 of 5" in rows[1]["detail"]
    assert len(chain.redeem_transactions()) == 1
