"""Trades, open positions and per-strategy P&L on the constructed ledger (conftest),
every figure worked out by hand; the per-strategy rows add up to the account exactly."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from argus_tearsheet.analytics import fee_share, profit_factor
from argus_tearsheet.run_data import load_run
from argus_tearsheet.trades import build_books
from tearsheet_ledger import HOUR_NS, STARTING_CASH, T0

from argus_core import metrics

D = Decimal


def test_trades_by_hand(constructed_run: Path) -> None:
    data = load_run(constructed_run)
    book = build_books(data.fills, data.orders, data.marks)
    got = [(t.strategy, t.instrument_id, t.side, t.quantity, t.entry_price, t.exit_price,
            t.opened_ns, t.closed_ns, t.pnl, t.fees, t.entry_reason, t.exit_reason)
           for t in book.trades]
    assert got == [
        # 0.4 @ 100 + 0.6 @ 101 -> 100.6; out at 110; 9.4 - 0.21 fees
        ("alpha", "BTC/USD", "long", D("1.0"), D("100.6"), D("110"), T0 + HOUR_NS,
         T0 + 5 * HOUR_NS, D("9.19"), D("0.21"), "fast crossed above slow",
         "fast crossed below slow"),
        # short 2 @ 50, covered 1 @ 45 + 1 @ 46 -> 45.5; 9 - 0.191 fees
        ("beta", "ETH/USD", "short", D("2"), D("50"), D("45.5"), T0 + 3 * HOUR_NS,
         T0 + 7 * HOUR_NS, D("8.809"), D("0.191"), "short signal", "cover"),
        ("alpha", "BTC/USD", "long", D("1"), D("120"), D("115"), T0 + 9 * HOUR_NS,
         T0 + 10 * HOUR_NS, D("-5.235"), D("0.235"), "", "stop"),
    ]
    assert book.trades[0].return_fraction == D("9.19") / D("100.6")
    assert book.trades[1].holding_ns == 4 * HOUR_NS


def test_trade_pnl_equals_the_cores_round_trips(constructed_run: Path) -> None:
    data = load_run(constructed_run)
    book = build_books(data.fills, data.orders, data.marks)
    core = metrics.round_trips(data.fills)
    assert sorted(t.pnl for t in book.trades) == sorted(t["pnl"] for t in core)
    assert sorted(t.fees for t in book.trades) == sorted(t["fees"] for t in core)


def test_per_strategy_money_by_hand_and_summing_to_the_account(
        constructed_run: Path) -> None:
    data = load_run(constructed_run)
    book = build_books(data.fills, data.orders, data.marks)
    alpha, beta = book.strategies
    assert (alpha.strategy, alpha.realised, alpha.unrealised, alpha.fees, alpha.net) == (
        "alpha", D("4.4"), D(0), D("0.445"), D("3.955"))
    assert (beta.strategy, beta.realised, beta.unrealised, beta.fees, beta.net) == (
        "beta", D("9"), D("1"), D("0.238"), D("9.762"))
    assert (alpha.n_fills, beta.n_fills) == (5, 4)
    assert alpha.traded_notional == D("40") + D("60.6") + D("110") + D("120") + D("115")
    total = book.total
    assert total.net == alpha.net + beta.net == D("13.717")
    # The account: final equity - starting cash, to the cent (here exactly).
    assert data.final_equity is not None
    assert total.net == data.final_equity - STARTING_CASH
    assert total.fees == sum((D(f["fee"]) for f in data.fills), D(0))
    for s in book.strategies:
        assert s.realised + s.unrealised - s.fees == s.net


def test_open_positions_at_the_final_mark(constructed_run: Path) -> None:
    data = load_run(constructed_run)
    (pos,) = build_books(data.fills, data.orders, data.marks).open_positions
    assert (pos.strategy, pos.instrument_id, pos.quantity, pos.avg_price, pos.mark,
            pos.marked, pos.unrealised, pos.entry_reason) == (
        "beta", "ETH/USD", D("1"), D("47"), D("48"), True, D("1"), "long again")
    # Without a recorded mark the position is valued at its average price, as the core does.
    (unmarked,) = build_books(data.fills, data.orders, {}).open_positions
    assert (unmarked.mark, unmarked.marked, unmarked.unrealised) == (D("47"), False, D(0))


def test_two_strategies_on_one_instrument_keep_their_own_books() -> None:
    # alpha buys 1 @ 10, beta sells 1 @ 12 (account flat), then each closes:
    # alpha sells @ 11 (+1), beta buys @ 13 (-1).
    orders = {"a": {"strategy": "alpha", "reason": "x"}, "b": {"strategy": "beta"},
              "c": {"strategy": "alpha"}, "d": {"strategy": "beta"}}
    fills = [_fill("1", "a", "buy", "10", 1), _fill("2", "b", "sell", "12", 2),
             _fill("3", "c", "sell", "11", 3), _fill("4", "d", "buy", "13", 4)]
    book = build_books(fills, orders, {})
    assert [(t.strategy, t.side, t.pnl) for t in book.trades] == [
        ("alpha", "long", D(1)), ("beta", "short", D(-1))]
    assert [s.net for s in book.strategies] == [D(1), D(-1)]


def test_a_flip_through_zero_closes_one_trade_and_opens_the_next() -> None:
    orders = {"a": {"strategy": "s"}, "b": {"strategy": "s"}, "c": {"strategy": "s"}}
    fills = [_fill("1", "a", "buy", "10", 1, qty="1", fee="0"),
             _fill("2", "b", "sell", "12", 2, qty="3", fee="0.3"),
             _fill("3", "c", "buy", "11", 3, qty="2", fee="0")]
    book = build_books(fills, orders, {})
    first, second = book.trades
    # 1/3 of the flip's fee belongs to the close, 2/3 to the new short.
    assert (first.side, first.quantity, first.pnl, first.fees) == ("long", 1, D("1.9"), D("0.1"))
    assert (second.side, second.quantity, second.entry_price, second.exit_price) == (
        "short", 2, D(12), D(11))
    assert second.pnl == D(2) - D("0.2")
    assert book.strategies[0].net == first.pnl + second.pnl


def test_win_rate_profit_factor_expectancy_by_hand(constructed_run: Path) -> None:
    data = load_run(constructed_run)
    plays = metrics.plays(metrics.round_trips(data.fills))
    pnls = [float(p["pnl"]) for p in plays]
    # Trades: +9.19, +8.809, -5.235.
    assert data.core_metrics["win_rate"] == pytest.approx(2 / 3)
    assert profit_factor(pnls) == pytest.approx((9.19 + 8.809) / 5.235)
    assert data.core_metrics["expectancy"] == pytest.approx((9.19 + 8.809 - 5.235) / 3)
    assert profit_factor([1.0, 2.0]) == float("inf")
    assert profit_factor([]) is None
    assert profit_factor([0.0]) is None
    assert profit_factor([-1.0]) == 0.0
    # Fees 0.683 of gross 13.717 + 0.683.
    assert fee_share(D("0.683"), D("13.717")) == pytest.approx(0.683 / 14.4)
    assert fee_share(D("1"), D("-5")) is None


def _fill(fill_id: str, coid: str, side: str, price: str, hour: int, *, qty: str = "1",
          fee: str = "0") -> dict[str, object]:
    return {"fill_id": fill_id, "client_order_id": coid, "venue": "v", "instrument_id": "X",
            "side": side, "price": price, "quantity": qty, "fee": fee,
            "liquidity": "taker", "ts_ns": T0 + hour * HOUR_NS}
