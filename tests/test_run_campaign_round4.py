"""What a sweep of the run campaign's seeds 74000-103999 (outside CI) found, pinned: a kill's
flatten waited out a refusal's backoff that had kept doubling across flattens the venue took
in between (a flaky venue, not one that refuses every flatten); a paper order cancelled by
the HALT its own event's fills tripped kept a filled quantity of 0 beside its fill; a bust
of the flatten's sale went to the flatten's book, not back to the books it was shared into,
and a void's settlement of that book was shared among the books as a flatten's fill is (the
books then held what the account did not); and the checker's own faults: a flatten waiting
out that backoff (by design, up to 16 s while the refusals run on) mid-run, or standing
back for a basket's unwind sent on its position, was called a flatten given up."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import run_campaign as rc
from run_campaign import (
    B,
    Plan,
    Step,
    X,
    campaign_venue,  # noqa: F401  (autouse: the campaign venue)
)
from run_campaign import book as _book
from run_campaign import ev as _ev
from test_heldout3_run_kill import RefusesReduceOnly, kill_against_refusals
from test_heldout_run_kill import ScriptVenue, _position, venue

from argus_core import (
    BookDelta,
    Fill,
    Ledger,
    Order,
    OrderStatus,
    OrderUpdate,
    Settlement,
    Side,
    Trade,
    VenueError,
)

__all__ = ["venue"]  # the fixture, imported for pytest

pytest.importorskip("argus_multivenue")  # the composite of the "multi" plans


def _waits(run_dir: Path) -> list[str]:
    """Each flatten refusal's wait before the flatten goes again, in order."""
    with Ledger.in_dir(run_dir) as ledger:
        rows = ledger.query("select reason from risk_events where check_name = 'flatten' "
                            "and action = 'refused' order by id")
    return [r["reason"].split("sent again in ", 1)[1].split(" s", 1)[0] for r in rows]


def test_a_flatten_the_venue_takes_ends_the_refusals_backoff(tmp_path: Path) -> None:
    """Seed 92716 (live, multi-venue): the kill's flatten of a short in Y was refused at
    60 s (the reduce-only flag), taken at 62 s and 63 s (IOC, nothing to take), refused at
    64 s (503), taken at 66 s and 68 s, refused at 69 s (503): the waits went 2, 4, 8 s
    and the position closed at 77 s, though the venue had taken flattens between the
    refusals.  A flatten the venue takes ends the row: 2 s each time, closed at 71 s.  The
    checker then called the 8 s wait a flatten given up (none sent 70-74 s); it now owes the
    flatten from the refusal's retry."""
    assert rc.run_seed(92716, tmp_path).problems == ()
    assert _waits(tmp_path / "run") == ["2", "2", "2"]
    with Ledger.in_dir(tmp_path / "run") as ledger:
        (closed,) = ledger.query("select max(ts_ns) as t from fills where "
                                 "client_order_id like '%-flatten-%'")
    assert closed["t"] == 71 * rc.S


def test_a_flaky_venues_refusals_wait_2_s_each_a_steady_ones_double(
        tmp_path: Path, venue: type[ScriptVenue], monkeypatch: pytest.MonkeyPatch) -> None:
    """A venue that refuses every other flatten (a 503) and takes the others (IOC, nothing
    to take on its book): each refusal follows a flatten the venue took, so each waits 2 s
    (before: 2, 4, 8, 16 s, as for a venue refusing every one, which still doubles:
    ``test_flatten_nothing_to_reduce``)."""

    async def flaky(self: RefusesReduceOnly, order: Order) -> list[Fill]:
        if order.strategy != "flatten":
            return await ScriptVenue.submit(self, order)
        ScriptVenue.submitted.append(order)
        n = sum(o.strategy == "flatten" for o in ScriptVenue.submitted)
        if n % 2:
            raise VenueError("503 Service Unavailable (refused, nothing done)")
        self._queue.put_nowait(OrderUpdate(order.client_order_id, OrderStatus.OPEN, 1, f"V{n}"))
        self._queue.put_nowait(OrderUpdate(order.client_order_id, OrderStatus.CANCELLED, 1,
                                           reason="IOC: nothing to take"))
        return []

    monkeypatch.setattr(RefusesReduceOnly, "submit", flaky)
    run_dir = kill_against_refusals(tmp_path, venue, monkeypatch, False)
    waits = _waits(run_dir)
    assert len(waits) >= 5 and set(waits) == {"2"}, waits
    assert _position(run_dir) == 2  # never filled: still held, never reversed


