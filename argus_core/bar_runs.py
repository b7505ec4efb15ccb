"""Quiet stretches of a bar replay, taken in one step each.

Most bars of a backtest change nothing but the clock and the marks: the strategy
decides nothing, no order works, and the account re-values its position.  A replay
groups consecutive bars of one instrument into a :class:`BarRun` (:func:`bar_runs`);
the runner asks, at each bar of a run, how long a *quiet stretch* starts there: bars
on which no order can work or be sent, no checkpoint, progress report or
``max_events`` falls inside, the drawdown kill switch stays clearly out of reach, and
the strategy (:meth:`quiet_bars`) would return no intent.  Such a stretch is taken in
one step: the market's clock and last bar move to its end, the strategy takes its bars
into its state, and its equity rows are computed from integers
(:func:`held_equity`, :func:`row_texts`), to the digit the Decimals the event path
writes.  Every other bar goes through the event path as before, so the ledger (orders,
fills, equity rows, checkpoints, risk events) is the event path's, row for row
(``tests/test_bar_runs.py`` compares both on randomised series).

**Trust.**  A strategy's ``quiet_bars`` sees the bars of the run ahead of the one it
decides; a strategy that peeked would backtest on the future.  Only the classes in
:data:`TRUSTED` (shipped with the core and tested against their own ``on_event``) are
asked; every other strategy, a plugin's or an AI-written one, sees bars one at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Protocol, cast

import numpy as np

from argus_core.builtins.example_strategies import MovingAverageCross
from argus_core.builtins.risk_checks import MaxDrawdownKill
from argus_core.models import Bar, MarketEvent


class QuietBars(Protocol):
    """What a :data:`TRUSTED` strategy offers the stretch path."""

    def quiet_bars(self, run: BarRun, start: int, stop: int) -> int:
        """How many of ``run``'s bars from ``start`` (before ``stop``) its ``on_event``
        would answer with no intent, deciding each from the bars up to it (its state
        unchanged)."""

    def take_bars(self, run: BarRun, start: int, stop: int) -> None:
        """Take ``run``'s bars ``start:stop`` (found quiet) into the state, as
        ``on_event`` would."""


#: Strategy classes whose :class:`QuietBars` methods the runner uses (exact classes: a
#: subclass may decide differently).
TRUSTED: frozenset[type] = frozenset({MovingAverageCross})


def trusted(strategy: object) -> QuietBars | None:
    """``strategy`` as a :class:`QuietBars` when its class is :data:`TRUSTED`."""
    return cast(QuietBars, strategy) if type(strategy) in TRUSTED else None


#: Risk checks whose ``on_equity`` watch a stretch models (:func:`drawdown_cut`).
WATCHES: frozenset[type] = frozenset({MaxDrawdownKill})
#: Bars per run at most: a run's numpy columns stay small (~150 KiB), memory flat.
RUN_BARS = 4096
_TWO52 = float(2**52)
_ROW_PLACES = 8  # equity rows are quantized to 1e-8 (the runner's _CENT_E6)
_INT_ROOM = 10**27  # integers kept under the Decimal context's 28 digits


class BarRun:
    """Consecutive bars of one instrument, strictly increasing in time: a list of bars,
    or a bar file's columns whose bars are made only when asked (:meth:`bar`), with
    their closes as a numpy column and their close times as a list."""

    __slots__ = ("_bars", "_closes", "_stamps", "_table", "_units", "instrument_id")

    def __init__(self, bars: list[Bar]) -> None:
        self._bars: list[Bar] | None = bars
        self._table: np.ndarray | None = None
        self.instrument_id = bars[0].instrument_id
        self._closes: np.ndarray | None = None
        self._stamps: list[int] | None = None
        self._units: tuple[int, list[int]] | bool | None = False  # False: not yet asked

    @classmethod
    def of_columns(cls, instrument_id: str, stamps: np.ndarray, table: np.ndarray
                   ) -> BarRun:
        """A run of bars already read and checked as :class:`Bar` checks them: close
        times (int64 ns) and an (n, 5) table of open, high, low, close, volume."""
        run = cls.__new__(cls)
        run._bars, run._table, run.instrument_id = None, table, instrument_id
        run._stamps, run._closes = stamps.tolist(), np.ascontiguousarray(table[:, 3])
        run._units = False
        return run

    def __len__(self) -> int:
        return len(self._bars) if self._bars is not None else len(self._stamps)  # type: ignore[arg-type]

    def bar(self, i: int) -> Bar:
        """The run's ``i``-th bar."""
        if self._bars is not None:
            return self._bars[i]
        o, h, lo, c, v = self._table[i].tolist()  # type: ignore[index]
        return Bar(self.instrument_id, self._stamps[i], o, h, lo, c, v)  # type: ignore[index]

    @property
    def closes(self) -> np.ndarray:
        """The bars' closes (float64)."""
        if self._closes is None:
            self._closes = np.array([b.close for b in self._bars or []], np.float64)
        return self._closes

    @property
    def stamps(self) -> list[int]:
        """The bars' close times (int ns), made once: a stretch slices them."""
        if self._stamps is None:
            self._stamps = [b.ts_ns for b in self._bars or []]
        return self._stamps

    @property
    def decimal_closes(self) -> tuple[int, list[int]] | None:
        """``(places, closes as whole units of 10**-places)`` with the fewest places (at
        most 9) that hold every close's ``Decimal(repr(close))`` exactly; None if none
        does (:func:`tick_units`)."""
        if self._units is False:
            self._units = next(((p, u.tolist()) for p in range(10)
                                if (u := tick_units(self.closes, p)) is not None), None)
        return self._units  # type: ignore[return-value]


