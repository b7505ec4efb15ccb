"""``GET /portfolio/settlements`` against a run's ledger: every difference (missing,
extra, different) reported, by hand-built ledgers and the local exchange's settlements,
through the function and the ``argus kalshi-settlements`` command."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from argus_venue_kalshi.commands import kalshi_settlements
from argus_venue_kalshi.reconcile import (
    SettledMarket,
    kalshi_settled,
    ledger_settled,
    reconcile_run,
    reconcile_settlements,
)
from argus_venue_kalshi.venue import KalshiVenue
from click.testing import CliRunner

from argus_core import (
    DataError,
    Fill,
    Ledger,
    LedgerError,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

MATCHED, MISSING, EXTRA, DIFFERENT, OUTSIDE = (f"KXT-{k}" for k in "ABCDE")


def book(ledger: Ledger, ticker: str, side: Side, qty: int, price: str, n: int,
         settlement: bool = False) -> None:
    """One order and its fill on ``ticker``'s YES in the ledger."""
    coid = f"{ticker}-{n}"
    iid = f"kalshi:{ticker}/YES"
    ledger.insert_order(Order(coid, "kalshi", iid, side, D(qty), None, OrderType.MARKET,
                              TimeInForce.IOC, "t", n, OrderStatus.FILLED), "run-1")
    ledger.insert_fill(Fill(f"{coid}-f", coid, "kalshi", iid, side, D(price), D(qty), D(0),
                            Liquidity.SETTLEMENT if settlement else Liquidity.TAKER, n))


def account_buys(exchange: Any, ticker: str, qty: int) -> None:
    exchange.engine.create({"ticker": ticker, "side": "yes", "action": "buy", "count": qty,
                            "yes_price": 45, "client_order_id": f"own-{ticker}",
                            "time_in_force": "immediate_or_cancel"})


@pytest.fixture
def settled_run(exchange: Any, tmp_path: Path) -> Path:
    """Five markets the account bought YES on at 0.42, settled on the exchange, and a
    ledger that agrees on one, misses one, has one extra, differs on one, and never
    traded the fifth."""
    template = next(iter(exchange.engine.markets.values()))
    for ticker in (MATCHED, MISSING, EXTRA, DIFFERENT, OUTSIDE):
        exchange.add_market(dict(template, ticker=ticker), no_bids={58: 50})
    for ticker, qty in ((MATCHED, 5), (MISSING, 3), (DIFFERENT, 2), (OUTSIDE, 4)):
        account_buys(exchange, ticker, qty)
    for ticker, result in ((MATCHED, "yes"), (MISSING, "yes"), (DIFFERENT, "no"),
                           (OUTSIDE, "yes")):
        exchange.engine.settle(ticker, result, publish=False)
    run_dir = tmp_path / "run"
    with Ledger.in_dir(run_dir) as ledger:
        book(ledger, MATCHED, Side.BUY, 5, "0.42", 1)
        book(ledger, MATCHED, Side.SELL, 5, "1", 2, settlement=True)
        book(ledger, MISSING, Side.BUY, 3, "0.42", 3)  # settled on Kalshi, not here
        book(ledger, EXTRA, Side.BUY, 1, "0.42", 4)
        book(ledger, EXTRA, Side.SELL, 1, "1", 5, settlement=True)  # Kalshi: nothing
        book(ledger, DIFFERENT, Side.BUY, 2, "0.42", 6)
        book(ledger, DIFFERENT, Side.SELL, 2, "1", 7, settlement=True)  # Kalshi: "no"
    return run_dir


async def test_every_difference_is_reported(exchange, local_settings, settled_run) -> None:
    venue = KalshiVenue(local_settings())
    try:
        found = await reconcile_run(venue, settled_run)
    finally:
        await venue.close()
    assert [(d.ticker, d.kind) for d in found] == [
        (MISSING, "missing"), (EXTRA, "extra"), (DIFFERENT, "different")]
    missing, extra, different = found
    assert missing.kalshi == SettledMarket(MISSING, D(3), D(0), D(3)) and not missing.ledger
    assert extra.ledger == SettledMarket(EXTRA, D(1), D(0), D(1)) and not extra.kalshi
    assert different.kalshi is not None and different.ledger is not None
    assert (different.kalshi.payout, different.ledger.payout) == (0, 2)
    assert different.describe() == (f"{DIFFERENT}: different: kalshi YES 2 NO 0 paid $0.00; "
                                    f"ledger YES 2 NO 0 paid $2")


def test_payouts_compare_to_the_cent_and_counts_exactly() -> None:
    ours = {"M": SettledMarket("M", D(3), D(0), D("1.111"))}
    assert reconcile_settlements({"M": SettledMarket("M", D(3), D(0), D("1.11"))}, ours,
                                 {"M"}) == []
    assert [d.kind for d in reconcile_settlements(
        {"M": SettledMarket("M", D(3), D(0), D("1.13"))}, ours, {"M"})] == ["different"]
    assert [d.kind for d in reconcile_settlements(
        {"M": SettledMarket("M", D(2), D(0), D("1.11"))}, ours, {"M"})] == ["different"]
    # nothing held at settlement on either side: nothing to compare
    assert reconcile_settlements({"M": SettledMarket("M")}, {}, {"M"}) == []


def test_kalshi_settlements_parse_the_documented_fields() -> None:
    newest, older = ({"ticker": "M", "market_result": r, "yes_count_fp": "3.00",
                      "no_count_fp": "0.00", "revenue": v} for r, v in (("no", 0),
                                                                       ("yes", 300)))
    assert kalshi_settled([newest, older]) == {"M": SettledMarket("M", D(3), D(0), D(0))}
    with pytest.raises(DataError, match="settlement of M has no revenue"):
        kalshi_settled([{"ticker": "M", "yes_count": 1}])


def test_a_run_dir_without_a_ledger_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no run ledger"):
        ledger_settled(tmp_path)


async def test_the_command_prints_every_difference_and_fails(exchange, settled_run,
                                                             key_files, make_settings,
                                                             tmp_path: Path) -> None:
    config = tmp_path / "kalshi.toml"
    config.write_text(f"""
[argus]
plugins = ["kalshi"]

[plugins.kalshi]
rest_url = "{exchange.rest.url}"
markets = ["{MATCHED}"]
api_key_id = "$env:KALSHI_TEST_KEY_ID"
private_key = "$file:{key_files}"
""")
    result = await asyncio.to_thread(
        CliRunner().invoke, kalshi_settlements,
        ["--config", str(config), "--run-dir", str(settled_run)])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert [line.split(":")[:2] for line in lines] == [
        [MISSING, " missing"], [EXTRA, " extra"], [DIFFERENT, " different"]]
