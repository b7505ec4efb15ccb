"""``latency``: short-dated crypto up/down markets whose price lags the spot move.

**Which markets.**  A binary token is an up/down token when its instrument ``meta`` has
``underlying`` (e.g. ``"BTC"``) and the window the market resolves over:
``window_start_ns`` (or ``window_start_s``) and ``window_end_ns`` (or ``window_end_s``, else
its event's ``end_ts_ns``).  ``direction`` ``"up"`` pays 1 if the spot ends the window above
its opening price, ``"down"`` the reverse; without it, an ``outcome`` /
``token_outcome`` of "Up" / "Down" says, else the YES token (``is_yes``) is up.
``pairs`` in the settings maps the underlying (or the token id itself, which wins) to the
spot instrument in the same market state, e.g. ``{"BTC" = "kraken:BTC/USD"}``; a token
without a mapping is skipped.

**Spot.**  ``S`` = the newest of the spot instrument's last trade price, last bar close and
book mid stamped at or before now.  Every scan appends ``(ts, S)`` to the pair's samples
when ``ts`` advanced (kept for ``vol_window_s``).  The opening price ``S0`` is ``meta
["open_price"]`` when the venue gives it (Polymarket's "price to beat"), else the last
sample at or before ``window_start_ns`` (else the first after it), fixed once found.

**Model** (stated): the log spot is a driftless Brownian motion with the realised
volatility ``sigma``, so with ``tau`` the years left in the window

    P(up) = Phi( ln(S / S0) / (sigma sqrt(tau)) )

(the ``-sigma^2 tau / 2`` Ito term is dropped: it is negligible over minutes), ``Phi`` the
standard normal CDF.  ``sigma`` (annualised) = ``sqrt(sum r_i^2 / (t_last - t_first) *
seconds per year)`` over the samples' log returns ``r_i`` when there are at least
``min_vol_samples`` of them, else ``default_vol``.  Fair value of an up token ``P(up)``, of
a down token ``1 - P(up)``.

**Flag.**  Ask level ``k`` is taken while ``fair - a_k - f(a_k) >= min_edge`` (``f`` the
taker unit fee): the market lags by more than fees + threshold.  ``expected_profit = fair
Q - sum a q - costs``.  Research lane (a model, not a certainty) unless
``executable_min_edge`` is set and the edge per share reaches it.  Reported confidence
(for the ranking): 0.5 with realised volatility, 0.3 with ``default_vol``.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from decimal import Decimal
from typing import Any, ClassVar

import numpy as np

from argus_core import FeeSchedule, Instrument, Leg, MarketState, Opportunity, Scanner
from argus_scanners_polymarket.common import (
    EXECUTABLE,
    RESEARCH,
    Ladders,
    Level,
    Walk,
    buy_leg,
    by_profit,
    core_event_id,
    dec,
    edge,
    event_id_for,
    lane_reason,
    opportunity,
    taker_tick,
    tradeable,
    walk_asks,
    walk_ladder,
)
from argus_scanners_polymarket.config import LatencySettings, PmScannersSettings
from argus_scanners_polymarket.touch import EPS, RowCache, keys_of, stamped, touch_table

SECONDS_PER_YEAR = 365 * 24 * 3600
_NS = 10**9
_erf = np.frompyfunc(math.erf, 1, 1)  # numpy has no erf; the pre-check's margin covers ulps


def normal_cdf(x: float) -> float:
    """``Phi(x)``, the standard normal CDF."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def p_up(spot: float, open_price: float, sigma_annual: float, tau_years: float) -> float:
    """``Phi(ln(spot / open) / (sigma sqrt(tau)))``; a step at ``tau = 0``."""
    move = math.log(spot / open_price)
    scale = sigma_annual * math.sqrt(max(tau_years, 0.0))
    if scale <= 0:
        return 1.0 if move > 0 else 0.0 if move < 0 else 0.5
    return normal_cdf(move / scale)


def meta_open_price(inst: Instrument) -> float | None:
    """``meta["open_price"]`` as a price: a finite number above 0, else None (the token is
    skipped: a venue's price to beat that is 0, negative, NaN or not a number is no
    opening price, and guessing one from the samples could price the wrong move; before,
    0 or a text crashed the scan, red team round 40)."""
    raw = inst.meta.get("open_price")
    if isinstance(raw, bool):
        return None
    try:
        value = float(raw)  # type: ignore[arg-type]  # checked: a number or raises
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def realised_vol(samples: list[tuple[int, float]]) -> tuple[float, int]:
    """Annualised volatility of ``(ts_ns, price)`` samples and the number of returns."""
    if len(samples) < 2 or samples[-1][0] <= samples[0][0]:
        return 0.0, 0
    sq = sum(math.log(b / a) ** 2 for (_, a), (_, b) in itertools.pairwise(samples))
    seconds = (samples[-1][0] - samples[0][0]) / _NS
    return math.sqrt(sq / seconds * SECONDS_PER_YEAR), len(samples) - 1


