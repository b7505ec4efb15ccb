"""Seeded random campaign against ``pm_maker`` live (``maker_campaign_live``): the real
``Runner`` and Polymarket venue client against the local CLOB through the testkit's fault
proxies, with disconnects, lost / late answers, 5xx and 429s, fills racing cancels, fills
reported after the cancel's answer, kills and a restart mid-sequence.  After each seed:

* the CLOB acted only on orders the ledger already held (checked as it acts), each once;
  no intent placed twice; no CLOB order without a ledger order;
* every CLOB fill booked once (per order: the ledger's signed shares, cash and count of
  fills equal the CLOB's legs), as maker at the quote's price; each order's status and
  filled quantity as the CLOB has them; position and cash equal the CLOB's;
* at most one live quote per side at the CLOB (sampled every 20 ms); inventory within
  ``max_inventory`` plus one fill, never short unless allowed;
* at the end the CLOB's live quotes are exactly those the strategy believes (no orphan;
  a believed quote whose order ended unseen -- never placed, refused, not sent -- is a
  known gap, noted: the strategy cannot see orders); after a kill only exits;
* the run never dies.

A failing seed is reported with its seed and trace (faults drawn and the steps), shrunk
over its faults (:func:`argus_testkit.campaign.run_campaign`).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("argus_venue_polymarket")
sys.path.insert(0, str(Path(__file__).parent))

import maker_campaign_live as ml
from argus_testkit.campaign import run_campaign
from argus_testkit.faults import FaultPlan

#: Each seed takes ~4-7 s here (10 steps, a settle, a stop; load ~3-4), except those whose
#: restart meets faults in the start-up's reconciliation (seeds 0 and 5: ~16 s), which run
#: with the slow ones.  Seed 6 restarts in the suite.
FAST_SEEDS = [1, 2, 3, 4, 6, 7]
SLOW_SEEDS = [0, 5, *range(8, 40)]


@pytest.fixture(autouse=True)
def _live_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The throwaway key and API credentials, referenced only as ``$env:``."""
    for name, value in ml.SECRETS.items():
        monkeypatch.setenv(name, value)


async def _scenario(plan: FaultPlan) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        w = await ml.live_seed(plan, Path(tmp))
    # what the invariants tolerate, shown (-s): the two known core gaps met, and each
    # spell of two live quotes on one side (the engine does not wait for a cancel)
    print(f"seed {plan.seed}: known gaps {w.known}; two on a side for "
          f"{[round(t, 2) for t in w.doubles]} s")


async def _seed(seed: int) -> None:
    times = await run_campaign(_scenario, [seed], ml.make_plan, shrink_budget=6)
    print(f"seed {seed}: {times[0]:.1f} s")


@pytest.mark.parametrize("seed", FAST_SEEDS)
async def test_live_campaign(seed: int) -> None:
    await _seed(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
async def test_live_campaign_more_seeds(seed: int) -> None:
    await _seed(seed)
