"""A risk check that raises never takes the loop down: on an intent it fails closed
(vetoed, with the reason) except for exits, which always pass; on a fill the fill stands,
the error is a risk event and trading goes to REDUCING (a check that missed a fill no
longer knows the risk)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from argus_test_helpers import BUNDLED_BARS, demo_toml

from argus_core.config import load_config
from argus_core.interfaces import RiskCheck, RiskContext
from argus_core.ledger import Ledger
from argus_core.models import Fill, Intent, Portfolio, RiskDecision
from argus_core.runner import Runner


class RaisesOnEntries(RiskCheck):
    """Raises on every intent; guards exits too (so an exit reaches it)."""

    name = "broken_entries"
    checks_exits = True

    def check(self, intent: Intent, quantity: Decimal, price: Decimal,
              portfolio: Portfolio, ctx: RiskContext) -> RiskDecision:
        raise ZeroDivisionError("bug in the check")


class RaisesOnFills(RiskCheck):
    """Allows everything, raises on every fill."""

    name = "broken_fills"

    def check(self, intent: Intent, quantity: Decimal, price: Decimal,
              portfolio: Portfolio, ctx: RiskContext) -> RiskDecision:
        return RiskDecision.allow(self.name)

    def on_fill(self, fill: Fill, portfolio: Portfolio, ctx: RiskContext) -> None:
        raise KeyError("bug on fills")


def _runner(tmp_path: Path, check: RiskCheck) -> Runner:
    cfg = tmp_path / "run.toml"
    cfg.write_text(demo_toml(BUNDLED_BARS, end="2022-04-01"))
    runner = Runner(load_config(cfg), tmp_path / "run")
    runner.risk.checks.append(check)
    return runner


def test_a_check_that_raises_vetoes_entries_and_the_run_goes_on(tmp_path: Path) -> None:
    summary = _runner(tmp_path, RaisesOnEntries()).run_sync()
    assert summary.events > 1000 and summary.fills == 0  # to the end, nothing entered
    with Ledger.in_dir(tmp_path / "run") as ledger:
        vetoes = ledger.query("select * from risk_events where check_name = 'broken_entries'")
    assert vetoes and {v["action"] for v in vetoes} == {"veto"}
    assert "check raised ZeroDivisionError: bug in the check" in vetoes[0]["reason"]


def test_a_check_that_raises_on_fills_leaves_the_fill_booked_and_reduces(
        tmp_path: Path) -> None:
    summary = _runner(tmp_path, RaisesOnFills()).run_sync()
    assert summary.fills >= 1
    with Ledger.in_dir(tmp_path / "run") as ledger:
        errors = ledger.query("select * from risk_events where check_name = 'broken_fills'")
        fills = ledger.query("select * from fills")
        buys = ledger.query("select * from orders where side = 'buy'")
        state = ledger.query("select value from control where key = 'trading_state'")
    assert errors and errors[0]["action"] == "error" and "KeyError" in errors[0]["reason"]
    assert len(fills) == summary.fills  # every fill stands
    assert len(buys) == 1  # REDUCING after the first fill: no second entry
    assert state and '"reducing"' in state[0]["value"]


def test_a_check_that_raises_never_holds_an_exit() -> None:
    from argus_core.models import Position, RiskAction, Side
    from argus_core.risk import RiskEngine

    engine = RiskEngine([RaisesOnEntries()])
    held = Portfolio(Decimal(1000), {"x": Position("x", Decimal(2), Decimal(10))})
    exit_ = Intent("s", "x", Side.SELL, quantity=Decimal(2), reduce_only=True)
    verdict = engine.evaluate(exit_, Decimal(2), Decimal(10), held)
    assert verdict.allowed and verdict.quantity == Decimal(2)
    (decision,) = verdict.decisions  # recorded, so the bug is seen
    assert decision.action is RiskAction.ALLOW and "bug in the check" in decision.reason
    entry = Intent("s", "x", Side.BUY, quantity=Decimal(1))
    assert not engine.evaluate(entry, Decimal(1), Decimal(10), held).allowed
