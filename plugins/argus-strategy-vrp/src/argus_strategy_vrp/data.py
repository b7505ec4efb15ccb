"""The ``vrp_options`` replay venue: SPY/QQQ daily bars, the VIX, synthetic put books, expiries.

Per trading day, all stamped at the close, in this order:

1. ``Signal("vix", "vrp_options:VIX", close)``;
2. per underlying, the regime features of :class:`argus_lab.regime.RegimeTracker`
   (``bocpd_p_change``, ``vol_regime``, ``vol_spike``, ``realised_vol``, ...) as
   ``Signal`` events on ``vrp_options:SPY`` / ``vrp_options:QQQ`` -- warmed up on
   the bars *before* ``start``, so they are defined from the first day;
3. an ``OrderBook`` for every listed put quoted that day (monthly expiries up to
   ``max_dte`` days out; strikes on a ``strike_step`` grid from ``S (1 - strike_band)``
   to just above the money, plus every strike quoted earlier for that expiry, so a
   position always has a book until expiry);
4. ``Settlement`` at intrinsic value (per contract) for every put expiring that day;
5. the ``Bar`` of each underlying (last, so the equity row sees the day's marks and
   the strategy acts with every quote of the day in the market state).

Quotes are synthesised from the VIX with the skew and spread model calibrated in
:mod:`argus_strategy_vrp.pricing` -- there are no historical SPY/QQQ chains here.
Prices are dollars per contract (x100).  Book levels: ``book_levels`` per side,
``level_size`` contracts at the best level and twice as many at each worse level,
one (at least $1) half-spread apart.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import math
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from importlib import resources

import attrs
import numpy as np
from argus_lab.regime import RegimeTracker

from argus_core import (
    Bar,
    DataError,
    FeeSchedule,
    Instrument,
    MarketEvent,
    OrderBook,
    Settlement,
    Signal,
    Venue,
)
from argus_strategy_vrp.config import VrpSettings, option_fees
from argus_strategy_vrp.constants import (
    CLOSE_HOUR_UTC,
    LEAN_FILES,
    MAX_DAILY_MOVE,
    MAX_GAP_DAYS,
    MULTIPLIER,
    SPLITS,
    VENUE,
    VIX_FILE,
    VIX_INSTRUMENT,
)
from argus_strategy_vrp.instruments import PutContract, monthly_expiries
from argus_strategy_vrp.pricing import SkewModel, bs_put, calibrated_model
from argus_strategy_vrp.schemas import DailyBar

WARMUP_BARS = 400


def load_lean_daily(symbol: str) -> dict[dt.date, DailyBar]:
    """A bundled Lean daily file in dollars (the file: 1/10,000 dollars, unadjusted),
    adjusted for the splits in :data:`SPLITS` (dividends are not adjusted: listed options
    are not either).  Rows must be in strictly increasing date order with
    ``0 < low <= open, close <= high``; after the splits no close may move by more than
    :data:`MAX_DAILY_MOVE` from the one before (an unlisted split or a bad row)."""
    name = LEAN_FILES[symbol]
    out: dict[dt.date, DailyBar] = {}
    lines: dict[dt.date, int] = {}
    with resources.files(__package__).joinpath("data", name).open() as fh:
        for n, row in enumerate(csv.reader(fh), start=1):
            if not row:
                continue
            try:
                day = dt.datetime.strptime(row[0].split()[0], "%Y%m%d").date()
                o, h, lo, c = (int(x) / 10_000 for x in row[1:5])
                bar = DailyBar(day, o, h, lo, c, float(row[5]))
            except (ValueError, IndexError):
                raise DataError(f"{name} line {n}: not a Lean daily row: {row!r}") from None
            if out and day <= next(reversed(out)):
                raise DataError(f"{name} line {n}: {day} does not follow "
                                f"{next(reversed(out))} (rows must be in increasing date "
                                f"order, one per day)")
            if not 0 < lo <= min(o, c) <= max(o, c) <= h:
                raise DataError(f"{name} line {n}: {day} prices do not satisfy "
                                f"0 < low <= open, close <= high: {row!r}")
            if not 0 <= bar.volume < math.inf:  # NaN fails this too
                raise DataError(f"{name} line {n}: {day} volume {row[5]!r} is not a "
                                f"finite count >= 0")
            out[day] = bar
            lines[day] = n
    return _check_moves(name, _split_adjusted(symbol, out), lines)


def _split_adjusted(symbol: str, bars: dict[dt.date, DailyBar]) -> dict[dt.date, DailyBar]:
    """``bars`` with the prices before each of ``symbol``'s splits divided by its ratio."""
    for first_day, ratio in SPLITS.get(symbol, ()):
        split_day = dt.date.fromisoformat(first_day)
        for day, b in bars.items():
            if day < split_day:
                bars[day] = DailyBar(day, b.open / ratio, b.high / ratio, b.low / ratio,
                                     b.close / ratio, b.volume * ratio)
    return bars


