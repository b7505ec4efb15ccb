"""End to end: the real Polymarket venue against a local Gamma + CLOB server serving the
bundled example snapshot, folded into MarketState, scanned; checked by hand."""

from __future__ import annotations

import json
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest

pm = pytest.importorskip("argus_venue_polymarket")

from argus_venue_polymarket.replay_server import SnapshotServer  # noqa: E402

from argus_core.config import parse_config  # noqa: E402
from argus_core.scan import snapshot_and_scan  # noqa: E402

SNAPSHOT = Path(__file__).parents[3] / "examples" / "polymarket" / "snapshot"


def _fee(qty: Decimal, p: str) -> Decimal:
    """One taker fill's fee under the Fed event's feeSchedule (rate 0.05, exponent 1),
    floored to 0.00001 pUSD as the venue charges it."""
    return (qty * Decimal("0.05") * Decimal(p) * (1 - Decimal(p))).quantize(
        Decimal("0.00001"), rounding=ROUND_DOWN)


async def test_scan_finds_the_constructed_fed_arbitrage() -> None:
    events = json.loads((SNAPSHOT / "events.json").read_text())
    fed = next(e for e in events if e["id"] == "481717")
    yes_tokens = [json.loads(m["clobTokenIds"])[0] for m in fed["markets"]]
    with SnapshotServer.from_dir(SNAPSHOT) as srv:
        config = parse_config({
            "argus": {"plugins": ["polymarket", "negrisk"], "mode": "paper"},
            "run": {"venue": "polymarket", "scanners": ["negrisk"]},
            "plugins": {"polymarket": {"gamma_url": srv.url, "clob_url": srv.url,
                                       "ws_url": "ws://127.0.0.1:9/ws"},
                        "negrisk": {"min_edge": "0.001"}},
        })
        opps = await snapshot_and_scan(config)
        paths = {path for _, path, _ in srv.requests}
    assert paths == {"/events", "/books"}  # no network beyond the configured server
    (opp,) = opps
    assert opp.kind == "long_rebalance" and opp.event_id == "481717" and opp.risk_free
    # hand computation: top YES asks 0.003, 0.014, 0.64 (constructed), 0.31, 0.005, 150 each
    prices = ["0.003", "0.014", "0.64", "0.31", "0.005"]
    qty = Decimal(150)
    cost = sum(Decimal(p) for p in prices) * qty
    fees = sum(_fee(qty, p) for p in prices)  # one fill per leg (all at the top level)
    assert opp.max_size == qty
    assert opp.costs == fees
    assert opp.expected_profit == qty - cost - fees
    # fees 0.02243 + 0.10353 + 1.728 + 1.60425 + 0.03731 = 3.49552 (0.0224325 and 0.0373125
    # floored); cost 145.8
    assert fees == Decimal("3.49552")
    assert opp.expected_profit == Decimal("0.70448")
    assert [(leg.instrument_id, leg.limit_price, leg.quantity) for leg in opp.legs] == [
        (f"polymarket:{t}", Decimal(p), qty) for t, p in zip(yes_tokens, prices, strict=True)]


def test_scanner_prices_fees_exactly_as_the_venue_charges_them() -> None:
    """The scanner's per-fill fee equals the venue's FeeSchedule (what paper fills pay)."""
    from argus_scanner_negrisk.scanner import taker_fee
    from argus_venue_polymarket.fees import PolymarketFeeSchedule

    for rate, exp in (("0.05", "1"), ("0.25", "2"), ("0.0175", "1"), ("0", "1")):
        sched = PolymarketFeeSchedule(rate=Decimal(rate), exponent=Decimal(exp))
        for p in ("0.001", "0.003", "0.31", "0.5", "0.64", "0.999"):
            for q in ("0.01", "5", "150", "1234.56"):
                assert taker_fee(Decimal(q), Decimal(p), Decimal(rate), Decimal(exp)) == \
                    sched.fee(Decimal(p), Decimal(q), maker=False), (rate, exp, p, q)
