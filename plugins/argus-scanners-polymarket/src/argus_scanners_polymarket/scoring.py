"""``ranked``'s incremental scoring in columns (the formulas are in :mod:`.ranking`).

:class:`ScoreColumns` keeps one row per finding of the last scan, in the order the
components returned them, as numpy columns: what depends on the finding alone (edge and
capacity terms, its streak key's id, its legs' instrument codes and sides, the lane when
the finding alone fixes it, the text of its reason that does not move), built once per
finding *object* (a component returns an unchanged finding as the same object), and the
score's inputs of the last scan.  Each scan:

* gathers the columns of the findings seen before (by identity) and builds the new ones';
* computes the streaks (per key id: the previous scan's run plus one), the confidences
  (fixed per finding, or read from the components that report them), the legs' OFI from
  the shared :class:`~argus_scanners_polymarket.ofi.FlowColumn` (only the legs' rows), the
  competition counts (one ``bincount``) and every score with one vectorised formula, the
  same IEEE operations in the same order as the per-finding reference, so bit-identical;
* builds a scored copy (lane, reason, score, this scan's ``ts_ns``) only for findings that
  are new or whose inputs changed (streak as far as it counts, confidence, legs' OFI,
  competition); every other finding is returned as the same object as in the last scan,
  its ``ts_ns`` the scan that built it (the plugin README's "Scan times");
* orders best score first, ties by opportunity id, with a rank of the ids kept across
  scans (new ids are placed by bisection, not the whole list re-sorted).

:meth:`ScoreColumns.view` is the scan's ``scores`` mapping, whose :class:`Score` objects are
made when read.
"""

from __future__ import annotations

import bisect
import math
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import chain, repeat
from typing import Any

import attrs
import numpy as np

from argus_core import MarketState, Opportunity, Scanner, Side
from argus_scanners_polymarket.common import EXECUTABLE, RESEARCH, field_copier
from argus_scanners_polymarket.config import RankingSettings
from argus_scanners_polymarket.ofi import FlowColumn
from argus_scanners_polymarket.touch import TouchTable

#: Confidence of a finding that is not risk-free when its scanner reports none, by kind.
DEFAULT_CONFIDENCE: dict[str, float] = {
    "resolved": 1.0, "near_certain": 0.8, "implication": 0.6, "stale_quote": 0.4,
    "spike_fade": 0.3, "maker_bid": 0.5, "maker_ask": 0.5, "value": 0.1, "latency": 0.3,
}
FALLBACK_CONFIDENCE = 0.3

#: A finding's identity across scans for its streak: scanner, kind, legs' instruments and sides
Key = tuple[str, str, tuple[tuple[str, Side], ...]]


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


def reported_confidence(reported: object, kind: str) -> float:
    """The confidence a component reported for a finding of ``kind``, in [0, 1]; the
    kind's default when it reported none, or a value that is not a finite number (a NaN
    would make the score NaN, which a sort can rank first)."""
    if reported is not None:
        try:
            value = float(reported)  # type: ignore[arg-type]  # checked: a number or raises
        except (TypeError, ValueError):
            value = math.nan
        if math.isfinite(value):
            return min(1.0, max(0.0, value))
    return DEFAULT_CONFIDENCE.get(kind, FALLBACK_CONFIDENCE)


def strip_lane(reason: str) -> str:
    """``reason`` without its ``"lane=...: "`` prefix."""
    if reason.startswith("lane="):
        return reason.split(": ", 1)[1] if ": " in reason else ""
    return reason


def finding_key(o: Opportunity) -> Key:
    """The :data:`Key` of ``o``."""
    return (o.scanner, o.kind, tuple((leg.instrument_id, leg.side) for leg in o.legs))


def streaks_to_json(streaks: Mapping[Key, int]) -> list[list[Any]]:
    """Streaks as JSON rows ``[scanner, kind, [[instrument, side], ...], run]``, sorted
    (the same state whichever path, and in whatever order, the findings were seen)."""
    return sorted([scanner, kind, [[iid, str(side)] for iid, side in legs], int(run)]
                  for (scanner, kind, legs), run in streaks.items())


