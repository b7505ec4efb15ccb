"""``CorrelationScanner``: cross-market logical constraints priced inconsistently.

1. **Candidates** (rebuilt only when the set of events changes): every market's question
   (instrument ``meta['question']``, else the event title and outcome name) is embedded by
   scikit-learn's ``TfidfVectorizer`` (English stop words, word 1-2 grams, sublinear tf);
   pairs of markets with cosine similarity ``>= similarity_threshold`` are candidates
   (at most ``max_neighbors`` per market and ``max_candidates`` in all, most similar
   first; computed in row blocks, so memory stays bounded), never two outcomes of one negRisk
   event (exclusive by construction: the negRisk scanner's business) nor the two tokens
   of one market.
2. **Validation**: a candidate becomes a constraint ``A => B`` (so ``P(A) <= P(B)``) only
   through an explicit rule of :mod:`argus_scanners_polymarket.constraints` (nested numeric
   thresholds parsed from the text: proven; presidency => nomination: not proven).
   Constraints are deduplicated by (A, B).
3. **Pricing** (every scan): the violation is bought with the basket *YES of B + NO of A*,
   which pays at least 1 in every world the constraint allows (A true: B true, YES_B pays
   1; A false: NO_A pays 1).  Both ask ladders are walked jointly while

       1 - a_B - a_NA - f(a_B) - f(a_NA) >= max(min_violation, > 0)

   (``f = FeeSchedule.unit_fee`` of each leg).  Exact: ``costs = sum FeeSchedule.fee`` of
   each leg's fill per level; ``expected_profit = Q - sum a q - costs``.  Reported only when
   ``Q >= min_liquidity`` (and each leg's ``min_size``), at most ``max_per_event`` per event
   (the most profitable; an opportunity counts against both of its events).
4. **Lanes**: research (``risk_free=False``) unless the constraint is proven *and*
   ``trade_proven`` is on, then executable and risk-free.  Ids:
   ``correlation:<A>:<B>:<newest leg book ts_ns>``.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import ClassVar

import attrs
import numpy as np

from argus_core import FeeSchedule, Leg, MarketState, Opportunity, Scanner, Side
from argus_scanners_polymarket.common import (
    EXECUTABLE,
    LOT,
    RESEARCH,
    dec,
    edge,
    lane_reason,
)
from argus_scanners_polymarket.config import CorrelationSettings, PmScannersSettings
from argus_scanners_polymarket.constraints import Constraint, implication

_BLOCK = 512


@attrs.frozen
class Proposition:
    """One market as a proposition: its YES and NO tokens, event and question text."""

    yes: str
    no: str
    event_id: str
    neg_risk: bool
    text: str


def propositions(market: MarketState) -> list[Proposition]:
    """Every market of every open event, once (a binary market's YES is its first
    outcome's token)."""
    out: list[Proposition] = []
    seen: set[str] = set()
    for ev in market.events.values():
        if ev.closed:
            continue
        outcomes = ev.outcomes if ev.neg_risk else ev.outcomes[:1]
        for o in outcomes:
            if o.placeholder or o.yes_instrument_id in seen:
                continue
            seen.add(o.yes_instrument_id)
            seen.add(o.no_instrument_id)
            inst = market.instruments.get(o.yes_instrument_id)
            question = str(inst.meta.get("question", "")) if inst is not None else ""
            text = question or (f"{ev.title} {o.name}" if ev.neg_risk else ev.title)
            out.append(Proposition(o.yes_instrument_id, o.no_instrument_id, ev.event_id,
                                   ev.neg_risk, text))
    return out


def candidate_pairs(texts: list[str], threshold: float, limit: int, per_row: int = 0
                    ) -> list[tuple[int, int, float]]:
    """(i, j, cosine) with i < j for TF-IDF cosine similarity >= ``threshold``, most
    similar first, at most ``limit`` in all and ``per_row`` (0: any) per first market."""
    if len(texts) < 2:
        return []
    from sklearn.feature_extraction.text import (  # type: ignore[import-untyped]
        TfidfVectorizer,  # heavy import: only when a scanner builds its structure
    )

    vec = TfidfVectorizer(stop_words="english", ngram_range=(1, 2), sublinear_tf=True,
                          token_pattern=r"(?u)\b\w[\w.]*\b")
    try:
        x = vec.fit_transform(texts)
    except ValueError:  # every text was stop words only
        return []
    # Row blocks of the cosine matrix, dense per block: memory stays O(block x n) however
    # alike the questions are; each row keeps its ``per_row`` most similar partners.
    xt = x.T.tocsc()
    rows_l: list[np.ndarray] = []
    cols_l: list[np.ndarray] = []
    vals_l: list[np.ndarray] = []
    n = x.shape[0]
    for start in range(0, n, _BLOCK):
        block = np.asarray((x[start:start + _BLOCK] @ xt).todense())
        r, c = np.nonzero(block >= threshold)
        gi = r + start
        keep = gi < c
        r, c, gi = r[keep], c[keep], gi[keep]
        v = block[r, c]
        if per_row and len(v):
            order = np.lexsort((-v, gi))  # by row, most similar first
            r, c, gi, v = r[order], c[order], gi[order], v[order]
            first = np.searchsorted(gi, gi, side="left")
            keep = (np.arange(len(gi)) - first) < per_row
            c, gi, v = c[keep], gi[keep], v[keep]
        rows_l.append(gi)
        cols_l.append(c)
        vals_l.append(v)
    rows, cols, vals = (np.concatenate(a) for a in (rows_l, cols_l, vals_l))
    order = np.argsort(-vals, kind="stable")[:limit]
    return [(int(rows[k]), int(cols[k]), float(vals[k])) for k in order]


@attrs.frozen
class PairWalk:
    """A joint taker walk of two ask ladders."""

    quantity: Decimal
    value: Decimal
    fees: Decimal
    limits: tuple[Decimal, Decimal]


def walk_pair(ladders: tuple[np.ndarray, np.ndarray],
              schedules: tuple[FeeSchedule, FeeSchedule], min_edge: Decimal,
              payout: Decimal = Decimal(1)) -> PairWalk:
    """Buy one of each leg per unit while ``payout - prices - unit fees >= min_edge`` (and
    > 0), taking the smaller remaining level size; fees charged once per leg level."""
    idx = [0, 0]
    left = [dec(ladders[k][0, 1]) if len(ladders[k]) else Decimal(0) for k in (0, 1)]
    taken: list[dict[int, Decimal]] = [{}, {}]
    qty = Decimal(0)
    while all(idx[k] < len(ladders[k]) for k in (0, 1)):
        prices = [dec(ladders[k][idx[k], 0]) for k in (0, 1)]
        unit = payout - sum(prices, Decimal(0)) - sum(
            (schedules[k].unit_fee(prices[k]) for k in (0, 1)), Decimal(0))
        if unit <= 0 or unit < min_edge:
            break
        step = min(left).quantize(LOT, rounding=ROUND_DOWN)
        if step > 0:
            qty += step
            for k in (0, 1):
                taken[k][idx[k]] = taken[k].get(idx[k], Decimal(0)) + step
        for k in (0, 1):
            left[k] -= step
            if left[k] < LOT:
                idx[k] += 1
                if idx[k] < len(ladders[k]):
                    left[k] = dec(ladders[k][idx[k], 1])
    value = fees = Decimal(0)
    limits = [Decimal(0), Decimal(0)]
    for k in (0, 1):
        for level, q in taken[k].items():
            price = dec(ladders[k][level, 0])
            value += price * q
            fees += schedules[k].fee(price, q, maker=False)
            limits[k] = max(limits[k], price)
    return PairWalk(qty, value, fees, (limits[0], limits[1]))


class CorrelationScanner(Scanner):
    """Cross-market implication constraints (TF-IDF candidates, rule-validated)."""

    name: ClassVar[str] = "correlation"

    def __init__(self, settings: PmScannersSettings | CorrelationSettings | None = None
                 ) -> None:
        if isinstance(settings, PmScannersSettings):
            settings = settings.correlation
        self.settings = settings or CorrelationSettings()
        self._key: tuple[int, ...] | None = None
        self.props: list[Proposition] = []
        self.constraints: list[Constraint] = []
        self.candidates = 0  # candidate pairs of the last structure build (tests, benchmark)

    def _ensure(self, market: MarketState) -> None:
        key = (id(market), *map(id, market.events.values()))
        if key == self._key:
            return
        s = self.settings
        self.props = propositions(market)
        pairs = candidate_pairs([p.text for p in self.props], s.similarity_threshold,
                                s.max_candidates, s.max_neighbors)
        self.candidates = len(pairs)
        found: dict[tuple[str, str], Constraint] = {}
        for i, j, _sim in pairs:
            a, b = self.props[i], self.props[j]
            if a.event_id == b.event_id and a.neg_risk:
                continue  # exclusive outcomes of one negRisk event
            c = implication(a.yes, a.text, b.yes, b.text)
            if c is not None:
                found.setdefault((c.antecedent, c.consequent), c)
        self.constraints = list(found.values())
        self._key = key

    def scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """Every violated constraint with enough depth, most profitable first."""
        self._ensure(market)
        s = self.settings
        by_yes = {p.yes: p for p in self.props}
        found: list[tuple[Opportunity, tuple[str, str]]] = []
        for c in self.constraints:
            a, b = by_yes[c.antecedent], by_yes[c.consequent]
            legs_ids = (b.yes, a.no)
            books = [market.books.get(i) for i in legs_ids]
            if any(bk is None or not market.tradeable(bk.instrument_id)[0] for bk in books):
                continue
            ladders = (books[0].ask_levels(), books[1].ask_levels())  # type: ignore[union-attr]
            walk = walk_pair(ladders, (market.fee_schedule(b.yes), market.fee_schedule(a.no)),
                             s.min_violation)
            mins = [market.instruments[i].min_size for i in legs_ids
                    if i in market.instruments]
            if walk.quantity <= 0 or walk.quantity < s.min_liquidity or \
                    any(walk.quantity < m for m in mins):
                continue
            profit = walk.quantity - walk.value - walk.fees
            if profit <= 0:
                continue
            executable = c.proven and s.trade_proven
            newest = max(bk.ts_ns for bk in books if bk is not None)
            opp = Opportunity(
                opportunity_id=f"correlation:{a.yes}:{b.yes}:{newest}",
                scanner=self.name, ts_ns=ts_ns, kind="implication",
                legs=(Leg(b.yes, Side.BUY, walk.limits[0], walk.quantity),
                      Leg(a.no, Side.BUY, walk.limits[1], walk.quantity)),
                edge_per_unit=edge(profit, walk.quantity), max_size=walk.quantity,
                expected_profit=profit, costs=walk.fees,
                lane=EXECUTABLE if executable else RESEARCH,
                reason=lane_reason(EXECUTABLE if executable else RESEARCH, (
                    f"{c.rule} ({'proven' if c.proven else 'not proven'}): {c.detail}; "
                    f"'{a.text}' => '{b.text}' but YES(B) + NO(A) cost "
                    f"{(walk.value + walk.fees) / walk.quantity:.6f} < 1 for "
                    f"{walk.quantity}")),
                risk_free=executable, event_id=a.event_id)
            found.append((opp, (a.event_id, b.event_id)))
        found.sort(key=lambda t: t[0].expected_profit, reverse=True)
        per_event: dict[str, int] = {}
        out = []
        for opp, events in found:
            if any(per_event.get(e, 0) >= s.max_per_event for e in set(events)):
                continue
            for e in set(events):
                per_event[e] = per_event.get(e, 0) + 1
            out.append(opp)
        return out
