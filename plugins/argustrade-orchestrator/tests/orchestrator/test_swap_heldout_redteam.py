"""Held-out red team of the hot-swap: a swap while an order works, a swap during a kill,
two swaps in one poll, and a rollback after a restart (each on the campaign's harness,
``swap_campaign``, with in-process versions so that a test takes seconds)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import swap_campaign as sc
from argus_orchestrator.versions import VersionStore

from argus_core import (
    Bar,
    CancelIntent,
    Intent,
    Ledger,
    MarketEvent,
    OrderType,
    Side,
    StrategyContext,
    TimeInForce,
    TradingState,
)


class _RestingVersion(sc.FakeVersion):
    """``fake_rest_raise``: rests a far GTC bid on its first X bar, raises on its 4th
    call; ``fake_rest``: the same bid, no fault.  Other kinds as the campaign's."""

    def on_event(self, event: MarketEvent, ctx: StrategyContext
                 ) -> Sequence[Intent | CancelIntent]:
        if not self.kind.startswith("fake_rest"):
            return super().on_event(event, ctx)
        # Its own count (the hand-over brings the previous version's "n").
        n = self.state["calls"] = int(self.state.get("calls", 0)) + 1
        if self.kind == "fake_rest_raise" and n >= 4:
            raise ValueError("fake_rest_raise fails")
        if type(event) is Bar and event.instrument_id == sc.X and not self.state.get("bid"):
            self.state["bid"] = True
            return (Intent(self.name, sc.X, Side.BUY, quantity=Decimal(1),
                           order_type=OrderType.LIMIT,
                           limit_price=Decimal(repr(event.close)) / 2,
                           time_in_force=TimeInForce.GTC, reason=f"v:{self.tag}"),)
        return ()


@pytest.fixture
def campaign(monkeypatch: pytest.MonkeyPatch) -> None:
    sc.install(monkeypatch)
    monkeypatch.setattr(sc, "FakeVersion", _RestingVersion)


def _statuses(workdir: Path) -> dict[str, str]:
    """Each version's status by its number (``v001``...)."""
    with Ledger.in_dir(workdir / "run") as ledger:
        rows = ledger.query("select version_id, status from strategy_versions order by rowid")
    return {r["version_id"].split("-")[1]: r["status"] for r in rows}


def _run(plan: sc.Plan, workdir: Path, between: Any = None) -> sc.Campaign:
    """``sc.run_seed`` with ``between(campaign, i)`` called while the loop is down after
    segment ``i`` (a person's CLI on a stopped run)."""
    workdir.mkdir(parents=True, exist_ok=True)
    c = sc.Campaign(plan, workdir)
    config = sc._config(c)
    with sc._current(c):
        for i, _seg in enumerate(plan.segments):
            c.segment_index, c.base_calls, c.director_calls = i, 0, 0
            sc._run_segment(c, config)
            c.run_person_commands()
            if between is not None:
                between(c, i)
    c.problems += sc.check(c)
    return c


def test_a_rolled_back_versions_resting_order_is_cancelled(tmp_path: Path,
                                                           campaign: None) -> None:
    """Case 1: v002 rests a far bid, then raises; it is rolled back and v001 reinstated.
    The bid stayed working for the rest of the run (the loop only goes REDUCING, which
    cancels nothing): an order of a version the ledger says was rolled back could still
    fill, heard by a version that never placed it (a sandboxed one cannot even see it).
    The rollback now cancels the slot's working orders through the engine."""
    plan = sc.Plan(7001, (sc.Segment(20, ((3, sc.Act("promote", "full", "fake_rest_raise",
                                                     1)),)),), True)
    c = _run(plan, tmp_path)
    assert not c.problems, c.problems
    assert _statuses(tmp_path) == {"v001": "full", "v002": "rolled_back"}
    with Ledger.in_dir(tmp_path / "run") as ledger:
        bids = ledger.query("select status from orders where strategy = ? and order_type = "
                            "'limit'", (sc.SLOT,))
    assert bids, "the version never rested its bid: the test proves nothing"
    assert [b["status"] for b in bids] == ["cancelled"], bids


def test_a_plain_swap_keeps_the_working_order_and_sends_nothing_twice(
        tmp_path: Path, campaign: None) -> None:
    """Case 1, the other side: a promotion (not a rollback) leaves the slot's working
    orders alone (the campaign's check: no slot's books or working orders change at a
    swap), nothing is sent twice, and the slot's books are the same after the swap."""
    plan = sc.Plan(7002, (sc.Segment(20, ((3, sc.Act("promote", "full", "fake_rest", 1)),
                                          (8, sc.Act("promote", "full", "fake_good", 1)))),),
                   True)
    c = _run(plan, tmp_path)
    assert not c.problems, c.problems
    assert _statuses(tmp_path) == {"v001": "retired", "v002": "retired", "v003": "full"}
    with Ledger.in_dir(tmp_path / "run") as ledger:
        bids = ledger.query("select status from orders where strategy = ? and order_type = "
                            "'limit'", (sc.SLOT,))
    assert [b["status"] for b in bids] == ["open"], bids  # v002's bid, still working


