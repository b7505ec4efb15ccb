"""``ranked``: one ranking across this plugin's scanners, and the lane of each finding.

The ``ranked`` scanner runs the scanners named in ``[plugins.pmscanners.ranked] scanners``
(default: every scanner of this plugin but itself) on the same market state, scores each
finding, decides its lane, and returns them best score first.  List ``ranked`` *instead of*
its components in ``[run] scanners`` (each finding keeps its scanner's name and id, so a
component listed as well would report the same finding twice, first come first stored).

**Score** (weights configurable, defaults in brackets):

    score = w_edge [0.35] * E + w_capacity [0.15] * K + w_confidence [0.25] * C
          + w_persistence [0.10] * P + w_ofi [0.10] * O - w_competition [0.05] * X

* ``E = clip(edge_per_unit / edge_scale, 0, 1)``: edge per share after fees (``edge_scale``
  0.05 scores 1);
* ``K = min(1, log10(1 + N) / log10(1 + capacity_scale))``, ``N = sum(limit * quantity)``
  over the legs (notional it can absorb; ``capacity_scale`` 1000 scores 1);
* ``C``: confidence in [0, 1]: 1 for a risk-free finding; else what its scanner reports
  (``value``: the forecast's; ``latency``: 0.5 realised / 0.3 default volatility), else
  :data:`DEFAULT_CONFIDENCE` by kind;
* ``P = min(streak, persistence_cap) / persistence_cap``: consecutive scans the same
  finding (scanner, kind, legs' instruments and sides) has been reported, this one included;
* ``O``: mean over legs of ``side * I`` (``side`` +1 buy, -1 sell; ``I`` the leg token's OFI
  imbalance in [-1, 1] from :mod:`argus_scanners_polymarket.ofi`, this scanner's tracker,
  else the published ``"ofi"`` signal, else 0): flow with the trade scores up;
* ``X = min(n, competition_cap) / competition_cap``, ``n`` the other findings of this scan
  on any of the same instruments (they compete for the same liquidity).

**Lane** (the reason is written at the front of ``reason``):

1. maker quotes (``maker_*``): research, always (quoting needs the maker lifecycle);
2. the scanner reported it in the research lane: research (its reason stands);
3. risk-free and reported executable: executable ("risk-free");
4. reported executable (its scanner's own thresholds) but not risk-free: executable only if
   each ranking threshold that is set (``executable_min_score``,
   ``executable_min_confidence``, ``executable_min_persistence``) is met; else research,
   naming the threshold missed.
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Callable
from typing import Any, ClassVar

import attrs

from argus_core import ConfigError, MarketState, Opportunity, Scanner, Side
from argus_scanners_polymarket.common import EXECUTABLE, RESEARCH, lane_reason, restamp
from argus_scanners_polymarket.config import PmScannersSettings, RankingSettings
from argus_scanners_polymarket.ofi import SIGNAL, FlowColumn, OfiTracker
from argus_scanners_polymarket.touch import touch_table

log = logging.getLogger(__name__)

#: Confidence of a finding that is not risk-free when its scanner reports none, by kind.
DEFAULT_CONFIDENCE: dict[str, float] = {
    "resolved": 1.0, "near_certain": 0.8, "implication": 0.6, "stale_quote": 0.4,
    "spike_fade": 0.3, "maker_bid": 0.5, "maker_ask": 0.5, "value": 0.1, "latency": 0.3,
}
FALLBACK_CONFIDENCE = 0.3

Key = tuple[str, str, tuple[tuple[str, str], ...]]


@attrs.frozen
class Score:
    """One finding's terms, score, lane and the lane's reason."""

    edge: float
    capacity: float
    confidence: float
    persistence: float
    ofi: float
    competition: float
    score: float
    lane: str
    why: str


def _strip_lane(reason: str) -> str:
    if reason.startswith("lane="):
        return reason.split(": ", 1)[1] if ": " in reason else ""
    return reason


def _key(o: Opportunity) -> Key:
    return (o.scanner, o.kind, tuple((leg.instrument_id, leg.side.value) for leg in o.legs))


class RankedScanner(Scanner):
    """Runs this plugin's scanners, scores every finding on one scale and sets its lane."""

    name: ClassVar[str] = "ranked"

    def __init__(self, settings: PmScannersSettings | None = None, *,
                 incremental: bool = True) -> None:
        from argus_scanners_polymarket.plugin import SCANNERS

        full = settings or PmScannersSettings()
        self.settings: RankingSettings = full.ranked
        names = self.settings.scanners or [n for n in SCANNERS if n != self.name]
        unknown = [n for n in names if n not in SCANNERS or n == self.name]
        if unknown:
            raise ConfigError(
                f"[plugins.pmscanners.ranked] scanners: unknown {unknown}; one of "
                f"{sorted(n for n in SCANNERS if n != self.name)}")
        self.components: list[Scanner] = []
        for n in names:
            module, cls = SCANNERS[n]
            self.components.append(getattr(importlib.import_module(module), cls)(
                full, incremental=incremental))
        self.incremental = incremental
        self.ofi = OfiTracker(self.settings.ofi_window_s)
        self.flows = FlowColumn(self.ofi)
        self._streak: dict[Key, int] = {}
        self._keys: dict[str, Key] = {}
        #: opportunity id -> (the component's finding, the score's inputs, Score, scored)
        self._scored: dict[str, tuple[Opportunity, tuple[Any, ...], Score, Opportunity]] = {}
        self.rescored = 0  # findings scored afresh by the last scan (tests, benchmark)
        #: opportunity id -> its :class:`Score` in the last scan
        self.scores: dict[str, Score] = {}

    def get_state(self) -> dict[str, Any]:
        """The components' states (those that keep one)."""
        return {c.name: c.get_state() for c in self.components if hasattr(c, "get_state")}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s output."""
        for c in self.components:
            if c.name in state and hasattr(c, "set_state"):
                c.set_state(state[c.name])

    def _imbalance(self, market: MarketState, iid: str, ts_ns: int) -> float:
        r = self.ofi.reading(iid, ts_ns)
        if r is not None and (r.transitions or r.trades):
            return r.imbalance
        published = market.signal(SIGNAL, iid)
        return published if published is not None else 0.0

    def _confidence(self, comp: Scanner | None, o: Opportunity) -> float:
        if o.risk_free:
            return 1.0
        reported = getattr(comp, "confidences", {}).get(o.opportunity_id)
        if reported is not None:
            return float(reported)
        return DEFAULT_CONFIDENCE.get(o.kind, FALLBACK_CONFIDENCE)

    def scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """Every component's findings, scored, laned, best score first.

        Incremental (the default): a finding its component returned unchanged (the same
        cached object, read through the component's ``unstamped``) with the same inputs
        (streak as far as it counts, confidence, legs' OFI, competition) keeps its scored
        copy; the legs' OFI comes from a :class:`FlowColumn` over the touch table."""
        s = self.settings
        self.ofi.observe(market)
        found: list[tuple[Scanner, Opportunity]] = []
        for comp in self.components:
            # incremental: the components' cached findings as they are (not restamped), so
            # an unchanged one is recognised by identity below
            read = getattr(comp, "unstamped", None) if self.incremental else None
            try:
                found.extend((comp, o) for o in (read(market, ts_ns) if read is not None
                                                 else comp.scan(market, ts_ns)))
            except ConfigError:
                raise
            except Exception as exc:  # fenced: one component's bug must not hide the rest
                log.error("ranked: scanner %r failed: %s: %s", comp.name, type(exc).__name__,
                          exc)
        keys = self._keys
        if self.incremental:
            keys = {o.opportunity_id: keys.get(o.opportunity_id) or _key(o) for _, o in found}
            self._keys = keys
            key_of = [keys[o.opportunity_id] for _, o in found]
        else:
            key_of = [_key(o) for _, o in found]
        old_streak = self._streak
        streak = {}
        for key in key_of:
            streak[key] = old_streak.get(key, 0) + 1
        self._streak = streak
        users: dict[str, int] = {}
        for _, o in found:
            legs = o.legs
            if len(legs) == 1:
                iid = legs[0].instrument_id
                users[iid] = users.get(iid, 0) + 1
                continue
            for iid in {leg.instrument_id for leg in legs}:
                users[iid] = users.get(iid, 0) + 1
        imbalance = self._imbalances(market, ts_ns)
        counts = max(s.persistence_cap, s.executable_min_persistence or 0)
        cache = self._scored if self.incremental else {}
        scored: dict[str, tuple[Opportunity, tuple[Any, ...], Score, Opportunity]] = {}
        self.scores = scores = {}
        self.rescored = 0
        out: list[tuple[float, Opportunity]] = []
        buy = Side.BUY
        for (comp, o), key in zip(found, key_of, strict=True):
            oid = o.opportunity_id
            run = streak[key]
            c = self._confidence(comp, o)
            legs = o.legs
            if len(legs) == 1:
                leg = legs[0]
                flows: tuple[float, ...] = (
                    (1.0 if leg.side is buy else -1.0) * imbalance(leg.instrument_id),)
                others = users[leg.instrument_id] - 1
            else:
                flows = tuple((1.0 if leg.side is buy else -1.0) * imbalance(leg.instrument_id)
                              for leg in legs)
                others = max((users[i] - 1 for i in {leg.instrument_id for leg in legs}),
                             default=0)
            inputs = (min(run, counts), c, flows, others)
            hit = cache.get(oid)
            if hit is not None and hit[0] is o and hit[1] == inputs:
                entry = hit
            else:
                score_, ranked = self._score(o, run, c, flows, others)
                entry = (o, inputs, score_, ranked)
                self.rescored += 1
            scored[oid] = entry
            scores[oid] = entry[2]
            out.append((entry[2].score, restamp(entry[3], ts_ns)))
        self._scored = scored
        out.sort(key=lambda t: (-t[0], t[1].opportunity_id))
        return [o for _, o in out]

    def _imbalances(self, market: MarketState, ts_ns: int) -> Callable[[str], float]:
        """``I`` of a leg's token: the flow column's value (incremental), else a read."""
        if not self.incremental:
            return lambda iid: self._imbalance(market, iid, ts_ns)
        t = touch_table(market)
        values = self.flows.update(market, t.ids, t.index, ts_ns)
        index = t.index

        def at(iid: str) -> float:
            r = index.get(iid)
            return float(values[r]) if r is not None else self._imbalance(market, iid, ts_ns)

        return at

    def _score(self, o: Opportunity, run: int, c: float, flows: tuple[float, ...],
               others: int) -> tuple[Score, Opportunity]:
        s = self.settings
        e = min(max(float(o.edge_per_unit) / s.edge_scale, 0.0), 1.0)
        notional = sum(float(leg.limit_price * leg.quantity) for leg in o.legs)
        k = min(1.0, math.log10(1 + notional) / math.log10(1 + s.capacity_scale))
        p = min(run, s.persistence_cap) / s.persistence_cap
        ofi = sum(flows) / len(flows) if flows else 0.0
        x = min(others, s.competition_cap) / s.competition_cap
        score = (s.w_edge * e + s.w_capacity * k + s.w_confidence * c
                 + s.w_persistence * p + s.w_ofi * ofi - s.w_competition * x)
        lane, why = self._lane(o, score, c, run)
        terms = (f"score {score:.4f} = {s.w_edge:g}*edge {e:.3f} + {s.w_capacity:g}*cap "
                 f"{k:.3f} + {s.w_confidence:g}*conf {c:.3f} + {s.w_persistence:g}*persist "
                 f"{p:.3f} + {s.w_ofi:g}*ofi {ofi:+.3f} - {s.w_competition:g}*comp {x:.3f}")
        return Score(e, k, c, p, ofi, x, score, lane, why), attrs.evolve(
            o, lane=lane, risk_free=o.risk_free and lane == EXECUTABLE, score=score,
            reason=lane_reason(lane, f"{why}; {terms}; {_strip_lane(o.reason)}"))

    def _lane(self, o: Opportunity, score: float, confidence: float, streak: int
              ) -> tuple[str, str]:
        s = self.settings
        if o.kind.startswith("maker_"):
            return RESEARCH, "maker quote: needs the maker lifecycle"
        if o.lane != EXECUTABLE:
            return RESEARCH, f"{o.scanner} reports it as research"
        if o.risk_free:
            return EXECUTABLE, "risk-free"
        missed = []
        if s.executable_min_score is not None and score < s.executable_min_score:
            missed.append(f"score {score:.4f} < {s.executable_min_score}")
        if s.executable_min_confidence is not None and confidence < s.executable_min_confidence:
            missed.append(f"confidence {confidence:g} < {s.executable_min_confidence}")
        if (s.executable_min_persistence is not None
                and streak < s.executable_min_persistence):
            missed.append(f"seen {streak} scans < {s.executable_min_persistence}")
        if missed:
            return RESEARCH, "not risk-free and " + ", ".join(missed)
        return EXECUTABLE, f"{o.scanner}'s thresholds and the ranking's met"