def _check_moves(name: str, bars: dict[dt.date, DailyBar],
                 lines: dict[dt.date, int]) -> dict[dt.date, DailyBar]:
    days = list(bars)
    for prev, day in itertools.pairwise(days):
        move = bars[day].close / bars[prev].close
        if not 1 / MAX_DAILY_MOVE <= move <= MAX_DAILY_MOVE:
            raise DataError(f"{name} line {lines[day]}: close {bars[day].close:g} on {day} is "
                            f"{move:.3f} x the close of {prev}: an unlisted split (add it to "
                            f"constants.SPLITS) or a bad row")
    return bars


def load_vix() -> dict[dt.date, float]:
    """The bundled CBOE VIX daily closes: one row per day in increasing date order, each
    close a finite number > 0 (the quote model's ATM vol is proportional to it, so a
    NaN or a zero would only fail later, far from the file)."""
    out: dict[dt.date, float] = {}
    with resources.files(__package__).joinpath("data", VIX_FILE).open() as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
            try:
                day, close = dt.date.fromisoformat(row["DATE"]), float(row["CLOSE"])
            except (ValueError, KeyError, TypeError):
                raise DataError(f"{VIX_FILE} line {n}: bad row {row!r}") from None
            if out and day <= next(reversed(out)):
                raise DataError(f"{VIX_FILE} line {n}: {day} does not follow "
                                f"{next(reversed(out))} (rows must be in increasing date "
                                f"order, one per day)")
            if not 0 < close < math.inf:  # NaN fails this too
                raise DataError(f"{VIX_FILE} line {n}: {day} VIX close {row['CLOSE']} is "
                                f"not a finite number > 0")
            out[day] = close
    return out


def close_ts_ns(day: dt.date) -> int:
    """Nanoseconds of the day's close stamp."""
    return int(dt.datetime(day.year, day.month, day.day, CLOSE_HOUR_UTC,
                           tzinfo=dt.UTC).timestamp()) * 1_000_000_000


@attrs.frozen
class Quote:
    """One synthetic put quote (per contract)."""

    contract: PutContract
    mid: float
    bids: np.ndarray
    asks: np.ndarray


