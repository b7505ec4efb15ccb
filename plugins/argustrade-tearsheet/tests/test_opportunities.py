"""The report follows each scanner finding from the scan to its P&L, by hand."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from argus_tearsheet.opportunities import follow
from argus_tearsheet.plugin import tearsheet_sections
from argus_tearsheet.run_data import load_run

from argus_core import Fill, Ledger, Liquidity, Order, OrderStatus, OrderType, Side, TimeInForce

YES, NO = "polymarket:yes", "polymarket:no"


def _ledger(tmp_path: Path) -> Path:
    with Ledger.in_dir(tmp_path) as ledger:
        ledger.start_run("r", "paper", 0, json.dumps(
            {"argus": {"plugins": []}, "run": {"starting_cash": "1000"}}))
        with ledger.transaction():
            ledger.append_equity([(1, "1000", "1000", "0"), (5, "1000.5", "1000.5", "0")])
            for oid, lane, status, profit in (("arb", "executable", "seen", "0.70"),
                                              ("guess", "research", "research", "3.00")):
                ledger.insert_opportunity(oid, "negrisk", 1, "negrisk", Decimal(profit),
                                          lane == "executable", json.dumps({"lane": lane}),
                                          status)
            # The basket: 10 YES at 0.40 and 10 NO at 0.55, fees 0.02 and 0.03.
            for coid, iid, price, fee in (("o1", YES, "0.40", "0.02"),
                                          ("o2", NO, "0.55", "0.03")):
                ledger.insert_order(Order(coid, "polymarket", iid, Side.BUY, Decimal(10),
                                          Decimal(price), OrderType.LIMIT, TimeInForce.IOC,
                                          "negrisk", 1, OrderStatus.FILLED, "arb"), "r")
                ledger.insert_fill(Fill(f"{coid}-1", coid, "polymarket", iid, Side.BUY,
                                        Decimal(price), Decimal(10), Decimal(fee),
                                        Liquidity.TAKER, 2))
            # YES resolves at 1; NO is still open (no settlement fill: valued at the mark).
            ledger.insert_order(Order("s1", "polymarket", YES, Side.SELL, Decimal(10), None,
                                      OrderType.MARKET, TimeInForce.IOC, "settlement", 4,
                                      OrderStatus.FILLED), "r")
            ledger.insert_fill(Fill("s1-1", "s1", "polymarket", YES, Side.SELL, Decimal(1),
                                    Decimal(10), Decimal(0), Liquidity.SETTLEMENT, 4))
            ledger.save_checkpoint("runner", 5, 5, {"account": {"marks": {NO: "0.02"}}})
    return tmp_path


def test_an_opportunity_is_followed_to_its_pnl(tmp_path: Path) -> None:
    arb, guess = follow(load_run(_ledger(tmp_path)))
    assert (arb.orders, arb.fills, arb.fees, arb.lane) == (2, 2, Decimal("0.05"), "executable")
    # Cash: -(4.00 + 0.02) - (5.50 + 0.03) = -9.55; YES held 10 settles at 1: +10;
    # NO held 10 at the last mark 0.02: +0.20.  P&L = 0.65 (expected 0.70).
    assert arb.pnl == Decimal("0.65")
    assert arb.open_instruments == (NO,)
    assert (guess.lane, guess.orders, guess.pnl) == ("research", 0, None)


def test_the_report_shows_the_opportunities_section(tmp_path: Path) -> None:
    body = tearsheet_sections(_ledger(tmp_path))["Trader's report: opportunities"]
    assert "2 findings, 1 traded" in body and "made 0.65" in body
    assert "polymarket:no at the last mark" in body