def spot_price(market: MarketState, pair: str, ts_ns: int, max_age_ns: int | None = None
               ) -> tuple[int, float] | None:
    """The newest of the pair's last trade, bar close and book mid at or before ``ts_ns``
    (the book only while ``market.tradeable`` and sound: live, not stale, not crossed);
    None when there is none, or when the newest is more than ``max_age_ns`` old."""
    seen: list[tuple[int, float]] = []
    trade = market.trades.get(pair)
    if trade is not None and trade.ts_ns <= ts_ns:
        seen.append((trade.ts_ns, float(trade.price)))
    bar = market.bars.get(pair)
    if bar is not None and bar.ts_ns <= ts_ns:
        seen.append((bar.ts_ns, bar.close))
    book = market.books.get(pair)
    if book is not None and book.bids and book.asks and book.ts_ns <= ts_ns \
            and market.tradeable(pair)[0]:
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is not None and ask is not None
        seen.append((book.ts_ns, (bid + ask) / 2))
    if not seen:
        return None
    newest = max(seen)
    if max_age_ns is not None and ts_ns - newest[0] > max_age_ns:
        return None  # the last word on the spot is too old to say where it is now
    return newest


class PrefixWalks:
    """The walk of each book's first ``n`` ask levels, memoised per book version, with its
    buy leg.

    A latency finding's fair value moves every scan (the time left), but the walk it buys
    depends on it only through how many leading levels pass the edge test: the walk of
    those ``n`` levels with every one kept is :func:`walk_ladder`'s walk to the digit (it
    breaks at the first level failing the test, or earlier on ``max_qty``).  So a scan pays
    the comparisons, not the ``Decimal`` sums and the ``Walk`` / ``Leg`` objects."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[int, FeeSchedule, tuple[Decimal | None, Decimal | None],
                                     dict[int, tuple[Walk, Leg | None]]]] = {}

    def get(self, iid: str, version: int, ladder: list[Level], schedule: FeeSchedule,
            n: int, max_qty: Decimal | None, tick: Decimal | None = None
            ) -> tuple[Walk, Leg | None]:
        """The walk of ``ladder[:n]`` (all kept; limits on ``tick``) and its buy leg (None
        for an empty walk)."""
        hit = self._cache.get(iid)
        if (hit is None or hit[0] != version
                or (hit[1] is not schedule and hit[1] != schedule)
                or hit[2] != (max_qty, tick)):
            hit = self._cache[iid] = (version, schedule, (max_qty, tick), {})
        got = hit[3].get(n)
        if got is None:
            walk = walk_ladder(ladder[:n], schedule, keep=_always, max_qty=max_qty, tick=tick)
            got = hit[3][n] = (walk, buy_leg(iid, walk) if walk.quantity > 0 else None)
        return got


def _always(price: Decimal, unit_fee: Decimal) -> bool:
    return True


class LatencyScanner(Scanner):
    """Up/down markets whose price lags the spot move (driftless log-normal P(up)).

    ``incremental=True``: the up/down tokens are listed once per change of the
    instruments or events, the spot, volatility and opening prices are read once per pair
    (not per token), ``P(up)`` is computed for every token at once, and a float pre-check
    at the best ask (margin :data:`EPS`) selects the tokens the exact ``Decimal`` walk
    prices.  Every finding moves with time (``tau``), so candidates are priced every
    scan.  ``incremental=False``: the per-token reference loop."""

    name: ClassVar[str] = "latency"

    def __init__(self, settings: PmScannersSettings | LatencySettings | None = None, *,
                 incremental: bool = True) -> None:
        if isinstance(settings, PmScannersSettings):
            settings = settings.latency
        self.settings = settings or LatencySettings()
        self.incremental = incremental
        self.ladders = Ladders()
        self.prefixes = PrefixWalks()
        #: iid -> the finding's event id, valid for ``_tokens_key``
        self._event_ids: dict[str, tuple[Instrument | None, int, str]] = {}
        self._tokens_key: tuple[int, int, int, int] | None = None
        self._tokens_list: list[tuple[str, Instrument, str, tuple[int, int]]] = []
        self._layout: tuple[Any, ...] | None = None
        self._samples: dict[str, deque[tuple[int, float]]] = {}
        self._open: dict[str, float] = {}
        #: opportunity id -> confidence (read by the ``ranked`` scanner)
        self.confidences: dict[str, float] = {}
        self._confidence: dict[str, float] = {}
        self.cache = RowCache()

    def get_state(self) -> dict[str, Any]:
        """JSON-able state: spot samples and opening prices found."""
        return {"samples": {k: [list(x) for x in v] for k, v in self._samples.items()},
                "open": dict(self._open)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s output."""
        self._samples = {k: deque((int(t), float(p)) for t, p in v)
                         for k, v in state.get("samples", {}).items()}
        self._open = {k: float(v) for k, v in state.get("open", {}).items()}

    @staticmethod
    def window(market: MarketState, inst: Instrument) -> tuple[int, int] | None:
        """``(start_ns, end_ns)`` of an up/down token from its ``meta`` (module docstring)."""
        meta = inst.meta
        start = (int(meta["window_start_ns"]) if "window_start_ns" in meta else
                 int(float(meta["window_start_s"]) * _NS) if "window_start_s" in meta else None)
        end = (int(meta["window_end_ns"]) if "window_end_ns" in meta else
               int(float(meta["window_end_s"]) * _NS) if "window_end_s" in meta else None)
        if end is None:
            ev = market.events.get(str(meta.get("event_id", "")))
            end = ev.end_ts_ns if ev is not None else None
        return (start, end) if start is not None and end is not None else None

    @staticmethod
    def direction(inst: Instrument) -> str:
        """``"up"`` or ``"down"`` (module docstring)."""
        meta = inst.meta
        for key in ("direction", "token_outcome", "outcome"):
            text = str(meta.get(key, "")).strip().lower()
            if text in ("up", "down"):
                return text
        return "up" if meta.get("is_yes", True) else "down"

    def _pair(self, inst: Instrument) -> str | None:
        pairs = self.settings.pairs
        return pairs.get(inst.id) or pairs.get(str(inst.meta.get("underlying", "")))

    def _sample(self, market: MarketState, pair: str, ts_ns: int) -> None:
        got = spot_price(market, pair, ts_ns)
        if got is None:
            return
        samples = self._samples.setdefault(pair, deque())
        if not samples or got[0] > samples[-1][0]:
            samples.append(got)

    def _open_price(self, inst: Instrument, pair: str, start_ns: int) -> float | None:
        if "open_price" in inst.meta:
            return meta_open_price(inst)
        if inst.id in self._open:
            return self._open[inst.id]
        samples = self._samples.get(pair, ())
        # a sample is the price to beat only when it lies near the window's start: the first
        # one seen ten minutes in has moved with the market since
        near = self.settings.max_spot_age_s * _NS
        before = [p for t, p in samples if start_ns - near <= t <= start_ns]
        after = [p for t, p in samples if start_ns < t <= start_ns + near]
        found = before[-1] if before else after[0] if after else None
        if found is not None:
            self._open[inst.id] = found
        return found

    def _list_tokens(self, market: MarketState
                     ) -> list[tuple[str, Instrument, str, tuple[int, int]]]:
        """Every up/down token with a mapped pair and a window, in instrument order."""
        tokens = []
        for iid, inst in market.instruments.items():
            if inst.kind != "binary" or "underlying" not in inst.meta:
                continue
            pair, window = self._pair(inst), self.window(market, inst)
            if pair is not None and window is not None:
                tokens.append((iid, inst, pair, window))
        return tokens

    def _tokens(self, market: MarketState) -> list[tuple[str, Instrument, str, tuple[int, int]]]:
        """Every up/down token with a mapped pair and a window (memoised until the
        instruments or the events change: ``instruments_version`` moves when a venue
        replaces an instrument mid-run, its count unchanged)."""
        key = (len(market.instruments), market.instruments_version, market.events_version,
               id(market))
        if self._tokens_key != key:
            self._tokens_list, self._tokens_key = self._list_tokens(market), key
            self._event_ids = {}
            self._layout = None
        return self._tokens_list

    def _sample_pairs(self, market: MarketState, pairs: set[str], ts_ns: int) -> None:
        for pair in pairs:
            self._sample(market, pair, ts_ns)
            samples = self._samples.get(pair)
            while samples and samples[0][0] < ts_ns - self.settings.vol_window_s * _NS:
                samples.popleft()  # an opening price is fixed on the first scan in its window

    def scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """Every up/down token whose asks lag the model's fair value, best first."""
        if not self.incremental:
            return self.reference_scan(market, ts_ns)
        return stamped([self.unstamped(market, ts_ns)], ts_ns)

    def unstamped(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """The incremental scan's findings as cached (``ts_ns`` of the scan that built
        each), in row order: what :meth:`scan` restamps and sorts, and what ``ranked``
        reads to recognise an unchanged finding by identity."""
        s = self.settings
        tokens = self._tokens(market)
        pairs = sorted({tk[2] for tk in tokens})
        self._sample_pairs(market, set(pairs), ts_ns)
        self.confidences = {}
        t = touch_table(market)
        if not tokens or not len(t):
            return []
        lay = self._layout
        if lay is None or lay[0] != (t.static_gen, len(t)):
            rows = np.array([t.index.get(tk[0], -1) for tk in tokens], dtype=np.int64)
            meta_open = np.array([np.nan if (got := meta_open_price(tk[1])) is None else got
                                  for tk in tokens])
            lay = self._layout = (
                (t.static_gen, len(t)), rows, np.array([tk[3][0] for tk in tokens]),
                np.array([tk[3][1] for tk in tokens]),
                np.array([pairs.index(tk[2]) for tk in tokens]),
                np.array([self.direction(tk[1]) == "up" for tk in tokens]), meta_open)
        _, rows, start, end, pair_of, up_token, meta_open = lay
        has_row = rows >= 0
        r = np.where(has_row, rows, 0)
        usable = t.usable(market)
        eligible = (has_row & (ts_ns >= start) & (ts_ns < end) & ~np.isnan(t.ask[r])
                    & usable[r])
        opens = meta_open.copy()
        for k in np.flatnonzero(eligible & np.isnan(opens)).tolist():
            _iid, inst, pair, window = tokens[k]
            got = self._open_price(inst, pair, window[0])  # fixed once found, as the loop does
            opens[k] = got if got is not None else np.nan
        spots, spot_ts, sigmas, vols = [], [], [], []
        spot_of: dict[str, tuple[int, float] | None] = {}  # read once per pair, not per token
        max_age = int(s.max_spot_age_s * _NS)
        for pair in pairs:
            spot = spot_of[pair] = spot_price(market, pair, ts_ns, max_age)
            spots.append(spot[1] if spot is not None else np.nan)
            spot_ts.append(spot[0] if spot is not None else -1)
            vol = realised_vol(list(self._samples.get(pair, ())))
            vols.append(vol)
            sigma, n = vol
            sigmas.append(sigma if n >= s.min_vol_samples and sigma > 0 else s.default_vol)
        spot_k = np.array(spots)[pair_of]
        sigma_k = np.array(sigmas)[pair_of]
        with np.errstate(invalid="ignore", divide="ignore"):
            move = np.log(spot_k / opens)
            tau = (end - ts_ns) / _NS / SECONDS_PER_YEAR
            scale = sigma_k * np.sqrt(np.maximum(tau, 0.0))
            z = np.where(scale > 0, move / np.where(scale > 0, scale, 1.0), 0.0)
            phi = 0.5 * (1.0 + np.asarray(_erf(z / math.sqrt(2.0)), dtype=np.float64))
            p = np.where(scale > 0, phi, np.where(move > 0, 1.0, np.where(move < 0, 0.0, 0.5)))
            fair = np.where(up_token, p, 1.0 - p)
            pre = (eligible & ~np.isnan(fair)
                   & (fair - t.ask[r] - t.ask_fee[r] + EPS >= float(s.min_edge)))
        cands = np.flatnonzero(pre)
        # every input of a finding: the book, the scan time, the pair's spot and volatility
        # (as used and as counted) and the opening price
        keys = keys_of(rows[cands], t.row_gen[r[cands]], np.full(len(cands), ts_ns),
                       np.array(spot_ts)[pair_of[cands]], spot_k[cands], sigma_k[cands],
                       np.array([vols[pairs.index(tokens[k][2])][1] for k in cands.tolist()],
                                dtype=np.int64), opens[cands])

        def build(k: int) -> list[Opportunity]:
            iid, inst, pair, window = tokens[k]
            opp = self._token(market, iid, inst, pair, window, ts_ns,
                              vol=vols[pairs.index(pair)], spot=spot_of[pair], usable=True)
            return [opp] if opp is not None else []

        found = [o for opps in self.cache.collect(cands, keys, build, verify=t.terms_held(market))
                 for o in opps]
        conf = self._confidence
        self.confidences = {o.opportunity_id: conf[o.opportunity_id] for o in found}
        return found

    def reference_scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """The per-token reference loop over ``market.instruments``."""
        tokens = self._list_tokens(market)
        self._sample_pairs(market, {tk[2] for tk in tokens}, ts_ns)
        self.confidences = {}
        found: list[Opportunity] = []
        for iid, inst, pair, window in tokens:
            opp = self._token(market, iid, inst, pair, window, ts_ns)
            if opp is not None:
                found.append(opp)
        return by_profit(found)

    def _event_id(self, market: MarketState, iid: str) -> str:
        """``Opportunity.event_id`` of ``iid`` (incremental: memoised per instrument object
        and ``events_version``, the inputs of :func:`event_id_for`)."""
        if not self.incremental:
            return event_id_for(market, iid, core_event_id(market, iid))
        inst, version = market.instruments.get(iid), market.events_version
        hit = self._event_ids.get(iid)
        if hit is None or hit[0] is not inst or hit[1] != version:
            hit = self._event_ids[iid] = (inst, version,
                                          event_id_for(market, iid, core_event_id(market, iid)))
        return hit[2]

    def _token(self, market: MarketState, iid: str, inst: Instrument, pair: str,
               window: tuple[int, int], ts_ns: int, vol: tuple[float, int] | None = None,
               spot: tuple[int, float] | None = None, usable: bool = False
               ) -> Opportunity | None:
        """``iid``'s finding at ``ts_ns`` (``usable``: the caller found the book usable,
        the touch table's vectorised :func:`tradeable`, so it is not asked again)."""
        s = self.settings
        start, end = window
        book = market.books.get(iid)
        if ts_ns < start or ts_ns >= end or book is None or not book.asks:
            return None
        if not usable and not tradeable(market, iid):
            return None
        if spot is None:
            spot = spot_price(market, pair, ts_ns, int(s.max_spot_age_s * _NS))
        open_price = self._open_price(inst, pair, start)
        if spot is None or open_price is None:
            return None
        sigma, n = vol if vol is not None else realised_vol(list(self._samples.get(pair, ())))
        realised = n >= s.min_vol_samples and sigma > 0
        if not realised:
            sigma = s.default_vol
        tau = (end - ts_ns) / _NS / SECONDS_PER_YEAR
        up = p_up(spot[1], open_price, sigma, tau)
        direction = self.direction(inst)
        fair_f = up if direction == "up" else 1.0 - up
        fair = dec(round(fair_f, 9))

        def keep(price: Decimal, unit_fee: Decimal) -> bool:
            return fair - price - unit_fee >= s.min_edge

        schedule, tick = market.fee_schedule(iid), taker_tick(market, iid)
        leg: Leg | None = None
        if self.incremental:  # the ladder converted once per book version, its walks memoised
            ladder = self.ladders.get(iid, book.version, book.ask_levels(), schedule)
            n = 0
            for price, unit_fee, _size, _fee in ladder:
                if not keep(price, unit_fee):
                    break
                n += 1
            walk, leg = self.prefixes.get(iid, book.version, ladder, schedule, n, s.max_size,
                                          tick)
        else:
            walk = walk_asks(book.ask_levels(), schedule, keep=keep, max_qty=s.max_size,
                             tick=tick)
        if walk.quantity <= 0 or walk.quantity < inst.min_size:
            return None
        profit = fair * walk.quantity - walk.value - walk.fees
        if profit <= 0:
            return None
        per_share = edge(profit, walk.quantity)
        gated = s.executable_min_edge is not None and per_share >= s.executable_min_edge
        lane = EXECUTABLE if gated else RESEARCH
        oid = f"latency:{iid}:{book.ts_ns}:{spot[0]}"
        self._confidence[oid] = self.confidences[oid] = 0.5 if realised else 0.3
        # the incremental path skips attrs' converters (the values are exact already); the
        # reference keeps the constructor, so the equality tests compare the two
        make = opportunity if self.incremental else Opportunity
        return make(
            opportunity_id=oid, scanner=self.name, ts_ns=ts_ns, kind="latency",
            legs=(leg if leg is not None else buy_leg(iid, walk),), edge_per_unit=per_share,
            max_size=walk.quantity, expected_profit=profit, costs=walk.fees, risk_free=False,
            event_id=self._event_id(market, iid), lane=lane,
            reason=lane_reason(lane, (
                f"{direction} token of {inst.meta['underlying']}: spot {spot[1]:g} vs open "
                f"{open_price:g} ({math.log(spot[1] / open_price):+.5f} log), sigma "
                f"{sigma:.3f} ({'realised' if realised else 'default'}), "
                f"{(end - ts_ns) / _NS:.0f}s left -> fair {fair}; {walk.quantity} asked up "
                f"to {walk.limit}")))
