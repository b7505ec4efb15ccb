"""The vectorised, incremental scans equal the per-book reference loops after every step of
seeded random sequences of book deltas, snapshots (jumps), trades, settlements, liveness
changes, new events and time passing; and one event id across scanners."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import attrs
import numpy as np
import pytest
from argus_scanners_polymarket.common import EXECUTABLE, RESEARCH, field_copier
from argus_scanners_polymarket.config import (
    LatencySettings,
    MakerSettings,
    PmScannersSettings,
    RankingSettings,
    ValueSettings,
)
from argus_scanners_polymarket.correlation import CorrelationScanner
from argus_scanners_polymarket.fixtures import MarketBuilder
from argus_scanners_polymarket.latency import LatencyScanner
from argus_scanners_polymarket.maker import MakerScanner
from argus_scanners_polymarket.ofi import shared_flows
from argus_scanners_polymarket.ranking import RankedScanner
from argus_scanners_polymarket.resolution import ResolutionScanner
from argus_scanners_polymarket.stale import SpikeScanner, StaleQuoteScanner
from argus_scanners_polymarket.synthetic import NOW_NS, SPOT, quote, synthetic
from argus_scanners_polymarket.value import BaselineForecaster, ValueScanner

from argus_core import (
    BookDelta,
    BookStatus,
    FeeSchedule,
    MarketState,
    Opportunity,
    OrderBook,
    Scanner,
    Settlement,
    Side,
    Signal,
    Trade,
)

S = 10**9
SETTINGS = PmScannersSettings(latency=LatencySettings(pairs={"BTC": SPOT}))


def _book(market: MarketState, iid: str, mid: float, thin: bool, ts: int,
          rng: np.random.Generator) -> None:
    """A fresh snapshot around ``mid`` (a jump), top levels thin or deep."""
    sizes = rng.uniform(10, 500, 6).round(2)
    if thin:
        sizes[0] = 20.0
    bids = [(round(mid - 0.01 - 0.01 * k, 2), float(q)) for k, q in enumerate(sizes)]
    asks = [(round(mid + 0.01 + 0.01 * k, 2), float(q)) for k, q in enumerate(sizes)]
    bids = [(p, q) for p, q in bids if 0.001 < p < 0.999]
    asks = [(p, q) for p, q in asks if 0.001 < p < 0.999]
    market.apply(OrderBook(iid, ts, np.array(bids).reshape(-1, 2),
                           np.array(asks).reshape(-1, 2)))


def step(market: MarketState, rng: np.random.Generator, ts: int, k: int) -> None:
    """One batch of random changes at ``ts`` (``k``: the step number, for new names)."""
    market.now_ns = max(market.now_ns, ts)
    ids = [i for i in market.books if i != SPOT]
    for _ in range(int(rng.integers(1, 12))):
        iid = ids[int(rng.integers(len(ids)))]
        book = market.books[iid]
        op = rng.random()
        if op < 0.35 and book.asks and book.bids:  # one tick at the touch
            ask, bid = min(book.asks), max(book.bids)
            if rng.random() < 0.5 and len(book.asks) > 1:
                market.apply(BookDelta(iid, ts, Side.SELL, Decimal(repr(ask)), Decimal(0)))
            elif round(ask - 0.01, 2) > bid:
                market.apply(BookDelta(iid, ts, Side.SELL, Decimal(repr(round(ask - 0.01, 2))),
                                       Decimal("20")))
            else:
                market.apply(BookDelta(iid, ts, Side.BUY, Decimal(repr(bid)), Decimal(0)))
        elif op < 0.6:  # a jump: a new snapshot elsewhere (spikes, stale quotes)
            _book(market, iid, round(float(rng.uniform(0.05, 0.95)), 2), rng.random() < 0.5,
                  ts, rng)
        elif op < 0.7:
            market.apply(Trade(iid, ts, Decimal(repr(round(float(rng.uniform(0.02, 0.98)), 2))),
                               Decimal(10), Side.BUY if rng.random() < 0.5 else Side.SELL))
        elif op < 0.75:
            market.apply(BookStatus(iid, ts, False, "test: marked stale"))
        elif op < 0.78:
            market.apply(Settlement(iid, ts, Decimal(int(rng.random() < 0.5)), "test"))
        elif op < 0.8:  # the spot moves: every up/down token reprices
            spot = 100_000.0 * (1 + float(rng.uniform(-0.003, 0.003)))
            market.apply(OrderBook(SPOT, ts, np.array([[spot - 5, 2.0]]),
                                   np.array([[spot + 5, 2.0]])))
        elif op < 0.84:  # a published order-flow or inventory signal
            name = "ofi" if rng.random() < 0.5 else "inventory"
            value = float(rng.uniform(-1, 1)) if name == "ofi" else float(rng.integers(-60, 60))
            market.apply(Signal(name, iid, ts, value))
        elif op < 0.86:  # a new negRisk event (events_version moves)
            b = MarketBuilder(FeeSchedule(taker_bps=Decimal(100)))
            b.market = market
            pairs = b.event(f"N{k}", ["x", "y"], questions=[
                f"Will the Fed cut rates by 25+ bps in {2040 + k}?",
                f"Will the Fed cut rates by 50+ bps in {2040 + k}?"], end_ts_ns=ts + 40 * 3600 * S,
                neg_risk=k % 2 == 0)  # binary markets: a new nested pair for correlation
            for yes, no in pairs:
                quote(b, rng, yes, no, round(float(rng.uniform(0.05, 0.95)), 2), ts_ns=ts)


_at = field_copier("ts_ns")


def unstamped(found: list[Opportunity]) -> list[Opportunity]:
    """``found`` with every ``ts_ns`` set to 0 (to compare all the other fields)."""
    return [_at(o, 0) for o in found]


class ScanTimes:
    """Checks ``ranked``'s ``ts_ns`` rule scan after scan: a finding new to the last scan's
    output, or differing from it (under the same id) in any field but ``ts_ns``, is stamped
    with this scan's time; one equal to it keeps the object it was, or is stamped anew."""

    def __init__(self) -> None:
        self.prev: dict[str, Opportunity] = {}
        self.kept = self.fresh = 0  # findings returned as last scan's object / built anew

    def check(self, found: list[Opportunity], ts: int, label: str = "") -> None:
        """One scan's findings at scan time ``ts``."""
        for o in found:
            p = self.prev.get(o.opportunity_id)
            if p is None or _at(p, 0) != _at(o, 0):
                assert o.ts_ns == ts, (label, o.opportunity_id, o.ts_ns, ts)
                self.fresh += 1
            else:
                assert o is p or o.ts_ns == ts, (label, o.opportunity_id, o.ts_ns, ts)
                self.kept += o is p
        self.prev = {o.opportunity_id: o for o in found}


