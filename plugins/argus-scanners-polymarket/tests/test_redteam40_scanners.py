"""Round 40 red team of the Polymarket scanners (``maker`` / ``pm_maker`` left out: they
were attacked in round 38).

Found (each observed on the old code):

* **fees moved, findings did not**: the touch-table path reused a finding built on the fee
  schedule read at the last instrument change; a schedule that moved without one (a
  venue's fee change, a ``[paper]`` override swapped) left ``resolution``, ``value``,
  ``latency`` and ``correlation`` findings priced at the old fee (a 5 % taker fee kept
  a near-certain finding at its fee-free profit; the reference loop saw the loss);
* **settled tokens**: ``resolution`` reported a resolved token ``executable`` and
  risk-free, and ``value`` (and the others) priced a settled token's book, while the
  core's market gate refuses every order on a settled instrument (a veto each time the
  book moved).  A resolved token is now a research flag; no other scanner prices one;
* **constraints the wrong way round**: "not above $100k" => "not above $90k" (the reverse
  holds), "above -1%" read as "above 1%" (the sign dropped: "GDP above -1%" <= "above
  -2%" was reversed), and "BTC above $100k *or* ETH above $100k" => "BTC above $90k *and*
  ETH above $90k" were *proven* constraints (traded with ``trade_proven``): a negated
  question, a negative amount and a different conjunction now bound nothing;
* **stale**: the others' mids summing to 1.3 valued a NO at 1.3 ("fair 1.3", 0.35 a share
  on an ask of 0.95 for a token paying at most 1); an event with a placeholder outcome
  or a token listed twice was read as exhaustive;
* **correlation**: a token listed as one market's YES and another's NO made a basket
  whose two legs were one book (its depth counted twice);
* **OFI**: a book state stamped before the window (time going backwards on a feed)
  counted in the window when it sat behind a newer one (90 where the window held 20);
* **latency**: an ``open_price`` of 0, a negative or NaN one, or text crashed the scan
  (``ZeroDivisionError``, ``ValueError``, ``decimal.InvalidOperation``);
* **settings** made in Python (not through the TOML loader) took ``persistence_scans=2.5``,
  ``trade_proven="false"`` (a non-empty string: proven constraints traded),
  ``max_size=7.5`` (a float: the walk raised), ``pairs={"BTC": 5}``: each is refused now
  naming the setting, or read as its exact ``Decimal``.

Checked and sound: OFI against an independent CKS computation (hypothesis: levels 1-3,
decays, trades, windows), the joint correlation walk against a lot-by-lot brute force, and
the ranking's ties and order against its reference over seeded random books.
"""

from __future__ import annotations

import math
import random
from decimal import ROUND_DOWN, Decimal
from typing import Any

import numpy as np
import pytest
from argus_scanners_polymarket.config import (
    CorrelationSettings,
    LatencySettings,
    MakerStrategySettings,
    PmScannersSettings,
    RankingSettings,
    ResolutionSettings,
    SpikeSettings,
    StaleSettings,
    ValueSettings,
)
from argus_scanners_polymarket.constraints import implication
from argus_scanners_polymarket.correlation import CorrelationScanner, walk_pair
from argus_scanners_polymarket.fixtures import MarketBuilder, updown_pair
from argus_scanners_polymarket.latency import LatencyScanner
from argus_scanners_polymarket.ofi import OfiTracker
from argus_scanners_polymarket.ranking import RankedScanner
from argus_scanners_polymarket.resolution import ResolutionScanner
from argus_scanners_polymarket.stale import StaleQuoteScanner
from argus_scanners_polymarket.value import BaselineForecaster, ValueScanner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from argus_core import (
    Bar,
    ConfigError,
    Event,
    FeeSchedule,
    Forecast,
    Forecaster,
    MarketState,
    Opportunity,
    Outcome,
    Side,
    Trade,
)
from argus_core.config import structure

D = Decimal
S = 10**9
H = 3600 * S
NOW = 1_000 * H
BOTH = pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "reference"])


def _ids(found: list[Opportunity]) -> list[tuple[str, Decimal]]:
    return [(o.opportunity_id, o.expected_profit) for o in found]


