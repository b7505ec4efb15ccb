"""Red team 37 of the order path (the real ``Runner`` and ``order_path_kit``'s scripted
venue); each test failed before its fix:

* a position left below one lot (a venue filled 2.000000001 of an order of 2) under a
  kill with flatten wrote a ``sizing skip`` risk event on every market event for the
  rest of the run (the flatten's order rounded to nothing, again and again); now one
  ``flatten below_lot`` event says it;
* a risk check's shrink went out off the instrument's lot grid (69.30693069 on a lot of
  0.01, which a venue refuses): now put back on the grid like a basket's legs.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from order_path_kit import RTVenue, Scripted, X, Y, bar, buy, cli_, position, q, register, runner

from argus_core.errors import OrderUnknown
from argus_core.models import Fill, Instrument, Order, OrderStatus, OrderUpdate, TimeInForce


class LotVenue(RTVenue):
    """X trades in lots of 0.01."""

    async def instruments(self) -> Sequence[Instrument]:
        return [Instrument("rt", "X/USD", lot_size=Decimal("0.01")), Instrument("rt", "Y/USD")]


def _events(run: Path, check: str, action: str) -> list[dict[str, object]]:
    return q(run, "select reason from risk_events where check_name = ? and action = ?",
             (check, action))


def test_a_flatten_of_less_than_one_lot_is_said_once_not_per_event(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch)
    run = tmp_path / "run"
    RTVenue.fill_at_once = False

    def overfill() -> None:  # the venue fills a little more than the order of 2
        RTVenue.inst.fill(RTVenue.held[0], qty=Decimal("2.000000001"))  # type: ignore[attr-defined]

    RTVenue.script = [bar(X, 1), bar(X, 2), overfill, bar(X, 3)]
    plan = {1: lambda e, c: [buy(X, "2", tif=TimeInForce.GTC)]}
    runner(tmp_path, {"s": Scripted(plan)}).run_sync()
    assert position(run) == Decimal("2.000000001")
    cli_("kill", "--run-dir", str(run), "--flatten")  # read when the run resumes
    RTVenue.fill_at_once = True
    RTVenue.script = [bar(X, t) for t in range(4, 24)]
    runner(tmp_path, {"s": Scripted(plan)}).run_sync()
    assert position(run) == Decimal("1E-9")  # the flatten sold the 2 it could
    assert not _events(run, "sizing", "skip"), "a skip per event for the dust"
    assert len([e for e in _events(run, "flatten", "waiting") if "below one lot" in str(e)]) == 1


def test_a_checks_shrink_goes_out_on_the_lot_grid(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, LotVenue)
    LotVenue.script = [bar(X, 1), bar(Y, 1), bar(X, 2)]
    plan = {1: lambda e, c: [buy(X, "500")], 2: lambda e, c: [buy(Y, "500")]}
    runner(tmp_path, {"s": Scripted(plan)}, checks=["per_play_cap"]).run_sync()
    # 7 % of 100,000 at 101: 69.30693069, on the grids of 0.01 and of 1e-8
    assert [o.quantity for o in RTVenue.submitted] == [Decimal("69.30"),
                                                       Decimal("69.30693069")]


# -- a lookup answered about another order ------------------------------------------------
class WrongAnswers(RTVenue):
    """The second send has no answer (the request never arrived); a lookup answers
    CANCELLED about the first order (working here) instead of the one asked about."""

    async def submit(self, order: Order) -> list[Fill]:
        if RTVenue.submitted:
            raise OrderUnknown("timed out", [order.client_order_id])
        return await super().submit(order)

    async def lookup(self, order: Order) -> OrderUpdate | None:
        first = RTVenue.submitted[0].client_order_id
        return OrderUpdate(first, OrderStatus.CANCELLED, 1, reason="never seen")


def test_a_lookup_answered_about_another_order_changes_neither(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, WrongAnswers)
    run = tmp_path / "run"
    plan = {1: lambda e, c: [buy(X, "1", limit="90", tif=TimeInForce.GTC)],
            2: lambda e, c: [buy(X, "1", limit="90", tif=TimeInForce.GTC)]}
    WrongAnswers.script = [bar(X, t) for t in range(1, 40)]
    runner(tmp_path, {"s": Scripted(plan)}).run_sync()
    first = RTVenue.submitted[0].client_order_id
    statuses = {r["client_order_id"]: r["status"] for r in q(
        run, "select client_order_id, status from orders")}
    assert statuses.pop(first) == "open", "a working order ended on another's answer"
    assert list(statuses.values()) == ["pending"]  # still unknown: never re-sent blind
    assert len(RTVenue.submitted) == 1
