"""End to end: the real Polymarket venue against a local Gamma + CLOB server serving the
bundled example snapshot, folded into MarketState, scanned; checked by hand."""

from __future__ import annotations

import asyncio
import json
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest

from argus_core.config import parse_config
from argus_core.scan import snapshot_and_scan

# Skipped when the Polymarket venue plugin is not installed.
SnapshotServer = pytest.importorskip("argus_venue_polymarket.replay_server").SnapshotServer

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


async def test_offline_example_paper_executes_and_settles_the_arbitrage(tmp_path: Path) -> None:
    """``examples/polymarket/paper.toml`` through the core loop: the real venue (Gamma REST,
    websocket books, websocket resolution) against the local replay server; the scanner's
    opportunity becomes a complete basket of paper fills, settles, and the P&L after fees
    equals the scanner's expected profit at the executed size."""
    from argus_core.config import apply_overrides, load_config
    from argus_core.ledger import Ledger
    from argus_core.runner import Runner

    example = SNAPSHOT.parent / "paper.toml"
    with SnapshotServer.from_dir(SNAPSHOT, ws_port=0, resolve_after_books=True) as srv:
        config = apply_overrides(load_config(example), {
            "plugins.polymarket.gamma_url": srv.url, "plugins.polymarket.clob_url": srv.url,
            "plugins.polymarket.ws_url": srv.ws_url})
        summary = await asyncio.wait_for(Runner(config, tmp_path / "run").run(), 60)
    with Ledger.in_dir(tmp_path / "run") as ledger:
        (opp_row,) = ledger.query("select * from opportunities")
        orders = ledger.query("select * from orders order by client_order_id")
        fills = ledger.query("select * from fills order by fill_id")
        positions = ledger.query("select * from positions")
        unwinds = ledger.query("select * from risk_events where check_name = 'basket'")
    opp = json.loads(opp_row["body_json"])
    assert opp["kind"] == "long_rebalance" and opp["event_id"] == "481717"
    qty = Decimal(opp["max_size"])
    assert qty == 150
    legs = [o for o in orders if o["basket_id"] == opp["opportunity_id"]]
    leg_ids = {o["client_order_id"] for o in legs}
    trade_fills = [f for f in fills if f["client_order_id"] in leg_ids]
    # every leg executed completely: 5 orders, each filled 150 at its leg's limit, no unwind
    filled = {o["client_order_id"]: sum((Decimal(f["quantity"]) for f in trade_fills
                                         if f["client_order_id"] == o["client_order_id"]),
                                        Decimal(0)) for o in legs}
    assert sorted((o["instrument_id"], o["status"], filled[o["client_order_id"]])
                  for o in legs) == sorted((leg["instrument_id"], "filled", qty)
                                           for leg in opp["legs"])
    assert unwinds == []
    assert sorted((f["instrument_id"], Decimal(f["price"]), Decimal(f["quantity"]),
                   f["liquidity"]) for f in trade_fills) == sorted(
        (leg["instrument_id"], Decimal(leg["limit_price"]), qty, "taker")
        for leg in opp["legs"])
    # taker fees by hand (rate 0.05, exponent 1, floored per fill) = the scanner's costs
    fees = sum(Decimal(f["fee"]) for f in trade_fills)
    assert fees == sum(_fee(qty, str(Decimal(f["price"]))) for f in trade_fills)
    assert fees == Decimal(opp["costs"]) == Decimal("3.49552")
    # settlement: "No change" YES pays 1, the other four 0; every position closed
    settle = sorted((Decimal(f["price"]), f["liquidity"]) for f in fills
                    if f["client_order_id"].startswith("settle-"))
    assert settle == [(Decimal(0), "settlement")] * 4 + [(Decimal(1), "settlement")]
    assert all(Decimal(p["quantity"]) == 0 for p in positions) and len(positions) == 5
    # P&L after fees = the scanner's expected profit at the executed size, by hand
    cost = sum(Decimal(leg["limit_price"]) for leg in opp["legs"]) * qty
    assert summary.final_equity - summary.starting_equity == qty - cost - fees
    assert summary.final_equity - summary.starting_equity == Decimal(opp["expected_profit"])
    assert summary.fees == fees
