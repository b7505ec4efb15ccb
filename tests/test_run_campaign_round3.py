"""What a sweep of the run campaign's seeds 19000-68999 (outside CI) found, pinned (shrunk
to a deterministic plan where it shrank): a live fill reported after the equity row of its
own stamp was written for good (booked at the clock now, as the paper broker stamps a late
print's), a person's kill written while the market was quiet read only after the next
event's orders, a basket leg sent after its market's void (it waited for the leg before
it), a late print's paper fill after a restart booked inside the last row the stopped
process wrote, and a kill's flatten waiting 10 s for the routine lookup of an order of
unknown outcome; and faults of the checker's own (a void settles each book holding the
instrument at that book's cost; a flatten in flight, or waiting out a refusal's backoff
when the stream ends, is the kill switch at work)."""

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

from argus_core import Bar, BookDelta, BookStatus, Ledger, Side, Trade

pytest.importorskip("argus_multivenue")  # the composite of the "multi" plans



def _fills(run_dir: Path) -> dict[str, int]:
    with Ledger.in_dir(run_dir) as ledger:
        return {r["instrument_id"]: r["ts_ns"] for r in
                ledger.query("select instrument_id, ts_ns from fills")}


def test_a_live_fill_reported_after_its_rows_last_write_is_booked_at_the_clock(
        tmp_path: Path) -> None:
    """Seed 19974 (live, multi-venue): a basket of an IOC buy of B and of X sent at 10 s
    fills on the venue at 11 s; B's fill comes at once, X's is held back past the 11 s bar's
    row, which the next event (a print at 15 s) writes for good.  X's fill was booked with
    the venue's 11 s: the 11 s row's cash never held it.  It is booked at 15 s now."""
    plan = Plan(19974, "live", "0.04", True, ((
        _ev(BookStatus(Y, 4 * S, live=False, reason="checksum mismatch")),
        _book(B, 6, [(0.3, 56.0), (0.29, 50.0), (0.28, 44.0)],
              [(0.32, 56.0), (0.33, 50.0), (0.34, 44.0)]),
        _book(X, 8, [], [(101.72, 70.0), (102.72, 28.0), (103.72, 88.0)]),
        _book(X, 9, [(102.22, 23.0), (101.22, 47.0), (100.22, 70.0)],
              [(102.46, 23.0), (103.46, 47.0), (104.46, 70.0)]),
        _book(B, 10, [(0.26, 241.0), (0.25, 182.0), (0.24, 281.0)],
              [(0.3, 241.0), (0.31, 182.0), (0.32, 281.0)]),
        _ev(Bar(Y, 11 * S, 49.13, 49.63, 48.56, 49.06, 1000.0)),
        _ev(Trade(Y, 15 * S, Decimal("49.28"), Decimal("6"))),
    ),), "multi")
    assert rc.run_seed(plan.seed, tmp_path, plan).problems == ()
    assert _fills(tmp_path / "run") == {B: 11 * S, X: 15 * S}


def test_a_kill_written_in_a_quiet_market_acts_before_the_next_events_orders(
        tmp_path: Path) -> None:
    """Seed 19946 (live): long 172 B; a person's ``kill --flatten`` at 4 s, then nothing
    until a delta of B at 12 s.  The loop ran that event's strategy first (ACTIVE: its
    reduce-only exit of 172 went out) and read the kill at the commit after it: the
    flatten found the exit covering the position and sent nothing, 8 s after it was
    asked for.  The kill is read as the event's transaction opens: the flatten goes out
    first, and the strategy's exit stands back for it."""
    plan = Plan(19946, "live", "0.02", True, ((
        _book(B, 3, [], []),
        _book(B, 3, [(0.66, 172.0), (0.65, 275.0), (0.64, 26.0)],
              [(0.7, 172.0), (0.71, 275.0), (0.72, 26.0)]),
        _ev(Bar(Y, 4 * S, 50.21, 50.89, 49.71, 50.39, 0.0)),
        Step("flatten"),
        _ev(BookDelta(B, 12 * S, Side.BUY, Decimal("0.66"), Decimal("0"))),
    ),), "basket")
    assert rc.run_seed(plan.seed, tmp_path, plan).problems == ()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        orders = ledger.query("select strategy, side, ts_ns from orders order by rowid")
    # the entry, then the flatten (decided at the clock it was read at, before the delta)
    assert [(o["strategy"], o["side"], o["ts_ns"]) for o in orders[:2]] == [
        ("rnd", "buy", 3 * S), ("flatten", "sell", 4 * S)]


