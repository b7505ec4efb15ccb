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
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import attrs

from argus_core import ConfigError, MarketState, Opportunity, Scanner, Side
from argus_scanners_polymarket.common import (
    EXECUTABLE,
    RESEARCH,
    field_copier,
    lane_reason,
    restamp,
)
from argus_scanners_polymarket.config import PmScannersSettings, RankingSettings
from argus_scanners_polymarket.ofi import (
    SIGNAL,
    OfiTracker,
    published_imbalance,
    shared_flows,
)
from argus_scanners_polymarket.scoring import (
    DEFAULT_CONFIDENCE,
    FALLBACK_CONFIDENCE,
    Key,
    Score,
    ScoreColumns,
    finding_key,
    reported_confidence,
    streaks_from_json,
    streaks_to_json,
    strip_lane,
)
from argus_scanners_polymarket.touch import touch_table

__all__ = ["DEFAULT_CONFIDENCE", "FALLBACK_CONFIDENCE", "RankedScanner", "Score"]

log = logging.getLogger(__name__)

#: :meth:`RankedScanner.get_state`'s key of the persistence streaks (no scanner's name)
STREAKS = "ranked_streaks"


class RankedScanner(Scanner):
    """Runs this plugin's scanners, scores every finding on one scale and sets its lane.

    ``incremental=True`` (the default): the components run incrementally and the findings
    are scored in columns (:class:`~argus_scanners_polymarket.scoring.ScoreColumns`),
    rescoring only the findings that are new or whose score inputs moved; the legs' OFI
    comes from the flow column shared with ``maker`` (``ofi.shared_flows``).
    ``incremental=False``: :meth:`reference_scan`, one finding at a time, with its own
    OFI tracker (the reference of the tests)."""

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
        self._streak: dict[Key, int] = {}
        self._columns = ScoreColumns(self.settings, self._lane)
        #: opportunity id -> its :class:`Score` in the last scan
        self.scores: Mapping[str, Score] = {}

    @property
    def rescored(self) -> int:
        """Findings the last incremental scan scored afresh (tests, benchmark)."""
        return self._columns.rescored

    def get_state(self) -> dict[str, Any]:
        """The components' states (those that keep one) and, under :data:`STREAKS`, each
        finding's persistence streak, so a run resumed from a checkpoint keeps counting
        (a finding gated by ``executable_min_persistence`` is not sent back to research)."""
        state: dict[str, Any] = {c.name: c.get_state() for c in self.components
                                 if hasattr(c, "get_state")}
        streaks = self._columns.streaks() if self.incremental else self._streak
        state[STREAKS] = streaks_to_json(streaks)
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s output."""
        for c in self.components:
            if c.name in state and hasattr(c, "set_state"):
                c.set_state(state[c.name])
        streaks = streaks_from_json(state.get(STREAKS, []))
        self._streak = dict(streaks)
        self._columns.restore_streaks(streaks)

    def _imbalance(self, market: MarketState, iid: str, ts_ns: int) -> float:
        r = self.ofi.reading(iid, ts_ns)
        if r is not None and (r.transitions or r.trades):
            return r.imbalance
        published = published_imbalance(market.signal(SIGNAL, iid))
        return published if published is not None else 0.0

    def _confidence(self, comp: Scanner | None, o: Opportunity) -> float:
        if o.risk_free:
            return 1.0
        return reported_confidence(
            getattr(comp, "confidences", {}).get(o.opportunity_id), o.kind)

    def _run(self, comp: Scanner, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """One component's findings (incremental: as cached, not restamped, so an
        unchanged one is recognised by identity); a failure is logged, not raised."""
        read = getattr(comp, "unstamped", None) if self.incremental else None
        try:
            return list(read(market, ts_ns) if read is not None else comp.scan(market, ts_ns))
        except ConfigError:
            raise
        except Exception as exc:  # fenced: one component's bug must not hide the rest
            log.error("ranked: scanner %r failed: %s: %s", comp.name, type(exc).__name__, exc)
            return []

    def scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """Every component's findings, scored, laned, best score first (ties by id)."""
        if not self.incremental:
            return self.reference_scan(market, ts_ns)
        flows = shared_flows(market, self.settings.ofi_window_s)
        self.ofi = flows.tracker
        table = touch_table(market)
        self.ofi.observe(market, table)  # the touch of the books the refresh just read
        with table.held():  # the market does not change while the components scan it
            found = [(k, self._run(comp, market, ts_ns))
                     for k, comp in enumerate(self.components)]
        out = self._columns.rank(market, ts_ns, self.components, found, table,
                                 flows, lambda iid: self._imbalance(market, iid, ts_ns))
        out, self.scores = one_taker_per_leg(out, self._columns.view(), ts_ns)
        return out

    def reference_scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """The per-finding loop (the reference of the tests): every finding scored with
        :meth:`_score` and its legs' OFI read from this scanner's own tracker."""
        self.ofi.observe(market)
        found = [(comp, o) for comp in self.components for o in self._run(comp, market, ts_ns)]
        key_of = [finding_key(o) for _, o in found]
        old_streak = self._streak
        streak = {}
        for key in key_of:
            streak[key] = old_streak.get(key, 0) + 1
        self._streak = streak
        users: dict[str, int] = {}
        for _, o in found:
            for iid in {leg.instrument_id for leg in o.legs}:
                users[iid] = users.get(iid, 0) + 1
        scores: dict[str, Score] = {}
        out: list[tuple[float, Opportunity]] = []
        buy = Side.BUY
        for (comp, o), key in zip(found, key_of, strict=True):
            run = streak[key]
            c = self._confidence(comp, o)
            flows = tuple((1.0 if leg.side is buy else -1.0)
                          * self._imbalance(market, leg.instrument_id, ts_ns)
                          for leg in o.legs)
            others = max((users[i] - 1 for i in {leg.instrument_id for leg in o.legs}),
                         default=0)
            score_, ranked = self._score(o, run, c, flows, others)
            scores[o.opportunity_id] = score_
            out.append((score_.score, restamp(ranked, ts_ns)))
        out.sort(key=lambda t: (-t[0], t[1].opportunity_id))
        result, self.scores = one_taker_per_leg([o for _, o in out], scores, ts_ns)
        return result

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
            reason=lane_reason(lane, f"{why}; {terms}; {strip_lane(o.reason)}"))

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