def check(make: Callable[[bool], Scanner], *, steps: int, seed: int, events: int = 40,
          stateful: bool = False, times: ScanTimes | None = None) -> int:
    """Run the incremental scanner and the reference side by side; the findings seen.
    ``times``: the incremental scanner follows ``ranked``'s ``ts_ns`` rule (checked by it),
    the reference stamps every finding with the scan's time (compared on every other field).
    """
    market = synthetic(events, seed=seed)
    if seed % 2 == 0:  # books go stale with time alone (no change listed)
        market.stale_after_ns = 300 * S
    fast, ref = make(True), make(False)
    rng = np.random.default_rng(seed)
    ts = NOW_NS
    seen = 0
    for k in range(steps):
        got, want = fast.scan(market, ts), ref.scan(market, ts)
        if times is not None:
            times.check(got, ts, f"step {k}")
            assert all(o.ts_ns == ts for o in want)
            got, want = unstamped(got), unstamped(want)
        assert got == want, f"step {k}: {len(got)} findings vs {len(want)}"
        if hasattr(ref, "scores"):
            assert fast.scores == ref.scores
        if hasattr(ref, "confidences"):
            assert fast.confidences == ref.confidences
        if hasattr(ref, "get_state"):  # stateful: the same state, to the bit
            assert fast.get_state() == ref.get_state(), f"step {k}"
        if not stateful:
            again = fast.scan(market, ts)  # a full scan of the unchanged state
            assert again == want
        seen += len(want)
        ts += int(rng.choice([S // 2, 2 * S, 40 * S, 400 * S]))
        step(market, rng, ts, k)
    return seen


@pytest.mark.parametrize("seed", [1, 2])
def test_resolution_equals_reference(seed: int) -> None:
    seen = check(lambda inc: ResolutionScanner(SETTINGS, incremental=inc), steps=60, seed=seed)
    assert seen > 0


@pytest.mark.parametrize("seed", [3, 4])
def test_value_equals_reference(seed: int) -> None:
    seen = check(lambda inc: ValueScanner(SETTINGS, incremental=inc), steps=60, seed=seed)
    assert seen > 0


@pytest.mark.parametrize("seed", [5, 6])
def test_maker_equals_reference(seed: int) -> None:
    seen = check(lambda inc: MakerScanner(SETTINGS, incremental=inc), steps=50, seed=seed)
    assert seen > 0


@pytest.mark.parametrize("seed", [7, 8])
def test_spike_equals_reference(seed: int) -> None:
    seen = check(lambda inc: SpikeScanner(SETTINGS, incremental=inc), steps=80, seed=seed,
                 stateful=True)
    assert seen > 0


@pytest.mark.parametrize("seed", [9, 12])
def test_stale_equals_reference(seed: int) -> None:
    seen = check(lambda inc: StaleQuoteScanner(SETTINGS, incremental=inc), steps=80,
                 seed=seed, stateful=True)
    assert seen > 0


@pytest.mark.parametrize("seed", [13, 14])
def test_latency_equals_reference(seed: int) -> None:
    seen = check(lambda inc: LatencyScanner(SETTINGS, incremental=inc), steps=60, seed=seed,
                 events=60, stateful=True)
    assert seen > 0


@pytest.mark.parametrize("seed", [13, 14])
def test_latency_capped_size_equals_reference(seed: int) -> None:
    # max_size cuts walks short: the memoised prefix walks' max_qty path
    capped = PmScannersSettings(latency=LatencySettings(pairs={"BTC": SPOT},
                                                        max_size=Decimal("30")))
    seen = check(lambda inc: LatencyScanner(capped, incremental=inc), steps=60, seed=seed,
                 events=60, stateful=True)
    assert seen > 0


@pytest.mark.parametrize("seed", [15, 16])
def test_correlation_equals_reference(seed: int) -> None:
    seen = check(lambda inc: CorrelationScanner(SETTINGS, incremental=inc), steps=60,
                 seed=seed, events=60)
    assert seen > 0


def test_correlation_extends_its_index_and_refits_by_its_rule() -> None:
    market = synthetic(40, seed=1)
    scanner = CorrelationScanner(SETTINGS)
    scanner.scan(market, NOW_NS)
    assert scanner.refits == 1
    before = len(scanner.constraints)
    b = MarketBuilder(FeeSchedule(taker_bps=Decimal(100)))
    b.market = market
    b.event("X", ["25", "50"], neg_risk=False, questions=[
        "Will the Fed cut rates by 25+ bps at the june 2033 meeting?",
        "Will the Fed cut rates by 50+ bps at the june 2033 meeting?"])
    scanner.scan(market, NOW_NS)
    assert scanner.refits == 1  # transformed against the fitted vocabulary, appended
    new = {(c.antecedent, c.consequent) for c in scanner.constraints}
    assert len(new) == before + 1
    assert ("polymarket:X-1-y", "polymarket:X-0-y") in new  # 50+ => 25+
    # a closed event leaves the structure with its constraints
    ev = market.events["X:0"]
    market.apply(attrs.evolve(ev, closed=True))
    scanner.scan(market, NOW_NS)
    assert len(scanner.constraints) == before and scanner.refits == 1
    # many new questions (>= 25 % of the fitted corpus): refitted
    for k in range(12):
        b.event(f"Y{k}", [f"{j}" for j in range(5)], neg_risk=False,
                questions=[f"Will the ECB cut rates by {25 * (j + 1)}+ bps in {2050 + k}?"
                           for j in range(5)])
    scanner.scan(market, NOW_NS)
    assert scanner.refits == 2
    fresh = CorrelationScanner(SETTINGS)
    fresh.scan(market, NOW_NS)
    assert {(c.antecedent, c.consequent) for c in scanner.constraints} == {
        (c.antecedent, c.consequent) for c in fresh.constraints}


@pytest.mark.parametrize("seed", [17, 18])
def test_ranked_equals_reference(seed: int) -> None:
    times = ScanTimes()
    seen = check(lambda inc: RankedScanner(SETTINGS, incremental=inc), steps=40, seed=seed,
                 events=60, stateful=True, times=times)
    assert seen > 0
    assert times.kept > 0 and times.fresh > 0  # unchanged findings outlive a step as objects


def test_one_event_id_across_scanners() -> None:
    """Every scanner (and ``ranked``) names a finding's event by the Gamma event of its
    market (instrument ``meta["event_id"]``), never the per-market core event the
    Polymarket venue makes of a binary market: findings on one Gamma event share one id."""
    market = synthetic(60, seed=19)
    names = ["resolution", "correlation", "stale", "spike", "value", "maker", "latency",
             "ranked"]
    from argus_scanners_polymarket.plugin import SCANNERS

    scanners = [getattr(__import__(SCANNERS[n][0], fromlist=["x"]), SCANNERS[n][1])(SETTINGS)
                for n in names]
    rng = np.random.default_rng(19)
    ts = NOW_NS
    by_scanner: dict[str, int] = {}
    gamma_ids: dict[str, set[str]] = {}
    for k in range(40):
        for scanner in scanners:
            for o in scanner.scan(market, ts):
                # the market the finding is about: an implication's A is its NO leg
                anchor = o.legs[-1] if o.kind == "implication" else o.legs[0]
                gamma = str(market.instruments[anchor.instrument_id].meta["event_id"])
                assert o.event_id == gamma, (o.scanner, o.event_id, gamma)
                by_scanner[o.scanner] = by_scanner.get(o.scanner, 0) + 1
                gamma_ids.setdefault(gamma, set()).add(o.event_id)
        ts += int(rng.choice([2 * S, 40 * S]))
        step(market, rng, ts, k)
    assert set(by_scanner) == set(names) - {"ranked"}  # ranked reports as its components
    assert all(len(ids) == 1 for ids in gamma_ids.values())


def test_event_id_falls_back_to_the_core_event() -> None:
    from argus_scanners_polymarket.common import event_id_for

    b = MarketBuilder()
    (yes, _no), = b.event("G", ["x"], neg_risk=False)
    assert event_id_for(b.market, yes, "G:0") == "G"
    b.market.instruments[yes] = attrs.evolve(b.market.instruments[yes], meta={})
    assert event_id_for(b.market, yes, "G:0") == "G:0"
    assert event_id_for(b.market, "polymarket:unknown", "core") == "core"


def test_a_finding_on_the_threshold_survives_the_float_pre_check() -> None:
    """Bid 0.01, ask 0.21, a trade at 0.35: p = (0.11 + 0.35) / 2 is 0.22999999999999998 in
    floats, so the float edge over the 0.21 ask falls short of min_edge 0.02; the exact one
    (p rounded to 9 digits: 0.23) meets it.  The pre-check's margin keeps the finding."""
    b = MarketBuilder()
    ((yes, _no),) = b.event("T", ["x"], neg_risk=False)
    b.book(yes, [(0.01, 50)], [(0.21, 50)], ts_ns=NOW_NS - S)
    b.market.apply(Trade(yes, NOW_NS - S, Decimal("0.35"), Decimal(1), Side.BUY))
    b.market.forecasters = {"baseline": BaselineForecaster()}
    b.market.now_ns = NOW_NS
    assert ((0.01 + 0.21) / 2 + 0.35) / 2 - 0.21 < 0.02
    want = ValueScanner(SETTINGS, incremental=False).scan(b.market, NOW_NS)
    assert len(want) == 1 and want[0].edge_per_unit == Decimal("0.02")
    assert ValueScanner(SETTINGS).scan(b.market, NOW_NS) == want


def _twice(fast: RankedScanner, ref: RankedScanner, *, steps: int, seed: int,
           events: int = 60) -> list[Opportunity]:
    """``check`` for ``ranked`` with each state scanned twice (the second scan: the same
    findings, their streaks one longer); every finding of the reference returned."""
    market = synthetic(events, seed=seed)
    rng = np.random.default_rng(seed)
    ts = NOW_NS
    seen: list[Opportunity] = []
    times = ScanTimes()
    for k in range(steps):
        for _ in range(2):
            got, want = fast.scan(market, ts), ref.scan(market, ts)
            times.check(got, ts, f"step {k}")
            assert unstamped(got) == unstamped(want), f"step {k}"
            assert dict(fast.scores) == ref.scores, f"step {k}"
            seen += want
        ts += int(rng.choice([S // 2, 2 * S, 40 * S]))
        step(market, rng, ts, k)
    return seen


def test_ranked_columns_equal_reference_with_gates_and_rescans() -> None:
    """Every lane rule (maker, reported research, risk-free, each ranking threshold), a
    short persistence cap, a maker on its own OFI levels (no shared tracker), key ids
    forgotten every scan: the column scoring equals the per-finding reference after each
    scan, ties in score broken by id as the reference does."""
    settings = PmScannersSettings(
        latency=LatencySettings(pairs={"BTC": SPOT}, executable_min_edge=Decimal("0.01")),
        value=ValueSettings(executable_min_edge=Decimal("0.01"),
                            executable_min_confidence=0.0),
        maker=MakerSettings(ofi_levels=2),
        ranked=RankingSettings(persistence_cap=2, executable_min_score=0.3,
                               executable_min_confidence=0.05,
                               executable_min_persistence=3))
    fast = RankedScanner(settings)
    fast._columns.compact_slack = 0
    ref = RankedScanner(settings, incremental=False)
    seen = _twice(fast, ref, steps=30, seed=21)
    lanes = {(o.kind, o.lane) for o in seen}
    assert ("value", EXECUTABLE) in lanes and ("value", RESEARCH) in lanes
    assert any(k.startswith("maker_") for k, _ in lanes)
    assert any("seen 1 scans < 3" in o.reason for o in seen)
    scores = [o.score for o in seen]
    assert len(set(scores)) < len(scores)  # ties: the order by id is exercised
    maker = next(c for c in fast.components if c.name == "maker")
    assert maker.ofi is not fast.ofi  # levels 2 vs the ranking's 1: one tracker each


def test_maker_and_ranked_share_one_ofi_tracker() -> None:
    """Same window and levels: ``ranked``, its ``maker`` and a maker scanning the same market
    state read one tracker (each book transition fed once); the reference keeps its own."""
    market = synthetic(20, seed=22)
    ranked, maker = RankedScanner(SETTINGS), MakerScanner(SETTINGS)
    ref = RankedScanner(SETTINGS, incremental=False)
    ranked.scan(market, NOW_NS)
    maker.scan(market, NOW_NS)
    inner = next(c for c in ranked.components if c.name == "maker")
    assert ranked.ofi is inner.ofi is maker.ofi is shared_flows(market, 60.0).tracker
    ref.scan(market, NOW_NS)
    assert ref.ofi is not ranked.ofi
    iid = next(iter(market.books))
    book = market.books[iid]
    market.apply(BookDelta(iid, NOW_NS + S, Side.BUY, Decimal(repr(max(book.bids))),
                           Decimal(0)))
    ranked.scan(market, NOW_NS + S)
    steps = ranked.ofi._steps[iid]
    assert len(steps) == 2 and steps[-1][3] == 1  # the first state, then one transition
    maker.scan(market, NOW_NS + S)
    assert len(ranked.ofi._steps[iid]) == 2  # not fed twice


def test_ranked_keeps_unchanged_findings_as_objects() -> None:
    """A finding whose component returned it unchanged and whose score inputs did not move
    is returned as the same object at a later scan time (its ``ts_ns`` the scan that built
    it), not restamped: the cost of a scan follows what changed, not the findings held."""
    market = synthetic(40, seed=23)
    fast = RankedScanner(SETTINGS)
    ts = NOW_NS
    for _ in range(SETTINGS.ranked.persistence_cap + 1):  # past the persistence ramp
        before = fast.scan(market, ts)
    later = fast.scan(market, ts + S)
    prev = {o.opportunity_id: o for o in before}
    kept = [o for o in later if o is prev.get(o.opportunity_id)]
    assert len(kept) > len(later) // 2
    assert all(o.ts_ns == ts for o in kept)
    assert all(o.ts_ns == ts + S for o in later if o is not prev.get(o.opportunity_id))
    ref = RankedScanner(SETTINGS, incremental=False)
    for _ in range(SETTINGS.ranked.persistence_cap + 1):
        ref.scan(market, ts)
    assert unstamped(later) == unstamped(ref.scan(market, ts + S))


def test_ranked_refreshes_the_touch_table_once_a_scan() -> None:
    """``ranked`` refreshes the shared touch table once and holds it while its seven
    components scan (each would refresh it again: a walk of the trade, settlement and
    signal dicts); a change made after the hold is read by the next refresh."""
    from argus_scanners_polymarket.touch import TouchTable, touch_table

    market = synthetic(20, seed=24)
    ranked = RankedScanner(SETTINGS)
    calls: list[int] = []
    original = TouchTable.refresh

    def counting(self: TouchTable, m: MarketState) -> None:
        calls.append(1)
        original(self, m)

    TouchTable.refresh = counting  # type: ignore[method-assign]  # counted for this test
    try:
        ranked.scan(market, NOW_NS)
        assert len(calls) == 1
        table = touch_table(market)
        iid = next(i for i in market.books if i != SPOT)
        with table.held():
            market.apply(BookStatus(iid, NOW_NS, False, "test"))
            assert touch_table(market).live[table.index[iid]]  # held: not re-read
        assert not touch_table(market).live[table.index[iid]]
    finally:
        TouchTable.refresh = original  # type: ignore[method-assign]  # restored


def test_opportunity_builder_equals_the_constructor() -> None:
    """``common.opportunity`` (no attrs converters for exact values) builds the object
    ``Opportunity(...)`` builds, field for field; other values go through the constructor:
    converted (a list of legs, a float, a string) or refused alike."""
    from argus_scanners_polymarket.common import opportunity

    from argus_core import DataError, Leg

    rng = np.random.default_rng(25)
    for k in range(300):
        legs = tuple(Leg(f"polymarket:t{j}", Side.BUY if rng.random() < 0.5 else Side.SELL,
                         Decimal(f"0.{int(rng.integers(1, 99)):02d}"),
                         Decimal(int(rng.integers(1, 500))))
                     for j in range(int(rng.integers(1, 4))))
        amounts = [Decimal(repr(round(float(rng.uniform(-1, 50)), int(rng.integers(0, 9)))))
                   for _ in range(4)]
        amounts[1], amounts[3] = abs(amounts[1]), abs(amounts[3])  # max_size, costs >= 0
        kw: dict[str, object] = dict(
            opportunity_id=f"x:{k}", scanner="latency", ts_ns=k, kind="latency", legs=legs,
            edge_per_unit=amounts[0], max_size=amounts[1], expected_profit=amounts[2],
            costs=amounts[3], reason=f"r{k}", risk_free=bool(k % 2), event_id=f"E{k % 7}",
            lane=EXECUTABLE if k % 3 else RESEARCH)
        if k % 5 == 0:  # values the converters change: through the constructor
            kw.update(legs=list(legs), edge_per_unit=float(amounts[0]), max_size=str(amounts[1]))
        got, want = opportunity(**kw), Opportunity(**kw)  # type: ignore[arg-type]  # kw
        assert type(got) is Opportunity and got == want
        assert all(getattr(got, f) == getattr(want, f)
                   and type(getattr(got, f)) is type(getattr(want, f))
                   for f in attrs.fields_dict(Opportunity))
    base: dict[str, object] = dict(
        opportunity_id="x", scanner="s", ts_ns=1, kind="k", legs=(), edge_per_unit=Decimal(1),
        max_size=Decimal(1), expected_profit=Decimal(1), costs=Decimal(0), reason="",
        risk_free=True, event_id="", lane=EXECUTABLE)
    for bad in ({"max_size": Decimal(-1)}, {"costs": Decimal("-0.01")},
                {"expected_profit": Decimal("NaN")}, {"edge_per_unit": Decimal("Infinity")},
                {"lane": "maybe"}):
        errors = []
        for make in (opportunity, Opportunity):
            with pytest.raises((DataError, ValueError)) as info:
                make(**{**base, **bad})  # type: ignore[arg-type]  # bad on purpose
            errors.append(type(info.value))
        assert errors[0] is errors[1]


def test_ranked_reformed_findings_equal_reference() -> None:
    """A finding a component builds again under the same id with the same legs (a latency
    finding whose fair moved with time, a near-certain one re-worded) takes its key, legs'
    codes, capacity term and lane rule from the form before; the scores and findings still
    equal the reference's after every scan, time passing alone or with changes."""
    market = synthetic(60, seed=26)
    # edge_scale 5: no edge term clipped at 1, so an edge that moved moves the score
    settings = attrs.evolve(SETTINGS, ranked=RankingSettings(edge_scale=5.0))
    fast, ref = RankedScanner(settings), RankedScanner(settings, incremental=False)
    rng = np.random.default_rng(26)
    ts, reformed = NOW_NS, 0
    for k in range(25):
        got, want = fast.scan(market, ts), ref.scan(market, ts)
        assert unstamped(got) == unstamped(want), f"scan {k}"
        assert dict(fast.scores) == ref.scores, f"scan {k}"
        reformed += fast._columns.reformed
        ts += int(rng.choice([S, 2 * S, 40 * S]))
        if k % 3 == 2:
            step(market, rng, ts, k)
    assert reformed > 0


def test_usable_is_shared_until_a_row_or_the_time_moves() -> None:
    """``TouchTable.usable`` is computed once for the components of a scan (one read-only
    array), and afresh when a row changes or, under a stale guard, the time moves."""
    from argus_scanners_polymarket.common import tradeable
    from argus_scanners_polymarket.touch import touch_table

    market = synthetic(20, seed=27)
    market.stale_after_ns = 300 * S
    market.now_ns = NOW_NS
    t = touch_table(market)
    first = t.usable(market)
    assert t.usable(market) is first and not first.flags.writeable
    iid = next(i for i in market.books if i != SPOT and first[t.index[i]])
    market.apply(BookStatus(iid, NOW_NS, False, "test"))
    after = touch_table(market).usable(market)
    assert after is not first and not after[t.index[iid]]
    market.now_ns = NOW_NS + 10_000 * S  # every book past the guard
    late = touch_table(market).usable(market)
    assert not late.any()
    assert [bool(v) for v in late] == [tradeable(market, i) for i in t.ids]
