"""What wide sweeps of the run campaign (``tests/run_campaign.py``, seeds 0-999 and
5000-12199, run outside CI) found after the second round, each shrunk to a deterministic
plan where it shrank: a paper basket leg sent after the leg before it tripped the kill
switch; a live fill the venue stamped after an equity row, valued in that row; a late
print filling a paper order placed after it, and one filling inside a row already written;
a flatten vetoed for a strategy order then cancelled unsent, not tried again until the
next event; and two of the checker's own faults (a late print marks nothing in the core).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import run_campaign as rc
from run_campaign import (
    B,
    Plan,
    S,
    Step,
    X,
    Y,
    campaign_venue,  # noqa: F401  (autouse: the campaign venue)
)
from run_campaign import book as _book
from run_campaign import ev as _ev

from argus_core import Bar, BookDelta, Ledger, Side, Trade

pytest.importorskip("argus_multivenue")  # the composite of the "multi" plans



def _bar(iid: str, t: int, o: float, h: float, lo: float, c: float, v: float) -> Step:
    return _ev(Bar(iid, t * S, o, h, lo, c, v))


def _trade(iid: str, t: int, price: str, size: str) -> Step:
    return _ev(Trade(iid, t * S, Decimal(price), Decimal(size)))


def test_a_basket_leg_after_the_fill_that_tripped_the_kill_switch_is_not_sent(
        tmp_path: Path) -> None:
    """Seed 5993 (paper, drawdown 1 %): short 20 Y, long 11 X; at 71 s a basket buys 8 X
    and 8 Y.  The X leg's fill takes the drawdown past the kill switch (its ``on_fill``
    HALTs the run); the Y leg, judged before it, went to the broker HALTED (a buy that
    reduces the short, but not reduce-only).  It is cancelled unsent now, and the basket
    settles (the flatten closes what is held)."""
    plan = Plan(5993, "paper", "0.01", True, ((
        _book(Y, 29, [], []),
        _book(X, 29, [(96.77, 24.0), (95.77, 106.0), (94.77, 32.0)],
              [(97.79, 24.0), (98.79, 106.0), (99.79, 32.0)]),
        _ev(BookDelta(Y, 32 * S, Side.BUY, 45.92, 36.0)),
        _book(B, 45, [(0.89, 180.0), (0.88, 152.0), (0.87, 78.0)],
              [(0.95, 180.0), (0.96, 152.0), (0.97, 78.0)]),
        _ev(BookDelta(Y, 46 * S, Side.BUY, 45.14, 0.0)),
        _ev(BookDelta(B, 48 * S, Side.SELL, 0.91, 0.0)),
        _bar(Y, 49, 41.76, 42.26, 41.16, 41.66, 1000.0),
        _ev(BookDelta(X, 53 * S, Side.BUY, 94.07, 0.0)),
        _book(B, 56, [(0.91, 141.0), (0.9, 297.0), (0.89, 188.0)],
              [(0.93, 141.0), (0.94, 297.0), (0.95, 188.0)]),
        _book(Y, 69, [(42.26, 75.0), (41.26, 48.0), (40.26, 53.0)],
              [(44.06, 75.0), (45.06, 48.0), (46.06, 53.0)]),
        _book(B, 70, [(0.94, 211.0), (0.93, 26.0), (0.92, 87.0)],
              [(0.96, 211.0), (0.97, 26.0), (0.98, 87.0)]),
        _book(X, 71, [(92.94, 64.0), (91.94, 117.0), (90.94, 59.0)],
              [(94.64, 64.0), (95.64, 117.0), (96.64, 59.0)])),), "one")
    result = rc.run_seed(plan.seed, tmp_path, plan)
    assert result.problems == ()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        legs = ledger.query("select * from orders where basket_id = 'b5993-12-X' "
                            "and reason = '' order by client_order_id")
    assert [(r["instrument_id"], r["status"]) for r in legs] == [
        (X, "filled"), (Y, "cancelled")], legs
    assert legs[1]["status_reason"].startswith("not sent: trading halted"), legs[1]


def test_a_live_fill_stamped_after_a_rows_timestamp_is_not_in_that_row(
        tmp_path: Path) -> None:
    """Seed 5773 (live, multi-venue): a bar of Y at 8 s leaves its equity row due; a
    basket leg's fill the venue stamps 10 s comes through the executions before the next
    event, and the 8 s row was valued with it (its cash counted a fill from 10 s)."""
    plan = Plan(5773, "live", None, False, ((
        _book(X, 3, [(98.45, 85.0), (97.45, 71.0), (96.45, 78.0)],
              [(98.99, 85.0), (99.99, 71.0), (100.99, 78.0)]),
        _trade(Y, 4, "50.6", "20"),
        _bar(B, 4, 0.51, 0.515, 0.505, 0.51, 1000.0),
        _bar(X, 5, 98.92, 99.42, 98.4, 98.9, 1000.0),
        _bar(Y, 6, 49.92, 50.44, 49.42, 49.94, 1000.0),
        _trade(X, 7, "100.28", "24"),
        _bar(Y, 8, 49.58, 50.1, 49.08, 49.6, 0.0),
        _trade(Y, 10, "50.18", "14")),), "multi")
    assert rc.run_seed(plan.seed, tmp_path, plan).problems == ()


def test_fills_at_and_after_a_rows_timestamp_over_a_whole_seed(tmp_path: Path) -> None:
    """Seed 5773 whole: rows valued before a later-stamped fill, and with a fill stamped at
    the row's own time (valuing every due row before any fill broke that)."""
    assert rc.run_seed(5773, tmp_path).problems == ()