def bar_runs(events: Iterable[MarketEvent | BarRun], wanted: Callable[[str], bool]
             ) -> Iterator[MarketEvent | BarRun]:
    """``events`` with each stretch of consecutive bars of one instrument (strictly later
    each, at most :data:`RUN_BARS`) as one :class:`BarRun`, where ``wanted(instrument)``
    says, as the stretch starts, that its bars may be taken a stretch at a time; a lone
    bar, every other bar and every other event as they came, in the same order (a run
    of columns not wanted comes bar by bar).  An error from ``events`` (a bad line of a
    bar file) comes after the bars read before it, as it would one event at a time."""
    run: list[Bar] = []
    iid, last = None, 0
    it = iter(events)
    while True:
        try:
            event = next(it)
        except StopIteration:
            break
        except BaseException:
            if run:
                yield run[0] if len(run) == 1 else BarRun(run)
            raise
        if type(event) is Bar:
            if event.instrument_id == iid and event.ts_ns > last and len(run) < RUN_BARS:
                run.append(event)
                last = event.ts_ns
                continue
            if run:
                yield run[0] if len(run) == 1 else BarRun(run)
                run, iid = [], None
            if wanted(event.instrument_id):
                run, iid, last = [event], event.instrument_id, event.ts_ns
            else:
                yield event
            continue
        if run:
            yield run[0] if len(run) == 1 else BarRun(run)
            run, iid = [], None
        if type(event) is BarRun and not wanted(event.instrument_id):
            yield from (event.bar(i) for i in range(len(event)))
        else:
            yield event
    if run:
        yield run[0] if len(run) == 1 else BarRun(run)


def decimal_places(value: Decimal) -> int:
    """The digits after the point of ``value`` as written (0 for an integer)."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite: the account holds no NaN
    return max(0, -exponent)


def tick_units(closes: np.ndarray, places: int) -> np.ndarray | None:
    """``closes`` as whole units of ``10**-places`` when each close's shortest repr (what
    ``Decimal(repr(close))`` reads) is exactly that many units, else None.  A close
    that round-trips through ``units / 10**places`` is that decimal: below
    ``2**52 * 10**-places`` two decimals of ``places`` places are further apart than
    the float spacing, so no other one rounds to the same float (and the shortest repr,
    having no more places, is the same decimal)."""
    if places > 15 or not len(closes) or closes.max() >= _TWO52 / 10.0**places:
        return None
    scale = 10.0**places
    units = np.rint(closes * scale)
    if not np.array_equal(units / scale, closes):
        return None
    return units.astype(np.int64)


def held_equity(cash: Decimal, others: Decimal, others_gross: Decimal, quantity: Decimal,
                units: list[int], places: int) -> tuple[list[int], list[int], int] | None:
    """The account's (equity, gross exposure) at each close (``units`` of ``10**-places``,
    :attr:`BarRun.decimal_closes`), as integers of ``10**-scale``: ``(equity, gross,
    scale)``; None when a value has 27 digits or more, or is under 1e-6 (the caller
    takes the event path).  ``others``: the other held positions' marked value
    (``others_gross`` its absolute sum), constant over the stretch.  Exact: the
    Decimal sums and products these stand for have fewer digits than the context's 28,
    so the event path's Decimals are these integers to the last digit."""
    scale = max(decimal_places(cash), decimal_places(others), decimal_places(others_gross),
                decimal_places(quantity) + places)
    base = int((cash + others).scaleb(scale))
    gross_base = int(others_gross.scaleb(scale))
    q = int(quantity.scaleb(scale - places))
    aq = abs(q)
    equity = [base + q * u for u in units]
    gross = [gross_base + aq * u for u in units]
    lowest = min(min(equity), min(gross))
    if max(max(map(abs, equity)), max(gross), abs(base), gross_base) >= _INT_ROOM \
            or lowest * 10**6 < 10**scale:
        return None  # past the context's digits, or a value under 1e-6 (its text differs)
    return equity, gross, scale


def row_texts(values: list[int], scale: int) -> list[str]:
    """``str(Decimal(value).scaleb(-scale).quantize(Decimal("1e-8")))`` for each integer,
    all at least ``10**(scale - 6)`` (:func:`held_equity` sees to it; a smaller one's
    text is scientific), rounded half-even as the context rounds."""
    unit = 10**_ROW_PLACES
    if scale <= _ROW_PLACES:
        up = 10**(_ROW_PLACES - scale)
        return ["%d.%08d" % divmod(v * up, unit) for v in values]  # noqa: UP031  (twice str.format's speed)
    div = 10**(scale - _ROW_PLACES)  # a power of ten: even
    half, out = div // 2, []
    for v in values:
        q, r = divmod(v + half, div)
        if r == 0 and q & 1:  # v was halfway and went up to an odd last digit: even it
            q -= 1
        out.append("%d.%08d" % divmod(q, unit))  # noqa: UP031  (twice str.format's speed)
    return out


def drawdown_cut(equity: list[int], scale: int, peak: Decimal, limits: list[Decimal]) -> int:
    """How many of the stretch's equities the drawdown kill switch surely lets pass:
    the first whose drawdown from the running peak comes within 1e-9 of the tightest
    limit ends it (the event path decides that one, exactly, in Decimal)."""
    if not limits or not equity:
        return len(equity)
    unit, limit, running = 10.0**-scale, float(min(limits)) - 1e-9, float(peak)
    top = max(running, max(equity) * unit)
    if top <= 0 or top - min(equity) * unit <= limit * top:
        return len(equity)  # even the lowest from the highest is clear of it
    for n, e in enumerate(equity):
        value = e * unit
        running = max(running, value)
        if running > 0 and running - value > limit * running:
            return n
    return len(equity)