def put_books(model: SkewModel, settings: VrpSettings, underlying: str, s: float, vix: float,
              expiry: dt.date, dte: int, strikes: np.ndarray) -> list[Quote]:
    """Synthetic books for puts of one expiry (vectorised Black-Scholes on the skewed vol)."""
    t = dte / 365.0
    atm = model.vix_to_atm * vix / 100.0
    if underlying == "QQQ":
        atm *= settings.qqq_iv_ratio
    fwd = s * math.exp(settings.rate * t)
    iv = model.iv(atm, strikes, fwd, t)
    mid = bs_put(s, strikes, t, settings.rate, iv) * MULTIPLIER
    half = settings.spread_scale * model.half_spread(s, mid / MULTIPLIER) * MULTIPLIER
    step = np.maximum(half, 1.0)
    out = []
    for k, m, h, st in zip(strikes.tolist(), mid.tolist(), half.tolist(), step.tolist(),
                           strict=True):
        bid1 = max(math.floor(m - h), 1.0)
        ask1 = max(math.ceil(m + h), bid1 + 1.0)
        bids: list[tuple[float, float]] = []
        asks: list[tuple[float, float]] = []
        for lvl in range(settings.book_levels):
            size = float(settings.level_size * 2**lvl)
            b = math.floor(bid1 - lvl * st)
            if b >= 1.0 and (not bids or b < bids[-1][0]):
                bids.append((b, size))
            a = math.ceil(ask1 + lvl * st)
            if not asks or a > asks[-1][0]:
                asks.append((a, size))
        out.append(Quote(PutContract(underlying, expiry, float(k)), m, np.array(bids),
                         np.array(asks)))
    return out


