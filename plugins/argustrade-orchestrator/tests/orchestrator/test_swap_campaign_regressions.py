"""What the hot-swap campaign found, each shrunk to a deterministic plan (see
``swap_campaign``), and the core's part (each a strict xfail until its core fix landed)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import swap_campaign as sc

from argus_core import ArgusError, Ledger, Runner, Strategy
from argus_core.config import parse_config


@pytest.fixture
def campaign(monkeypatch: pytest.MonkeyPatch) -> None:
    sc.install(monkeypatch)


def _plan(*segments: sc.Segment, trusted: bool = False) -> sc.Plan:
    return sc.Plan(9000, segments, trusted)


def _versions(workdir: Path) -> list[dict[str, Any]]:
    with Ledger.in_dir(workdir / "run") as ledger:
        return ledger.query("select version_id, status, reason from strategy_versions "
                            "order by rowid")


def _by_number(workdir: Path) -> dict[str, dict[str, Any]]:
    """Each version's row by its number (``v001``...)."""
    return {v["version_id"].split("-")[1]: v for v in _versions(workdir)}


def _statuses(workdir: Path) -> dict[str, str]:
    """Each version's status by its number."""
    return {n: v["status"] for n, v in _by_number(workdir).items()}


def test_a_restart_resumes_the_swapped_version(tmp_path: Path, campaign: None) -> None:
    """Seed 1: ``argus orchestrate`` refused the run directory of a stopped run, and once
    allowed, restoring the checkpoint crashed (``_LateSupervised`` had no
    ``keep_own_state``); the resumed run must trade the version the ledger says is full,
    with the checkpoint naming it too."""
    plan = _plan(sc.Segment(20, ((3, sc.Act("promote", "full", "good", 1)),)),
                 sc.Segment(12, ()))
    result = sc.run_seed(plan.seed, tmp_path, plan)
    assert not result.problems, result.report()
    first = [e for e in sc.Campaign(plan, tmp_path).read()
             if e["kind"] == "first" and e["segment"] == 1]
    assert first and first[0]["running"].startswith("s0n1"), first
    assert [v["status"] for v in _versions(tmp_path)] == ["retired", "full"]


def test_a_restart_after_a_sigkill_mid_canary_rejects_the_canary_at_the_stop(
        tmp_path: Path, campaign: None) -> None:
    """Seed 7: a canary live at a SIGKILL is not resumed half-way up the ladder: it is
    rejected, stamped when the stopped process last committed (it was stamped 0, before
    every row), and the full version trades on."""
    plan = _plan(sc.Segment(30, ((3, sc.Act("promote", "full", "good", 1)),
                                 (8, sc.Act("promote", "canary", "fake_good", 1))),
                            sigkill_at=14),
                 sc.Segment(12, ()))
    result = sc.run_seed(plan.seed, tmp_path, plan)
    assert not result.problems, result.report()
    rows = _versions(tmp_path)
    assert [v["status"] for v in rows] == ["retired", "full", "rejected"]
    assert "restarted while it was canary" in rows[2]["reason"]
    with Ledger.in_dir(tmp_path / "run") as ledger:
        stamp = ledger.query("select ts_ns from strategy_events where to_status = "
                             "'rejected'")[0]["ts_ns"]
    assert stamp > 0


def test_a_reinstated_ai_version_is_still_rolled_back_when_it_fails(
        tmp_path: Path, campaign: None) -> None:
    """Seed 24: v2 (AI) is replaced by v3, which fails; the rollback reinstates v2, which
    then fails itself: it was no longer watched, so it was never rolled back (its worker
    dead, the slot silent).  Now it goes back to the seed."""
    plan = _plan(sc.Segment(40, ((3, sc.Act("promote", "full", "raise", 12)),
                                 (6, sc.Act("promote", "full", "many", 1)))))
    result = sc.run_seed(plan.seed, tmp_path, plan)
    assert not result.problems, result.report()
    rows = _versions(tmp_path)
    assert [v["status"] for v in rows] == ["full", "rolled_back", "rolled_back"], rows
    assert "overtrading" in rows[2]["reason"] and "ValueError" in rows[1]["reason"]


def test_no_order_of_a_version_after_a_persons_rollback_is_read(
        tmp_path: Path, campaign: None) -> None:
    """Seed 17: the loop reads a person's rollback at its next tick; the rolled-back
    version still traded that event, after the ledger said it was rolled back."""
    plan = _plan(sc.Segment(40, ((3, sc.Act("promote", "full", "fake_good", 1)),
                                 (12, sc.Act("rollback")))), trusted=True)
    # Event 12 is a bar of X (even events are Y's, 1-based): the version trades then.
    result = sc.run_seed(plan.seed, tmp_path, plan)
    assert not result.problems, result.report()


