"""A strategy's intent of the wrong type is refused where it is made, naming the field:
``"buy"`` equals ``Side.BUY`` but is never it (the engine compares with ``is``), and a
dict forecast or a text order type went unchecked into the engine and ended the run in a
bare ``AttributeError`` naming no strategy.  Through the loop, the strategy is named."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from argus_core.config import load_config
from argus_core.errors import DataError
from argus_core.interfaces import Strategy, StrategyContext
from argus_core.ledger import Ledger
from argus_core.models import (
    Bar,
    CancelIntent,
    Forecast,
    Intent,
    MarketEvent,
    OrderType,
    Side,
    TimeInForce,
)
from argus_core.runner import Runner

BAD: list[tuple[str, dict[str, Any]]] = [
    ("side", {"side": "buy"}),
    ("order_type", {"order_type": "limit", "limit_price": "1"}),
    ("time_in_force", {"time_in_force": "GTC"}),
    ("forecast", {"forecast": {"mu": 0.1}}),
    ("reduce_only", {"reduce_only": 1}),
    ("reason", {"reason": None}),
    ("basket_id", {"basket_id": 7}),
    ("instrument_id", {"instrument_id": None}),
]


def intent(**fields: Any) -> Intent:
    base: dict[str, Any] = {"strategy": "s", "instrument_id": "x", "side": Side.BUY}
    return Intent(**{**base, **fields})


@pytest.mark.parametrize(("name", "fields"), BAD, ids=[b[0] for b in BAD])
def test_a_field_of_the_wrong_type_is_refused_naming_it(name: str,
                                                        fields: dict[str, Any]) -> None:
    with pytest.raises(DataError, match=rf"{name} must be"):
        intent(**fields)


def test_every_field_of_its_type_gets_past() -> None:
    made = intent(side=Side.SELL, order_type=OrderType.LIMIT, limit_price="1",
                  time_in_force=TimeInForce.GTC, forecast=Forecast(mu=0.1), reduce_only=True,
                  reason="r", basket_id="b", quantity="2")
    assert made.side is Side.SELL and made.forecast == Forecast(mu=0.1)
    assert CancelIntent("s", "x", side=Side.BUY).side is Side.BUY
    with pytest.raises(DataError, match="side must be Side or None"):
        CancelIntent("s", side="sell")  # type: ignore[arg-type]


class TextSide(Strategy):
    """Buys with ``side="buy"`` on its first bar."""

    name = "text_side"

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if type(event) is Bar:
            return [Intent(self.name, event.instrument_id, "buy")]  # type: ignore[arg-type]
        return []


def test_the_loop_names_the_strategy_and_trades_nothing(demo_config: Path,
                                                        tmp_path: Path) -> None:
    runner = Runner(load_config(demo_config), tmp_path / "run",
                    strategies={"ma_cross": TextSide()})
    summary = runner.run_sync()
    assert summary.orders == 0 and summary.trading_state == "reducing"
    with Ledger.in_dir(tmp_path / "run") as ledger:
        rows = ledger.query("select check_name, reason from risk_events")
    assert rows and {r["check_name"] for r in rows} == {"strategy_error"}
    assert "'ma_cross'" in rows[0]["reason"] and "side must be Side" in rows[0]["reason"]
