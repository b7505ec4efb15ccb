"""The venue's core contract for fees (price-dependent ``FeeSchedule``) and baskets
(``supports_baskets`` / ``submit_basket`` -> core fills), against a local CLOB."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.fees import PolymarketFeeSchedule
from argus_venue_polymarket.venue import PolymarketVenue

from argus_core.interfaces import FeeSchedule
from argus_core.models import Instrument, Order, OrderType, Side, TimeInForce
from argus_core.secrets import Secret

TOKEN_A, TOKEN_B = "1234", "5678"


def _venue(url: str = "http://127.0.0.1:9", rate: str = "0.05") -> PolymarketVenue:
    settings = PolymarketSettings(
        clob_url=url, private_key=Secret("$env:PM_TEST_KEY"), api_key=Secret("$env:PM_K"),
        api_secret=Secret("$env:PM_S"), api_passphrase=Secret("$env:PM_P"),
        default_fee_rate=Decimal("0.02"))
    venue = PolymarketVenue(settings)
    meta = {"neg_risk": True, "fee_rate": rate, "fee_exponent": "1", "fee_taker_only": True}
    for t in (TOKEN_A, TOKEN_B):
        inst = Instrument("polymarket", t, kind="binary", tick_size="0.01", lot_size="0.01",
                          min_size="5", meta=meta)
        venue._instruments[inst.id] = inst
    return venue


@pytest.fixture(autouse=True)
def _keys(pm_keys: Callable[[str, str, str], None]) -> None:
    pm_keys("key-1", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "pass")


def _by_hand(shares: str, price: str, rate: str = "0.05") -> Decimal:
    p = Decimal(price)
    return (Decimal(shares) * Decimal(rate) * p * (1 - p)).quantize(Decimal("0.00001"),
                                                                     rounding=ROUND_DOWN)


@pytest.mark.parametrize("shares, price", [("100", "0.64"), ("150", "0.003"), ("7.13", "0.5"),
                                           ("33.33", "0.997"), ("1", "0.01")])
def test_fee_schedule_is_the_venue_formula(shares: str, price: str) -> None:
    sched = _venue().fee_schedule(f"polymarket:{TOKEN_A}")
    assert isinstance(sched, PolymarketFeeSchedule) and isinstance(sched, FeeSchedule)
    fee = sched.fee(Decimal(price), Decimal(shares), maker=False)
    assert fee == _by_hand(shares, price)
    assert sched.fee(Decimal(price), Decimal(shares), maker=True) == 0  # takerOnly


def test_fee_floor_and_shape() -> None:
    sched = PolymarketFeeSchedule(rate=Decimal("0.05"))
    # 150 x 0.05 x 0.003 x 0.997 = 0.0224325 -> floored to 0.02243
    assert sched.fee(Decimal("0.003"), Decimal(150), maker=False) == Decimal("0.02243")
    # symmetric in p <-> 1 - p, largest at 0.5, and never above the flat bound rate x notional
    for p in ("0.1", "0.25", "0.4"):
        a = sched.fee(Decimal(p), Decimal(1000), maker=False)
        b = sched.fee(1 - Decimal(p), Decimal(1000), maker=False)
        assert a == b < sched.fee(Decimal("0.5"), Decimal(1000), maker=False)
    # exponent 2 (crypto markets) and maker fees when the schedule is not taker-only
    sq = PolymarketFeeSchedule(rate=Decimal("0.25"), exponent=Decimal(2), taker_only=False)
    assert sq.fee(Decimal("0.5"), Decimal(100), maker=True) == Decimal("1.5625")
    # a [paper] override adds flat costs on top of the curve (attrs.evolve keeps the class)
    import attrs
    bumped = attrs.evolve(sched, fixed_per_fill=Decimal("0.01"))
    assert bumped.fee(Decimal("0.5"), Decimal(100), maker=False) == Decimal("1.26")


def test_unknown_instrument_uses_the_configured_default_curve() -> None:
    sched = _venue().fee_schedule("polymarket:999")
    assert (sched.rate, sched.exponent) == (Decimal("0.02"), Decimal(1))


class Clob:
    """``POST /orders`` answering per token+side; records the posted orders."""

    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self.answers = answers
        self.posted: list[dict[str, Any]] = []

    def __call__(self, method: str, path: str, query: Any, body: Any) -> Any:
        if method == "POST" and path in ("/order", "/orders"):
            items = body if isinstance(body, list) else [body]
            self.posted.extend(items)
            answers = [dict(self.answers.get(f"{b['order']['tokenId']}:{b['order']['side']}",
                                             {"success": True, "status": "live"}),
                            orderID=f"0x{b['order']['tokenId']}{b['order']['side']}")
                       for b in items]
            return 200, answers if isinstance(body, list) else answers[0]
        return None


def _leg(cid: str, token: str, px: str) -> Order:
    return Order(cid, "polymarket", f"polymarket:{token}", Side.BUY, "100", px,
                 OrderType.LIMIT, TimeInForce.IOC, strategy="negrisk", basket_id="B1")


def _matched(cash: str, shares: str) -> dict[str, Any]:
    return {"success": True, "status": "matched", "makingAmount": cash, "takingAmount": shares}


async def test_submit_basket_complete(snapshot_server) -> None:  # type: ignore[no-untyped-def]
    clob = Clob({f"{TOKEN_A}:BUY": _matched("64", "100"), f"{TOKEN_B}:BUY": _matched("30", "100")})
    srv = snapshot_server([], [], extra=clob)
    venue = _venue(srv.url)
    assert venue.supports_baskets
    fills = await venue.submit_basket([_leg("a", TOKEN_A, "0.64"), _leg("b", TOKEN_B, "0.30")])
    assert [(f.client_order_id, f.side, f.quantity, f.price) for f in fills] == [
        ("a", Side.BUY, 100, Decimal("0.64")), ("b", Side.BUY, 100, Decimal("0.30"))]
    assert [f.fee for f in fills] == [_by_hand("100", "0.64"), _by_hand("100", "0.30")]
    assert [p["orderType"] for p in clob.posted] == ["FOK", "FOK"]  # one batch, all-or-none legs
    await venue.close()


async def test_a_partial_basket_raises_with_the_executed_legs_and_unwinds_nothing(
        snapshot_server) -> None:  # type: ignore[no-untyped-def]
    from argus_core.errors import BasketIncomplete

    clob = Clob({f"{TOKEN_A}:BUY": _matched("64", "100"),
                 f"{TOKEN_B}:BUY": {"success": False, "status": "unmatched",
                                    "errorMsg": "FOK order not filled"}})
    srv = snapshot_server([], [], extra=clob)
    venue = _venue(srv.url)
    with pytest.raises(BasketIncomplete, match="leg b filled 0/100") as info:
        await venue.submit_basket([_leg("a", TOKEN_A, "0.64"), _leg("b", TOKEN_B, "0.30")])
    # the executed leg travels with the error, under its own order, so the core books it
    # and unwinds it with an ordinary order; the venue sent the FOK batch and nothing else
    assert [(f.client_order_id, f.side, f.quantity) for f in info.value.fills] == [
        ("a", Side.BUY, 100)]
    assert info.value.fills[0].fee == _by_hand("100", "0.64")
    assert [p["orderType"] for p in clob.posted] == ["FOK", "FOK"]
    await venue.close()


async def test_a_basket_with_every_leg_killed_returns_no_fills(snapshot_server) -> None:  # type: ignore[no-untyped-def]
    killed = {"success": False, "status": "unmatched", "errorMsg": "FOK order not filled"}
    clob = Clob({f"{TOKEN_A}:BUY": killed, f"{TOKEN_B}:BUY": killed})
    srv = snapshot_server([], [], extra=clob)
    venue = _venue(srv.url)
    assert await venue.submit_basket([_leg("a", TOKEN_A, "0.64"),
                                      _leg("b", TOKEN_B, "0.30")]) == []
    assert len(clob.posted) == 2  # nothing to flatten, nothing else sent
    await venue.close()


async def test_the_core_unwind_order_is_an_ordinary_fak_sell(snapshot_server) -> None:  # type: ignore[no-untyped-def]
    """The core flattens a leg with a ledgered LIMIT IOC reduce-only order: the venue sends
    it as a signed FAK at the given limit, under the core's own client order id."""
    clob = Clob({f"{TOKEN_A}:SELL": _matched("100", "63")})
    srv = snapshot_server([], [], extra=clob)
    venue = _venue(srv.url)
    unwind = Order("run-7-negrisk-100", "polymarket", f"polymarket:{TOKEN_A}", Side.SELL, "100",
                   "0.62", OrderType.LIMIT, TimeInForce.IOC, strategy="negrisk",
                   basket_id="B1", reduce_only=True)
    (fill,) = await venue.submit(unwind)
    assert (fill.client_order_id, fill.side, fill.quantity, fill.price) == (
        "run-7-negrisk-100", Side.SELL, 100, Decimal("0.63"))
    (posted,) = clob.posted
    assert posted["orderType"] == "FAK" and posted["order"]["side"] == "SELL"
    # at least 62 pUSD for the 100 shares: the core's limit, not a venue slippage setting
    assert (posted["order"]["makerAmount"], posted["order"]["takerAmount"]) == (
        "100000000", "62000000")
    await venue.close()


async def test_a_match_is_returned_without_waiting_for_settlement_hashes(snapshot_server) -> None:  # type: ignore[no-untyped-def]
    """py-clob-client-v2 would poll the trades up to 30 s for transaction hashes of a match
    answered with ``tradeIDs`` only; the fills need none, so the answer comes back at once."""
    answer = _matched("64", "100") | {"tradeIDs": ["t1"], "transactionsHashes": []}
    clob = Clob({f"{TOKEN_A}:BUY": answer})
    srv = snapshot_server([], [], extra=clob)
    venue = _venue(srv.url)
    (fill,) = await venue.submit(Order("q", "polymarket", f"polymarket:{TOKEN_A}", Side.BUY,
                                       "100", "0.64", OrderType.LIMIT, TimeInForce.FOK))
    assert fill.quantity == 100
    assert not [p for _, p, _ in srv.requests if p == "/data/trades"]
    await venue.close()