class _Fees:
    """A market's fee schedules that can move with no instrument update."""

    def __init__(self) -> None:
        self.by_id: dict[str, FeeSchedule] = {}

    def __call__(self, iid: str) -> FeeSchedule:
        return self.by_id.get(iid, FeeSchedule())


class _Fixed(Forecaster):
    name = "fixed"

    def forecast(self, instrument_id: str, market: MarketState, ts_ns: int) -> Forecast:
        return Forecast(p_win=0.9, confidence=0.9)


# --- fees that move without an instrument update -----------------------------------------

def _near_certain(fees: _Fees) -> tuple[MarketBuilder, str]:
    b = MarketBuilder()
    b.market.fees = fees
    ((yes, no),) = b.event("N", ["n"], neg_risk=False, end_ts_ns=NOW + H)
    b.book(yes, [(0.96, 10)], [(0.97, 100)], ts_ns=NOW)
    b.book(no, [(0.02, 10)], [(0.04, 100)], ts_ns=NOW)
    b.market.now_ns = NOW
    return b, yes


def test_a_fee_change_reprices_a_cached_resolution_finding() -> None:
    """0.97 asked for a near-certain token: 3.00 on 100 shares fee-free; a 5 % taker fee
    (0.0485 a share) makes it a loss.  Before: the incremental scan kept reporting 3.00."""
    fees = _Fees()
    b, yes = _near_certain(fees)
    inc = ResolutionScanner()
    assert [o.expected_profit for o in inc.scan(b.market, NOW)] == [D(3)]
    fees.by_id[yes] = FeeSchedule(taker_bps=D(500))
    assert ResolutionScanner(incremental=False).scan(b.market, NOW + 1) == []
    assert inc.scan(b.market, NOW + 1) == []
    fees.by_id[yes] = FeeSchedule(taker_bps=D(50))  # 0.00485 a share: still a finding
    want = _ids(ResolutionScanner(incremental=False).scan(b.market, NOW + 2))
    assert want and _ids(inc.scan(b.market, NOW + 2)) == want


def test_a_fee_change_reprices_value_correlation_and_latency() -> None:
    fees = _Fees()
    b = MarketBuilder()
    b.market.fees = fees
    (_a_yes, a_no), (b_yes, _b_no) = b.event(
        "C", ["A", "B"], neg_risk=False,
        questions=["Will the Fed cut rates by 50 bps or more at the March 2026 meeting?",
                   "Will the Fed cut rates by at least 25 bps at the March 2026 meeting?"])
    b.book(b_yes, [(0.30, 100)], [(0.40, 100)], ts_ns=NOW)
    b.book(a_no, [(0.40, 100)], [(0.50, 100)], ts_ns=NOW)
    up, _down = updown_pair(b, "w", "BTC", NOW - 300 * S, NOW + 600 * S, open_price=100.0)
    b.book(up, [(0.48, 100)], [(0.50, 100)], ts_ns=NOW)
    b.market.apply(Bar("kraken:BTC/USD", NOW - 10 * S, 101.0, 101.0, 101.0, 101.0, 1.0))
    b.market.forecasters = {"fixed": _Fixed()}
    pm = PmScannersSettings(value=ValueSettings(forecaster="fixed"),
                            correlation=CorrelationSettings(trade_proven=True),
                            latency=LatencySettings(pairs={"BTC": "kraken:BTC/USD"}))
    makers: list[Any] = [ValueScanner, CorrelationScanner, LatencyScanner]
    scanners = [(m(pm), m(pm, incremental=False)) for m in makers]
    for inc, ref in scanners:
        got = inc.scan(b.market, NOW)
        assert got and _ids(got) == _ids(ref.scan(b.market, NOW)), type(inc).__name__
    for iid in (b_yes, a_no, up):  # 20 % taker fees: every basket above loses
        fees.by_id[iid] = FeeSchedule(taker_bps=D(2000))
    for inc, ref in scanners:
        want = _ids(ref.scan(b.market, NOW))
        assert _ids(inc.scan(b.market, NOW)) == want, type(inc).__name__
    assert _ids(scanners[1][0].scan(b.market, NOW)) == []  # the basket costs over 1 now


