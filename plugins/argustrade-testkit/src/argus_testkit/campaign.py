"""Run a seeded fault campaign: one scenario per seed, each under its own
:class:`FaultPlan`; the first seed that fails is shrunk (its faults switched off one group
at a time while it still fails) and reported with its seed and the minimal trace.

A scenario is ``async def scenario(plan) -> None``: it builds its own exchange, proxies
and run directory, drives the order path under ``plan``, checks its invariants (raising
``AssertionError``) and tears everything down.  Any exception fails the seed: a crash on
a fault is a failure too.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Protocol, TypeVar

from argus_core import VenueError
from argus_testkit.engine import EngineHarness
from argus_testkit.faults import FaultPlan

log = logging.getLogger(__name__)

Scenario = Callable[[FaultPlan], Awaitable[None]]


class ShrinkablePlan(Protocol):
    """A seeded fault plan: the draws a run made, and a fresh plan with some pinned to a
    pass (:class:`FaultPlan`, the market-data campaign's ``MdFaultPlan``)."""

    @property
    def drawn(self) -> Mapping[tuple[str, int], object]: ...

    def without(self: P, keys: Iterable[tuple[str, int]]) -> P: ...


P = TypeVar("P", bound=ShrinkablePlan)


class CampaignFailure(AssertionError):
    """A seed broke an invariant (or crashed): the seed, the error and the minimal trace."""


async def attempt(scenario: Callable[[P], Awaitable[None]], plan: P) -> BaseException | None:
    """Run ``scenario`` under ``plan``; the exception it ended with, or None."""
    try:
        await scenario(plan)
    except Exception as exc:  # every failure of a seed is reported, not raised here
        return exc
    return None


async def shrink(scenario: Callable[[P], Awaitable[None]], plan: P, error: BaseException, *,
                 budget: int = 24) -> tuple[P, BaseException]:
    """The failing ``plan`` (which ended with ``error``) with as many of its faults
    switched off (pinned to a pass) as still fail, within ``budget`` re-runs (a greedy
    ddmin: halves, then smaller groups), and the error that run ended with."""
    best, off = plan, set[tuple[str, int]]()
    runs = 0
    chunk = max(1, len(best.drawn) // 2)
    while runs < budget and best.drawn:
        candidates = [k for k in best.drawn if k not in off]
        if not candidates:
            break
        progressed = False
        for i in range(0, len(candidates), chunk):
            if runs >= budget:
                break
            group = candidates[i:i + chunk]
            trial = plan.without(off | set(group))
            runs += 1
            failed = await attempt(scenario, trial)
            if failed is not None:
                off |= set(group)
                best, error, progressed = trial, failed, True
        if chunk == 1 and not progressed:
            break
        chunk = max(1, chunk // 2)
    return best, error


async def run_campaign(scenario: Scenario, seeds: Iterable[int],
                       make_plan: Callable[[int], FaultPlan], *,
                       shrink_budget: int = 24) -> list[float]:
    """Run every seed; raise :class:`CampaignFailure` for the first that fails (shrunk),
    naming the seed, the error and the minimal trace.  Returns each seed's seconds."""
    times: list[float] = []
    for seed in seeds:
        plan = make_plan(seed)
        started = time.perf_counter()
        error = await attempt(scenario, plan)
        times.append(time.perf_counter() - started)
        if error is None:
            continue
        first = "".join(traceback.format_exception(error)[-6:])
        minimal, again = await shrink(scenario, plan, error, budget=shrink_budget)
        raise CampaignFailure(
            f"fault campaign: seed {seed} failed: {error!r}\n{first}\n"
            f"replay: make_plan({seed}); minimal trace ({len(minimal.drawn)} of "
            f"{len(plan.drawn)} faults kept; pinned to pass: {sorted(minimal.forced)}):\n  "
            + "\n  ".join(minimal.trace)
            + f"\nthe shrunk run ends with: {again!r}") from error
    return times


class _World(Protocol):
    """What :func:`started` needs of a campaign's world."""

    plan: FaultPlan
    harness: EngineHarness | None


async def started(world: _World, make: Callable[[], EngineHarness], *,
                  attempts: int = 5) -> EngineHarness:
    """A harness from ``make()`` started (``start_live``: reconciliation, the executions
    stream) and set as ``world.harness``.  A start the venue refuses with ``VenueError``
    (it could not be asked what is open: a documented stop, the process exits) is noted
    and a fresh process starts, up to ``attempts`` times; any other error fails the seed."""
    for attempt in range(attempts):
        h = make()
        try:
            await h.start()
        except VenueError as exc:
            world.plan.note(f"-- start {attempt + 1} stopped: {str(exc)[:160]}")
            await h.close()
            continue
        world.harness = h
        return h
    raise AssertionError(f"the venue stopped {attempts} start-ups in a row")
