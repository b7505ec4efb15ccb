"""The fault campaign (``test_fault_campaign.py``) under the held-out fault class.

The same seeded scenario and invariants (at most one venue order per intent, every fill
booked once, position and cash equal to the venue's, nothing pending, no secret in the logs)
with plans that also draw CDN 429 pages, 429s whose ``Retry-After`` is absent, 0, 1-3 s,
120 s, an HTTP-date or garbage, answers 1.05-8x the timeout late, and late acts (the CLOB
answers rate limits with HTTP 429 only: a ``200-rate`` draw is a plain 429 here).  The
narrow campaign's seeds are untouched.  A failing seed is shrunk and reported.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from argus_testkit.campaign import run_campaign
from argus_testkit.faults import (
    WIDE_HTTP_WEIGHTS,
    WIDE_LATE_FACTORS,
    WIDE_RETRY_AFTERS,
    FaultPlan,
    HeldOutFault,
)

WIDE_SEEDS = range(1000, 1005)
MORE_WIDE_SEEDS = range(1005, 1100)


def _campaign() -> ModuleType:
    """``test_fault_campaign.py`` of this directory (importlib mode: loaded by path)."""
    name = "pm_fault_campaign_for_heldout"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).parent / "test_fault_campaign.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        module.FaultProxy = functools.partial(  # type: ignore[attr-defined]
            module.FaultProxy, timeout_s=module.TIMEOUT_S)
    return sys.modules[name]


def wide_plan(seed: int) -> FaultPlan:
    """The narrow campaign's plan of ``seed`` drawing the held-out class as well."""
    plan: FaultPlan = _campaign().make_plan(seed)
    plan.weights, plan.retry_afters = WIDE_HTTP_WEIGHTS, WIDE_RETRY_AFTERS
    plan.late_factors = WIDE_LATE_FACTORS
    return plan


@pytest.fixture(autouse=True)
def _keys(pm_keys: Callable[[str, str, str], None]) -> None:
    module = _campaign()
    pm_keys(module.API_KEY, module.API_SECRET, module.API_PASSPHRASE)


async def test_wide_fault_campaign_seeds() -> None:
    plans: list[FaultPlan] = []

    def plan_of(seed: int) -> FaultPlan:
        plans.append(wide_plan(seed))
        return plans[-1]

    times = await run_campaign(_campaign().scenario, WIDE_SEEDS, plan_of)
    drawn = {f for p in plans for f in p.drawn.values()}
    print("held-out faults drawn:", sorted(f.value for f in drawn),
          "seconds per seed:", [round(t, 1) for t in times])
    assert drawn & set(HeldOutFault)


@pytest.mark.slow
async def test_wide_fault_campaign_more_seeds() -> None:
    await run_campaign(_campaign().scenario, MORE_WIDE_SEEDS, wide_plan)