# --- settled tokens ---------------------------------------------------------------------------

@BOTH
def test_a_resolved_token_is_research_and_no_other_scanner_prices_it(incremental: bool
                                                                      ) -> None:
    b = MarketBuilder()
    ((a, _),) = b.event("E", ["A"], neg_risk=False)
    b.book(a, bids=[(0.30, 100)], asks=[(0.40, 100)])
    b.settle(a, 1)
    b.market.forecasters = {"fixed": _Fixed()}
    (res,) = ResolutionScanner(incremental=incremental).scan(b.market, 5)
    assert (res.kind, res.lane, res.risk_free) == ("resolved", "research", False)
    assert "the core refuses orders on a settled instrument" in res.reason
    value = ValueScanner(ValueSettings(forecaster="fixed", executable_min_edge=D("0.01"),
                                       executable_min_confidence=0.5),
                         incremental=incremental)
    assert value.scan(b.market, 5) == []
    ranked = RankedScanner(PmScannersSettings(
        value=ValueSettings(forecaster="fixed", executable_min_edge=D("0.01"),
                            executable_min_confidence=0.5)), incremental=incremental)
    assert [(o.kind, o.lane) for o in ranked.scan(b.market, 5)] == [("resolved", "research")]


# --- constraints ------------------------------------------------------------------------------

@pytest.mark.parametrize(("a", "b"), [
    ("Will BTC not be above $100k on Dec 31?", "Will BTC not be above $90k on Dec 31?"),
    ("BTC won't be above $100k on Dec 31", "BTC won't be above $90k on Dec 31"),
    ("Will BTC never be above $100k on Dec 31?", "Will BTC never be above $90k on Dec 31?"),
    ("Will BTC fail to close above $100k?", "Will BTC fail to close above $90k?"),
    ("Will the Fed not cut rates by 50 bps or more?",
     "Will the Fed not cut rates by 25 bps or more?"),
    ("Will GDP growth be above -1%?", "Will GDP growth be above -2%?"),
    ("Will GDP growth be below -1%?", "Will GDP growth be below -2%?"),
    ("Will BTC be above -5%?", "Will BTC be above -3%?"),
    ("Will BTC be above $100k or ETH be above $100k on Dec 31?",
     "Will BTC be above $90k and ETH be above $90k on Dec 31?"),
    ("Will Trump not win the presidency in 2028?",
     "Will Trump win the 2028 Republican nomination?"),
])
def test_a_negated_signed_or_conjoined_question_bounds_nothing(a: str, b: str) -> None:
    assert implication("A", a, "B", b) is None
    assert implication("B", b, "A", a) is None


@pytest.mark.parametrize(("a", "b"), [
    ("Will BTC be above $100k on Dec 31?", "Will BTC be above $90k on Dec 31?"),
    ("Will BTC be above $100k or ETH be above $100k on Dec 31?",
     "Will BTC be above $90k or ETH be above $90k on Dec 31?"),
    ("Will the 10-year yield be above 5%?", "Will the 10-year yield be above 4%?"),
    ("Will Trump's approval rating be no less than 40%?",
     "Will Trump's approval rating be no less than 35%?"),
    ("Will the Fed cut rates by 50 bps or more at the March 2026 meeting?",
     "Will the Fed cut rates by at least 25 bps at the March 2026 meeting?"),
])
def test_the_nested_controls_still_hold(a: str, b: str) -> None:
    c = implication("A", a, "B", b)
    assert c is not None and (c.antecedent, c.consequent, c.proven) == ("A", "B", True)


# --- stale --------------------------------------------------------------------------------------

def _stale_market(names: list[str], **event: Any) -> tuple[MarketBuilder, list[tuple[str, str]]]:
    b = MarketBuilder()
    ids = b.event("E", names, **event)
    for yes, _no in ids:
        b.book(yes, [(0.29, 100)], [(0.31, 100)], ts_ns=1 * S)
    b.book(ids[0][1], [(0.60, 100)], [(0.95, 100)], ts_ns=1 * S)
    return b, ids