_relaned = field_copier("ts_ns", "lane", "risk_free", "reason")


class _Relaned(Mapping[str, Score]):
    """A scan's scores with the lanes :func:`one_taker_per_leg` moved (read through)."""

    def __init__(self, scores: Mapping[str, Score], moved: dict[str, str]) -> None:
        self._scores, self._moved = scores, moved

    def __getitem__(self, oid: str) -> Score:
        score = self._scores[oid]
        why = self._moved.get(oid)
        return score if why is None else attrs.evolve(score, lane=RESEARCH, why=why)

    def __iter__(self) -> Iterator[str]:
        return iter(self._scores)

    def __len__(self) -> int:
        return len(self._scores)


def one_taker_per_leg(ranked: list[Opportunity], scores: Mapping[str, Score], ts_ns: int
                      ) -> tuple[list[Opportunity], Mapping[str, Score]]:
    """Executable findings in score order, each (instrument, side) taken by one only.

    Two scanners can find the same opportunity (a resolved token's cheap ask is also
    ``value``'s and ``stale``'s): the runner would send one IOC order per finding for the
    same shares, a paper broker fill them twice.  The best-ranked executable finding on a
    leg keeps it; a later executable one with any of the same legs goes to the research
    lane, naming the finding that took them.  Returns the list (same order, demoted ones
    copied, stamped ``ts_ns``: this scan's form of the finding) and the scores with those
    lanes moved."""
    taken: dict[tuple[str, Side], Opportunity] = {}
    moved: dict[str, str] = {}
    out = ranked
    for i, o in enumerate(ranked):
        if o.lane != EXECUTABLE:
            continue
        legs = [(leg.instrument_id, leg.side) for leg in o.legs]
        first = next((taken[k] for k in legs if k in taken), None)
        if first is None:
            taken.update(dict.fromkeys(legs, o))
            continue
        why = (f"duplicate: {first.scanner}'s {first.opportunity_id}, ranked higher, takes "
               f"the same liquidity")
        if out is ranked:
            out = list(ranked)
        out[i] = _relaned(o, ts_ns, RESEARCH, False,
                          lane_reason(RESEARCH, f"{why}; {strip_lane(o.reason)}"))
        moved[o.opportunity_id] = why
    return out, (_Relaned(scores, moved) if moved else scores)
