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
from typing import Any, ClassVar

import attrs
import numpy as np

from argus_core import Event, FeeSchedule, Leg, MarketState, Opportunity, Scanner, Side
from argus_scanners_polymarket.common import (
    EXECUTABLE,
    LOT,
    RESEARCH,
    buy_limit,
    by_profit,
    dec,
    edge,
    event_id_for,
    lane_reason,
    restamp,
    taker_tick,
    tradeable,
)
from argus_scanners_polymarket.config import CorrelationSettings, PmScannersSettings
from argus_scanners_polymarket.constraints import Constraint, implication
from argus_scanners_polymarket.touch import EPS, RowCache, keys_of, touch_table

_BLOCK = 512
#: a term in this many questions or more is multiplied densely (see ``similar_pairs``)
HEAVY_DF = 200
REFIT_GROWTH = 0.25
REFIT_OOV = 0.30


@attrs.frozen
class Proposition:
    """One market as a proposition: its YES and NO tokens, event and question text."""

    yes: str
    no: str
    event_id: str
    neg_risk: bool
    text: str


def propositions(market: MarketState, memo: dict[str, tuple[Event, list[Proposition]]]
                 | None = None) -> list[Proposition]:
    """Every market of every open event, once (a binary market's YES is its first
    outcome's token).  ``memo`` (event id -> (event, its propositions)), when given, is
    read for the events whose object is unchanged and rewritten."""
    out: list[Proposition] = []
    seen: set[str] = set()
    fresh: dict[str, tuple[Event, list[Proposition]]] = {}
    for eid, ev in market.events.items():
        if ev.closed:
            continue
        hit = memo.get(eid) if memo is not None else None
        if hit is None or hit[0] is not ev:
            made = []
            for o in ev.outcomes if ev.neg_risk else ev.outcomes[:1]:
                if o.placeholder:
                    continue
                inst = market.instruments.get(o.yes_instrument_id)
                question = str(inst.meta.get("question", "")) if inst is not None else ""
                text = question or (f"{ev.title} {o.name}" if ev.neg_risk else ev.title)
                made.append(Proposition(o.yes_instrument_id, o.no_instrument_id, ev.event_id,
                                        ev.neg_risk, text))
            hit = (ev, made)
        fresh[eid] = hit
        for p in hit[1]:
            if p.yes in seen or p.no in seen or p.yes == p.no:
                continue  # a token listed again (as either side): one book, one market
            seen.add(p.yes)
            seen.add(p.no)
            out.append(p)
    if memo is not None:
        memo.clear()
        memo.update(fresh)
    return out


def _vectorizer() -> Any:
    from sklearn.feature_extraction.text import (  # type: ignore[import-untyped]
        TfidfVectorizer,  # heavy import: only when a scanner builds its structure
    )

    return TfidfVectorizer(stop_words="english", ngram_range=(1, 2), sublinear_tf=True,
                           token_pattern=r"(?u)\b\w[\w.]*\b")