def _moved(b: MarketBuilder, ids: list[tuple[str, str]]) -> None:
    for yes, _no in ids[1:]:  # the others' mids: 0.65 each, their sum 1.3
        b.book(yes, [(0.64, 100)], [(0.66, 100)], ts_ns=3 * S)


@BOTH
def test_a_stale_token_is_never_valued_above_one(incremental: bool) -> None:
    b, ids = _stale_market(["a", "b", "c"])
    scanner = StaleQuoteScanner(StaleSettings(min_age_s=0, persistence_scans=1),
                                incremental=incremental)
    scanner.scan(b.market, 2 * S)
    _moved(b, ids)
    (o,) = scanner.scan(b.market, 100 * S)
    assert o.legs[0].instrument_id == ids[0][1]  # NO of "a" at 0.95, worth at most 1
    assert o.expected_profit == D(5) and o.edge_per_unit == D("0.05")
    assert "fair 1 " in o.reason


@BOTH
@pytest.mark.parametrize("how", ["placeholder", "repeated"])
def test_a_stale_event_that_is_not_what_it_lists_gives_nothing(incremental: bool,
                                                               how: str) -> None:
    b, ids = _stale_market(["a", "b", "c"])
    outcomes = [Outcome(f"o{i}", y, n, placeholder=how == "placeholder" and i == 2)
                for i, (y, n) in enumerate(ids)]
    if how == "repeated":
        outcomes.append(Outcome("again", *ids[1]))
    b.market.apply(Event("polymarket", "E", "E", tuple(outcomes), neg_risk=True))
    scanner = StaleQuoteScanner(StaleSettings(min_age_s=0, persistence_scans=1),
                                incremental=incremental)
    scanner.scan(b.market, 2 * S)
    _moved(b, ids)
    assert scanner.scan(b.market, 100 * S) == []


# --- correlation ----------------------------------------------------------------------------

@BOTH
def test_a_token_listed_as_two_markets_sides_is_no_basket(incremental: bool) -> None:
    """Market A is (YES a, NO x); market B lists x as its YES: the basket YES(B) + NO(A)
    is one book bought twice."""
    b = MarketBuilder()
    ((_a_yes, x),) = b.event("A", ["A"], neg_risk=False, questions=[
        "Will the Fed cut rates by 50 bps or more at the March 2026 meeting?"])
    b.market.apply(Event("polymarket", "B:0", "B", (
        Outcome("Yes", x, "polymarket:other"), Outcome("No", "polymarket:other", x))))
    b.market.apply(b.market.events.pop("A:0"))  # B listed first: A's NO is B's YES
    b.market.add_instruments([attrs_with_question(b.market, x, (
        "Will the Fed cut rates by at least 25 bps at the March 2026 meeting?"))])
    b.book(x, [(0.20, 500)], [(0.30, 500)])
    scanner = CorrelationScanner(CorrelationSettings(trade_proven=True),
                                 incremental=incremental)
    assert scanner.scan(b.market, 1) == []


def attrs_with_question(market: MarketState, iid: str, question: str) -> Any:
    inst = market.instruments[iid]
    return type(inst)(inst.venue, inst.symbol, kind=inst.kind, tick_size=inst.tick_size,
                      lot_size=inst.lot_size, min_size=inst.min_size,
                      meta={**inst.meta, "question": question})


_CENTS = st.integers(1, 99).map(lambda k: k / 100)
_SIZES = st.integers(1, 4000).map(lambda k: k / 100)


@st.composite
def _pair(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int, Decimal]:
    ladders = []
    for _ in range(2):
        levels = dict(draw(st.lists(st.tuples(_CENTS, _SIZES), min_size=1, max_size=4)))
        ladders.append(np.array(sorted(levels.items()), dtype=np.float64).reshape(-1, 2))
    return (ladders[0], ladders[1], draw(st.sampled_from([0, 100, 500])),
            draw(st.sampled_from([D(0), D("0.005"), D("0.05")])))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(_pair())
