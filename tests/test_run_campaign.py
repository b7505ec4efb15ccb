"""A seeded random campaign against the run's guarantees (see ``tests/run_campaign.py``):
30 seeds here (~0.3 s each), 120 more in a ``slow`` test.  Each seed runs a paper or live
run through the real Runner on a real ledger in a temp dir, over restarts and sometimes a
SIGKILL of a forked child, and checks the one order path, exactly-once sends and fills,
positions and cash against the fills, every equity row against the market, and the kill
switch's flatten.  A failing seed prints its plan as a trace; ``run_campaign.shrink``
reduces it to a few steps.

What the campaign found (five order-path bugs in the core, all fixed) is pinned below as
deterministic regression tests, each shrunk from its seed.  A class of failure can be
tolerated while its fix is pending (:data:`KNOWN`); any other fails the suite.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import run_campaign as rc
from run_campaign import (
    Plan,
    S,
    Step,
    X,
    Y,
    campaign_venue,  # noqa: F401  (autouse: the campaign venue)
)

from argus_core import Bar, BookDelta, OrderBook, Side

#: Problem classes (regexes over ``run_campaign.kind_of``) the core still has, each pinned
#: by an xfail(strict=True) regression test in ``test_run_campaign_round2.py``.
KNOWN: dict[str, str] = {
}



def _unknown(problems: tuple[str, ...]) -> list[str]:
    return [p for p in problems if not any(re.search(k, rc.kind_of(p)) for k in KNOWN)]


def _campaign(seeds: range, tmp_path: Path) -> None:
    """Fail on a seed with a problem of no known class.  A seed that hit a known core bug
    may break later checks as a consequence (a crashed run never reaches its tail; a
    position the account lost is valued wrong): its other problems are printed, not
    failed, until the core fix lands and its class leaves :data:`KNOWN`."""
    failed: list[str] = []
    for seed in seeds:
        result = rc.run_seed(seed, tmp_path / f"seed{seed}")
        unknown = _unknown(result.problems)
        if unknown and len(unknown) == len(result.problems):
            failed.append(result.report())
        elif unknown:
            print(f"seed {seed}: after a known core bug, also: {unknown}")
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("block", range(3))
def test_campaign(tmp_path: Path, block: int) -> None:
    """Seeds 0-29 (in blocks of ten): no failure but the known, pinned ones."""
    _campaign(range(block * 10, block * 10 + 10), tmp_path)


@pytest.mark.slow
def test_long_campaign(tmp_path: Path) -> None:
    """Seeds 1000-1119 (~60 s)."""
    _campaign(range(1000, 1120), tmp_path)


def test_the_campaign_sees_every_kind_of_step() -> None:
    """The generator covers what it claims (a draw that lost a kind would test less)."""
    kinds: set[str] = set()
    for seed in range(30):
        for seg in rc.make_plan(seed).segments:
            for step in seg:
                kinds.add(step.kind if step.kind != "ev" else str(step).split()[0])
    assert {"kill", "flatten", "resume", "check", "sigkill", "book", "delta", "trade", "bar",
            "settle", "BookStatus"} <= kinds, kinds
    assert {rc.make_plan(s).mode for s in range(30)} == {"paper", "live"}


def test_the_checks_catch_what_they_check(tmp_path: Path) -> None:
    """The invariants are not vacuous: a ledger doctored after a clean seed fails them."""
    result = rc.run_seed(4, tmp_path / "s")
    assert not _unknown(result.problems)
    from argus_core import Ledger

    with Ledger.in_dir(tmp_path / "s" / "run") as ledger:
        fill = ledger.query("select fill_id from fills limit 1")
        assert fill, "seed 4 should trade"
        ledger.conn.execute("update fills set quantity = quantity + 1 where fill_id = ?",
                            (fill[0]["fill_id"],))
        ledger.conn.execute("update equity set equity = equity + 5 where ts_ns = "
                            "(select max(ts_ns) from equity)")
    problems = rc.check(result.plan, tmp_path / "s" / "run", rc.Record(tmp_path / "s" /
                                                                      "venue.jsonl"))
    assert any(p.startswith("position ") for p in problems), problems
    assert any(p.startswith("equity row ") for p in problems), problems


# -- what the campaign found (shrunk; each fails until its core change) ---------------------
def _book(iid: str, t: int, bid: float, ask: float, size: float = 60.0) -> Step:
    return Step("ev", OrderBook(iid, t * S, bids=[(bid, size)], asks=[(ask, size)]))


def _bar(iid: str, t: int, close: float) -> Step:
    return Step("ev", Bar(iid, t * S, close, close + 1, close - 1, close, 1000.0))


def _problems(plan: Plan, tmp_path: Path) -> tuple[str, ...]:
    return rc.run_seed(plan.seed, tmp_path, plan).problems


@pytest.mark.parametrize("plan", [
    # seed 5: a kill written while the loop waited; the next book's buy passed the risk
    # pass ACTIVE, commit_now adopted the kill, and the buy went out HALTED
    Plan(5, "live", "0.02", True, ((Step("kill"), _book(X, 3, 99.51, 100.79, 64)),)),
    # seed 7: the same with a sell on a bar
    Plan(7, "live", "0.01", False, ((Step("kill"), _bar(X, 66, 108.1)),)),
], ids=["seed5-buy", "seed7-sell"])
def test_no_order_goes_out_after_the_engine_has_read_a_kill(plan: Plan,
                                                            tmp_path: Path) -> None:
    assert _problems(plan, tmp_path) == ()


def test_a_flatten_adopted_at_an_orders_commit_does_not_crash_the_run(tmp_path: Path) -> None:
    """Seed 71: Y bought; a person's flatten; X's book brings an order whose commit_now
    adopts the flatten, whose own commit_now nests: SQLError, the run dies."""
    plan = Plan(71, "live", None, False, ((_book(Y, 59, 41.12, 41.48, 118), Step("flatten"),
                                           _book(X, 62, 92.03, 93.27, 28)),))
    assert _problems(plan, tmp_path) == ()


def test_a_flatten_adopted_at_an_idle_commit_releases_the_write_lock(tmp_path: Path) -> None:
    """Seed 68: a restarted run holding X adopts a flatten at an idle commit; the flatten's
    commit_now reopens BEGIN IMMEDIATE and the loop waits holding it: the next `argus
    flatten` cannot be written."""
    plan = Plan(68, "live", None, True, (
        (_book(X, 28, 102.16, 102.66, 87), _bar(X, 31, 100.89)),
        (Step("flatten"), _book(X, 35, 99.96, 100.3, 21), Step("flatten"))))
    assert _problems(plan, tmp_path) == ()


def test_a_paper_flatten_the_broker_cancelled_is_sent_again(tmp_path: Path) -> None:
    """Seed 78: short 1 X on bars; flatten: the buy waits for X's next bar; a delta opens
    X's book (no snapshot: untradeable) and the broker cancels the IOC; the ledger keeps
    it open, and no flatten goes out on the live books after."""
    plan = Plan(78, "paper", None, False, (
        (_bar(X, 1, 100.76),),
        (_bar(X, 33, 104.92), Step("flatten"), _bar(Y, 35, 46.47),
         Step("ev", BookDelta(X, 52 * S, Side.BUY, 106.3, 57.0)),
         _book(X, 54, 102.81, 104.61, 69), _book(Y, 58, 45.8, 47.5, 35),
         _book(Y, 59, 45.8, 47.5, 35), _book(Y, 60, 45.8, 47.5, 35)),
    ))
    assert _problems(plan, tmp_path) == ()


def test_a_flatten_adopted_at_the_last_commit_is_in_the_checkpoint(tmp_path: Path) -> None:
    """Seed 1165 (paper): short 2 X; a person's flatten adopted by the run's final commit
    buys 2 after the checkpoint; the restart restores short 2 and buys 2 again."""
    plan = Plan(1165, "paper", "0.02", False, (
        (_bar(X, 46, 100.83), _book(X, 46, 100.99, 102.89, 116), Step("flatten")),
        (_book(X, 111, 108.09, 108.81, 40),)))
    assert _problems(plan, tmp_path) == ()


def test_a_paper_fill_does_not_mark_its_position_at_the_book_it_depleted(
        tmp_path: Path) -> None:
    """Seed 3153 (paper): short 20 X into the 93.73 bid (23 shown); at the bar a sized sell
    takes the last 3 at 93.73 and 2.3 at 92.73; the position is marked at (92.73 + 95.69)
    / 2 = 94.21, a mid only the paper fill made, not the venue's (93.73 + 95.69) / 2."""
    book = OrderBook(X, 32 * S, bids=[(93.73, 23.0), (92.73, 89.0), (91.73, 29.0)],
                     asks=[(95.69, 23.0), (96.69, 89.0), (97.69, 29.0)])
    plan = Plan(3153, "paper", "0.01", False, ((
        Step("ev", book), Step("ev", BookDelta(X, 37 * S, Side.SELL, 93.58, 0.0)),
        Step("ev", Bar(X, 41 * S, 91.6, 92.55, 91.1, 92.05, 1000.0))),))
    assert _problems(plan, tmp_path) == ()