def test_a_canary_is_not_proven_while_the_loop_is_halted(tmp_path: Path,
                                                         campaign: None) -> None:
    """Case 2: a person halts the loop while v002 is canary.  The ladder went on counting
    canary events and promoted v002 to full after ``canary_events`` events in which it
    could not trade (every order vetoed): "without a risk trigger" proved nothing.  The
    canary now waits while the loop is not ACTIVE; the kill stays, and the swap that
    brought the canary in did not reopen trading."""
    plan = sc.Plan(7003, (sc.Segment(24, ((3, sc.Act("promote", "canary", "fake_good", 1)),
                                          (5, sc.Act("halt")))),), True)
    c = _run(plan, tmp_path)
    assert not c.problems, c.problems
    assert _statuses(tmp_path) == {"v001": "full", "v002": "canary"}
    with Ledger.in_dir(tmp_path / "run") as ledger:
        latch = json.loads(ledger.get_control("trading_state") or "{}")
    assert latch.get("state") == TradingState.HALTED.value, latch


def test_a_promotion_during_a_kill_does_not_reopen_trading(tmp_path: Path,
                                                           campaign: None) -> None:
    """Case 2: a person kills the loop, then promotes v002 to full.  The swap happens (a
    person asked), but the loop stays HALTED: no order of the slot opens exposure
    after the kill."""
    plan = sc.Plan(7004, (sc.Segment(24, ((3, sc.Act("halt")),
                                          (5, sc.Act("promote", "full", "fake_good", 1)))),),
                   True)
    c = _run(plan, tmp_path)
    assert not c.problems, c.problems
    assert _statuses(tmp_path) == {"v001": "retired", "v002": "full"}
    with Ledger.in_dir(tmp_path / "run") as ledger:
        latch = json.loads(ledger.get_control("trading_state") or "{}")
        kill_ts = ledger.query("select min(ts_ns) as t from strategy_events where "
                               "to_status like 'requested:%'")[0]["t"]
        opened = ledger.query("select client_order_id from orders where strategy = ? and "
                              "ts_ns >= ? and side = 'buy' and status != 'rejected'",
                              (sc.SLOT, kill_ts))
    assert latch.get("state") == TradingState.HALTED.value, latch
    assert not opened, opened


def test_two_swaps_in_one_poll_then_two_rollbacks(tmp_path: Path, campaign: None) -> None:
    """Case 3: v002 and v003 are asked full in the same poll (v003 before v002 traded an
    event); a person rolls back v003, then v002.  Each rollback reinstates the version
    the rolled-back one replaced; at the end v001 trades and is the one version full."""
    plan = sc.Plan(7005, (sc.Segment(30, ((3, sc.Act("promote", "full", "fake_good", 1)),
                                          (3, sc.Act("promote", "full", "fake_good", 1)),
                                          (10, sc.Act("rollback")),
                                          (16, sc.Act("rollback")))),), True)
    c = _run(plan, tmp_path)
    assert not c.problems, c.problems
    assert _statuses(tmp_path) == {"v001": "full", "v002": "rolled_back",
                                   "v003": "rolled_back"}


def test_a_restart_does_not_apply_a_persons_old_rollback_again(tmp_path: Path,
                                                               campaign: None) -> None:
    """Case 4: a person rolls back v002, then (the run stopped) promotes it again; the
    next run swaps it in full.  A restart after that read the person's old rollback of
    v002 once more (a resumed run reads every request from the start), found v002
    running, and swapped v001 back in: the loop ran v001 while the ledger said v002 was
    full (and v001 full too).  A rollback a later change of its version has answered is
    no longer applied."""
    plan = sc.Plan(7006, (sc.Segment(16, ((3, sc.Act("promote", "full", "fake_good", 1)),
                                          (8, sc.Act("rollback")))),
                          sc.Segment(12, ()), sc.Segment(12, ())), True)

    def between(c: sc.Campaign, i: int) -> None:
        if i == 0:
            with Ledger.in_dir(c.run_dir) as ledger:
                store = VersionStore(ledger)
                vid = next(v["version_id"] for v in store.list(sc.SLOT)
                           if v["status"] == "rolled_back")
                store.request(vid, "full", "again", actor="person")

    c = _run(plan, tmp_path, between)
    assert not c.problems, c.problems
    assert _statuses(tmp_path) == {"v001": "retired", "v002": "full"}
    first = [e for e in c.read() if e["kind"] == "first" and e["segment"] == 2]
    assert first and first[0]["ledger"] and first[0]["ledger"].split("-")[1] == "v002", first
