"""Builtin plugin ``example``: the moving-average crossover strategy ``ma_cross``.

It is deliberately plain (the AI orchestrator's first incumbent): long when
the fast simple moving average of closes is above the slow one, flat
otherwise.  It decides on a bar only after that bar has closed, and its
whole state is JSON, so it checkpoints and hot-swaps cleanly.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from argus_core.hookspecs import RegisterStrategy, hookimpl
from argus_core.interfaces import Strategy, StrategyContext
from argus_core.models import Bar, Forecast, Intent, MarketEvent, OrderType, Side, TimeInForce

if TYPE_CHECKING:
    from argus_core.bar_runs import BarRun

#: A sum of w positive floats, left to right or pairwise, is within (w - 1) * 2**-53 of
#: its terms' sum; this bound's margin (2**-50) leaves room for both summations, their
#: division and the difference: a difference of means beyond it has the same sign in
#: ``on_event``'s ``sum()`` as in numpy's.
_SUM_ERROR = 2.0**-50

log = logging.getLogger("argus.ma_cross")


@attrs.frozen
class ExampleSettings:
    """``[plugins.example]``: parameters of ``ma_cross``."""

    fast: int = attrs.field(default=10, validator=attrs.validators.gt(0))
    slow: int = attrs.field(default=40, validator=attrs.validators.gt(0))
    instrument_id: str | None = None  # trade only this instrument (default: the first one)

    def __attrs_post_init__(self) -> None:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")


class MovingAverageCross(Strategy):
    """Long when SMA(fast) > SMA(slow) of one instrument's bar closes, flat otherwise.

    Without ``instrument_id`` it follows the first instrument whose bar it takes and
    ignores every other one (saying so once): one window of closes mixing instruments
    would average BTC with SPY."""

    name = "ma_cross"

    def __init__(self, settings: ExampleSettings | None) -> None:
        self.s = settings or ExampleSettings()
        #: The loop hands this strategy only its instrument's events (see Runner._route).
        self.listens_to = frozenset({self.s.instrument_id}) if self.s.instrument_id else None
        self.closes: deque[float] = deque(maxlen=self.s.slow)
        # The fast window's closes kept apart: summing it does not walk the slow window.
        self._recent: deque[float] = deque(maxlen=self.s.fast)
        self.long = False
        #: the instrument whose closes the windows hold (``instrument_id``, else the first)
        self.instrument: str | None = self.s.instrument_id
        self._ignored: set[str] = set()  # other instruments' bars seen (said once each)
        # quiet_bars' decisions for one run: (run, its first bar planned, stops when
        # long, stops when flat), indices from that first bar
        self._plan: tuple[BarRun, int, list[int], list[int]] | None = None

    def _follows(self, instrument_id: str) -> bool:
        """Whether ``instrument_id``'s bars go into the windows (the first one seen is
        followed when no ``instrument_id`` is set)."""
        if self.instrument is None:
            self.instrument = instrument_id
        if instrument_id == self.instrument:
            return True
        if self.s.instrument_id is None and instrument_id not in self._ignored:
            self._ignored.add(instrument_id)
            log.warning("ma_cross follows %s and ignores the bars of %s: one strategy averages "
                        "one instrument's closes; set [plugins.example] instrument_id to choose",
                        self.instrument, instrument_id)
        return False

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        s = self.s
        if type(event) is not Bar or (event.instrument_id != self.instrument
                                      and not self._follows(event.instrument_id)):
            return ()
        closes = self.closes
        closes.append(event.close)
        self._recent.append(event.close)
        if len(closes) < s.slow:
            return ()
        # Sums recomputed from the window, oldest first (no running sum whose rounding
        # drifts over years of bars): cheap for windows this size.
        fast = sum(self._recent) / s.fast
        slow = sum(closes) / s.slow
        want_long = fast > slow
        if want_long == self.long:
            return ()
        self.long = want_long
        if want_long:
            edge = (fast - slow) / slow
            return (Intent(self.name, event.instrument_id, Side.BUY, order_type=OrderType.MARKET,
                           time_in_force=TimeInForce.IOC, reason="fast SMA crossed above slow",
                           forecast=Forecast(mu=edge, sigma=0.02, confidence=0.5)),)
        held = ctx.portfolio.position(event.instrument_id).quantity
        if held <= 0:
            return ()
        return (Intent(self.name, event.instrument_id, Side.SELL, quantity=held,
                       order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC,
                       reason="fast SMA crossed below slow", reduce_only=True),)

    def quiet_bars(self, run: BarRun, start: int, stop: int) -> int:
        """How many of ``run``'s bars from ``start`` (before ``stop``) :meth:`on_event`
        would answer with no intent (the runner's quiet stretches,
        :mod:`argus_core.bar_runs`; :meth:`take_bars` then takes them).  The averages
        come from numpy; a bar whose two averages are within the summations' rounding
        of each other is not quiet: ``on_event`` decides it."""
        if run.instrument_id != self.instrument and not self._follows(run.instrument_id):
            return stop - start  # not this strategy's instrument: on_event ignores it
        plan = self._plan
        # The plan holds while every bar of the run since its first went into the state.
        if plan is None or plan[0] is not run or plan[1] > start or (
                start > plan[1] and self.closes[-1] != run.closes[start - 1]):
            plan = self._plan = (run, start, *self._stops(run.closes[start:]))
        _, base, when_long, when_flat = plan
        stops = when_long if self.long else when_flat
        at = bisect_left(stops, start - base)  # a list: bisect beats numpy's call here
        return min(stop, base + stops[at]) - start if at < len(stops) else stop - start

    def take_bars(self, run: BarRun, start: int, stop: int) -> None:
        """Take ``run``'s bars ``start:stop`` into the state, as :meth:`on_event` would
        (bars :meth:`quiet_bars` found quiet)."""
        s = self.s
        if run.instrument_id != self.instrument and not self._follows(run.instrument_id):
            return
        taken = run.closes[max(start, stop - s.slow):stop].tolist()
        self.closes.extend(taken)
        self._recent.extend(taken[-s.fast:])

    def _stops(self, ahead: np.ndarray) -> tuple[list[int], list[int]]:
        """The bars of ``ahead`` (the next closes after the state's) on which a long, and
        a flat, strategy might act: where fast > slow (or not) is decided against it, or
        too close to call."""
        s, held = self.s, len(self.closes)
        x = np.concatenate((np.fromiter(self.closes, np.float64, held), ahead))
        if len(x) < s.slow:
            return [], []  # still warming up
        # the window ending at each of ahead's bars, once the slow one is full
        first = max(0, s.slow - 1 - held)  # ahead's first bar with a full slow window
        ends = np.arange(held + first, len(x))
        slow = sliding_window_view(x, s.slow).sum(axis=1)[ends - s.slow + 1] / s.slow
        fast = sliding_window_view(x, s.fast).sum(axis=1)[ends - s.fast + 1] / s.fast
        diff, tol = fast - slow, _SUM_ERROR * ((s.fast + 1) * fast + (s.slow + 1) * slow)
        return ((np.flatnonzero(diff <= tol) + first).tolist(),
                (np.flatnonzero(diff >= -tol) + first).tolist())

    def get_state(self) -> dict[str, Any]:
        return {"closes": list(self.closes), "long": self.long, "instrument": self.instrument}

    def set_state(self, state: dict[str, Any]) -> None:
        # a checkpoint from before "instrument" was kept follows the next bar's instrument
        kept = state.get("instrument")
        self.instrument = self.s.instrument_id or (kept if isinstance(kept, str) else None)
        self.closes = deque((float(c) for c in state.get("closes", [])), maxlen=self.s.slow)
        self._recent = deque(self.closes, maxlen=self.s.fast)
        self.long = bool(state.get("long", False))
        self._plan = None



@hookimpl
def config_class() -> type:
    """``[plugins.example]`` settings."""
    return ExampleSettings


@hookimpl
def register_strategies(register: RegisterStrategy) -> None:
    """Register ``ma_cross``."""
    register(MovingAverageCross.name, MovingAverageCross)