def similar_pairs(x: Any, first: int, threshold: float, limit: int, per_row: int = 0,
                  ) -> list[tuple[int, int, float]]:
    """(i, j, cosine) with ``first <= j``, ``i < j`` and cosine >= ``threshold`` among the
    L2-normalised rows of the sparse ``x`` (rows ``first:`` are the ones asked about, each
    against every row before it and the other asked rows), most similar first, at most
    ``limit`` in all and ``per_row`` (0: any) per first market.

    The product is split by term frequency: the few terms in :data:`HEAVY_DF` or more
    questions (common words, which make almost every pair overlap and all but the whole
    cost of a sparse product) are multiplied as a dense block with BLAS, the rest
    sparsely, and the two added before the threshold.  Row blocks keep memory bounded;
    only the upper triangle is computed."""
    n = x.shape[0]
    if n < 2 or first >= n:
        return []
    df = np.bincount(x.indices, minlength=x.shape[1])
    heavy = df >= HEAVY_DF
    xh = np.asarray(x[:, np.flatnonzero(heavy)].todense())
    xl = x[:, np.flatnonzero(~heavy)].tocsr()
    xlt = xl.T.tocsc()
    rows_l: list[np.ndarray] = []
    cols_l: list[np.ndarray] = []
    vals_l: list[np.ndarray] = []
    for start in range(first, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        # first == 0: a block against the columns from its first row on (the upper
        # triangle); else the new rows against every row up to the block's end
        lo, hi = (start, n) if first == 0 else (0, stop)
        block = xh[start:stop] @ xh[lo:hi].T
        light = (xl[start:stop] @ xlt[:, lo:hi]).tocoo()
        block[light.row, light.col] += light.data
        r, c = np.nonzero(block >= threshold)
        gi, gc = r + start, c + lo
        keep = gi < gc if first == 0 else gc < gi
        v = block[r[keep], c[keep]]
        if first == 0:
            rows_l.append(gi[keep])
            cols_l.append(gc[keep])
        else:  # (earlier, new): the earlier market first, as i < j
            rows_l.append(gc[keep])
            cols_l.append(gi[keep])
        vals_l.append(v)
    rows, cols, vals = (np.concatenate(a) for a in (rows_l, cols_l, vals_l))
    order = np.lexsort((cols, rows))  # row-major: the order ties keep below
    rows, cols, vals = rows[order], cols[order], vals[order]
    if per_row and len(vals):
        order = np.lexsort((cols, -vals, rows))  # by row, most similar first
        rows, cols, vals = rows[order], cols[order], vals[order]
        start_of = np.searchsorted(rows, rows, side="left")
        keep = (np.arange(len(rows)) - start_of) < per_row
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
        back = np.lexsort((cols, rows))  # row-major again
        rows, cols, vals = rows[back], cols[back], vals[back]
    order = np.argsort(-vals, kind="stable")[:limit]
    return [(int(rows[k]), int(cols[k]), float(vals[k])) for k in order]


def candidate_pairs(texts: list[str], threshold: float, limit: int, per_row: int = 0
                    ) -> list[tuple[int, int, float]]:
    """(i, j, cosine) with i < j for TF-IDF cosine similarity >= ``threshold``, most
    similar first, at most ``limit`` in all and ``per_row`` (0: any) per first market."""
    if len(texts) < 2:
        return []
    try:
        x = _vectorizer().fit_transform(texts)
    except ValueError:  # every text was stop words only
        return []
    return similar_pairs(x, 0, threshold, limit, per_row)


class CandidateIndex:
    """The TF-IDF rows of every market's question, fitted once and extended.

    :meth:`fit` fits the vectoriser on all the texts and returns every candidate pair;
    :meth:`extend` transforms only new texts against the fitted vocabulary and IDF,
    appends their rows and returns the pairs involving them (each new row against every
    earlier one and the other new ones; ``per_row`` and ``limit`` apply per extension).

    **Refit rule** (:meth:`drifted`): the vocabulary and IDF of the fit stop describing
    the corpus when the texts added since the fit reach :data:`REFIT_GROWTH` (25 %) of
    those it was fitted on, or when more than :data:`REFIT_OOV` (30 %) of the added texts'
    words are unknown to it (a new subject whose words cannot match anything); then the
    scanner refits everything."""

    def __init__(self, threshold: float, limit: int, per_row: int) -> None:
        self.threshold, self.limit, self.per_row = threshold, limit, per_row
        self.vectorizer: Any = None
        self.x: Any = None
        self.fitted = 0
        self.added = 0
        self._words = 0
        self._unknown = 0

    def __len__(self) -> int:
        return 0 if self.x is None else int(self.x.shape[0])

    def fit(self, texts: list[str]) -> list[tuple[int, int, float]]:
        """Fit on ``texts`` (row ``k`` is ``texts[k]``); every candidate pair."""
        self.vectorizer, self.x = _vectorizer(), None
        self.fitted, self.added, self._words, self._unknown = len(texts), 0, 0, 0
        if not texts:
            return []
        try:
            self.x = self.vectorizer.fit_transform(texts)
        except ValueError:  # every text was stop words only
            self.vectorizer = None
            return []
        return similar_pairs(self.x, 0, self.threshold, self.limit, self.per_row)

    def drifted(self, texts: list[str]) -> bool:
        """Whether adding ``texts`` would break the refit rule (class docstring)."""
        if self.vectorizer is None or self.x is None:
            return True
        if self.added + len(texts) >= REFIT_GROWTH * max(self.fitted, 1):
            return True
        vocab = self.vectorizer.vocabulary_
        analyze = self.vectorizer.build_analyzer()
        words = unknown = 0
        for text in texts:
            for term in analyze(text):
                if " " not in term:  # unigrams: bigrams of known words are often new
                    words += 1
                    unknown += term not in vocab
        return self._unknown + unknown > REFIT_OOV * max(self._words + words, 1)

    def extend(self, texts: list[str]) -> list[tuple[int, int, float]]:
        """Append ``texts`` as rows ``len(self):``; the pairs with a new row."""
        from scipy.sparse import vstack  # scikit-learn's own dependency

        if not texts:
            return []
        assert self.vectorizer is not None and self.x is not None
        analyze = self.vectorizer.build_analyzer()
        vocab = self.vectorizer.vocabulary_
        for text in texts:
            for term in analyze(text):
                if " " not in term:
                    self._words += 1
                    self._unknown += term not in vocab
        first = len(self)
        self.x = vstack([self.x, self.vectorizer.transform(texts)], format="csr")
        self.added += len(texts)
        return similar_pairs(self.x, first, self.threshold, self.limit, self.per_row)


@attrs.frozen
class PairWalk:
    """A joint taker walk of two ask ladders."""

    quantity: Decimal
    value: Decimal
    fees: Decimal
    limits: tuple[Decimal, Decimal]


def walk_pair(ladders: tuple[np.ndarray, np.ndarray],
              schedules: tuple[FeeSchedule, FeeSchedule], min_edge: Decimal,
              payout: Decimal = Decimal(1),
              ticks: tuple[Decimal, Decimal] | None = None) -> PairWalk:
    """Buy one of each leg per unit while ``payout - prices - unit fees >= min_edge`` (and
    > 0), taking the smaller remaining level size; fees charged once per leg level.  With
    ``ticks`` (each leg's tick in force) each limit is ``buy_limit`` of its deepest level,
    and the walk stops at a level no limit on its grid reaches."""
    idx = [0, 0]
    left = [dec(ladders[k][0, 1]) if len(ladders[k]) else Decimal(0) for k in (0, 1)]
    taken: list[dict[int, Decimal]] = [{}, {}]
    qty = Decimal(0)
    while all(idx[k] < len(ladders[k]) for k in (0, 1)):
        prices = [dec(ladders[k][idx[k], 0]) for k in (0, 1)]
        if ticks is not None and any(buy_limit(prices[k], ticks[k]) is None for k in (0, 1)):
            break
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
            reach = price if ticks is None else buy_limit(price, ticks[k])
            assert reach is not None  # the walk stopped before any level without one
            limits[k] = max(limits[k], reach)
    return PairWalk(qty, value, fees, (limits[0], limits[1]))


class Depth:
    """The ask depth one scan's findings have taken, per instrument and price: a basket
    priced after another that shares a leg's book is walked on what is left (two baskets
    each offered the full depth overfill the second when both are sent)."""

    def __init__(self) -> None:
        self.taken: dict[str, dict[Decimal, Decimal]] = {}

    def touches(self, iids: tuple[str, ...]) -> bool:
        """Whether any of ``iids`` has depth taken."""
        return any(i in self.taken for i in iids)

    def left(self, iid: str, levels: np.ndarray) -> np.ndarray:
        """``iid``'s ask ``levels`` less what was taken (in exact decimals), spent levels
        dropped."""
        taken = self.taken.get(iid)
        if not taken:
            return levels
        rows = []
        for price_f, size_f in levels.tolist():
            size = dec(size_f) - taken.get(dec(price_f), Decimal(0))
            if size >= LOT:
                rows.append((price_f, float(size)))
        return np.asarray(rows, dtype=np.float64).reshape(-1, 2)

    def take(self, iid: str, levels: np.ndarray, quantity: Decimal) -> None:
        """Hold back the cheapest ``quantity`` of ``iid``'s asks ``levels`` (less what was
        taken): the levels a buy of that quantity fills, whole lots per level, as
        :func:`walk_pair` took them."""
        mine = self.taken.setdefault(iid, {})
        for price_f, size_f in self.left(iid, levels).tolist():
            if quantity <= 0:
                break
            q = min(dec(size_f).quantize(LOT, rounding=ROUND_DOWN), quantity)
            price = dec(price_f)
            mine[price] = mine.get(price, Decimal(0)) + q
            quantity -= q


class CorrelationScanner(Scanner):
    """Cross-market implication constraints (TF-IDF candidates, rule-validated).

    The structure is a :class:`CandidateIndex`: fitted on the first scan, then, when the
    set of events changes, only the new markets' questions are transformed and paired
    (markets gone are dropped with their constraints); it is refitted by its rule.
    ``incremental=True`` prices the constraints with a vectorised float pre-check of both
    legs' best asks over the shared touch table (margin :data:`EPS`) and the exact joint
    walk for the candidates, reused while neither leg's row changed;
    ``incremental=False`` walks every constraint (the reference)."""

    name: ClassVar[str] = "correlation"

    def __init__(self, settings: PmScannersSettings | CorrelationSettings | None = None, *,
                 incremental: bool = True) -> None:
        if isinstance(settings, PmScannersSettings):
            settings = settings.correlation
        self.settings = settings or CorrelationSettings()
        self.incremental = incremental
        self._key: tuple[int, int] | None = None
        self.props: list[Proposition] = []  # every row of the index, alive or not
        self.alive: list[bool] = []
        self.by_yes: dict[str, int] = {}  # YES token -> its alive row
        self._memo: dict[str, tuple[Event, list[Proposition]]] = {}
        self.index = CandidateIndex(self.settings.similarity_threshold,
                                    self.settings.max_candidates, self.settings.max_neighbors)
        self._found: dict[tuple[str, str], tuple[Constraint, int, int]] = {}
        self.constraints: list[Constraint] = []
        self.candidates = 0  # candidate pairs in the structure (tests, benchmark)
        self.refits = 0  # full fits so far (tests, benchmark)
        self.cache = RowCache()
        self._legs: tuple[tuple[int, int, int], np.ndarray, np.ndarray] | None = None

    def _ensure(self, market: MarketState) -> None:
        key = (id(market), market.events_version)
        if key == self._key:
            return
        if self._key is not None and self._key[0] != key[0]:
            self._memo = {}  # another market state
        current = propositions(market, self._memo)
        props, by_yes = self.props, self.by_yes
        new: list[Proposition] = []
        still: set[int] = set()
        for p in current:
            k = by_yes.get(p.yes)
            if k is not None and props[k] == p:
                still.add(k)
            else:
                new.append(p)
        if self._key is None or self._key[0] != key[0] or self.index.drifted(
                [p.text for p in new]):
            self._fit(current)
        else:
            for k in by_yes.values():
                if k not in still:
                    self.alive[k] = False
            first = len(self.props)
            self.props.extend(new)
            self.alive.extend([True] * len(new))
            pairs = self.index.extend([p.text for p in new])
            self.candidates += len(pairs)
            self._validate(pairs)
            assert len(self.props) == first + len(new)
        self.by_yes = {p.yes: k for k, p in enumerate(self.props) if self.alive[k]}
        alive = self.alive
        self.constraints = [c for c, i, j in self._found.values() if alive[i] and alive[j]]
        self._legs = None
        self.cache.clear()
        self._key = key

    def _fit(self, props: list[Proposition]) -> None:
        self.props, self.alive = list(props), [True] * len(props)
        self._found = {}
        pairs = self.index.fit([p.text for p in props])
        self.candidates = len(pairs)
        self.refits += 1
        self._validate(pairs)

    def _validate(self, pairs: list[tuple[int, int, float]]) -> None:
        for i, j, _sim in pairs:
            a, b = self.props[i], self.props[j]
            if not (self.alive[i] and self.alive[j]):
                continue
            if a.event_id == b.event_id and a.neg_risk:
                continue  # exclusive outcomes of one negRisk event
            c = implication(a.yes, a.text, b.yes, b.text)
            if c is None:
                continue
            old = self._found.get((c.antecedent, c.consequent))
            if old is None or not (self.alive[old[1]] and self.alive[old[2]]):
                self._found[(c.antecedent, c.consequent)] = (
                    c, self.by_yes_row(c.antecedent, i, j), self.by_yes_row(c.consequent, i, j))

    def by_yes_row(self, yes: str, i: int, j: int) -> int:
        """Which of rows ``i``, ``j`` is the market of ``yes``."""
        return i if self.props[i].yes == yes else j

    def scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """Every violated constraint with enough depth, most profitable first."""
        if not self.incremental:
            return self.reference_scan(market, ts_ns)
        return [restamp(o, ts_ns) for o in self.unstamped(market, ts_ns)]

    def unstamped(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """The incremental scan's findings as cached (``ts_ns`` of the scan that built
        each), capped per event, most profitable first: what :meth:`scan` restamps, and
        what ``ranked`` reads to recognise an unchanged finding by identity."""
        self._ensure(market)
        s = self.settings
        t = touch_table(market)
        if self._legs is None or self._legs[0] != (t.static_gen, len(t), len(self.constraints)):
            props, by_yes, index = self.props, self.by_yes, t.index
            b_rows = [index.get(props[by_yes[c.consequent]].yes, -1) for c in self.constraints]
            na_rows = [index.get(props[by_yes[c.antecedent]].no, -1) for c in self.constraints]
            self._legs = ((t.static_gen, len(t), len(self.constraints)),
                          np.array(b_rows, dtype=np.int64), np.array(na_rows, dtype=np.int64))
        _, rb, rna = self._legs
        if not len(rb) or not len(t):
            return []
        both = (rb >= 0) & (rna >= 0)
        b, na = np.where(both, rb, 0), np.where(both, rna, 0)
        usable = t.usable(market)
        with np.errstate(invalid="ignore"):
            unit = 1 - t.ask[b] - t.ask[na] - t.ask_fee[b] - t.ask_fee[na] + EPS
            pre = both & usable[b] & usable[na] & (unit > 0) & (unit >= float(s.min_violation))
        cands = np.flatnonzero(pre)
        constraints = self.constraints

        def build(k: int) -> list[Opportunity]:
            found = self._price(market, constraints[k], ts_ns)
            return [found[0]] if found is not None else []

        lists = self.cache.collect(cands, keys_of(t.row_gen[b[cands]], t.row_gen[na[cands]]),
                                   build, verify=t.terms_held(market))
        found = [(o, k) for k, opps in zip(cands.tolist(), lists, strict=True) for o in opps]
        return self._capped(market, [(o, constraints[k]) for o, k in found], ts_ns)

    def reference_scan(self, market: MarketState, ts_ns: int) -> list[Opportunity]:
        """Every constraint walked (the reference of the tests)."""
        self._ensure(market)
        found: list[tuple[Opportunity, Constraint]] = []
        for c in self.constraints:
            priced = self._price(market, c, ts_ns)
            if priced is not None:
                found.append((priced[0], c))
        return self._capped(market, found, ts_ns)

    def _events(self, market: MarketState, c: Constraint) -> tuple[str, str]:
        """The two legs' events as the cap counts them: each finding's event id (the
        Gamma event, else the core event: :func:`event_id_for`), so nested thresholds of
        one Gamma event share its cap."""
        props, by_yes = self.props, self.by_yes
        a, b = props[by_yes[c.antecedent]], props[by_yes[c.consequent]]
        return event_id_for(market, a.yes, a.event_id), event_id_for(market, b.yes, b.event_id)

    def _capped(self, market: MarketState, found: list[tuple[Opportunity, Constraint]],
                ts_ns: int) -> list[Opportunity]:
        """Most profitable first, at most ``max_per_event`` per event, each book's depth
        offered once: a finding sharing a leg's book with a better one is priced again
        on the depth left (dropped when none pays)."""
        s = self.settings
        found.sort(key=lambda t: t[0].expected_profit, reverse=True)
        per_event: dict[str, int] = {}
        depth = Depth()
        out = []
        for opp, c in found:
            events = set(self._events(market, c))
            if any(per_event.get(e, 0) >= s.max_per_event for e in events):
                continue
            if depth.touches(tuple(leg.instrument_id for leg in opp.legs)):
                priced = self._price(market, c, ts_ns, depth)
                if priced is None:
                    continue
                opp = priced[0]
            for e in events:
                per_event[e] = per_event.get(e, 0) + 1
            for leg in opp.legs:
                depth.take(leg.instrument_id, market.books[leg.instrument_id].ask_levels(),
                           leg.quantity)
            out.append(opp)
        return by_profit(out)

    def _price(self, market: MarketState, c: Constraint, ts_ns: int,
               depth: Depth | None = None) -> tuple[Opportunity] | None:
        """The basket of ``c`` walked jointly (on what ``depth`` left, when given)."""
        s = self.settings
        a, b = self.props[self.by_yes[c.antecedent]], self.props[self.by_yes[c.consequent]]
        legs_ids = (b.yes, a.no)
        if b.yes == a.no:
            return None  # one book twice: its depth would be counted once per leg
        books = [market.books.get(i) for i in legs_ids]
        if any(bk is None or not tradeable(market, bk.instrument_id) for bk in books):
            return None
        ladders = (books[0].ask_levels(), books[1].ask_levels())  # type: ignore[union-attr]
        if depth is not None:
            ladders = (depth.left(b.yes, ladders[0]), depth.left(a.no, ladders[1]))
        walk = walk_pair(ladders, (market.fee_schedule(b.yes), market.fee_schedule(a.no)),
                         s.min_violation,
                         ticks=(taker_tick(market, b.yes), taker_tick(market, a.no)))
        mins = [market.instruments[i].min_size for i in legs_ids if i in market.instruments]
        if walk.quantity <= 0 or walk.quantity < s.min_liquidity or \
                any(walk.quantity < m for m in mins):
            return None
        profit = walk.quantity - walk.value - walk.fees
        if profit <= 0:
            return None
        executable = c.proven and s.trade_proven
        newest = max(bk.ts_ns for bk in books if bk is not None)
        return (Opportunity(
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
            risk_free=executable, event_id=event_id_for(market, a.yes, a.event_id)),)
