"""Seeded random campaign against the ``pm_maker`` lifecycle in paper (``maker_campaign``).

Per seed a random book path (touch moves, spreads widening and narrowing, adverse flow,
deltas, prints at / through the quotes of random sizes, sides emptied, the market
resolving), a random kill schedule and random lifecycle settings go through the real
``Runner`` twice: whole, and stopped at a random event then resumed from its checkpoint.
After each seed:

* the run never dies, and the resumed ledger is the uninterrupted one;
* every maker fill is at its quote's price, on a print strictly through it, never more
  than the print's size, with the maker fee of the schedule; each order's fills add up to
  its filled quantity (booked once); cash and position equal the ledger's fills;
* before every event at most one working quote per side; none after the settlement (and
  none posted after it); inventory within ``max_inventory`` plus one fill, never short
  unless allowed; while HALTED only exits work (never more than the position);
* at the end the working orders are exactly the quotes the strategy believes (no orphan
  left by a requote), and exactly the ledger's open orders.

A failing seed prints its seed and trace (``paper_path(seed).trace``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import maker_campaign as mc

FAST_SEEDS = range(6)
SLOW_SEEDS = range(6, 80)


def _run(seed: int, tmp: Path) -> None:
    path = mc.paper_path(seed)
    try:
        mc.check_paper(*mc.paper_seed(seed, tmp))
    except AssertionError as exc:
        raise AssertionError(f"maker paper campaign: seed {seed} failed: {exc}\ntrace:\n  "
                             + "\n  ".join(path.trace)) from exc


@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_paper_campaign(seed: int, tmp_path: Path) -> None:
    _run(seed, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
def test_paper_campaign_more_seeds(seed: int, tmp_path: Path) -> None:
    _run(seed, tmp_path)


def test_the_paths_exercise_every_kind_of_step() -> None:
    """The fast seeds' paths hold fills' causes, settlements, kills and restarts (a
    campaign of quiet paths would prove nothing)."""
    lines = [line for seed in range(6) for line in mc.paper_path(seed).trace]
    for what in ("trade bid_through", "trade ask_through", "trade bid_quote", "emptied",
                 "SETTLEMENT", "selling pressure", "delta", "restart after"):
        assert any(what in line for line in lines), what
    assert any("halted" in line or "reducing" in line for line in lines)
