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
    fn, args = chain.ctf.decode_function_input(tx["input"])
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