@pytest.mark.parametrize("plan", [
    # seed 6196 (paper): short 285 B; after a restart a print at 91 s, then one stamped
    # 90 s: market state keeps the newest print (0.38), the checker took the last (0.39)
    Plan(6196, "paper", "0.04", False, (
        (_book(B, 4, [(0.47, 65.0), (0.46, 122.0), (0.45, 98.0)],
               [(0.49, 65.0), (0.5, 122.0), (0.51, 98.0)]),),
        (_trade(B, 91, "0.38", "28"), _trade(B, 90, "0.39", "1"),
         _bar(X, 95, 90.34, 90.84, 89.58, 90.08, 1000.0)),), "one"),
], ids=["seed6196"])
def test_a_print_older_than_the_newest_marks_nothing(plan: Plan, tmp_path: Path) -> None:
    assert rc.run_seed(plan.seed, tmp_path, plan).problems == ()


@pytest.mark.parametrize("plan", [
    # seed 6286 (paper, multi-venue): a sell rests on Y's book from 8 s; a print stamped
    # 6 s (delivered late) went through its limit and filled it, a fill dated before the
    # order, inside the 6 s equity row already written
    Plan(6286, "paper", "0.02", False, ((
        _bar(X, 6, 102.63, 103.13, 101.79, 102.29, 0.0),
        _book(Y, 8, [(49.29, 33.0), (48.29, 119.0), (47.29, 106.0)],
              [(51.23, 33.0), (52.23, 119.0), (53.23, 106.0)]),
        _trade(Y, 6, "50.58", "1")),), "multi"),
    # seed 7056 (paper, multi-venue): a buy rests on B from 13 s; the market's clock is at
    # 25 s when a print stamped 23 s goes through it: the fill was stamped 23 s, inside the
    # 24 s equity row already written; it is stamped 25 s, when the account learns of it
    Plan(7056, "paper", "0.04", True, ((
        _bar(X, 24, 101.93, 102.68, 101.43, 102.18, 1000.0),
        _book(B, 25, [(0.2, 290.0), (0.19, 196.0), (0.18, 66.0)],
              [(0.24, 290.0), (0.25, 196.0), (0.26, 66.0)]),
        _trade(B, 23, "0.19", "1")),), "multi"),
], ids=["seed6286-before-the-order", "seed7056-before-the-clock"])
def test_a_late_print_fills_a_resting_paper_order_only_honestly(plan: Plan,
                                                               tmp_path: Path) -> None:
    assert rc.run_seed(plan.seed, tmp_path, plan).problems == ()


def test_a_flatten_vetoed_for_an_order_then_cancelled_unsent_goes_at_once(
        tmp_path: Path) -> None:
    """Seed 6791 (live, multi-venue; the plan shrinks no further than two segments of 53
    steps, so the whole seed): a strategy's sell of 8 Y is routed and committed while
    ACTIVE; the commit adopts a person's flatten, whose reduce-only sell of 4 Y is vetoed
    (the pending sell covers the position); the sell is then cancelled unsent (HALTED),
    and the flatten waited for the next event: none within the retry period."""
    problems = rc.run_seed(6791, tmp_path).problems
    assert not [p for p in problems if "flatten" in p], problems


def test_a_killed_segments_carried_mark_keeps_its_own_time(tmp_path: Path) -> None:
    """Seed 13468 (a wide sweep, 12200-14999; the checker's fault): a position opened on a
    one-sided book is marked at its fill (the documented fallback); the next segment is
    SIGKILLed, and the checker carried the last market price into it restamped at the
    segment's start, after the fill, so the fill's mark looked stale."""
    result = rc.run_seed(13468, tmp_path)
    assert not result.problems, result.report()


def test_a_fill_marks_its_position_when_the_price_after_it_died_with_a_killed_process(
        tmp_path: Path) -> None:
    """Seed 17277 (a wide sweep, 15000-18999; the checker's fault): a position opened on a
    one-sided book is marked at its fill; the book's mid that followed in the same
    segment was lost when the segment was SIGKILLed before committing it, so the resumed
    run's first equity row values the position at the fill, as the checkpoint left it.
    The checker allowed the fill's price only after the last market price, lost or not."""
    result = rc.run_seed(17277, tmp_path)
    assert not result.problems, result.report()
