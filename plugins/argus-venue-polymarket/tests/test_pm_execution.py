"""Orders built and signed offline through py-clob-client-v2, sent to a local CLOB server;
a partial basket (no venue-side unwind); the heartbeat; settlement transactions on a local
chain."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest
from argus_venue_polymarket import constants as C
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.execution import PolymarketExecution
from argus_venue_polymarket.testing import HARDHAT_ADDRESS, HARDHAT_KEY
from eth_account import Account
from eth_account.messages import encode_typed_data
from py_clob_client_v2.config import get_contract_config
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2

from argus_core.errors import BasketIncomplete, VenueError
from argus_core.models import Instrument, Order, OrderType, Side, TimeInForce
from argus_core.secrets import Secret

TOKEN_A, TOKEN_B = "1234", "5678"


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_TEST_KEY", HARDHAT_KEY)
    monkeypatch.setenv("PM_API_KEY", "key-1")
    monkeypatch.setenv("PM_API_SECRET", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    monkeypatch.setenv("PM_API_PASSPHRASE", "pass")


def _instruments() -> dict[str, Instrument]:
    meta = {"neg_risk": True, "fee_rate": "0.05", "fee_exponent": "1", "fee_taker_only": True}
    return {f"polymarket:{t}": Instrument("polymarket", t, kind="binary", tick_size="0.01",
                                          lot_size="0.01", min_size="5", meta=meta)
            for t in (TOKEN_A, TOKEN_B)}


def _exec(url: str = "http://127.0.0.1:9", creds: bool = True) -> PolymarketExecution:
    extra = ({"api_key": Secret("$env:PM_API_KEY"), "api_secret": Secret("$env:PM_API_SECRET"),
              "api_passphrase": Secret("$env:PM_API_PASSPHRASE")} if creds else {})
    settings = PolymarketSettings(clob_url=url, private_key=Secret("$env:PM_TEST_KEY"),
                                  heartbeat_interval_s=0.05, user_channel=False, **extra)
    return PolymarketExecution(settings, _instruments().get)


def _order(cid: str, token: str, side: Side = Side.BUY, qty: str = "100", px: str = "0.64",
           tif: TimeInForce = TimeInForce.FOK, basket: str | None = None) -> Order:
    return Order(cid, "polymarket", f"polymarket:{token}", side, qty, px, OrderType.LIMIT, tif,
                 basket_id=basket)


def test_signed_v2_order_says_what_we_meant(keys: None) -> None:
    ex = _exec()
    post = ex.build(_order("c1", TOKEN_A))
    signed = post.signed
    assert post.order_type == "FOK"
    assert (signed.maker, signed.signer, signed.tokenId) == (HARDHAT_ADDRESS, HARDHAT_ADDRESS,
                                                             TOKEN_A)
    # BUY 100 @ 0.64: we give 64 pUSD (6 decimals) and take 100 shares
    assert (signed.makerAmount, signed.takerAmount, int(signed.side)) == ("64000000",
                                                                          "100000000", 0)
    # the signature verifies against the V2 negRisk exchange domain (version "2")
    exchange = get_contract_config(137).neg_risk_exchange_v2
    assert exchange == "0xe2222d279d744050d28e00520010520000310F59"
    typed = ExchangeOrderBuilderV2(exchange, 137, None).build_order_typed_data(signed)
    assert typed["domain"]["version"] == "2"
    assert Account.recover_message(encode_typed_data(full_message=typed),
                                   signature=signed.signature) == HARDHAT_ADDRESS
    # the hash (the venue order id) is known before sending, and is the EIP-712 digest
    assert post.order_hash == ExchangeOrderBuilderV2(exchange, 137, None).build_order_hash(typed)
    assert post.order_hash.startswith("0x") and len(post.order_hash) == 66
    # and fails against the non-negRisk exchange
    other = ExchangeOrderBuilderV2(get_contract_config(137).exchange_v2, 137,
                                   None).build_order_typed_data(signed)
    assert Account.recover_message(encode_typed_data(full_message=other),
                                   signature=signed.signature) != HARDHAT_ADDRESS


@pytest.mark.parametrize("order, fragment", [
    (_order("c", TOKEN_A, px="0.645"), "tick grid"),
    (_order("c", TOKEN_A, qty="2"), "minimum order size"),
    (_order("c", TOKEN_A, qty="10.005"), "decimals"),
    (_order("c", "999"), "unknown instrument"),
])
def test_invalid_orders_are_refused_before_signing(keys: None, order: Order,
                                                   fragment: str) -> None:
    with pytest.raises(VenueError, match=fragment):
        _exec().build(order)


class Clob:
    """A local CLOB order endpoint: records posts, answers per token."""

    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self.answers = answers
        self.posted: list[dict[str, Any]] = []
        self.heartbeats = threading.Event()
        self.headers: list[dict[str, str]] = []

    def __call__(self, method: str, path: str, query: Any, body: Any) -> Any:
        if method == "POST" and path == "/order":
            self.posted.append(body)
            return 200, self._answer(body)
        if method == "POST" and path == "/orders":
            self.posted.extend(body)
            return 200, [self._answer(b) for b in body]
        if method == "POST" and path == "/v1/heartbeats":
            self.heartbeats.set()
            return 200, {"heartbeat_id": "hb-1"}
        if method == "DELETE" and path == "/order":
            return 200, {"canceled": [body["orderID"]], "not_canceled": {}}
        if method == "GET" and path == "/data/orders":
            return 200, {"data": [], "next_cursor": "LTE="}
        return None

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        order = body["order"]
        key = order["tokenId"] + ":" + order["side"]
        return dict(self.answers.get(key, {"success": True, "status": "live"}),
                    orderID="0x" + order["salt"].__str__()[-6:].rjust(6, "0"))


async def test_partial_basket_raises_with_the_executed_legs_and_sends_no_unwind(
        keys, snapshot_server) -> None:  # type: ignore[no-untyped-def]
    clob = Clob({f"{TOKEN_A}:BUY": {"success": True, "status": "matched",
                                    "makingAmount": "64", "takingAmount": "100"},
                 f"{TOKEN_B}:BUY": {"success": False, "status": "unmatched",
                                    "errorMsg": "order couldn't be fully filled. FOK orders "
                                                "are fully filled or killed."}})
    srv = snapshot_server([], [], extra=clob)
    ex = _exec(srv.url)
    legs = [_order("a", TOKEN_A, basket="b1"), _order("b", TOKEN_B, px="0.30", basket="b1")]
    with pytest.raises(BasketIncomplete, match="basket b1 incomplete") as info:
        await ex.submit_basket(legs)
    (fill,) = info.value.fills  # the executed leg, under its own client order id
    assert (fill.client_order_id, fill.side, fill.quantity, fill.price) == (
        "a", Side.BUY, Decimal(100), Decimal("0.64"))
    assert fill.fee == Decimal(100) * Decimal("0.05") * Decimal("0.64") * Decimal("0.36")
    # one FOK batch and nothing else: the venue unwinds nothing, the core does
    assert [p["orderType"] for p in clob.posted] == ["FOK", "FOK"]
    assert all("POLY_SIGNATURE" in h and "POLY_API_KEY" in h for h in srv.headers_seen)
    # the killed leg is reported CANCELLED (with the venue's reason) through executions()
    updates = [r for r in ex._reports if not hasattr(r, "fill_id")]
    (killed,) = [u for u in updates if u.client_order_id == "b" and u.status.value ==
                 "cancelled"]
    assert "FOK order killed" in killed.reason


async def test_resting_order_keeps_the_heartbeat_alive(keys, snapshot_server) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    clob = Clob({})
    srv = snapshot_server([], [], extra=clob)
    ex = _exec(srv.url)
    fills = await ex.submit(_order("g1", TOKEN_A, tif=TimeInForce.GTC))
    assert fills == [] and "g1" in ex.venue_ids
    assert await asyncio.to_thread(clob.heartbeats.wait, 5)
    await ex.cancel("g1")
    assert ex.heartbeat is not None and "g1" not in ex.heartbeat.resting
    await ex.close()
    assert any(p == "/v1/heartbeats" for _, p, _ in srv.requests)


async def test_heartbeats_that_failed_while_the_last_order_rested_recover(
        keys, snapshot_server) -> None:  # type: ignore[no-untyped-def]
    """The CLOB fails heartbeats while an order rests (an outage): new resting orders are
    refused.  The order ends; the CLOB comes back.  A resting order is then taken again:
    the refusal first sends one heartbeat to learn whether they work (at most one per
    interval).  Before, no order rested, so no heartbeat was ever sent again, and every
    resting order was refused for the rest of the run."""
    import asyncio

    clob = Clob({})
    down = {"on": False}

    def extra(method: str, path: str, query: Any, body: Any) -> Any:
        if path == "/v1/heartbeats" and down["on"]:
            return 503, {"error": "service unavailable"}
        return clob(method, path, query, body)

    srv = snapshot_server([], [], extra=extra)
    ex = _exec(srv.url)  # heartbeats every 0.05 s
    await ex.submit(_order("g1", TOKEN_A, tif=TimeInForce.GTC))
    assert ex.heartbeat is not None
    down["on"] = True
    for _ in range(200):
        if not ex.heartbeat.healthy:
            break
        await asyncio.sleep(0.02)
    assert not ex.heartbeat.healthy
    with pytest.raises(VenueError, match="heartbeats are failing"):
        await ex.submit(_order("g2", TOKEN_A, tif=TimeInForce.GTC))
    await ex.cancel("g1")  # the outage ended the order; nothing rests
    assert not ex.heartbeat.resting
    down["on"] = False
    await asyncio.sleep(0.06)  # the probe's interval
    await ex.submit(_order("g3", TOKEN_A, tif=TimeInForce.GTC))
    assert "g3" in ex.venue_ids and ex.heartbeat.healthy
    assert [p["order"]["tokenId"] for p in clob.posted] == [TOKEN_A, TOKEN_A]  # g1, g3
    # a taker order (FOK) never waited on heartbeats
    await ex.close()


def test_settlement_calldata_and_signed_transactions_on_a_local_chain(keys) -> None:  # type: ignore[no-untyped-def]
    from argus_venue_polymarket.settlement import SettlementClient, plan_redemptions
    from web3 import EthereumTesterProvider, Web3

    w3 = Web3(EthereumTesterProvider())
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": HARDHAT_ADDRESS,
                             "value": 10 ** 18})
    sc = SettlementClient(PolymarketSettings(private_key=Secret("$env:PM_TEST_KEY")), w3)
    cond = "0x" + "ab" * 32
    ctf = sc.redeem_ctf_calldata(cond)
    assert ctf.startswith(C.REDEEM_CTF_SELECTOR)
    fn, args = sc.ctf.decode_function_input(ctf)
    assert fn.fn_name == "redeemPositions" and args["indexSets"] == [1, 2]
    assert args["parentCollectionId"] == b"\x00" * 32 and args["conditionId"] == bytes.fromhex(
        "ab" * 32)
    assert args["collateralToken"] == Web3.to_checksum_address(get_contract_config(137).collateral)
    nr = sc.redeem_neg_risk_calldata(cond, 150_000_000, 0)
    assert nr.startswith(C.REDEEM_NEG_RISK_SELECTOR)
    assert sc.adapter.decode_function_input(nr)[1]["_amounts"] == [150_000_000, 0]
    conv = sc.convert_calldata("0x" + "cd" * 32, 0b101, 5_000_000)
    assert conv.startswith("0xc64748c4")
    # build, estimate gas, sign locally, and (on the local chain only) send
    tx = sc.build_transaction(sc.adapter_address, nr)
    assert tx["gas"] > 21_000 and tx["nonce"] == 0
    raw = sc.sign(tx)
    txh = sc.send(raw)
    receipt = w3.eth.wait_for_transaction_receipt(txh)
    assert receipt["status"] == 1 and receipt["from"] == HARDHAT_ADDRESS
    sent = w3.eth.get_transaction(txh)
    assert sent["input"].hex().removeprefix("0x") == nr.removeprefix("0x")
    plans = plan_redemptions({f"polymarket:{TOKEN_A}": Decimal("150")}, {
        f"polymarket:{TOKEN_A}": Instrument("polymarket", TOKEN_A, kind="binary", meta={
            "condition_id": cond, "neg_risk": True, "is_yes": True})})
    assert [(p.contract, p.amounts) for p in plans] == [("neg_risk_adapter", (150_000_000, 0))]