def test_a_failure_while_a_swap_is_pending_is_the_outgoing_versions(
        tmp_path: Path, campaign: None) -> None:
    """Seed 24: v2 fails at the very event whose tick asked for v3's swap.  The trigger
    rolled back v3, which had not traded, and reinstated v2, the version that failed.
    Now v2 is rolled back, saying so, and v3 comes in.  (Seed 24's own plan reached this
    through a person's rollback written inside the loop's transaction; the campaign's
    person now writes between the loop's transactions, as the CLI does, so the plan is
    this one.)"""
    plan = sc.Plan(24, (sc.Segment(20, ((3, sc.Act("promote", "full", "many", 2)),
                                        (4, sc.Act("promote", "full", "good", 1)))),), True)
    result = sc.run_seed(plan.seed, tmp_path, plan)
    assert not result.problems, result.report()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        rows = ledger.query("select version_id, reason from strategy_events where "
                            "to_status = 'rolled_back' order by id")
    assert rows and "was being swapped in" in rows[0]["reason"], rows


def _bare_runner(tmp_path: Path, strategies: dict[str, Strategy]) -> Runner:
    config = parse_config({"argus": {"plugins": [], "mode": "paper", "seed": 1},
                           "run": {"venue": sc.VENUE, "strategies": list(strategies),
                                   "starting_cash": "1000"}}, tmp_path / "c.toml")
    return Runner(config, tmp_path / "run", strategies=strategies)


class _Quiet(Strategy):
    """Trades nothing."""

    name = "quiet"

    def on_event(self, event: Any, ctx: Any) -> list[Any]:
        return []


class _BadState(_Quiet):
    """Its ``get_state`` raises (a trusted plugin's bug)."""

    def get_state(self) -> dict[str, Any]:
        raise ValueError("no state today")


def _one_segment(tmp_path: Path) -> sc.Campaign:
    c = sc.Campaign(_plan(sc.Segment(6, ())), tmp_path)
    sc.Campaign.current = c
    return c


def test_a_swap_for_an_unknown_slot_is_refused(tmp_path: Path, campaign: None) -> None:
    _one_segment(tmp_path)
    try:
        runner = _bare_runner(tmp_path, {"a": _Quiet()})
        outcome: dict[str, Any] = {}

        class Asker(_Quiet):
            def on_event(self, event: Any, ctx: Any) -> list[Any]:
                if "f" not in outcome:
                    outcome["f"] = runner.request_swap("nope", _Quiet(), version_id="v9")
                return []

        runner.asm.strategies["a"] = Asker()
        runner.run_sync()
        assert "nope" not in runner.asm.strategies
        assert outcome["f"].done() and outcome["f"].exception() is not None
    finally:
        sc.Campaign.current = None


def test_a_strategy_whose_get_state_raises_does_not_end_the_run(
        tmp_path: Path, campaign: None) -> None:
    _one_segment(tmp_path)
    try:
        runner = _bare_runner(tmp_path, {"a": _BadState()})
        summary = runner.run_sync()
        assert summary.events == 6
    finally:
        sc.Campaign.current = None


def test_a_swap_from_another_thread_is_refused(tmp_path: Path, campaign: None) -> None:
    """``Runner.request_swap`` off the loop's thread raises (the orchestrator's ``_swap``
    too), and the slot keeps its strategy."""
    _one_segment(tmp_path)
    try:
        runner = _bare_runner(tmp_path, {"a": _Quiet()})
        errors: list[BaseException] = []

        class Asker(_Quiet):
            def on_event(self, event: Any, ctx: Any) -> list[Any]:
                def other() -> None:
                    try:
                        runner.request_swap("a", _Quiet(), version_id="v9")
                    except BaseException as exc:
                        errors.append(exc)
                if not errors:
                    t = threading.Thread(target=other)
                    t.start()
                    t.join()
                return []

        asker = Asker()
        runner.asm.strategies["a"] = asker
        runner.run_sync()
        assert errors and isinstance(errors[0], ArgusError), errors
        assert runner.asm.strategies["a"] is asker
    finally:
        sc.Campaign.current = None