def test_a_paper_order_cancelled_by_the_halt_its_events_fills_tripped_keeps_its_fill(
        tmp_path: Path) -> None:
    """Seed 96472 (paper), shrunk: two sells rest on X; a print far through both fills the
    first in full and the second in part, in one event.  The first fill's drawdown check
    HALTs, and the HALT cancels the working orders before the second fill is booked: the
    second order was written cancelled with 0 filled beside its fill of 1 (the fill stands:
    the broker made it before the cancel).  Cancelled with 1 filled now."""
    S = rc.S
    plan = Plan(96472, "paper", "0.02", False, ((
        _book(X, 93, [(94.51, 47.0), (93.51, 72.0), (92.51, 23.0)],
              [(95.37, 47.0), (96.37, 72.0), (97.37, 23.0)]),
        _book(X, 98, [(93.91, 110.0), (92.91, 85.0), (91.91, 24.0)], []),
        _ev(Trade(X, 99 * S, Decimal("94.49"), Decimal("2"), Side.BUY)),
        _ev(BookDelta(X, 104 * S, Side.BUY, Decimal("91.76"), Decimal("0"))),
        _ev(Trade(X, 107 * S, Decimal("90.6"), Decimal("14"), Side.BUY)),
        _ev(Trade(X, 109 * S, Decimal("144.91"), Decimal("9"), Side.BUY)),
    ),), "multi")
    assert rc.run_seed(plan.seed, tmp_path, plan).problems == ()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        rows = ledger.query(
            "select o.status, o.filled_quantity, sum(f.quantity) as fills from orders o "
            "join fills f using (client_order_id) where o.strategy = 'rnd' and f.ts_ns = ? "
            "group by o.client_order_id order by o.ts_ns", (109 * S,))
        halted = ledger.get_control("trading_state")
    assert "halted" in (halted or "")
    assert [r["status"] for r in rows] == ["filled", "cancelled"]
    assert all(Decimal(r["filled_quantity"]) == Decimal(str(r["fills"])) for r in rows)


def test_a_bust_of_the_flatten_goes_back_to_the_books_before_a_void(tmp_path: Path) -> None:
    """Seed 98905 (live, multi-venue), shrunk: a strategy buys 207 of B at 0.66; the kill's
    flatten sells 1 at 0.6 (shared: the strategy's book); the venue busts that sale; B is
    voided, then the strategy's buy is busted too.  The flatten's bust went to the flatten's
    book as a new house trade (the books held B: it added to nothing of theirs), and the
    void's settlement of that book was shared pro rata as a flatten's fill is: the books
    were left holding +0.995 and -0.995 of a market that was gone, and the later bust's
    settlement was split by them.  Now the bust comes out of the book the sale went into
    (the strategy's holds all 207 again) and one settlement gives it back at its cost
    (a house book's own settlement stays in it: ``test_strategy_books``)."""
    S = rc.S
    plan = Plan(98905, "live", "0.01", True, (
        (_book(B, 9, [(0.6, 207.0), (0.59, 291.0), (0.58, 272.0)],
               [(0.66, 207.0), (0.67, 291.0), (0.68, 272.0)]),
         Step("check", None, "shrink"), Step("flatten", None, ""),
         _ev(BookDelta(B, 19 * S, Side.SELL, Decimal("0.65"), Decimal("46"))),
         Step("correct", None, "bust")),
        (_ev(Settlement(B, 56 * S, None, "voided")), Step("correct", None, "bust"))), "multi")
    assert rc.run_seed(plan.seed, tmp_path, plan).problems == ()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        settled = ledger.query("select fill_id, price, quantity from fills where liquidity "
                               "= 'settlement' order by rowid")
    cost = (206 * Decimal("0.66") + Decimal("0.6")) / 207  # the strategy's book's, and B's
    assert [(Decimal(r["price"]), r["quantity"]) for r in settled] == [
        (cost, "207"), (Decimal("0.66"), "207")]
    assert not any("flatten" in r["fill_id"] for r in settled)


def test_a_flatten_standing_back_for_an_unwind_on_its_position_is_not_given_up(
        tmp_path: Path) -> None:
    """Seed 103881 (live, multi-venue): a basket's leg in Y filled, its other leg did not;
    the kill's flatten was refused at 10 s (due again at 12 s), the market was quiet from
    11 s to 22 s, and at 22 s the basket's unwind (a reduce-only sell of the whole position)
    went first: the flatten stood back for it by design (orders working on the position
    cover it) and went at 23 s.  The probe called it a flatten owed since 12 s; it now owes
    it again from such an exit (with the flatten's retry disabled, still caught).  Since
    seed 173617 an unwind stands back under a kill (the flatten went at 22 s), but one sent
    before the kill still holds the flatten back while it works."""
    assert rc.run_seed(103881, tmp_path).problems == ()


def test_under_a_kill_a_basket_unwind_stands_back_for_the_flatten(tmp_path: Path) -> None:
    """Seed 173617 (live, multi-venue; found after the sweep above): a basket's unwind of Y,
    refused by the venue for its reduce-only flag at 99 s and 101 s, kept the flag; the
    kill's flatten was refused for it at 103 s and due again at 105 s without it, but the
    unwind went first at 105 s (refused again) and the flatten stood back for it (orders
    working cover the position): -2 of Y was held when the stream ended.  Under a kill
    the flatten alone closes a position (``test_unwind_retry``)."""
    assert rc.run_seed(173617, tmp_path).problems == ()
    with Ledger.in_dir(tmp_path / "run") as ledger:
        said = ledger.query("select reason from risk_events where action = "
                            "'unwind_skipped'")
    assert any("left to the kill switch's flatten" in r["reason"] for r in said)
