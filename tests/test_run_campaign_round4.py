"""What a sweep of the run campaign's seeds 74000-93999 (outside CI) found, pinned: a kill's
flatten waited out a refusal's backoff that had kept doubling across flattens the venue took
in between (the refusals were not in a row: a flaky venue, not a venue that refuses); and
the checker's own fault, which called a flatten waiting out that backoff (by design, up to
16 s while the refusals run on) in the middle of a run a flatten given up."""

from __future__ import annotations

from pathlib import Path

import pytest
import run_campaign as rc
from run_campaign import campaign_venue  # noqa: F401  (autouse: the campaign venue)
from test_heldout3_run_kill import RefusesReduceOnly, kill_against_refusals
from test_heldout_run_kill import ScriptVenue, _position, venue

from argus_core import Fill, Ledger, Order, OrderStatus, OrderUpdate, VenueError

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