def test_the_joint_walk_equals_a_lot_by_lot_brute_force(case: tuple) -> None:
    """``walk_pair`` against buying one lot (0.01) of each leg at a time while the next
    lot earns ``min_edge`` (and > 0) after unit fees; a level's remainder below a lot is
    left (as the walk leaves it)."""
    x, y, bps, min_edge = case
    schedule = FeeSchedule(taker_bps=D(bps))
    got = walk_pair((x, y), (schedule, schedule), min_edge)
    lot = D("0.01")
    levels = [[(D(repr(p)), D(repr(q))) for p, q in lad.tolist()] for lad in (x, y)]
    at, left = [0, 0], [levels[0][0][1], levels[1][0][1]]
    taken: list[dict[int, Decimal]] = [{}, {}]
    qty = D(0)
    while at[0] < len(levels[0]) and at[1] < len(levels[1]):
        if any(left[k] < lot for k in (0, 1)):
            for k in (0, 1):
                if left[k] < lot:
                    at[k] += 1
                    if at[k] < len(levels[k]):
                        left[k] = levels[k][at[k]][1]
            continue
        prices = [levels[k][at[k]][0] for k in (0, 1)]
        unit = 1 - sum(prices) - sum(schedule.unit_fee(p) for p in prices)
        if unit <= 0 or unit < min_edge:
            break
        qty += lot
        for k in (0, 1):
            left[k] -= lot
            taken[k][at[k]] = taken[k].get(at[k], D(0)) + lot
    value = sum((levels[k][i][0] * q for k in (0, 1) for i, q in taken[k].items()), D(0))
    fees = sum((schedule.fee(levels[k][i][0], q, maker=False)
                for k in (0, 1) for i, q in taken[k].items()), D(0))
    assert (got.quantity, got.value, got.fees) == (qty, value, fees)


# --- OFI against an independent computation ----------------------------------------------

def _cks(prev: tuple[list, list], cur: tuple[list, list], levels: int, decay: float) -> float:
    """Cont-Kukanov-Stoikov e_n written out independently: a missing bid is (0, 0), a
    missing ask (inf, 0); level m weighted decay ** m."""
    total = 0.0
    def at(side: list, m: int, bid: bool) -> tuple[float, float]:
        return side[m] if m < len(side) else ((0.0, 0.0) if bid else (math.inf, 0.0))

    for m in range(levels):
        (pb0, qb0), (pb1, qb1) = at(prev[0], m, True), at(cur[0], m, True)
        (pa0, qa0), (pa1, qa1) = at(prev[1], m, False), at(cur[1], m, False)
        e = 0.0
        if pb1 >= pb0:
            e += qb1
        if pb1 <= pb0:
            e -= qb0
        if pa1 <= pa0:
            e -= qa1
        if pa1 >= pa0:
            e += qa0
        total += decay ** m * e
    return total


@st.composite
def _book_states(draw: st.DrawFn) -> list[tuple[int, list, list]]:
    n = draw(st.integers(1, 12))
    out = []
    t = 0
    for _ in range(n):
        t += draw(st.integers(1, 40)) * S
        mid = draw(st.integers(20, 80))
        bids = [((mid - 1 - k) / 100, float(draw(st.integers(1, 50))))
                for k in range(draw(st.integers(0, 3)))]
        asks = [((mid + 1 + k) / 100, float(draw(st.integers(1, 50))))
                for k in range(draw(st.integers(0, 3)))]
        out.append((t, bids, asks))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(_book_states(), st.integers(1, 3), st.sampled_from([0.5, 1.0]),
       st.sampled_from([0.0, 1.0, 0.5]), st.integers(10, 200),
       st.lists(st.tuples(st.integers(1, 400), st.integers(1, 30), st.booleans()),
                max_size=5))
