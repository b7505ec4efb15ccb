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

from collections.abc import Sequence
from math import log
from typing import Any

from argus_lab.regime import STRESSED, BocpdParams, RegimeTracker, VolRegimeParams

from argus_core import (
    Bar,
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
from argus_overnight.sessions import SEGMENTS, segment_of

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
        self.regime = RegimeTracker(BocpdParams(beta0=s.bocpd_beta0),
                                    VolRegimeParams(periods_per_year=365.0))
        self.flow: RiskFlow | None = read_risk_flow(s.risk_flow_csv) if s.risk_flow_csv \
            else None
        self.last_reason = ""
        if s.history_csv is not None:
            open_s, close = read_kraken_bars(str(s.history_csv), self.train_start_s,
                                             self.train_end_s - s.bar_seconds + 1)
            for o, c in zip(open_s.tolist(), close.tolist(), strict=True):
                self._observe(int(o) + s.bar_seconds, float(c))

    # -- bookkeeping -------------------------------------------------------------------

    def _observe(self, ts_s: int, close: float) -> bool:
        """Fold one bar (close time ``ts_s``); True when a decision is due: ``ts_s`` is a
        segment transition, or the segment ahead changed since the previous bar's close
        (the bar ending at the cut is missing: decide now, late, rather than hold on
        through a segment nobody chose)."""
        previous_ts_s = self.last_ts_s
        if previous_ts_s is not None and ts_s <= previous_ts_s:
            return False  # already seen (history file overlapping the replay)
        if ts_s % _DAY_S == 0:
            self.regime.update(ts_s * _NS, close)
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
        own = self.regime.last
        if vol is None and own is not None and own.regime >= 0:
            vol = float(own.regime)
        if p_change is None and own is not None:
            p_change = own.p_change
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
                "last_ts_s": self.last_ts_s, "regime": self.regime.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.train = {seg: [float(x) for x in state.get("train", {}).get(seg, [])]
                      for seg in SEGMENTS}
        self.current = state.get("current")
        self.prev_close = state.get("prev_close")
        self.last_ts_s = state.get("last_ts_s")
        if "regime" in state:
            self.regime.set_state(state["regime"])