def test_a_persons_rollback_of_the_canary_is_not_overwritten_by_its_promotion(
        tmp_path: Path, campaign: None) -> None:
    """Seed 1245 (a wide sweep, seeds 1000-2199): a good version goes shadow, then canary;
    a person rolls the canary back at the very event its canary count ends.  The ladder's
    promotion, written without looking again, moved it from rolled_back to full: the
    ledger said it traded while the loop (which heard the rollback) ran the parent.  The
    promotion is now a compare-and-set on 'canary'; a person's move is heard first.
    (The campaign's person now writes between the loop's transactions, as the CLI does;
    the race needs a loop that steps at an event it reads no request: polling every
    second event, as here.)"""
    plan = sc.Plan(1245, (sc.Segment(24, ((3, sc.Act("promote", "canary", "good", 1)),
                                          (8, sc.Act("rollback")))),), True, poll=2)
    result = sc.run_seed(plan.seed, tmp_path, plan)
    assert not result.problems, result.report()
    statuses = _statuses(tmp_path)
    assert statuses == {"v001": "full", "v002": "rolled_back"}, statuses


def test_a_canary_that_fails_at_its_promotion_is_rolled_back(tmp_path: Path,
                                                             campaign: None) -> None:
    """Seed 2373 (a wide sweep, 2200-3399; eight seeds of this class): a canary whose
    fault starts on its 8th call fails at the very event its canary count ends.  The
    promotion's swap (the same version, canary to full) was pending, so the failure was
    taken for the outgoing version's, which was the same one: nothing rolled it back and
    it went on trading full."""
    plan = sc.Plan(2373, (sc.Segment(22, (
        (2, sc.Act("promote", "canary", "unknown_instrument", 8)),
        (13, sc.Act("halt", "shadow", "big_state", 4)))),), True)
    result = sc.run_seed(plan.seed, tmp_path, plan)
    assert not result.problems, result.report()
    statuses = _statuses(tmp_path)
    assert statuses == {"v001": "full", "v002": "rolled_back"}, statuses


def test_a_persons_rollback_of_the_version_a_canary_returns_to_is_heard(
        tmp_path: Path, campaign: None) -> None:
    """Seed 2830 (a wide sweep; four seeds of this class): v002 trades full; a person
    asks for v003 as canary, then rolls the slot back (the CLI rolls back v002, the live
    version, and reinstates v001) before the loop applied the canary.  The loop applied
    the canary (v002 its fallback) and ignored the rollback of a version not running; the
    canary failed and its rollback reinstated v002, the version the person had rolled
    back; after a restart the ledger and the loop disagreed.  (A person's rollback is now
    applied before the promotions read with it, and the campaign's person writes
    between the loop's transactions: the next test holds that order.)"""
    plan = sc.Plan(2830, (
        sc.Segment(28, ((9, sc.Act("promote", "full", "fake_huge", 2)),), sigkill_at=11),
        sc.Segment(28, ((4, sc.Act("promote", "canary", "negative_qty", 1)),
                        (5, sc.Act("rollback")))),
        sc.Segment(40, ((10, sc.Act("rollback", "full", "fake_start_sandbox", 2)),
                        (31, sc.Act("promote", "full", "fake_cancel_other", 1))))), True)
    result = sc.run_seed(plan.seed, tmp_path, plan)
    assert not result.problems, result.report()


def test_a_persons_rollback_reinstates_the_version_the_live_one_replaced(
        tmp_path: Path, campaign: None) -> None:
    """Seed 3035 (a wide sweep, 1000-4599): v002 trades full; v003 is asked full (its
    parent is v002, live when it was written); v002 fails and is rolled back, v001
    reinstated; the loop applies v003, which replaces v001.  A person's rollback of v003
    through the CLI reinstated its parent v002 (rolled back itself) while the loop swapped
    back in v001: two versions full, the ledger naming one the loop did not run.  Both
    now reinstate the version v003 replaced (``replaced_id``)."""
    plan = sc.Plan(3035, (sc.Segment(30, (
        (3, sc.Act("promote", "full", "raise", 1)),
        (5, sc.Act("promote", "full", "good", 1)),
        (11, sc.Act("rollback")))),), True)
    result = sc.run_seed(plan.seed, tmp_path, plan)
    assert not result.problems, result.report()
    rows = _by_number(tmp_path)
    assert {k: v["status"] for k, v in rows.items()} == {
        "v001": "full", "v002": "rolled_back", "v003": "rolled_back"}, rows


