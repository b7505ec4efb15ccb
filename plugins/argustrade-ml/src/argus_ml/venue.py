"""``updown_replay``: a replay venue with an honest binary up/down market over bars.

No up/down market quotes were recorded for the bundled bars, so this venue states the
market it simulates and keeps to it (the backtest report says so too):

* The spot bars of ``[plugins.ml] bars_csv`` (Kraken OHLCVT, no header) are replayed as
  :class:`~argus_core.Bar` events on ``updown:SYMBOL``, stamped at their close, so
  features compute exactly as in training.
* Windows of ``window_bars`` bars follow one another: window ``k`` opens at the close
  of bar ``k*h`` and resolves at the close of bar ``(k+1)*h`` (counted in bars, as the
  labels are: a gap in the data stretches a window, never skips a bar).  At its opening
  two contracts are listed, ``SYMBOL-UP-<open s>`` (pays 1 if the resolving close is
  strictly higher than the opening close) and ``SYMBOL-DOWN-<open s>`` (pays 1
  otherwise), ``Instrument(kind="binary")`` with lot 1, tick 0.001.
* Each contract gets one :class:`~argus_core.OrderBook` at the opening: bid
  ``0.5 - half_spread``, ask ``0.5 + half_spread``, ``depth`` contracts on each side,
  one level.  The fair price is 0.5: the market is assumed to know nothing, which is
  conservative about costs (every bet pays the spread and the fee) but generous about
  information (a real market moves its price with what the features see).
* Fees: ``fee_rate`` of the price paid (a :class:`~argus_core.FeeSchedule` of
  ``fee_rate * 10_000`` bps, maker and taker).
* At the resolving bar's close (never earlier: the outcome is unknowable before it)
  both contracts get a :class:`~argus_core.Settlement` at 1 or 0 and their books are
  marked not live; the core closes any position at that price as a settlement fill
  (no fee).  Only windows whose resolving bar is in the data are listed.
* Each window's two contracts are listed in the stream when it opens (the start-up
  listing is the spot instrument alone): listed at the start, every window's times told
  every strategy where the data has gaps and where it ends before it had seen a bar.
  A listing holds no price: only ids and the window's times.

Event order at one timestamp: the contracts of the window that opens there, the bar, the
settlements of the window it resolves, the books of the window it opens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import attrs
import numpy as np

from argus_core import (
    BookStatus,
    ConfigError,
    FeeSchedule,
    Instrument,
    MarketEvent,
    OrderBook,
    Settlement,
    Venue,
)
from argus_ml.bars import BarColumns, read_ohlcvt_csv
from argus_ml.config import MLSettings

VENUE = "updown"
TICK = Decimal("0.001")


@attrs.frozen
class Window:
    """One up/down window: bar indices of its opening and resolving bars."""

    open_index: int
    resolve_index: int


class UpDownReplayVenue(Venue):
    """Spot bars plus the stated binary up/down market over them (module docstring)."""

    name = "updown_replay"
    default_stale_after_s = 0.0  # a replay of stated books: a book is live until settled

    def __init__(self, settings: MLSettings | None) -> None:
        if settings is None or settings.bars_csv is None:
            raise ConfigError('the updown_replay venue needs [plugins.ml] bars_csv = '
                              '"FILE.csv" (Kraken OHLCVT bars)')
        self.s = settings
        self.spot_id = f"{VENUE}:{settings.symbol}"
        self._bars: BarColumns | None = None
        self.fees = FeeSchedule(maker_bps=Decimal(repr(settings.fee_rate)) * 10_000,
                                taker_bps=Decimal(repr(settings.fee_rate)) * 10_000)

    @property
    def bars(self) -> BarColumns:
        """The configured bars (read once)."""
        if self._bars is None:
            path = Path(self.s.bars_csv or "")
            self._bars = read_ohlcvt_csv(path, bar_seconds=self.s.bar_seconds,
                                         start_s=self.s.bars_start, end_s=self.s.bars_end)
            if len(self._bars) <= self.s.window_bars:
                raise ConfigError(f"{path}: {len(self._bars)} bars in the window; an up/down "
                                  f"window needs more than {self.s.window_bars}")
        return self._bars

    def windows(self) -> list[Window]:
        """Every window whose resolving bar is in the data."""
        h, n = self.s.window_bars, len(self.bars)
        return [Window(i, i + h) for i in range(0, n - h, h)]

    def contract_ids(self, window: Window) -> tuple[str, str]:
        """Instrument ids of the window's up and down contracts."""
        open_s = int(self.bars.ts_ns[window.open_index]) // 10**9
        return (f"{VENUE}:{self.s.symbol}-UP-{open_s}", f"{VENUE}:{self.s.symbol}-DOWN-{open_s}")

    def _contracts(self, window: Window) -> tuple[Instrument, Instrument]:
        up_id, down_id = self.contract_ids(window)
        opens_ns = int(self.bars.ts_ns[window.open_index])
        common = {"underlying": self.spot_id, "opens_ns": opens_ns,
                  "window_bars": self.s.window_bars,
                  # The resolving bar's close: a gap in the bars stretches the window
                  # (module docstring), so window_bars x bar_seconds would state a time
                  # before the settlement.
                  "settles_ns": int(self.bars.ts_ns[window.resolve_index])}
        # No price in the listing: the runner lists every window before the first bar, so
        # a window's opening close here gave every strategy the previous window's outcome.
        out = []
        for iid, outcome, pair in ((up_id, "up", down_id), (down_id, "down", up_id)):
            out.append(Instrument(VENUE, iid.split(":", 1)[1], "binary", TICK, Decimal(1),
                                  Decimal(1), base=iid.split(":", 1)[1], quote="USD",
                                  meta={**common, "outcome": outcome, "pair": pair}))
        return out[0], out[1]

    async def instruments(self) -> Sequence[Instrument]:
        """The spot instrument (each window's contracts are listed as it opens)."""
        return [Instrument(VENUE, self.s.symbol, "spot", Decimal("0.1"), Decimal("1e-8"),
                           base=self.s.symbol.split("/")[0],
                           quote=self.s.symbol.split("/")[-1])]

    def book(self, instrument_id: str, ts_ns: int) -> OrderBook:
        """The stated book of a contract: one level each side around 0.5."""
        hs, depth = self.s.half_spread, float(self.s.depth)
        return OrderBook(instrument_id, ts_ns, np.array([[0.5 - hs, depth]]),
                         np.array([[0.5 + hs, depth]]))

    def events(self) -> Iterator[MarketEvent]:
        """Bars, settlements and books in time order (module docstring)."""
        bars = self.bars
        opening = {w.open_index: w for w in self.windows()}
        resolving = {w.resolve_index: w for w in self.windows()}
        for i, bar in enumerate(bars.bars(self.spot_id)):
            listed = opening.get(i)
            if listed is not None:  # before the bar: a strategy hearing it finds them
                yield from self._contracts(listed)
            yield bar
            w = resolving.get(i)
            if w is not None:
                up = bars.close[w.resolve_index] > bars.close[w.open_index]
                up_id, down_id = self.contract_ids(w)
                why = (f"close {bars.close[w.resolve_index]!r} vs "
                       f"{bars.close[w.open_index]!r} at the opening")
                yield Settlement(up_id, bar.ts_ns, Decimal(int(up)), "up: " + why)
                yield Settlement(down_id, bar.ts_ns, Decimal(int(not up)), "down: " + why)
                yield BookStatus(up_id, bar.ts_ns, False, "resolved")
                yield BookStatus(down_id, bar.ts_ns, False, "resolved")
            w = opening.get(i)
            if w is not None:
                for iid in self.contract_ids(w):
                    yield self.book(iid, bar.ts_ns)

    async def stream(self) -> AsyncIterator[MarketEvent]:
        """:meth:`events`, asynchronously (the runner's interface)."""
        for event in self.events():
            yield event

    def expected_events(self) -> int | None:
        """Bars, plus two contracts and two books at each opening and four events at
        each resolution."""
        return len(self.bars) + 8 * len(self.windows())

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        """``fee_rate`` of the price paid, on every instrument of this venue."""
        return self.fees
