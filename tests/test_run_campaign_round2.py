"""The run campaign's second round (``tests/run_campaign.py``): baskets on a venue with
and without ``supports_baskets`` (a refused leg, a leg of unknown outcome, a partial leg,
a kill and a SIGKILL mid-basket), fill corrections (final fees, a second fee, repeats,
busts of the newest and of an old fill, one for a fill nobody knows, before and after a
restart), a binary instrument resolving YES / NO / void with orders and positions open,
the multi-venue composite (argustrade-multivenue) with one venue refusing the kill's
reduce-only flatten, and a live venue answering as real ones do (acknowledgements after
fills, fills before acknowledgements, fills returned and streamed, duplicates, fills held
back past the IOC's cancel).  The seeded sweeps run in ``tests/test_run_campaign.py``;
here: what the generator must cover, and each failure it found, shrunk to a
deterministic plan (each was an ``xfail(strict=True)`` until its core change landed).
"""

from __future__ import annotations

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

from argus_core import Bar, OrderBook

pytest.importorskip("argus_multivenue")  # the composite of the "multi" plans



def _book(iid: str, t: int, bid: float, ask: float, size: float = 60.0) -> Step:
    return Step("ev", OrderBook(iid, t * S, bids=[(bid, size)], asks=[(ask, size)]))


def _bar(iid: str, t: int, close: float) -> Step:
    return Step("ev", Bar(iid, t * S, close, close + 0.005, close - 0.005, close, 1000.0))


def _problems(plan: Plan, tmp_path: Path) -> tuple[str, ...]:
    return rc.run_seed(plan.seed, tmp_path, plan).problems


def test_the_generator_covers_the_second_round() -> None:
    """Seeds 0-29 draw every venue kind, every correction, B's three resolutions, and
    baskets; a draw that lost one would test less."""
    plans = [rc.make_plan(s) for s in range(30)]
    assert {p.venue for p in plans} == {"one", "basket", "multi"}
    assert {(p.mode, p.venue) for p in plans} >= {("live", "basket"), ("live", "multi")}
    args = {s.arg for p in plans for seg in p.segments for s in seg if s.kind == "correct"}
    assert args == set(rc.CORRECTIONS), args
    outcomes = {str(s.event.price) for p in plans for seg in p.segments for s in seg
                if s.kind == "ev" and getattr(s.event, "instrument_id", "") == B
                and type(s.event).__name__ == "Settlement"}
    assert outcomes == {"0", "1", "None"}, outcomes


# -- what the second round found (shrunk; each xfail names its core change) --------------
# Fixed in the core: a paper basket leg that ends unfilled (closed by the broker, or
# cancelled by a halt, a CancelIntent or a settlement) evens its basket out, as a live
# leg does; the again-settlement after a late fill or bust is stamped at that fill's time.


def test_a_paper_basket_leg_the_broker_closes_unfilled_unwinds_the_other(
        tmp_path: Path) -> None:
    """Seed 10 (paper): X priced by a bar only, Y by a book; a basket buys Y (filled at
    once) and X (an IOC waiting for X's market); X's book comes, the IOC does not cross
    and the broker closes it: Y stays bought, nothing unwound."""
    plan = Plan(10, "paper", None, False, ((
        _bar(X, 80, 78.4), _book(Y, 81, 49.49, 50.79, 74), _book(X, 96, 78.28, 79.9, 106)),),
        "basket")
    assert _problems(plan, tmp_path) == ()


def test_a_paper_basket_leg_a_kill_cancels_unwinds_the_other(tmp_path: Path) -> None:
    """Seed 6 (paper): B priced by a bar only; a basket buys Y (filled) and B (waiting for
    B's next bar); a person's kill cancels B's leg: Y stays bought, nothing unwound."""
    plan = Plan(6, "paper", None, True, ((
        _bar(B, 12, 0.17), _book(Y, 15, 49.64, 50.96, 118), Step("kill")),), "basket")
    assert _problems(plan, tmp_path) == ()


def test_a_bust_after_the_settlement_settles_at_the_busts_time(tmp_path: Path) -> None:
    """Seed 41 (live): X sold at 98.31 on its book, X settles at 99.12 (the short bought
    back); restart; a bar of Y (an equity row at 38 s); the venue busts the sell at 45 s:
    the position it leaves is settled again, by a fill stamped 19 s."""
    plan = Plan(41, "live", "0.02", False, (
        (Step("ev", OrderBook(X, 9 * S, bids=[(98.31, 81), (97.31, 38)],
                              asks=[(99.59, 81), (100.59, 38)])),
         Step("ev", rc.BookDelta(X, 18 * S, rc.Side.SELL, 99.1, 32.0)),
         Step("ev", rc.Settlement(X, 19 * S, rc.Decimal("99.12"), "resolved"))),
        (Step("ev", Bar(Y, 38 * S, 49.15, 49.65, 48.47, 48.97, 1000.0)),
         Step("ev", rc.Trade(X, 45 * S, rc.Decimal("99.08"), rc.Decimal(1))),
         Step("correct", arg="bust"))), "one")
    problems = _problems(plan, tmp_path)
    assert not [p for p in problems if "cash" in p], problems


@pytest.mark.parametrize("seed", [1053, 1110], ids=["seed1053-exit", "seed1110-basket-leg"])
def test_nothing_goes_out_after_a_kill_adopted_while_the_send_waited(seed: int,
                                                                   tmp_path: Path) -> None:
    """Seed 1053 (live, multi-venue): short 8 Y; at 33 s a resting buy of 5 Y fills while
    the strategy sizes a reduce-only exit of 8 against the short 8; by the time the exit
    goes out a commit has adopted a person's kill and the short is 3: a reduce-only buy of
    8 (it would leave long 5) goes to the venue while HALTED.  Seed 1110 (live,
    multi-venue): a person's kill while a basket's first leg is on its way; the leg's
    acknowledgement commits and adopts it, and the second leg (a sell of 1 from flat)
    goes out HALTED."""
    problems = _problems(rc.make_plan(seed), tmp_path)
    assert not [p for p in problems if "sent while HALTED" in p], problems
