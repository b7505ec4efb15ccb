"""``overnight_session``: hold BTC across the session segments whose training edge clears
the round trip's costs.

The rules, each tested:

1. Bars are folded into segment instances (:mod:`argus_overnight.sessions`); an instance
   that *ends* by ``train_end`` joins its segment's training sample, nothing later does.
2. At a bar's close ``T`` where the next instant starts a new segment (a transition), and
   only when ``T >= train_end``, the strategy wants to hold the coming segment if
   - it is one of the configured ``segments`` (session gating);
   - its training sample has ``min_samples`` instances, a t-statistic of the mean log
     return ``>= min_t`` and a mean simple return above the hurdle: ``hurdle_bps``, or
     2 x the venue's taker fee + ``extra_cost_bps`` (Kraken: 2 x 40 + 6 = 86 bps);
   - the regime is not stressed and BOCPD P(change) ``<= max_p_change`` (regime gating:
     published ``vol_regime`` / ``bocpd_p_change`` signals when the venue sends them,
     else the lab's :class:`~argus_lab.regime.RegimeTracker` over daily UTC closes);
   - with a risk-flow file, its score at ``T`` is ``>= min_risk_flow``.
3. Flat and wanting: buy (a ``Forecast`` of the edge over the hurdle; the sizer sizes
   it).  Long and not wanting: sell everything.  Long and wanting: keep holding.

Decisions use bars up to ``T``'s close only; the paper broker fills them at the next
bar's open, i.e. at the segment boundary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from math import log
from typing import Any

from argus_lab.regime import STRESSED, BocpdParams, RegimeTracker, VolRegimeParams

from argus_core import (
    Bar,
    DataError,
    Forecast,
    Intent,
    MarketEvent,
    OrderType,
    Side,
    Strategy,
    StrategyContext,
    TimeInForce,
)
from argus_overnight.analysis import SegmentStats, read_kraken_bars, stats_of
from argus_overnight.config import Settings, utc_seconds
from argus_overnight.riskflow import RiskFlow, read_risk_flow
from argus_overnight.sessions import SEGMENTS, segment_of, utc

_NS = 1_000_000_000
_DAY_S = 86400


class OvernightSession(Strategy):
    """Long BTC across the session segments whose training edge beats the round trip."""

    name = "overnight_session"

    def __init__(self, settings: Settings | None) -> None:
        self.s = s = settings or Settings()
        self.train_end_s = utc_seconds(s.train_end)
        self.train_start_s = utc_seconds(s.train_start) if s.train_start else None
        self.train: dict[str, list[float]] = {seg: [] for seg in SEGMENTS}
        # The open segment instance: [segment, key_day, start_s, log return sum].
        self.current: list[Any] | None = None
        self.prev_close: float | None = None
        self.last_ts_s: int | None = None
        self.regime = self._new_regime()
        # (vol regime, P(change)) of the last daily close: RegimeTracker's own ``last`` is
        # not in its state, so after a restart the gate would be open until midnight.
        self.regime_last: tuple[int, float | None] | None = None
        self.flow: RiskFlow | None = read_risk_flow(s.risk_flow_csv) if s.risk_flow_csv \
            else None
        self.last_reason = ""
        if s.history_csv is not None:
            open_s, close = read_kraken_bars(str(s.history_csv), self.train_start_s,
                                             self.train_end_s - s.bar_seconds + 1)
            for o, c in zip(open_s.tolist(), close.tolist(), strict=True):
                self._observe(int(o) + s.bar_seconds, float(c))

    def _new_regime(self) -> RegimeTracker:
        return RegimeTracker(BocpdParams(beta0=self.s.bocpd_beta0),
                             VolRegimeParams(periods_per_year=365.0))

    # -- bookkeeping -------------------------------------------------------------------

    def _observe(self, ts_s: int, close: float) -> bool:
        """Fold one bar (close time ``ts_s``); True when a decision is due: ``ts_s`` is a
        segment transition, or the segment ahead changed since the previous bar's close
        (the bar ending at the cut is missing: decide now, late, rather than hold on
        through a segment nobody chose)."""
        previous_ts_s = self.last_ts_s
        if previous_ts_s is not None and ts_s <= previous_ts_s:
            return False  # already seen (history file overlapping the replay)
        bar_s = self.s.bar_seconds
        # A shorter or misaligned bar would be booked to the wrong segment (its open is
        # taken as ts - bar_seconds), each as an instance of its own: refuse, don't guess.
        if previous_ts_s is not None and ts_s - previous_ts_s < bar_s:
            raise DataError(f"{self.name}: the bar closing at {utc(ts_s):%Y-%m-%d %H:%M:%S} "
                            f"UTC came {ts_s - previous_ts_s} s after the previous one, but "
                            f"bar_seconds = {bar_s}; set bar_seconds to the feed's bar "
                            f"length")
        if ts_s % bar_s:
            raise DataError(f"{self.name}: the bar closing at {utc(ts_s):%Y-%m-%d %H:%M:%S} "
                            f"UTC is not a multiple of bar_seconds = {bar_s} from midnight, "
                            f"so it may straddle a session cut; set bar_seconds to the "
                            f"feed's bar length (bars must close on that grid)")
        if ts_s % _DAY_S == 0:
            state = self.regime.update(ts_s * _NS, close)
            p_change = state.p_change if math.isfinite(state.p_change) else None
            self.regime_last = (state.regime, p_change)
        seg, key = segment_of(ts_s - self.s.bar_seconds)
        if self.prev_close is not None:
            r = log(close / self.prev_close)
            cur = self.current
            if cur is None or cur[0] != seg or cur[1] != key:
                self._close_instance(self.last_ts_s or ts_s)
                cur = self.current = [seg, key, ts_s - self.s.bar_seconds, 0.0]
            cur[3] += r
        self.prev_close, self.last_ts_s = close, ts_s
        ahead = segment_of(ts_s)
        transition = ahead != (seg, key)
        if transition:
            self._close_instance(ts_s)
        return transition or (previous_ts_s is not None and ahead != segment_of(previous_ts_s))

    def _close_instance(self, end_s: int) -> None:
        """The open instance ended at ``end_s``: a training sample if inside the window."""
        cur, self.current = self.current, None
        if cur is None or end_s > self.train_end_s:
            return
        if self.train_start_s is None or cur[2] >= self.train_start_s:
            self.train[cur[0]].append(cur[3])

    def training_stats(self) -> dict[str, SegmentStats]:
        """Per-segment statistics of the training sample."""
        return {seg: stats_of(seg, xs) for seg, xs in self.train.items()}

    # -- decisions ---------------------------------------------------------------------

    def hurdle(self, taker_bps: float) -> float:
        """The mean simple return a segment must beat (a fraction)."""
        bps = self.s.hurdle_bps if self.s.hurdle_bps is not None \
            else 2 * taker_bps + self.s.extra_cost_bps
        return bps / 1e4

    def want(self, segment: str, ts_s: int, taker_bps: float,
             regime: tuple[float | None, float | None]) -> tuple[bool, str]:
        """Whether to hold ``segment`` starting at ``ts_s``, and why (rule 2)."""
        s = self.s
        if segment not in s.segments:
            return False, f"{segment} is not an allowed segment"
        st = stats_of(segment, self.train[segment])
        hurdle = self.hurdle(taker_bps)
        if st.n < s.min_samples:
            return False, f"{segment}: {st.n} training instances < {s.min_samples}"
        if not st.t_stat >= s.min_t:
            return False, f"{segment}: training t {st.t_stat:.2f} < {s.min_t}"
        if st.mean_simple <= hurdle:
            return False, (f"{segment}: training mean {st.mean_simple_bps:.1f} bps does not "
                           f"clear the {hurdle * 1e4:.1f} bps hurdle")
        vol_regime, p_change = regime
        if s.regime_gate and vol_regime == STRESSED:
            return False, "volatility regime is stressed"
        if s.regime_gate and p_change is not None and p_change > s.max_p_change:
            return False, f"BOCPD P(change) {p_change:.2f} > {s.max_p_change}"
        if self.flow is not None:
            score = self.flow.score(ts_s, s.risk_flow_max_age_hours * 3600)
            if score is None or score < s.min_risk_flow:
                return False, f"risk flow {score} below {s.min_risk_flow}"
        return True, (f"hold {segment}: training mean {st.mean_simple_bps:.1f} bps, "
                      f"t {st.t_stat:.2f}, hurdle {hurdle * 1e4:.1f} bps")

    def _regime(self, ctx: StrategyContext, iid: str) -> tuple[float | None, float | None]:
        """(vol_regime, P(change)): published signals first, else our own tracker."""
        vol = ctx.market.signal("vol_regime", iid)
        p_change = ctx.market.signal("bocpd_p_change", iid)
        own = self.regime_last
        if vol is None and own is not None and own[0] >= 0:
            vol = float(own[0])
        if p_change is None and own is not None:
            p_change = own[1]
        return vol, p_change

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> Sequence[Intent]:
        if type(event) is not Bar or (self.s.instrument_id
                                      and event.instrument_id != self.s.instrument_id):
            return ()
        ts_s = event.ts_ns // _NS
        if not self._observe(ts_s, event.close) or ts_s < self.train_end_s:
            return ()
        iid = event.instrument_id
        taker_bps = float(ctx.market.fee_schedule(iid).taker_bps)
        segment = segment_of(ts_s)[0]
        hold, why = self.want(segment, ts_s, taker_bps, self._regime(ctx, iid))
        self.last_reason = why
        held = ctx.portfolio.position(iid).quantity
        if hold and held == 0:
            st = stats_of(segment, self.train[segment])
            edge = st.mean_simple - self.hurdle(taker_bps)
            return (Intent(self.name, iid, Side.BUY, order_type=OrderType.MARKET,
                           time_in_force=TimeInForce.IOC, reason=why,
                           forecast=Forecast(mu=edge, sigma=st.std_log, confidence=0.5)),)
        if not hold and held > 0:
            return (Intent(self.name, iid, Side.SELL, quantity=held,
                           order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC,
                           reason=f"segment ends; {why}", reduce_only=True),)
        return ()

    def get_state(self) -> dict[str, Any]:
        return {"train": self.train, "current": self.current, "prev_close": self.prev_close,
                "last_ts_s": self.last_ts_s, "regime": self.regime.get_state(),
                "regime_last": None if self.regime_last is None else list(self.regime_last)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`get_state`; a damaged state (a field missing, of the wrong
        type or out of range) is a :class:`DataError` naming the field, and nothing
        changes."""
        if not isinstance(state, dict):
            raise DataError(f"{self.name}: a state is a dict from get_state(), got "
                            f"{type(state).__name__}")

        def bad(key: str, wanted: str) -> DataError:
            return DataError(f"{self.name}: state field {key!r} must be {wanted}, got "
                             f"{state.get(key, '(missing)')!r:.200}")

        missing = [k for k in ("train", "current", "prev_close", "last_ts_s", "regime")
                   if k not in state]
        if missing:
            raise DataError(f"{self.name}: state has no {missing}; pass the dict that "
                            f"get_state() returned")
        train = state["train"]
        if not isinstance(train, dict) or set(train) != set(SEGMENTS) or not all(
                isinstance(xs, list) and all(_finite_number(x) for x in xs)
                for xs in train.values()):
            raise bad("train", f"a dict of {list(SEGMENTS)} to lists of finite numbers")
        current = state["current"]
        if current is not None and not (
                isinstance(current, list) and len(current) == 4
                and current[0] in SEGMENTS and _whole(current[1]) and _whole(current[2])
                and _finite_number(current[3])):
            raise bad("current", "null or [segment, key day, start s, log return]")
        prev_close, last_ts_s = state["prev_close"], state["last_ts_s"]
        if prev_close is not None and not (_finite_number(prev_close) and prev_close > 0):
            raise bad("prev_close", "null or a finite number > 0")
        if last_ts_s is not None and not _whole(last_ts_s):
            raise bad("last_ts_s", "null or an integer (UTC seconds)")
        if (prev_close is None) != (last_ts_s is None):
            raise bad("last_ts_s", "null exactly when prev_close is null")
        regime = self._new_regime()
        try:
            regime.set_state(state["regime"])
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise bad("regime", f"a RegimeTracker state ({type(exc).__name__}: {exc})") \
                from None
        regime_last = state.get("regime_last")
        if regime_last is not None and not (
                isinstance(regime_last, list) and len(regime_last) == 2
                and _whole(regime_last[0])
                and (regime_last[1] is None or _finite_number(regime_last[1]))):
            raise bad("regime_last", "null or [vol regime, P(change) or null]")
        self.train = {seg: [float(x) for x in train[seg]] for seg in SEGMENTS}
        self.current = None if current is None else [current[0], current[1], current[2],
                                                     float(current[3])]
        self.prev_close = None if prev_close is None else float(prev_close)
        self.last_ts_s = last_ts_s
        self.regime = regime
        self.regime_last = None if regime_last is None else (
            regime_last[0], None if regime_last[1] is None else float(regime_last[1]))


def _finite_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) \
        and math.isfinite(value)


def _whole(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int)