def test_ofi_equals_an_independent_cks_computation(states: list, levels: int, decay: float,
                                                   weight: float, window: int,
                                                   trades: list) -> None:
    tracker = OfiTracker(window, levels=levels, level_decay=decay, trade_weight=weight)
    for t, bids, asks in states:
        tracker.on_book("x", np.array(bids).reshape(-1, 2), np.array(asks).reshape(-1, 2), t)
    for t, size, buy in sorted(trades):
        tracker.on_trade(Trade("x", t * S, "0.5", str(size), Side.BUY if buy else Side.SELL))
    now = states[-1][0] + 5 * S
    lo = now - window * S
    # the terms: a state whose top levels did not move is no transition (and no depth)
    steps: list[tuple[int, float, float]] = []
    last = None
    for t, bids, asks in states:
        top = (bids[:levels], asks[:levels])
        depth = ((bids[0][1] if bids else 0.0) + (asks[0][1] if asks else 0.0)) / 2
        if last is None:
            steps.append((t, 0.0, depth))
        elif top != last:
            steps.append((t, _cks(last, top, levels, decay), depth))
        else:
            continue
        last = top
    inside = [s for s in steps if lo < s[0] <= now]
    tape = [(t * S, size if buy else -size) for t, size, buy in trades if lo < t * S <= now]
    book = sum(e for _t, e, _d in inside)
    flow = book + weight * sum(q for _t, q in tape)
    gross = sum(abs(e) for _t, e, _d in inside) + weight * sum(abs(q) for _t, q in tape)
    r = tracker.reading("x", now)
    assert r is not None
    assert r.book_ofi == pytest.approx(book) and r.flow == pytest.approx(flow)
    assert r.gross == pytest.approx(gross)
    assert r.imbalance == pytest.approx(flow / gross if gross > 0 else 0.0)
    if inside:
        assert r.depth == pytest.approx(sum(d for _t, _e, d in inside) / len(inside))


def test_an_ofi_term_stamped_before_the_window_never_counts() -> None:
    a = np.asarray
    tracker = OfiTracker(60)
    tracker.on_book("x", a([[0.5, 10]]), a([[0.6, 10]]), 100 * S)
    tracker.on_book("x", a([[0.5, 30]]), a([[0.6, 10]]), 200 * S)  # +20
    tracker.on_book("x", a([[0.5, 100]]), a([[0.6, 10]]), 10 * S)  # +70, 220 s old
    for _ in range(2):  # reading_at's memo too
        r = tracker.reading_at("x", 230 * S)
        assert r is not None and (r.book_ofi, r.transitions, r.depth) == (20.0, 1, 20.0)


# --- latency --------------------------------------------------------------------------------------

@BOTH
@pytest.mark.parametrize("open_price", [0.0, -5.0, math.nan, math.inf, "", "abc", True])
def test_an_unusable_open_price_skips_the_token(incremental: bool, open_price: Any) -> None:
    b = MarketBuilder()
    t0 = 1_700_000_000 * S
    up, down = updown_pair(b, "w", "BTC", t0, t0 + 900 * S, open_price=100.0)
    for iid in (up, down):
        inst = b.market.instruments[iid]
        b.market.add_instruments([type(inst)(
            inst.venue, inst.symbol, kind="binary", tick_size="0.01", lot_size="0.01",
            min_size="5", meta={**inst.meta, "open_price": open_price})])
        b.book(iid, [(0.48, 100)], [(0.50, 100)], ts_ns=t0 + 300 * S)
    b.market.apply(Bar("kraken:BTC/USD", t0 + 290 * S, 101.0, 101.0, 101.0, 101.0, 1.0))
    scanner = LatencyScanner(LatencySettings(pairs={"BTC": "kraken:BTC/USD"}),
                             incremental=incremental)
    assert scanner.scan(b.market, t0 + 300 * S) == []


# --- settings ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("cls", "key", "value"), [
    (StaleSettings, "persistence_scans", 2.5),
    (StaleSettings, "persistence_scans", True),
    (SpikeSettings, "persistence_scans", 1.5),
    (CorrelationSettings, "max_per_event", 1.5),
    (CorrelationSettings, "trade_proven", "false"),
    (CorrelationSettings, "trade_proven", 1),
    (RankingSettings, "persistence_cap", 2.5),
    (RankingSettings, "executable_min_persistence", 1.5),
    (LatencySettings, "min_vol_samples", 2.5),
    (LatencySettings, "pairs", {"BTC": 5}),
    (LatencySettings, "pairs", {"BTC": "BTC"}),
    (ValueSettings, "forecaster", 5),
    (ValueSettings, "forecaster", ""),
    (ResolutionSettings, "max_size", "7.5"),
    (ResolutionSettings, "near_certain_price", 1),
    (ResolutionSettings, "min_edge", math.nan),
    (MakerStrategySettings, "allow_short", "no"),
])
def test_a_python_setting_of_the_wrong_type_is_refused_naming_it(cls: type, key: str,
                                                                 value: Any) -> None:
    with pytest.raises(ConfigError, match=key):
        cls(**{key: value})