class VrpVenue(Venue):
    """Replay venue over the bundled SPY/QQQ/VIX data with synthetic put books."""

    name = VENUE
    supports_live_orders = False

    def __init__(self, settings: VrpSettings | None = None) -> None:
        self.settings = settings or VrpSettings()
        self.settings.check_width_on_grid()
        self.model = calibrated_model()
        self._bars = {s: load_lean_daily(s) for s in self.settings.symbols}
        self._vix = load_vix()
        start = dt.date.fromisoformat(self.settings.start)
        end = dt.date.fromisoformat(self.settings.end)
        common = set(self._vix)
        for bars in self._bars.values():
            common &= set(bars)
        self.all_days = sorted(common)
        self.days = [d for d in self.all_days if start <= d <= end]
        if len(self.days) < 2:
            raise DataError(f"[plugins.vrp] {start}..{end}: fewer than 2 trading days with "
                            f"bars for {self.settings.symbols} and a VIX close (data: "
                            f"{self.all_days[0]}..{self.all_days[-1]})")
        self._refuse_holes(start, end)
        self.expiries = monthly_expiries(self.days[0], self.days[-1] + dt.timedelta(days=60),
                                         self.all_days)
        self._plan: list[tuple[dt.date, dict[str, list[tuple[dt.date, int, np.ndarray]]],
                               dict[str, list[PutContract]]]] | None = None

    def _refuse_holes(self, start: dt.date, end: dt.date) -> None:
        """A replay may not span a hole in the data (a file's missing years would become one
        overnight move); holidays and closures of up to MAX_GAP_DAYS are not holes."""
        one = dt.timedelta(days=1)
        edges = [start - one, *self.days, end + one]  # a hole at either end counts too
        for prev, day in itertools.pairwise(edges):
            if (day - prev).days > MAX_GAP_DAYS:
                holes = [s for s in self.settings.symbols
                         if not any(prev < d < day for d in self._bars[s])] or ["VIX"]
                raise DataError(f"[plugins.vrp] {start}..{end}: no bars for "
                                f"{', '.join(holes)} from {prev + one} to {day - one} (a "
                                f"hole in the bundled data, which covers "
                                f"{self.all_days[0]}..{self.all_days[-1]}); replay a range "
                                f"without it")

    # -- the plan: which strikes are quoted each day (deterministic) -----------------
    def plan(self) -> list[tuple[dt.date, dict[str, list[tuple[dt.date, int, np.ndarray]]],
                                 dict[str, list[PutContract]]]]:
        """Per day: quoted (expiry, dte, strikes) per underlying, and contracts expiring."""
        if self._plan is not None:
            return self._plan
        s_cfg = self.settings
        sticky: dict[tuple[str, dt.date], set[float]] = {}
        plan = []
        for day in self.days:
            quoted: dict[str, list[tuple[dt.date, int, np.ndarray]]] = {}
            expiring: dict[str, list[PutContract]] = {}
            for sym in s_cfg.symbols:
                s = self._bars[sym][day].close
                lo = math.ceil(s * (1 - s_cfg.strike_band) / s_cfg.strike_step)
                hi = math.floor(s * 1.02 / s_cfg.strike_step)
                grid = {round(i * s_cfg.strike_step, 6) for i in range(lo, hi + 1)}
                rows = []
                for exp in self.expiries:
                    dte = (exp - day).days
                    if dte == 0:
                        expiring[sym] = [PutContract(sym, exp, k)
                                         for k in sorted(sticky.pop((sym, exp), set()))]
                    if dte < 1 or dte > s_cfg.max_dte:
                        continue
                    keys = sticky.setdefault((sym, exp), set())
                    keys |= grid
                    rows.append((exp, dte, np.array(sorted(keys))))
                quoted[sym] = rows
            plan.append((day, quoted, expiring))
        self._plan = plan
        return plan

    async def instruments(self) -> Sequence[Instrument]:
        """The underlyings and every put the replay will ever quote."""
        out = {f"{VENUE}:{s}": Instrument(VENUE, s, kind="spot", base=s)
               for s in self.settings.symbols}
        for _day, quoted, _exp in self.plan():
            for sym, rows in quoted.items():
                for exp, _dte, strikes in rows:
                    for k in strikes.tolist():
                        c = PutContract(sym, exp, float(k))
                        if c.instrument_id not in out:
                            out[c.instrument_id] = c.instrument()
        return list(out.values())

    def _trackers(self) -> dict[str, RegimeTracker]:
        first = self.days[0]
        trackers = {}
        for sym in self.settings.symbols:
            tracker = RegimeTracker()
            history = [d for d in self.all_days if d < first][-WARMUP_BARS:]
            # Warm up on the stretch before `first` only: across a hole in the data the
            # tracker would read years of drift as one day's move.
            for i in range(len(history) - 1, 0, -1):
                if (history[i] - history[i - 1]).days > MAX_GAP_DAYS:
                    history = history[i:]
                    break
            for d in history:
                tracker.update(close_ts_ns(d), self._bars[sym][d].close)
            trackers[sym] = tracker
        return trackers

    async def stream(self) -> AsyncIterator[MarketEvent]:
        """Every day's signals, books, settlements and bars (see the module docstring)."""
        trackers = self._trackers()
        for day, quoted, expiring in self.plan():
            ts = close_ts_ns(day)
            vix = self._vix[day]
            yield Signal("vix", VIX_INSTRUMENT, ts, vix)
            for sym in self.settings.symbols:
                bar = self._bars[sym][day]
                state = trackers[sym].update(ts, bar.close)
                for sig in state.signals(f"{VENUE}:{sym}"):
                    yield sig
                for exp, dte, strikes in quoted[sym]:
                    for q in put_books(self.model, self.settings, sym, bar.close, vix, exp,
                                       dte, strikes):
                        yield OrderBook(q.contract.instrument_id, ts, q.bids, q.asks)
                for c in expiring.get(sym, []):
                    intrinsic = max(c.strike - bar.close, 0.0) * MULTIPLIER
                    yield Settlement(c.instrument_id, ts, Decimal(f"{intrinsic:.2f}"),
                                     reason="expiry at intrinsic value")
            for sym in self.settings.symbols:
                b = self._bars[sym][day]
                yield Bar(f"{VENUE}:{sym}", ts, b.open, b.high, b.low, b.close, b.volume)

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        """Options pay ``commission_per_contract`` per contract (``FeeSchedule.per_unit``)
        plus ``commission_per_fill`` per fill; the underlyings are not traded."""
        if instrument_id.count("-") == 3:
            return option_fees(self.settings)
        return FeeSchedule()

    def regime_closes(self) -> tuple[np.ndarray, np.ndarray]:
        """(ts_ns, close) of the first underlying over the replay (for the lab's stress gate)."""
        sym = self.settings.symbols[0]
        return (np.array([close_ts_ns(d) for d in self.days], dtype=np.int64),
                np.array([self._bars[sym][d].close for d in self.days]))
