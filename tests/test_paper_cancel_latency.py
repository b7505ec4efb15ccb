"""A paper cancel takes ``[paper] latency_ms`` to reach the market, as an order does.
Before, a cancel ended the order at once even with latency: a resting order could not
be filled by the market while its cancel was on the way, which flattered every strategy
that cancels (a quote pulled just before it would have been hit)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from order_path_kit import RTVenue, S, Scripted, X, book, buy, q, register, runner

from argus_core.models import CancelIntent, Side, TimeInForce, Trade


def _run(tmp_path: Path, sold_at: int) -> dict[str, object]:
    """Books on X at t = 1..14 (99 / 101) and a print at 99.5 (a seller hitting bids at
    and above it) at ``sold_at``; the strategy rests a buy at 100 on its first event and
    cancels it at t = 7; latency 5 s (the cancel reaches the market at t = 12)."""
    RTVenue.script = [book(X, t) for t in range(1, 15)]
    RTVenue.script.insert(sold_at, Trade(X, sold_at * S + S // 2, "99.5", "10", Side.SELL))
    plan = {1: lambda e, c: [buy(X, "1", limit="100", tif=TimeInForce.GTC)],
            7: lambda e, c: [CancelIntent("s", X, "pulled")] if e.ts_ns == 7 * S else []}
    runner(tmp_path, {"s": Scripted(plan)}, mode="paper",
           extra={"paper": {"latency_ms": 5000}}).run_sync()
    rows = q(tmp_path / "run", "select status, filled_quantity from orders")
    assert len(rows) == 1, rows
    return rows[0]


def test_a_cancel_on_its_way_lets_the_market_fill_the_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch)
    row = _run(tmp_path, 9)  # 2.5 s after the cancel was sent
    assert row["status"] == "filled" and Decimal(str(row["filled_quantity"])) == 1, row


def test_a_cancel_ends_the_order_when_it_reaches_the_market(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch)
    row = _run(tmp_path, 13)  # after the cancel arrived
    assert row["status"] == "cancelled" and Decimal(str(row["filled_quantity"] or 0)) == 0, row
