"""The offline example end to end: a local Kalshi exchange and the Polymarket replay
server serve one mapped event with a planted mispricing; ``argus scan --once --json``
finds it with the right capacity and profit after both venues' fees, and a paper run
trades it (both legs filled) and settles it, P&L to the cent."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import ROUND_CEILING, ROUND_DOWN
from decimal import Decimal as D
from pathlib import Path

import apsw
from argus_crossvenue.testing import ExampleServers
from click.testing import CliRunner

from argus_core import LEDGER_FILE, load_config, open_read_only
from argus_core.cli import cli
from argus_core.runner import Runner

K_YES = "kalshi:KXFEDCUT-26SEP/YES"
P_NO = ("polymarket:73000000000000000000000000000000000000000000000000000000000000000"
        "000000000002")


def k_fee(qty: int, price: str) -> D:
    """Kalshi: 0.07 C P (1 - P), rounded up to the cent, per fill."""
    p = D(price)
    return (D("0.07") * qty * p * (1 - p)).quantize(D("0.01"), rounding=ROUND_CEILING)


def p_fee(qty: int, price: str) -> D:
    """Polymarket (the example market's feeSchedule: rate 0.05, exponent 1):
    0.05 C p (1 - p), floored to 0.00001, per fill."""
    p = D(price)
    return (D("0.05") * qty * p * (1 - p)).quantize(D("0.00001"), rounding=ROUND_DOWN)


# The planted books (example/kalshi/market.json: NO bids 58 x 50, 57 x 30, 56 x 200 are
# YES asks 0.42, 0.43, 0.44; example/polymarket/books.json: NO-token asks 0.52 x 40,
# 0.53 x 60, 0.56 x 500).  Walked together while 1 - a_K - a_P - fees/unit > 0:
# 40 @ (0.42, 0.52), 10 @ (0.42, 0.53), 30 @ (0.43, 0.53), 20 @ (0.44, 0.53) = 100 units
# (the next pair, 0.44 + 0.56, costs 1.00 before fees).
KALSHI_FILLS = [(50, "0.42"), (30, "0.43"), (20, "0.44")]
PM_FILLS = [(40, "0.52"), (60, "0.53")]
COST = sum(q * D(p) for q, p in KALSHI_FILLS + PM_FILLS)            # 95.3
FEES = sum(k_fee(q, p) for q, p in KALSHI_FILLS) + sum(p_fee(q, p) for q, p in PM_FILLS)
PROFIT = 100 - COST - FEES                                            # 1.7235


def test_hand_computation() -> None:
    assert D("95.3") == COST
    assert D("0.86") + D("0.52") + D("0.35") + D("0.4992") + D("0.7473") == FEES
    assert D("1.7235") == PROFIT


def test_argus_scan_finds_the_planted_mispricing(tmp_path: Path) -> None:
    with ExampleServers() as servers:
        configs = servers.write_configs(tmp_path)
        result = CliRunner().invoke(cli, ["scan", "--config", str(configs["scan"]), "--once",
                                          "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (opp,) = json.loads(result.output)
    assert opp["kind"] == "cross_complementary" and opp["event_id"] == "fed-cut-sep-2026"
    assert opp["risk_free"] is True and opp["lane"] == "executable"
    assert D(opp["max_size"]) == 100
    assert D(opp["costs"]) == FEES
    assert D(opp["expected_profit"]) == PROFIT
    assert round(D(opp["expected_profit"]), 2) == D("1.72")
    assert [(leg["instrument_id"], leg["side"], D(leg["limit_price"]), D(leg["quantity"]))
            for leg in opp["legs"]] == [(P_NO, "buy", D("0.53"), 100),
                                        (K_YES, "buy", D("0.44"), 100)]


def _fill_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = open_read_only(db)
        try:
            return int(next(iter(conn.execute("select count(*) from fills")))[0])
        finally:
            conn.close()
    except apsw.Error:
        return 0


async def test_a_paper_run_trades_and_settles_it_to_the_cent(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with ExampleServers() as servers:
        config = load_config(servers.write_configs(tmp_path)["paper"])
        run = asyncio.get_running_loop().create_task(Runner(config, run_dir).run())
        deadline = time.monotonic() + 30
        while _fill_count(run_dir / LEDGER_FILE) < 5 and not run.done():
            assert time.monotonic() < deadline, "no fills within 30 s"
            await asyncio.sleep(0.05)
        await asyncio.to_thread(servers.settle)  # Kalshi: yes; Polymarket: Yes wins
        summary = await asyncio.wait_for(run, 30)
    conn = open_read_only(run_dir / LEDGER_FILE)
    try:
        cur = conn.execute("select client_order_id, instrument_id, side, price, quantity, fee, "
                           "liquidity from fills order by client_order_id, fill_id")
        fills = [tuple(row) for row in cur]
        orders = [tuple(row) for row in conn.execute(
            "select instrument_id, status, quantity from orders where strategy = 'crossvenue'"
            " order by instrument_id")]
        unwinds = list(conn.execute("select * from risk_events where check_name = 'basket'"))
    finally:
        conn.close()
    # both legs filled in full, no unwind
    assert [(i, s, D(q)) for i, s, q in orders] == [(K_YES, "filled", 100),
                                                    (P_NO, "filled", 100)]
    assert unwinds == []
    trades = [(i, D(p), D(q), D(f)) for _, i, side, p, q, f, liq in fills
              if liq == "taker" and side == "buy"]
    assert sorted(trades) == sorted(
        [(K_YES, D(p), D(q), k_fee(q, p)) for q, p in KALSHI_FILLS]
        + [(P_NO, D(p), D(q), p_fee(q, p)) for q, p in PM_FILLS])
    settled = sorted((i, D(p), D(q)) for _, i, side, p, q, f, liq in fills
                     if liq == "settlement")
    assert settled == [(K_YES, D(1), D(100)), (P_NO, D(0), D(100))]
    assert summary.fees == FEES
    assert summary.final_equity - summary.starting_equity == PROFIT == D("1.7235")