def test_a_candidate_that_cannot_take_the_state_is_rejected_not_the_incumbent(
        tmp_path: Path, campaign: None) -> None:
    """Seed 3035 too: a requested version whose ``set_state`` raised a plain exception
    (not the sandbox's own error) while the loop started it reached the runner as the
    slot's strategy failing: the live AI incumbent v002 was rolled back for it and the
    request (v003) was never answered.  Now v003 is rejected and v002 trades on."""
    plan = sc.Plan(3035, (sc.Segment(29, ()), sc.Segment(39, (
        (3, sc.Act("promote2", "shadow", "", 1)),
        (13, sc.Act("promote", "full", "fake_set_state", 8)),
        (14, sc.Act("promote", "full", "fake_cancel_other", 30)),
        (19, sc.Act("rollback")))),), True)
    result = sc.run_seed(plan.seed, tmp_path, plan)
    assert not result.problems, result.report()
    rows = _by_number(tmp_path)
    assert {k: v["status"] for k, v in rows.items()} == {
        "v001": "retired", "v002": "full", "v003": "rejected", "v004": "rolled_back"}, rows
    assert "ValueError: cannot take this state" in rows["v003"]["reason"]


def test_a_refused_request_over_an_earlier_one_stays_refused_after_a_restart(
        tmp_path: Path, campaign: None) -> None:
    """Seed 29 (the answered-requests check): a person asks v003 for shadow, then full,
    while v002 shadows; the loop refuses it (the ladder is busy) and put it back to the
    status before the last request, ``requested:shadow``: it looked pending, and the
    resumed run, which reads every request again, put the refused version in shadow."""
    plan = sc.Plan(29, (sc.Segment(12, ((3, sc.Act("promote", "shadow", "good", 1)),
                                        (5, sc.Act("promote2", "shadow", "good", 1)))),
                        sc.Segment(20, ())), True)
    result = sc.run_seed(plan.seed, tmp_path, plan)
    assert not result.problems, result.report()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        went = [r["to_status"] for r in ledger.query(
            "select to_status from strategy_events where version_id like 'ai-v003-%' "
            "order by id")]
    assert went == ["candidate", "requested:shadow", "requested:full", "candidate"], went


def test_an_incumbent_failing_as_a_canary_comes_in_leaves_a_version_full(
        tmp_path: Path, campaign: None) -> None:
    """Seed 1848 (a wide sweep, 0-4599): v002 trades full and fails at the very event
    v004 is swapped in as its canary; v002 is rolled back "on its way out", but it
    stayed the canary's fallback and incumbent: no version was full in the ledger (a
    restart wrote the seed again as a new version) and a failing canary would have
    reinstated v002, the version that had just crashed.  v001, the version v002
    replaced, is the canary's incumbent and fallback now, and full again."""
    plan = sc.Plan(1848, (
        sc.Segment(21, ((14, sc.Act("promote", "canary", "busy", 8)),
                        (19, sc.Act("promote", "full", "fake_cancel_other", 2)))),
        sc.Segment(22, ((15, sc.Act("promote", "shadow", "fake_wrong_slot", 4)),
                        (20, sc.Act("kill_worker", "canary", "", 1)))),
        sc.Segment(35, ())), False)
    result = sc.run_seed(plan.seed, tmp_path, plan)
    assert not result.problems, result.report()
    rows = _by_number(tmp_path)
    assert {k: v["status"] for k, v in rows.items()} == {
        "v001": "full", "v002": "rolled_back", "v003": "candidate", "v004": "rejected"}, rows


@pytest.mark.parametrize("to", ["full", "canary"])
def test_a_persons_rollback_is_applied_before_a_promotion_asked_before_it(
        tmp_path: Path, campaign: None, to: str) -> None:
    """Seed 5111 (a wide sweep, 0-5999): v003 is asked for, and the slot rolled back by a
    person (the CLI rolls back v002, the live version, and reinstates v001), before the
    loop read either.  Applied in the order written, the promotion replaced v002 first;
    the rollback then found v002 no longer running: v001 (reinstated by the CLI) and
    v003 both full, and v002 traded an event after the ledger said it was rolled back.
    A poll's rollbacks are applied first now."""
    plan = sc.Plan(5111, (sc.Segment(24, ((3, sc.Act("promote", "full", "good", 1)),
                                          (10, sc.Act("promote", to, "good", 1)),
                                          (10, sc.Act("rollback")))),), True)
    result = sc.run_seed(plan.seed, tmp_path, plan)
    assert not result.problems, result.report()
    statuses = _statuses(tmp_path)
    assert statuses["v002"] == "rolled_back", statuses
    assert list(statuses.values()).count("full") == 1, statuses