def streaks_from_json(rows: Any) -> dict[Key, int]:
    """:func:`streaks_to_json`'s rows back as a ``Key -> run`` map; a malformed row (a
    checkpoint from another version) is skipped: its finding starts a new streak."""
    out: dict[Key, int] = {}
    for row in rows if isinstance(rows, list) else ():
        try:
            scanner, kind, legs, run = row
            key = (str(scanner), str(kind), tuple((str(i), Side(s)) for i, s in legs))
            if int(run) >= 1:
                out[key] = int(run)
        except (TypeError, ValueError):
            continue
    return out

_scored_copy = field_copier("ts_ns", "lane", "risk_free", "score", "reason")
_SEP = "\x1f"  # ASCII unit separator: ends each reason of a batch formatted in one call


def reason_template(s: RankingSettings) -> str:
    """A scored finding's ``reason`` as a ``%`` template ended by :data:`_SEP`: lane prefix,
    score, the edge and capacity text, confidence, persistence, OFI and competition terms
    (those three as texts already, ``ScoreColumns._fixed3``), the finding's own reason.
    ``%.4f`` / ``%+.3f`` / ``%.3f`` print a float as the reference's f-string specs
    ``:.4f`` / ``:+.3f`` / ``:.3f`` do (one routine, the same digits, -0.0 included)."""
    def w(v: float) -> str:
        return f"{v:g}".replace("%", "%%")

    return (f"%s%.4f%s + {w(s.w_confidence)}*conf %s + {w(s.w_persistence)}*persist "
            f"%s + {w(s.w_ofi)}*ofi %+.3f - {w(s.w_competition)}*comp %s; %s{_SEP}")


class _Fixed3(dict[float, str]):
    """float -> ``"%.3f"`` text, made on first read (not for -0.0: see ``_fixed3``)."""

    def __missing__(self, value: float) -> str:
        text = self[value] = f"{value:.3f}"
        return text


def _reformed(old: Opportunity, new: Opportunity) -> bool:
    """Whether ``new`` differs from ``old`` (a finding of the same id) at most in what
    ``ScoreColumns`` derives per scan or from ``edge_per_unit`` (checked apart): the same
    ``Leg`` objects in order (identity, no field comparisons), scanner, kind, reported lane
    and ``risk_free``, so its key, legs' codes, capacity term, lane rule and fixed
    confidence are those derived from ``old``."""
    a, b = old.legs, new.legs
    return ((a is b or (len(a) == len(b) and all(map(operator.is_, a, b))))
            and old.scanner == new.scanner and old.kind == new.kind
            and old.risk_free is new.risk_free and old.lane == new.lane)


def _take(column: np.ndarray, src: np.ndarray, fill: Any) -> np.ndarray:
    """``column[src]`` with ``fill`` where ``src`` is -1 (a finding not seen before)."""
    if len(column) == 0:
        return np.full((len(src), *column.shape[1:]), fill, dtype=column.dtype)
    out = column[src]
    out[src < 0] = fill
    return out


def _pick(items: list[Any], at: list[int]) -> list[Any]:
    """``[items[i] for i in at]``, by one ``itemgetter`` call (C, no Python per row)."""
    if len(at) < 2:
        return [items[i] for i in at]
    return list(operator.itemgetter(*at)(items))


def _gather(src: np.ndarray, miss: np.ndarray, *lists: list[Any]) -> list[list[Any]]:
    """Each of ``lists`` (the last scan's rows) gathered at ``src``, ``None`` where
    ``src`` is -1 (at ``miss``: a finding not seen before, whose row the caller fills)."""
    if not len(miss):
        at = src.tolist()
        return [_pick(items, at) for items in lists]
    if len(miss) == len(src) or not lists[0]:
        return [[None] * len(src) for _ in lists]
    at = np.where(src >= 0, src, 0).tolist()
    out = [_pick(items, at) for items in lists]
    for i in miss.tolist():  # the gather read row 0 there
        for rows in out:
            rows[i] = None
    return out