def test_a_python_float_or_int_amount_is_read_as_its_decimal() -> None:
    s = ResolutionSettings(max_size=7.555, min_edge=0.01, max_hours_to_expiry=24)
    assert (s.max_size, s.min_edge, s.max_hours_to_expiry) == (D("7.555"), D("0.01"), D(24))
    assert StaleSettings(min_gap=0.02).min_gap == D("0.02")
    assert SpikeSettings(window_s=D(300)).window_s == 300.0
    b = MarketBuilder()
    ((yes, _no),) = b.event("R", ["r"], neg_risk=False)
    b.book(yes, [], [(0.97, 100)])
    b.settle(yes, 1)
    (o,) = ResolutionScanner(ResolutionSettings(max_size=7.555)).scan(b.market, 1)
    assert o.max_size == D("7.55")  # whole lots: before, a float cap raised in the walk


@pytest.mark.parametrize(("table", "key"), [
    ({"correlation": {"max_per_event": 0}}, "max_per_event"),
    ({"correlation": {"similarity_threshold": 1.5}}, "similarity_threshold"),
    ({"stale": {"min_age_s": -1.0}}, "min_age_s"),
    ({"spike": {"reversion_fraction": 0}}, "reversion_fraction"),
    ({"resolution": {"near_certain_price": 1.0}}, "near_certain_price"),
    ({"latency": {"max_spot_age_s": math.inf}}, "max_spot_age_s"),
    ({"latency": {"pairs": {"BTC": "BTC"}}}, "pairs"),
    ({"ranked": {"edge_scale": 0}}, "edge_scale"),
    ({"ranked": {"w_ofi": math.nan}}, "w_ofi"),
    ({"value": {"forecaster": ""}}, "forecaster"),
])
def test_a_toml_setting_out_of_range_is_refused_naming_it(table: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        structure(table, PmScannersSettings, "<test>", prefix="plugins.pmscanners")


# --- ranking ties ----------------------------------------------------------------------------

def test_ties_in_score_are_ordered_by_id_as_the_reference_orders_them() -> None:
    rng = random.Random(40)
    b = MarketBuilder()
    ids = b.event("T", [f"t{i}" for i in range(24)], neg_risk=False)
    b.market.forecasters = {"baseline": BaselineForecaster()}
    pm = PmScannersSettings(ranked=RankingSettings(scanners=["maker"]))
    inc, ref = RankedScanner(pm), RankedScanner(pm, incremental=False)
    for step in range(25):
        for k in rng.sample(range(24), 5):
            bid = rng.choice([0.30, 0.40])
            b.book(ids[k][0], [(bid, 100)], [(round(bid + rng.choice([0.05, 0.06]), 2), 100)],
                   ts_ns=step + 1)
        got, want = inc.scan(b.market, 100 + step), ref.scan(b.market, 100 + step)
        assert all(o.score is not None and math.isfinite(o.score) for o in got)
        assert [o.opportunity_id for o in got] == [
            o.opportunity_id for o in sorted(got, key=lambda o: (-(o.score or 0),
                                                                 o.opportunity_id))]
        assert [(o.opportunity_id, o.score) for o in got] == [
            (o.opportunity_id, o.score) for o in want]


def test_edge_per_unit_is_rounded_down() -> None:
    """The walks' edge per share never rounds a loss-making last digit up."""
    b = MarketBuilder(FeeSchedule(taker_bps=D(100)))
    ((yes, _no),) = b.event("R", ["r"], neg_risk=False, end_ts_ns=NOW + H)
    b.book(yes, [(0.96, 10)], [(0.97, 3), (0.971, 7)], ts_ns=NOW)
    b.market.now_ns = NOW
    for o in ResolutionScanner(incremental=False).scan(b.market, NOW):
        assert o.edge_per_unit == (o.expected_profit / o.max_size).quantize(
            D("1e-8"), rounding=ROUND_DOWN)