@pytest.mark.parametrize("seed", [25871, 27911])
def test_a_void_settles_each_book_holding_it_at_its_own_cost(seed: int, tmp_path: Path) -> None:
    """Seeds 25871 and 27911 (live, a void of B held by two books): the bust of a flatten
    fill the books had shared, booked after they were flat, opened the house book; the
    strategy's book bought again.  The void gave each book back at its own average cost
    (0.66 and 0.67), as the core does where several books hold a voided instrument; the
    checker expected the account's average for both (its own fault: it now keeps the
    books as the core does and checks each one's settlement against its own cost)."""
    assert rc.run_seed(seed, tmp_path).problems == ()


def test_a_late_print_after_a_restart_fills_after_the_rows_the_last_process_wrote(
        tmp_path: Path) -> None:
    """Seed 35164 (paper): a process writes the 65 s bar's row and stops; the next one
    hears a print stamped 64 s that fills a paper order at the restored clock, 65 s: a
    fill inside a row the earlier process wrote for good (a live stream sends no event
    again, so no row of it is written again).  Booked just after it now."""
    plan = Plan(35164, "paper", "0.04", True, (
        (_book(Y, 53, [(49.03, 110.0), (48.03, 21.0), (47.03, 63.0)],
               [(49.41, 110.0), (50.41, 21.0), (51.41, 63.0)]),
         _ev(Bar(Y, 65 * S, 49.73, 50.23, 48.8, 49.3, 0.0))),
        (_ev(Trade(Y, 64 * S, Decimal("50.14"), Decimal("1"))),)), "one")
    assert rc.run_seed(plan.seed, tmp_path, plan).problems == ()
    assert _fills(tmp_path / "run")[Y] > 65 * S


def test_a_basket_leg_is_not_sent_once_its_market_has_settled(tmp_path: Path) -> None:
    """Seed 34559 (live, multi-venue, which sends a basket's legs one after another): a
    basket sells X and B at 38 s; X's send waits, B is voided at 39 s, and the B leg went
    to the venue at 45 s (refused there: the market is gone).  A leg whose market settled
    or closed while it waited is cancelled unsent now (the basket then unwinds X)."""
    assert rc.run_seed(34559, tmp_path).problems == ()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        (leg,) = ledger.query("select status, status_reason from orders where "
                              "client_order_id like '%-29-rnd-1'")
    assert leg["status"] == "cancelled" and "trades no more" in leg["status_reason"]


def test_a_flatten_in_flight_counts_until_the_venue_answers(tmp_path: Path) -> None:
    """Seed 54042 (live, multi-venue): the kill's flatten of Y went out at 87 s, before Y's
    book came back after a restart; the venue refused its reduce-only flag at 94 s and the
    engine sent it again 2 s later.  The probe counted only flatten orders stamped after
    the book became tradeable (88 s) and called the one in flight missing.  It now counts
    a flatten from the end of the one in flight (a refusal never sent again is still
    caught: checked with the retry disabled, on this plan with its tail's books)."""
    assert rc.run_seed(54042, tmp_path).problems == ()


@pytest.mark.parametrize("seed", [68060, 68420])
def test_a_kill_asks_the_venue_at_once_about_an_order_of_unknown_outcome(
        seed: int, tmp_path: Path) -> None:
    """Seeds 68060 and 68420 (live): an order's send timed out on the instrument a kill's
    flatten must close; it may work at the venue, so the flatten's exit room counted it and
    waited for the routine lookup 10 s later (the probe: no flatten for 8 s).  A HALT now
    asks the venue about every order of unknown outcome at once."""
    assert rc.run_seed(seed, tmp_path).problems == ()


@pytest.mark.parametrize("seed", [63336, 67428])
def test_a_flatten_waiting_out_a_refusals_backoff_at_the_end_is_not_given_up(
        seed: int, tmp_path: Path) -> None:
    """Seeds 63336 and 67428 (live): the venue answered the flatten with 503s; the engine
    asks again after 2, 4, 8 s (up to 16 s, by design), and the tail's books ended inside
    the last wait.  The checker called the position left held; it now allows a flatten
    whose refusal's wait reaches past the last event (one never sent again is still
    caught: checked with the retry disabled)."""
    assert rc.run_seed(seed, tmp_path).problems == ()
