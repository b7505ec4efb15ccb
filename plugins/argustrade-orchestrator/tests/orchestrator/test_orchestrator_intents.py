"""The orchestrator's wrappers take every kind of intent, and its truth benchmarks describe
the same trades as the fills they read.

A candidate that returns a ``CancelIntent`` (no side, no quantity) once crashed its own
proving run into REDUCING (the intent counter read ``quantity``) and would have crashed as
a canary (the cap read ``side``) and in shadow (the shadow book read ``side``).  And a
cycle's benchmarks read fills the loop had booked but equity rows it had not written yet:
P&L, drawdown and Sharpe of 0 beside an expectancy of -195.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argus_orchestrator.config import OrchestratorSettings
from argus_orchestrator.cycle import truth_benchmarks
from argus_orchestrator.gates import IntentCounter, prove
from argus_orchestrator.ladder import CanaryCap, ShadowBook
from argus_test_helpers import BUNDLED_BARS, demo_toml

from argus_core.config import load_config
from argus_core.interfaces import Strategy, StrategyContext
from argus_core.ledger import Ledger
from argus_core.models import (
    Bar,
    CancelIntent,
    Fill,
    Intent,
    Liquidity,
    MarketEvent,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

IID = "replay:BTC/USD"


class Scripted(Strategy):
    """Returns the intents ``script`` gives for the n-th bar (1-based)."""

    name = "ma_cross"

    def __init__(self, script: Any) -> None:
        self.script = script
        self.bars = 0

    def on_event(self, event: MarketEvent, ctx: StrategyContext
                 ) -> Sequence[Intent | CancelIntent]:
        if type(event) is not Bar:
            return []
        self.bars += 1
        return list(self.script(self.bars, event.instrument_id))


def _bar(close: float, ts_ns: int = 1) -> Bar:
    return Bar(IID, ts_ns, close, close, close, close, 1.0)


def _buy(qty: str | None = None) -> Intent:
    return Intent("ma_cross", IID, Side.BUY, quantity=None if qty is None else Decimal(qty))


CANCEL = CancelIntent("ma_cross", IID, "tidy up")


def test_canary_cap_passes_a_cancel_and_still_caps_buys() -> None:
    canary = CanaryCap(Scripted(lambda n, iid: [CANCEL, _buy("100"), CancelIntent("ma_cross")]),
                       Decimal("2000"))
    out = list(canary.on_event(_bar(100.0), None))  # type: ignore[arg-type]
    assert out[0] is CANCEL and out[2] == CancelIntent("ma_cross")
    assert isinstance(out[1], Intent) and out[1].quantity == Decimal("20")  # 2000 / 100


def test_intent_counter_counts_orders_and_cancels_apart() -> None:
    counter = IntentCounter(Scripted(lambda n, iid: [CANCEL, _buy(), _buy("1")]))
    counter.on_event(_bar(100.0), None)  # type: ignore[arg-type]
    assert (counter.intents, counter.unsized, counter.cancels) == (2, 1, 1)


def test_shadow_book_ignores_a_cancel() -> None:
    book = ShadowBook(Decimal("1000"), Decimal("0"))
    book.on_bar(100.0, [CANCEL, _buy()])
    book.on_bar(110.0, [CANCEL])
    assert book.trades == 1 and book.pnl == pytest.approx(100.0)


def test_a_candidate_that_cancels_is_proven_like_any_other(tmp_path: Path) -> None:
    """Its proving backtest ends ACTIVE (it was REDUCING: the counter raised on the
    cancel, and the runner took that for the strategy failing)."""
    config_path = tmp_path / "c.toml"
    config_path.write_text(demo_toml(BUNDLED_BARS, start="2022-06-01", end="2022-06-15"))
    config = load_config(config_path)
    settings = OrchestratorSettings(lab_gates=False, min_trades=0)

    def candidate(n: int, iid: str) -> list[Intent | CancelIntent]:
        out: list[Intent | CancelIntent] = [CancelIntent("ma_cross", iid, "no stale orders")]
        if n == 5:
            out.append(Intent("ma_cross", iid, Side.BUY, quantity=Decimal("0.01")))
        if n == 100:
            out.append(Intent("ma_cross", iid, Side.SELL, quantity=Decimal("0.01")))
        return out

    def incumbent(n: int, iid: str) -> list[Intent]:
        return [Intent("ma_cross", iid, Side.BUY, quantity=Decimal("0.01"))] if n == 5 else []

    outcome = prove(config, settings, candidate_id="v2", candidate=lambda: Scripted(candidate),
                    incumbent_id="v1", incumbent=lambda: Scripted(incumbent),
                    work_dir=tmp_path / "work")
    cand = outcome.details["candidate"]
    assert cand["trading_state"] == "active", outcome.reasons
    assert not any("state" in r for r in outcome.reasons), outcome.reasons
    assert cand["intents"] == 2 and cand["cancels"] > 100 and cand["orders"] == 2
    assert cand["n_trades"] == 1


def _fill(ledger: Ledger, n: int, side: Side, price: str, ts_ns: int) -> None:
    coid = f"o{n}"
    ledger.insert_order(Order(coid, "replay", IID, side, Decimal(1), None, OrderType.MARKET,
                              TimeInForce.IOC, "ma_cross", ts_ns, OrderStatus.FILLED), "run")
    ledger.insert_fill(Fill(f"{coid}-1", coid, "replay", IID, side, Decimal(price),
                            Decimal(1), Decimal(0), Liquidity.TAKER, ts_ns))


def test_truth_benchmarks_extend_the_written_equity_with_the_loops_marks(
        tmp_path: Path) -> None:
    """Fills are in the ledger, the equity rows after t=2 not yet: the loop's marks carry
    the curve on, so P&L and drawdown describe the losing trade the expectancy counts."""
    with Ledger.in_dir(tmp_path) as ledger:
        for ts in (1, 2):
            ledger.insert("equity", {"ts_ns": ts, "cash": "1000", "equity": "1000",
                                     "gross_exposure": "0"})
        _fill(ledger, 1, Side.BUY, "100", 3)
        _fill(ledger, 2, Side.SELL, "80", 5)
        unwritten = [(2, 5000.0), (3, 1000.0), (4, 990.0), (5, 980.0)]  # t=2 is written
        bench = truth_benchmarks(ledger, Decimal(1000), unwritten)
        assert bench["n_trades"] == 1 and bench["expectancy"] == pytest.approx(-20.0)
        assert bench["total_pnl"] == pytest.approx(-20.0)
        assert bench["total_return"] == pytest.approx(-0.02)
        assert bench["max_drawdown"] == pytest.approx(0.02)
        assert bench["sharpe"] < 0
        # Without the marks: the written rows alone (what the cycle used to report).
        assert truth_benchmarks(ledger, Decimal(1000))["total_pnl"] == 0.0
