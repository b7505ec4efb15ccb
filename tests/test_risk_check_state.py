"""A risk check's own state (``RiskCheck.get_state`` / ``set_state``) is checkpointed under
its registered name and restored when the run resumes, as a strategy's is."""

from __future__ import annotations

import sys
import types
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest

from argus_core import Intent, Portfolio, RiskCheck, RiskContext, RiskDecision, hookimpl
from argus_core.config import load_config
from argus_core.ledger import Ledger
from argus_core.runner import CHECKPOINT, Runner


class OrderCounter(RiskCheck):
    """Allows everything; counts the orders it judged (a budget a real check might cap)."""

    name = "order_counter"
    built: ClassVar[list[OrderCounter]] = []

    def __init__(self) -> None:
        self.count = 0
        OrderCounter.built.append(self)

    def check(self, intent: Intent, quantity: Decimal, price: Decimal, portfolio: Portfolio,
              ctx: RiskContext) -> RiskDecision:
        """Count, allow."""
        self.count += 1
        return RiskDecision.allow(self.name)

    def get_state(self) -> dict[str, Any]:
        """The count so far."""
        return {"count": self.count}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue counting from a checkpoint."""
        self.count = int(state["count"])


@pytest.fixture
def counter_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    from argus_core import plugins

    module = types.ModuleType("argus_test_order_counter")
    module.register_risk_checks = hookimpl(  # type: ignore[attr-defined]
        lambda register: register("order_counter", lambda settings: OrderCounter()))
    monkeypatch.setitem(sys.modules, "argus_test_order_counter", module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS,
                                              ("order_counter", "argus_test_order_counter")))
    OrderCounter.built = []


def test_a_risk_checks_count_survives_checkpoint_and_resume(
        demo_config: Path, tmp_path: Path, counter_plugin: None) -> None:
    config = load_config(demo_config)
    full = Runner(config, tmp_path / "full").run_sync()
    want = OrderCounter.built[-1].count
    assert want > 4 and full.orders > 0

    first = Runner(config, tmp_path / "split", max_events=full.events // 2).run_sync()
    counted_before = OrderCounter.built[-1].count
    assert 0 < counted_before < want
    with Ledger.in_dir(tmp_path / "split") as ledger:
        saved = ledger.load_checkpoint(CHECKPOINT)
    assert saved is not None
    assert saved[2]["risk_checks"] == {"order_counter": {"count": counted_before}}

    resumed = Runner(config, tmp_path / "split").run_sync()
    assert resumed.resumed_from == first.events
    assert OrderCounter.built[-1].count == want  # went on from the checkpoint, not from 0
    assert resumed.orders == full.orders