def _widen(column: np.ndarray, width: int, fill: Any) -> np.ndarray:
    """A ``(n, w)`` column padded with ``fill`` to ``width`` columns."""
    if column.shape[1] >= width:
        return column
    pad = np.full((len(column), width - column.shape[1]), fill, dtype=column.dtype)
    return np.concatenate([column, pad], axis=1)


class ScoreView(Mapping[str, Score]):
    """Opportunity id -> :class:`~argus_scanners_polymarket.ranking.Score` of one scan, made
    from its columns when first read."""

    def __init__(self, build: Callable[[], dict[str, Score]]) -> None:
        self._build = build
        self._scores: dict[str, Score] | None = None

    def _all(self) -> dict[str, Score]:
        if self._scores is None:
            self._scores = self._build()
        return self._scores

    def __getitem__(self, oid: str) -> Score:
        return self._all()[oid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        return f"ScoreView({self._all()!r})"


class ScoreColumns:
    """The incremental ``ranked``'s state: the last scan's findings as columns (module
    docstring); :meth:`rank` scores, lanes and orders one scan's findings."""

    def __init__(self, settings: RankingSettings,
                 lane_of: Callable[[Opportunity, float, float, int], tuple[str, str]]) -> None:
        """``lane_of(finding, score, confidence, streak)``: the lane rule's thresholds, for
        the findings whose lane they decide (reported executable, not risk-free)."""
        self.s = settings
        self._lane_of = lane_of
        self.rescored = 0  # findings scored afresh by the last scan (tests, benchmark)
        self.reformed = 0  # of its new findings, those a finding of the same id derived
        #: key ids beyond 4 per finding before the absent keys' ids are forgotten (tests: 0)
        self.compact_slack = 4096
        self._scan = 0
        # the last scan, aligned by position
        self._pos: dict[int, int] = {}  # id(finding) -> position (the findings are held)
        self._objs: list[Opportunity] = []
        self._out: list[Opportunity] = []  # scored copies
        self._whys: list[str] = []
        #: (opportunity id, " = edge.. cap..", the finding's own reason, and for a lane the
        #: finding fixes: lane, why, "lane=..: why; score ", risk_free of the scored copy)
        self._text: list[tuple[Any, ...]] = []
        self._keys: list[Key] = []
        # per finding, fixed: key id, E, K, confidence (NaN: ask the component),
        # legs: count, instrument codes (-1 pad), sides (+-1, 0 pad), distinct codes (-1 pad)
        self._kid = np.zeros(0, dtype=np.int64)
        self._e = np.zeros(0)
        self._k = np.zeros(0)
        self._cfix = np.zeros(0)
        self._nlegs = np.zeros(0, dtype=np.int64)
        self._code = np.zeros((0, 1), dtype=np.int64)
        self._sign = np.zeros((0, 1))
        self._uniq = np.zeros((0, 1), dtype=np.int64)
        self._rank = np.zeros(0, dtype=np.int64)  # order of the opportunity ids
        # per finding, the last scan's inputs and terms
        self._runc = np.zeros(0, dtype=np.int64)
        self._c = np.zeros(0)
        self._flows = np.zeros((0, 1))
        self._others = np.zeros(0, dtype=np.int64)
        self._terms_cols: tuple[np.ndarray, ...] = ()
        # streak per key id: its run and the scan it was last seen in
        self._kids: dict[Key, int] = {}
        self._kstreak = np.zeros(0, dtype=np.int64)
        self._kscan = np.full(0, -1, dtype=np.int64)
        # instrument codes and their touch-table rows
        self._codes: dict[str, int] = {}
        self._iids: list[str] = []
        self._code_row = np.zeros(0, dtype=np.int64)
        self._rows_for: tuple[TouchTable | None, int, int] = (None, -1, -1)
        self._template = reason_template(settings)
        #: opportunity id -> the last finding built under it and what _new_findings derived
        #: from it (reused for a new object of the same finding: same legs, kind, lane)
        self._fixed: dict[str, tuple[Any, ...]] = {}
        self._kid_epoch = 0  # moves when _compact_keys renumbers the key ids
        self._f3 = _Fixed3()

    # -- streaks across a restart ----------------------------------------------------------
    def streaks(self) -> dict[Key, int]:
        """The run of every key seen in the last scan (what a checkpoint keeps)."""
        scan, kscan, kstreak = self._scan, self._kscan, self._kstreak
        return {key: int(kstreak[kid]) for key, kid in self._kids.items()
                if kscan[kid] == scan}

    def restore_streaks(self, streaks: Mapping[Key, int]) -> None:
        """Continue ``streaks`` (:meth:`streaks` of a checkpoint): the next scan counts as
        the one after the scan they were taken at."""
        for key, run in streaks.items():
            kid = self._kid_of(key)
            if kid >= len(self._kstreak):
                grow = kid + 1 - len(self._kstreak)
                self._kstreak = np.concatenate([self._kstreak, np.zeros(grow, dtype=np.int64)])
                self._kscan = np.concatenate([self._kscan, np.full(grow, -1, dtype=np.int64)])
            self._kstreak[kid] = run
            self._kscan[kid] = self._scan

    # -- findings seen for the first time ----------------------------------------------------
    def _code_of(self, iid: str) -> int:
        code = self._codes.get(iid)
        if code is None:
            code = self._codes[iid] = len(self._iids)
            self._iids.append(iid)
        return code

    def _kid_of(self, key: Key) -> int:
        kid = self._kids.get(key)
        if kid is None:
            kid = self._kids[key] = len(self._kids)
        return kid

    def _new_findings(self, objs: list[Opportunity], comps: list[Scanner],
                      comp_of: np.ndarray, miss: np.ndarray, text: list[Any],
                      keys: list[Any]) -> None:
        """Fill the fixed columns (already gathered, ``miss`` rows unset) of new findings.

        One Python pass collects plain lists (the legs' codes and sides flattened with
        their row and column), written into the numpy columns once at the end."""
        s = self.s
        rows = miss.tolist()
        sel = list(map(objs.__getitem__, rows))
        width = max((len(o.legs) for o in sel), default=1)
        if width > self._code.shape[1]:
            self._code = _widen(self._code, width, -1)
            self._uniq = _widen(self._uniq, width, -1)
            self._sign = _widen(self._sign, width, 0.0)
            self._flows = _widen(self._flows, width, 0.0)
        reports = [hasattr(comp, "confidences") for comp in comps]
        kid, e, k, cfix, nlegs = [], [], [], [], []
        at_j, at_m, leg_code, leg_sign, u_j, u_m, u_code = [], [], [], [], [], [], []
        buy = Side.BUY
        codes, code_of, kids, kid_of = self._codes, self._code_of, self._kids, self._kid_of
        we, wk = f"{s.w_edge:g}", f"{s.w_capacity:g}"
        log_cap = math.log10(1 + s.capacity_scale)
        fixed, fixed_get = self._fixed, self._fixed.get
        for j, (i, o, ci) in enumerate(zip(rows, sel, comp_of[miss].tolist(), strict=True)):
            legs = o.legs
            oid = o.opportunity_id
            prev = fixed_get(oid)
            if prev is not None and prev[1] == ci and _reformed(prev[0], o):
                # the same finding as built before in another form (a latency finding whose
                # fair moved, a re-worded one): its key, legs, K, lane and confidence hold
                (po, _, key, ei, ki, eks, lane, why, prefix, rf, cf, legs_cs, uniq_c,
                 kid_i, epoch) = prev
                if epoch != self._kid_epoch:  # renumbered since: look the key up again
                    kid_i = kids[key] if key in kids else kid_of(key)
                self.reformed += 1
                if o.edge_per_unit != po.edge_per_unit:
                    ei = min(max(float(o.edge_per_unit) / s.edge_scale, 0.0), 1.0)
                    eks = f" = {we}*edge {ei:.3f} + {wk}*cap {ki:.3f}"
            else:
                key = (o.scanner, o.kind, tuple([(leg.instrument_id, leg.side) for leg in legs]))
                kid_i = kids[key] if key in kids else kid_of(key)
                # E and K depend on the finding alone (the reference's formulas)
                ei = min(max(float(o.edge_per_unit) / s.edge_scale, 0.0), 1.0)
                notional = sum(float(leg.limit_price * leg.quantity) for leg in legs)
                ki = min(1.0, math.log10(1 + notional) / log_cap)
                eks = f" = {we}*edge {ei:.3f} + {wk}*cap {ki:.3f}"
                if o.kind.startswith("maker_"):
                    lane, why = RESEARCH, "maker quote: needs the maker lifecycle"
                elif o.lane != EXECUTABLE:
                    lane, why = RESEARCH, f"{o.scanner} reports it as research"
                elif o.risk_free:
                    lane, why = EXECUTABLE, "risk-free"
                else:
                    lane = why = None  # the lane reads the score: decided when scored
                prefix = None if lane is None else f"lane={lane}: {why}; score "
                rf = o.risk_free and lane == EXECUTABLE
                if o.risk_free:
                    cf = 1.0
                elif reports[ci]:
                    cf = np.nan  # read each scan: the component may report another
                else:
                    cf = DEFAULT_CONFIDENCE.get(o.kind, FALLBACK_CONFIDENCE)
                legs_cs, uniq_c = [], []
                for leg in legs:
                    iid = leg.instrument_id
                    c = codes[iid] if iid in codes else code_of(iid)
                    legs_cs.append((c, 1.0 if leg.side is buy else -1.0))
                    if c not in uniq_c:
                        uniq_c.append(c)
            fixed[oid] = (o, ci, key, ei, ki, eks, lane, why, prefix, rf, cf, legs_cs, uniq_c,
                          kid_i, self._kid_epoch)
            keys[i] = key
            kid.append(kid_i)  # a reformed finding's from its former self: no key hashed
            e.append(ei)
            k.append(ki)
            text[i] = (oid, eks, strip_lane(o.reason), lane, why, prefix, rf)
            cfix.append(cf)
            nlegs.append(len(legs))
            for m, (c, sg) in enumerate(legs_cs):
                at_j.append(j)
                at_m.append(m)
                leg_code.append(c)
                leg_sign.append(sg)
            for m, c in enumerate(uniq_c):
                u_j.append(j)
                u_m.append(m)
                u_code.append(c)
        code = np.full((len(rows), self._code.shape[1]), -1, dtype=np.int64)
        uniq = code.copy()
        sign = np.zeros((len(rows), self._code.shape[1]))
        at = (np.array(at_j, dtype=np.int64), np.array(at_m, dtype=np.int64))
        code[at] = leg_code
        sign[at] = leg_sign
        uniq[np.array(u_j, dtype=np.int64), np.array(u_m, dtype=np.int64)] = u_code
        self._kid[miss] = kid
        self._e[miss] = e
        self._k[miss] = k
        self._cfix[miss] = cfix
        self._nlegs[miss] = nlegs
        self._code[miss] = code
        self._uniq[miss] = uniq
        self._sign[miss] = sign

    # -- one scan ------------------------------------------------------------------------
    def rank(self, market: MarketState, ts_ns: int, comps: list[Scanner],
             found: Sequence[tuple[int, list[Opportunity]]], table: TouchTable,
             flows: FlowColumn, fallback: Callable[[str], float]) -> list[Opportunity]:
        """``found`` (component index, its unstamped findings) scored, laned, ordered."""
        s = self.s
        self._scan += 1
        self.reformed = 0
        objs: list[Opportunity] = []
        lens = []
        for ci, lst in found:
            objs.extend(lst)
            lens.append((ci, len(lst)))
        n = len(objs)
        comp_of = np.repeat(np.array([ci for ci, _ in lens], dtype=np.int64),
                            np.array([m for _, m in lens], dtype=np.int64))
        # the same findings in the same places (a scan of an unchanged state): no gathers.
        # list == compares by identity first, in C; a finding equal but not identical to
        # the one in its place is as good (everything kept is a function of its fields)
        same = objs == self._objs
        if same:
            objs = self._objs  # the held ones: the identities in self._pos stay valid
            src = np.arange(n)
        else:
            src = np.fromiter(map(self._pos.get, map(id, objs), repeat(-1)), dtype=np.int64,
                              count=n)
        miss = np.flatnonzero(src < 0)
        text: list[Any]
        keys: list[Any]
        whys: list[Any]
        prev_out: list[Any]
        if same:
            text, keys, prev_out, whys = (self._text, self._keys, list(self._out),
                                          list(self._whys))
        else:
            text, keys, prev_out, whys = _gather(src, miss, self._text, self._keys,
                                                 self._out, self._whys)
        old_inputs = (self._runc, self._c, self._flows, self._others)
        self._kid = _take(self._kid, src, 0)
        self._e, self._k = _take(self._e, src, 0.0), _take(self._k, src, 0.0)
        self._cfix = _take(self._cfix, src, 0.0)
        self._nlegs = _take(self._nlegs, src, 0)
        self._code, self._uniq = _take(self._code, src, -1), _take(self._uniq, src, -1)
        self._sign = _take(self._sign, src, 0.0)
        self._flows = old_inputs[2]
        if len(miss):
            self._new_findings(objs, comps, comp_of, miss, text, keys)
        width = self._code.shape[1]
        old_flows = _widen(self._flows, width, 0.0)

        # streak: the previous scan's run of the key plus one
        kid = self._kid
        if len(self._kids) > len(self._kstreak):
            grow = len(self._kids) - len(self._kstreak)
            self._kstreak = np.concatenate([self._kstreak, np.zeros(grow, dtype=np.int64)])
            self._kscan = np.concatenate([self._kscan, np.full(grow, -1, dtype=np.int64)])
        run = np.where(self._kscan[kid] == self._scan - 1, self._kstreak[kid], 0) + 1
        self._kstreak[kid] = run
        self._kscan[kid] = self._scan
        if len(self._kids) > 4 * n + self.compact_slack:
            self._compact_keys(keys)

        # confidence: fixed, or what the component reports
        c = self._cfix.copy()
        for i in np.flatnonzero(np.isnan(c)).tolist():
            o = objs[i]
            c[i] = reported_confidence(
                getattr(comps[comp_of[i]], "confidences", {}).get(o.opportunity_id), o.kind)

        # the legs' OFI: the shared flow column at the legs' rows, else a reading
        code = self._code
        valid = code >= 0
        rows = np.where(valid, self._rows_of(table)[np.maximum(code, 0)], -1)
        used_rows = rows[rows >= 0]  # np.unique's sorted distinct rows, by a bincount
        values = flows.update(market, table.ids, table.index, ts_ns, np.flatnonzero(
            np.bincount(used_rows, minlength=len(table)) if len(used_rows) else []))
        imb = np.where(rows >= 0, values[np.maximum(rows, 0)], 0.0)
        for i, m in np.argwhere(valid & (rows < 0)).tolist():
            imb[i, m] = fallback(self._iids[code[i, m]])
        flow = np.where(valid, self._sign * imb, 0.0)
        total = np.zeros(n)
        for m in range(width):  # Python's sum(): 0.0 + f0 + f1 + ..., in leg order
            total = total + flow[:, m]
        ofi = np.where(self._nlegs > 0, total / np.maximum(self._nlegs, 1), 0.0)

        # competition: the other findings on any of the same instruments
        uniq = self._uniq
        used = uniq >= 0
        users = np.bincount(uniq[used], minlength=len(self._iids))
        others = (np.where(used, users[np.maximum(uniq, 0)] - 1, 0).max(axis=1)
                  if n else np.zeros(0, dtype=np.int64))

        # the score, as the reference computes it (same operations, same order)
        cap, ccap = s.persistence_cap, s.competition_cap
        p = np.minimum(run, cap) / cap
        x = np.minimum(others, ccap) / ccap
        score = (s.w_edge * self._e + s.w_capacity * self._k + s.w_confidence * c
                 + s.w_persistence * p + s.w_ofi * ofi - s.w_competition * x)

        # rescore what is new or whose inputs moved; the rest keep their objects
        runc = np.minimum(run, max(cap, s.executable_min_persistence or 0))
        changed = src < 0
        hit = ~changed
        if hit.any():
            h = src[hit]
            changed[hit] = ((old_inputs[0][h] != runc[hit]) | (old_inputs[1][h] != c[hit])
                            | (old_flows[h] != flow[hit]).any(axis=1)
                            | (old_inputs[3][h] != others[hit]))
        self._runc, self._c, self._flows, self._others = runc, c, flow, others
        out: list[Any] = prev_out
        redo = np.flatnonzero(changed)
        self.rescored = len(redo)
        if len(redo):
            self._rescore(redo, objs, out, whys, text, ts_ns,
                          (score, c, p, ofi, x, run))

        order = np.lexsort((self._order_ranks(src, miss, text), -score)).tolist()
        self._objs, self._out, self._whys, self._text, self._keys = objs, out, whys, text, keys
        if not same:
            self._pos = dict(zip(map(id, objs), range(n), strict=True))
        if len(self._fixed) > 2 * n + 1024:  # forget the ids no longer found
            fixed = self._fixed
            self._fixed = {t[0]: fixed[t[0]] for t in text if t[0] in fixed}
        self._terms_cols = (self._e, self._k, c, p, ofi, x, score)
        return _pick(out, order)

    def _rescore(self, redo: np.ndarray, objs: list[Opportunity], out: list[Any],
                 whys: list[Any], text: list[Any], ts_ns: int,
                 cols: tuple[np.ndarray, ...]) -> None:
        """New scored copies of the findings at ``redo``: the lanes the score decides
        first, then every reason formatted in one batch and the copies made by one
        ``map`` (no per-finding Python loop but for those lanes)."""
        score, c, p, ofi, x, run = (col[redo] for col in cols)
        c_text, p_text, x_text = self._fixed3(c), self._fixed3(p), self._fixed3(x)
        score, c, ofi, run = score.tolist(), c.tolist(), ofi.tolist(), run.tolist()
        rows = redo.tolist()
        sel = list(map(objs.__getitem__, rows))
        _ids, eks, tails, lanes, new_whys, prefixes, rfs = map(
            list, zip(*map(text.__getitem__, rows), strict=True))
        for j in [j for j, lane in enumerate(lanes) if lane is None]:
            o = sel[j]  # the lane reads the score (and confidence, streak): decided now
            lane, why = self._lane_of(o, score[j], c[j], run[j])
            lanes[j], new_whys[j] = lane, why
            prefixes[j] = f"lane={lane}: {why}; score "
            rfs[j] = o.risk_free and lane == EXECUTABLE
        reasons = self._reasons(prefixes, score, eks, c_text, p_text, ofi, x_text, tails)
        copies = map(_scored_copy, sel, repeat(ts_ns), lanes, rfs, score, reasons)
        if len(rows) == len(out):  # every finding (the persistence ramp): whole lists
            out[:] = copies
            whys[:] = new_whys
            return
        for i, o, why in zip(rows, copies, new_whys, strict=True):
            out[i] = o
            whys[i] = why

    def _fixed3(self, column: np.ndarray) -> list[str]:
        """``f"{v:.3f}"`` of each value, memoised per value: a confidence, persistence or
        competition term takes few distinct values, so most rows cost a dict hit instead
        of a float formatting.  A column holding -0.0 (which a dict would read as 0.0, and
        prints "-0.000") is formatted row by row."""
        if np.signbit(column[column == 0]).any():
            return [f"{v:.3f}" for v in column.tolist()]
        memo = self._f3
        if len(memo) > 4096:  # continuous confidences (a forecast's): bounded
            memo.clear()
        return list(map(memo.__getitem__, column.tolist()))

    def _reasons(self, *columns: list[Any]) -> list[str]:
        """Each row's reason: ``self._template`` over ``(prefix, score, edge-and-capacity
        text, confidence, persistence, OFI, competition, own reason)`` (the confidence,
        persistence and competition as :meth:`_fixed3` texts), all rows in one ``%`` call
        split at :data:`_SEP` (one row at a time if some text holds it)."""
        n = len(columns[0])
        rows = zip(*columns, strict=True)
        parts = (self._template * n % tuple(chain.from_iterable(rows))).split(_SEP)
        if len(parts) == n + 1:
            del parts[-1]  # after the last separator
            return parts
        one = self._template[:-len(_SEP)]
        return [one % row for row in zip(*columns, strict=True)]

    def _order_ranks(self, src: np.ndarray, miss: np.ndarray, text: list[Any]) -> np.ndarray:
        """A rank per finding that orders the opportunity ids (kept across scans: the
        seen ones keep their relative order, new ones are placed by bisection)."""
        n = len(src)
        rank = _take(self._rank, src, -1)
        if len(miss):
            seen = np.flatnonzero(src >= 0)
            by_rank = seen[np.argsort(rank[seen], kind="stable")]
            ids = [text[i][0] for i in by_rank.tolist()]
            new = sorted((text[i][0], i) for i in miss.tolist())
            at = np.array([bisect.bisect_left(ids, oid) for oid, _ in new], dtype=np.int64)
            rank = np.empty(n, dtype=np.int64)
            # a seen id moves up by the new ids placed at or before it
            rank[by_rank] = np.arange(len(by_rank)) + np.searchsorted(
                at, np.arange(len(by_rank)), side="right")
            rank[np.array([i for _, i in new], dtype=np.int64)] = at + np.arange(len(new))
        self._rank = rank
        return rank

    def _compact_keys(self, keys: list[Key]) -> None:
        """Forget the key ids of keys absent from this scan (their streak is over)."""
        kids: dict[Key, int] = {}
        for key in keys:
            kids.setdefault(key, len(kids))
        old = np.array([self._kids[key] for key in kids], dtype=np.int64)
        self._kstreak, self._kscan = self._kstreak[old], self._kscan[old]
        self._kid = np.array([kids[key] for key in keys], dtype=np.int64)
        self._kids = kids
        self._kid_epoch += 1

    def _rows_of(self, table: TouchTable) -> np.ndarray:
        """Each instrument code's row in ``table`` (-1: no book), re-read when the table or
        its length or the codes changed."""
        index = table.index
        if self._rows_for[:2] != (table, len(table)):
            self._rows_for = (table, len(table), 0)
            self._code_row = np.zeros(0, dtype=np.int64)
        done = self._rows_for[2]
        if done < len(self._iids):  # new codes only
            self._code_row = np.concatenate([self._code_row, np.array(
                [index.get(iid, -1) for iid in self._iids[done:]], dtype=np.int64)])
            self._rows_for = (table, len(table), len(self._iids))
        return self._code_row

    # -- the scores of the last scan ---------------------------------------------------------
    def view(self) -> ScoreView:
        """The last scan's ``opportunity id -> Score`` (made when read)."""
        cols = self._terms_cols
        text, out, whys = self._text, self._out, self._whys

        def build() -> dict[str, Score]:
            if not cols:
                return {}
            e, k, c, p, ofi, x, score = (col.tolist() for col in cols)
            return {text[i][0]: Score(e[i], k[i], c[i], p[i], ofi[i], x[i], score[i],
                                      out[i].lane, whys[i])
                    for i in range(len(text))}

        return ScoreView(build)
