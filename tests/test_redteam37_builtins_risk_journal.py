"""Red team of the builtin order-rate check (a basket's legs cannot together walk past the
limit: none is sent, so none is timed, before all are judged) and of the journal (its
structured fields, which a JSON handler ships as they are, carry no secret)."""

from __future__ import annotations

import logging
import types
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path

import pytest
from argus_testkit.engine import EngineHarness
from test_pending_orders_risk import INST, SlowCancels

from argus_core.builtins import journal
from argus_core.builtins.risk_checks import OrderRate, RiskSettings
from argus_core.interfaces import RiskContext
from argus_core.models import Intent, Leg, Opportunity, OrderType, Portfolio, Side, TimeInForce
from argus_core.secrets import forget_all, remember

NS = 10**9


def _leg(basket: str | None = "b1") -> Intent:
    return Intent("s", INST.id, Side.BUY, quantity=D(1), limit_price=D("0.50"),
                  order_type=OrderType.LIMIT, time_in_force=TimeInForce.IOC, basket_id=basket)


def test_a_baskets_legs_count_towards_the_order_rate() -> None:
    """58 orders in the minute, a limit of 60: a basket of three legs was judged whole
    (each leg saw 58) and sent 61 orders in one minute.  The engine says how many legs
    of the basket were judged before each (``RiskContext.pending_legs``)."""
    check = OrderRate(RiskSettings(max_orders_per_minute=60))
    ctx = RiskContext(ts_ns=100 * NS, order_times_ns=[(41 + k) * NS for k in range(58)])
    pf = Portfolio(D(1000))
    verdicts = []
    for k in range(3):
        ctx.pending_legs = k
        verdicts.append(check.check(_leg(), D(1), D("0.5"), pf, ctx).action.value)
    assert verdicts == ["allow", "allow", "veto"]  # 58 + 3 > 60: the third is one too many
    ctx.pending_legs = 0  # single orders are judged alone: 59 timed + 1 passes, 60 + 1 not
    ctx.order_times_ns.append(100 * NS)
    assert check.check(_leg(None), D(1), D("0.5"), pf, ctx).action.value == "allow"
    ctx.order_times_ns.append(100 * NS)
    assert check.check(_leg(None), D(1), D("0.5"), pf, ctx).action.value == "veto"


async def test_the_engine_sends_no_basket_past_the_order_rate(tmp_path: Path) -> None:
    """Through the engine: two orders in the minute, a limit of 3, a basket of two."""
    h = EngineHarness(tmp_path / "run", SlowCancels(), INST, D("0.50"))
    h.risk.checks = [OrderRate(RiskSettings(max_orders_per_minute=3))]
    await h.start()
    with h.between_events():
        assert h.engine._route([_leg(None)], 1) and h.engine._route([_leg(None)], 2)
        assert h.engine._route([_leg("b1"), _leg("b1")], 3) == []  # 2 + 2 > 3
        assert len(h.engine._route([_leg("b2")], 4)) == 1  # 2 + 1 fits
    assert len(h.risk.ctx.order_times_ns) == 3
    await h.close()


@pytest.fixture
def secret() -> Iterator[str]:
    value = "tok-3f9a1c7e5b2d4068a9e1"
    remember(value)
    yield value
    forget_all()


def test_the_journals_structured_fields_carry_no_secret(
        secret: str, caplog: pytest.LogCaptureFixture) -> None:
    """The message is redacted by Argus's formatters; the ``journal`` dict a JSON handler
    ships went out as it was, a secret in an opportunity's reason included."""
    ctx = types.SimpleNamespace(run_id="r1", mode="replay")
    opp = Opportunity("o1", "scan", 1, "test", (Leg(INST.id, Side.BUY, D("0.5"), D(1)),),
                      D("0.1"), D(1), D("0.1"), D(0),
                      reason=f"GET https://api.example/x?key={secret} said so",
                      event_id=f"ev-{secret}")
    with caplog.at_level(logging.INFO, logger="argus.journal"):
        journal.on_opportunity(opp, ctx)  # type: ignore[arg-type]
    fields = [r.journal for r in caplog.records if r.name == "argus.journal"]  # type: ignore[attr-defined]
    assert fields and secret not in repr(fields), fields
    assert "[REDACTED]" in fields[0]["reason"] and fields[0]["scanner"] == "scan"
