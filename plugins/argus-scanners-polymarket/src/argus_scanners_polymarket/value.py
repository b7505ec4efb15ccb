"""``value``: the market's price against a registered forecaster's probability; and the
``baseline`` forecaster shipped here.

**baseline** (``BaselineForecaster``) is the market's own price, nothing more: for token
``i`` at ``ts``, with ``m`` the mid of its two-sided, tradeable book (stamped at or before
``ts``) and ``t`` its last trade price when that trade is at most ``max_trade_age_s`` old:

    p = (m + t) / 2    both known;      p = m    no recent trade;
    p = t              no two-sided book; no forecast when neither exists.

``confidence`` is the configured constant (default 0.1).  Against the asks of the same
book it can only flag a book that trades above its own ask (a last trade ``t`` with
``(m + t)/2 - ask - fee >= min_edge``); it is the stand-in until a real model (the ML
plugin's) is registered.

**value** (``ValueScanner``).  For every binary token with a tradeable ask ladder, ask the
forecaster named by ``forecaster`` for ``p = Forecast.p_win`` of that token (its own
probability of paying 1).  Ask level ``k`` (price ``a_k``, size ``q_k``) is taken while

    e_k = p - a_k - f(a_k) >= min_edge          (f = FeeSchedule.unit_fee, taker)

up to ``max_size``; ``Q = sum q_k`` (0.01 lots, at least the instrument's ``min_size``),
``costs = sum FeeSchedule.fee(a_k, q_k)``, ``expected_profit = p Q - sum a_k q_k -
costs``.  Never risk-free (a forecast is a view).  Lane: research, unless
``executable_min_edge`` and ``executable_min_confidence`` are both set and the edge per
share and the forecast's confidence reach them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

import numpy as np

from argus_core import (
    ConfigError,
    Forecast,
    Forecaster,
    MarketState,
    Opportunity,
    Scanner,
)
from argus_scanners_polymarket.common import (
    EXECUTABLE,
    RESEARCH,
    Ladders,
    buy_leg,
    by_profit,
    core_event_id,
    dec,
    edge,
    event_id_for,
    instrument_of,
    lane_reason,
    taker_tick,
    tradeable,
    walk_asks,
    walk_ladder,
)
from argus_scanners_polymarket.config import BaselineSettings, PmScannersSettings, ValueSettings
from argus_scanners_polymarket.touch import EPS, RowCache, keys_of, stamped, touch_table


class BaselineForecaster(Forecaster):
    """P(token pays 1) = its own book's mid, averaged with its recent last trade; low
    confidence (it is the market's own price)."""

    name: ClassVar[str] = "baseline"

    def __init__(self, settings: PmScannersSettings | BaselineSettings | None = None) -> None:
        if isinstance(settings, PmScannersSettings):
            settings = settings.baseline
        self.settings = settings or BaselineSettings()

    def forecast(self, instrument_id: str, market: MarketState, ts_ns: int
                 ) -> Forecast | None:
        """``p_win`` from the book's mid and the last trade (module docstring)."""
        estimates: list[float] = []
        book = market.books.get(instrument_id)
        if (book is not None and book.bids and book.asks and book.ts_ns <= ts_ns
                and tradeable(market, instrument_id)):
            bid, ask = book.best_bid(), book.best_ask()
            assert bid is not None and ask is not None
            estimates.append((bid + ask) / 2)
        trade = market.trades.get(instrument_id)
        max_age_ns = self.settings.max_trade_age_s * 1e9
        if trade is not None and 0 <= ts_ns - trade.ts_ns <= max_age_ns:
            estimates.append(float(trade.price))
        if not estimates:
            return None
        p = min(max(sum(estimates) / len(estimates), 0.0), 1.0)
        return Forecast(p_win=p, confidence=self.settings.confidence)


def forecaster_named(market: MarketState, name: str, scanner: str) -> Forecaster:
    """``market.forecasters[name]``, or a ``ConfigError`` naming the registered ones."""
    try:
        return market.forecasters[name]
    except KeyError:
        known = ", ".join(sorted(market.forecasters)) or "none"
        raise ConfigError(
            f"[plugins.pmscanners.{scanner}] forecaster = {name!r} is not registered "
            f"(registered: {known}); install the plugin that provides it or name another"
        ) from None


class ValueScanner(Scanner):
    """Asks priced below a forecaster's probability, net of fees.

    ``incremental=True`` with the ``baseline`` forecaster: its ``p`` is computed for every
    token at once over the shared touch table (the same float formula), a float pre-check
    at the best ask (margin :data:`EPS`) selects the candidates, and the exact ``Decimal``
    walk builds their findings, reused while the row and ``p`` are unchanged.  Any other
    forecaster is asked token by token (``forecast`` is its only interface): the
    per-book reference loop, which ``incremental=False`` always runs."""

    name: ClassVar[str] = "value"

    def __init__(self, settings: PmScannersSettings | ValueSettings | None = None, *,
                 incremental: bool = True) -> None:
        if isinstance(settings, PmScannersSettings):
            settings = settings.value
        self.settings = settings or ValueSettings()
        self.incremental = incremental
        self.ladders = Ladders()
        self.cache = RowCache()
        #: opportunity id -> the forecast's confidence (read by the ``ranked`` scanner)
        self.confidences: dict[str, float] = {}
        self._confidence: dict[str, float] = {}

    def scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """Every token whose asks sit ``min_edge`` below the forecast, best first."""
        forecaster = forecaster_named(market, self.settings.forecaster, self.name)
        if not self.incremental or type(forecaster) is not BaselineForecaster:
            return self.reference_scan(market, ts_ns)
        return stamped([self.unstamped(market, ts_ns)], ts_ns)

    def unstamped(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """The incremental scan's findings as cached (``ts_ns`` of the scan that built
        each), in row order: what :meth:`scan` restamps and sorts, and what ``ranked``
        reads to recognise an unchanged finding by identity."""
        forecaster = forecaster_named(market, self.settings.forecaster, self.name)
        if type(forecaster) is not BaselineForecaster:
            return self.reference_scan(market, ts_ns)  # asked token by token
        s = self.settings
        base = forecaster.settings
        t = touch_table(market)
        usable = t.usable(market)
        has_ask = ~np.isnan(t.ask)
        two = usable & has_ask & ~np.isnan(t.bid) & (t.ts <= ts_ns)
        mid = (t.bid + t.ask) / 2
        age = ts_ns - t.trade_ts
        recent = (t.trade_ts >= 0) & (age >= 0) & (age <= base.max_trade_age_s * 1e9)
        p = np.where(two & recent, (mid + t.trade_price) / 2,
                     np.where(two, mid, np.where(recent, t.trade_price, np.nan)))
        p = np.minimum(np.maximum(p, 0.0), 1.0)
        with np.errstate(invalid="ignore"):
            pre = (t.binary & has_ask & usable
                   & (p - t.ask - t.ask_fee + EPS >= float(s.min_edge)))
        rows = np.flatnonzero(pre)
        ids = t.ids

        def build(r: int) -> list[Opportunity]:
            return self._token(market, ids[r], forecaster, ts_ns)

        out = self.cache.collect(rows, keys_of(t.row_gen[rows], p[rows]), build,
                                 verify=t.terms_held(market))
        found = [o for opps in out for o in opps]
        conf = self._confidence
        self.confidences = {o.opportunity_id: conf[o.opportunity_id] for o in found}
        return found

    def reference_scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """The per-book loop over ``market.books`` (the reference of the tests)."""
        forecaster = forecaster_named(market, self.settings.forecaster, self.name)
        found: list[Opportunity] = []
        for iid in market.books:
            found.extend(self._token(market, iid, forecaster, ts_ns))
        self.confidences = {o.opportunity_id: self._confidence[o.opportunity_id]
                            for o in found}
        return by_profit(found)

    def _token(self, market: MarketState, iid: str, forecaster: Forecaster, ts_ns: int
               ) -> list[Opportunity]:
        s = self.settings
        book = market.books[iid]
        inst = instrument_of(market, iid)
        if inst is None or inst.kind != "binary" or not book.asks:
            return []
        if not tradeable(market, iid):
            return []
        f = forecaster.forecast(iid, market, ts_ns)
        if f is None or f.p_win is None:
            return []
        p = dec(round(f.p_win, 9))

        def keep(price: Decimal, unit_fee: Decimal) -> bool:
            return p - price - unit_fee >= s.min_edge

        schedule, tick = market.fee_schedule(iid), taker_tick(market, iid)
        if self.incremental:  # the ladder converted once per book version
            walk = walk_ladder(self.ladders.get(iid, book.version, book.ask_levels(), schedule),
                               schedule, keep=keep, max_qty=s.max_size, tick=tick)
        else:
            walk = walk_asks(book.ask_levels(), schedule, keep=keep, max_qty=s.max_size,
                             tick=tick)
        if walk.quantity <= 0 or walk.quantity < inst.min_size:
            return []
        profit = p * walk.quantity - walk.value - walk.fees
        if profit <= 0:
            return []
        per_share = edge(profit, walk.quantity)
        gated = (s.executable_min_edge is not None and s.executable_min_confidence is not None
                 and per_share >= s.executable_min_edge
                 and f.confidence >= s.executable_min_confidence)
        lane = EXECUTABLE if gated else RESEARCH
        why = ("edge and confidence reach the executable thresholds" if gated else
               "a forecast, not a certainty")
        oid = f"value:{s.forecaster}:{iid}:{book.ts_ns}"
        self._confidence[oid] = f.confidence
        return [Opportunity(
            opportunity_id=oid, scanner=self.name, ts_ns=ts_ns, kind="value",
            legs=(buy_leg(iid, walk),), edge_per_unit=per_share, max_size=walk.quantity,
            expected_profit=profit, costs=walk.fees, risk_free=False,
            event_id=event_id_for(market, iid, core_event_id(market, iid)), lane=lane,
            reason=lane_reason(lane, (
                f"{s.forecaster} says P={p} (confidence {f.confidence:g}); "
                f"{walk.quantity} asked up to {walk.limit} net of {walk.fees} fees; "
                f"{why}")))]

