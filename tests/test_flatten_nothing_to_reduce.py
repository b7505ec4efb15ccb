"""A flatten the venue refuses because it holds nothing to reduce is never sent plain.

A refused flatten goes again 2 s later without the venue's reduce-only flag (a venue
that refuses the flag on spot: ``test_heldout3_run_kill``).  Where the refusal says the
venue has no position to reduce, the ledger and the venue disagree on the position: the
plain order would *open* the reverse position at the venue.  That instrument is not
flattened again in the run and a ``position_mismatch`` event tells a person to check the
position at the venue.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from test_heldout3_run_kill import kill_against_refusals  # a kill, refused flattens
from test_heldout_run_kill import (  # the scripted venue and its helpers
    ScriptVenue,
    _position,
    venue,
)

from argus_core.execution import _NOTHING_TO_REDUCE
from argus_core.ledger import Ledger

__all__ = ["venue"]  # the fixture, imported for pytest

#: Refusals of venues whose reduce-only order found no position (their own words).
NOTHING_TO_REDUCE = [
    "-2022 ReduceOnly Order is rejected.",                       # Binance futures
    "reduce_only_order_would_increase_position",                 # Deribit
    "wouldNotReducePosition",                                     # Kraken Futures
    "110017: current position is zero, cannot fix reduce-only order qty",  # Bybit
    "reduce-only order would open a new position",
    "Reduce only: no open position",
    "400 nothing to reduce",
    "position does not exist",
    "position not found for reduce-only order",
    "order would flip the position",
]

#: Refusals that say the flag itself is the problem, or say nothing about a position:
#: sent again without the flag, as before.
FLAG_OR_OTHER = [
    "400 reduce-only is not supported for this market",
    "reduceOnly not allowed on spot",
    "Invalid parameter: reduce_only",
    "EOrder:Reduce only:Non-PC",
    "price out of band",
    "market closed",
    "insufficient margin to open a position",  # "open a position", not "would open"
]


@pytest.mark.parametrize("text", NOTHING_TO_REDUCE)
def test_refusals_saying_nothing_to_reduce_are_recognised(text: str) -> None:
    assert _NOTHING_TO_REDUCE.search(text), text


@pytest.mark.parametrize("text", FLAG_OR_OTHER)
def test_refusals_of_the_flag_or_other_reasons_are_not(text: str) -> None:
    assert not _NOTHING_TO_REDUCE.search(text), text


@pytest.mark.parametrize("later", [False, True], ids=["raised", "rejected-later"])
def test_a_venue_with_nothing_to_reduce_gets_no_plain_order(
        tmp_path: Path, venue: type[ScriptVenue], monkeypatch: pytest.MonkeyPatch,
        later: bool) -> None:
    """The venue says the reduce-only sell has no position to reduce: before, the sell
    went again 2 s later without the flag and, at a venue that truly held nothing,
    opened a short of the ledger's size.  Now nothing more is sent for it; the ledger
    keeps its position (no fill says otherwise) and a person is told why."""
    run_dir = kill_against_refusals(tmp_path, venue, monkeypatch, later,
                                    "-2022 ReduceOnly Order is rejected.")
    flattens = [o for o in venue.submitted if o.strategy == "flatten"]
    assert [o.reduce_only for o in flattens] == [True]  # one try, never sent plain
    assert _position(run_dir) == 2
    with Ledger.in_dir(run_dir) as ledger:
        events = ledger.query("select check_name, action, reason from risk_events "
                              "where action in ('refused', 'position_mismatch')")
    assert [(e["check_name"], e["action"]) for e in events] == [
        ("reconcile", "position_mismatch")]
    assert "holds 2" in events[0]["reason"] and "check the position" in events[0]["reason"]


@pytest.mark.parametrize("later", [False, True], ids=["raised", "rejected-later"])
def test_a_venue_refusing_the_flag_still_gets_the_plain_flatten(
        tmp_path: Path, venue: type[ScriptVenue], monkeypatch: pytest.MonkeyPatch,
        later: bool) -> None:
    """The guard's other side: a refusal of the flag itself is flattened as before."""
    run_dir = kill_against_refusals(tmp_path, venue, monkeypatch, later,
                                    "reduceOnly not allowed on spot")
    flattens = [o for o in venue.submitted if o.strategy == "flatten"]
    assert [o.reduce_only for o in flattens] == [True, False]
    assert _position(run_dir) == Decimal(0)


@pytest.mark.parametrize("later", [False, True], ids=["raised", "rejected-later"])
def test_a_venue_that_guards_reduce_only_gets_the_flatten_reduce_only_again(
        tmp_path: Path, venue: type[ScriptVenue], monkeypatch: pytest.MonkeyPatch,
        later: bool) -> None:
    """A venue whose adapter sizes reduce-only orders to the position it holds
    (``guards_reduce_only``: Kalshi, which nets YES and NO) refused a flatten for another
    reason (its position could not be read, say): every later flatten keeps the flag (2 s
    apart, then twice as long after each refusal), never a plain order that could open
    the reverse position."""
    from test_heldout3_run_kill import RefusesReduceOnly

    monkeypatch.setattr(RefusesReduceOnly, "guards_reduce_only", True)
    run_dir = kill_against_refusals(tmp_path, venue, monkeypatch, later,
                                    "its position in X could not be read (503)")
    flattens = [o for o in venue.submitted if o.strategy == "flatten"]
    assert len(flattens) > 2 and all(o.reduce_only for o in flattens)
    # 27 one-second events: tries 2, 4, 8 and 16 s apart (doubling), not one per event
    assert len(flattens) == 4
    assert _position(run_dir) == 2  # refused every time: still held, never reversed
    with Ledger.in_dir(run_dir) as ledger:
        refused = ledger.query("select reason from risk_events where action = 'refused'")
    assert [r["reason"].rsplit("sent again in ", 1)[1] for r in refused] == [
        f"{s} s reduce-only" for s in (2, 4, 8, 16)]
