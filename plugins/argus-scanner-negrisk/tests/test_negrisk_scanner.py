"""Every opportunity on a hand-built book set matches a hand computation; the kernel agrees
with the independent plain-Python reference on random books."""

from __future__ import annotations

import math
import random
from decimal import ROUND_DOWN, Decimal

import attrs
import numpy as np
import pytest
from argus_scanner_negrisk.config import NegRiskSettings
from argus_scanner_negrisk.reference import reference_scan
from argus_scanner_negrisk.scanner import NegRiskScanner, restamped

from argus_core import FeeSchedule
from argus_core.market_state import MarketState
from argus_core.models import (
    BookStatus,
    Event,
    Instrument,
    Leg,
    Opportunity,
    OrderBook,
    Outcome,
    Side,
)

D = Decimal


def _inst(iid: str, min_size: str = "5") -> Instrument:
    return Instrument("polymarket", iid.split(":")[1], kind="binary", tick_size="0.01",
                      lot_size="0.01", min_size=min_size)


@attrs.frozen
class TakerCurve(FeeSchedule):
    """Polymarket's taker fee written out by hand for these tests (the scanner has no copy:
    it asks the market's fee schedule): ``rate * p(1-p)`` per share, each fill floored to
    0.00001."""

    rate: Decimal = Decimal(0)

    def fee(self, price: Decimal, quantity: Decimal, *, maker: bool) -> Decimal:
        """Fee of one fill."""
        if maker:
            return Decimal(0)
        return (quantity * self.rate * price * (1 - price)).quantize(Decimal("0.00001"),
                                                                     rounding=ROUND_DOWN)


class Book:
    """Builds a MarketState from asks (and optional bids) per instrument; every instrument
    pays the taker curve of rate ``fee``."""

    def __init__(self, fee: str = "0") -> None:
        schedule = TakerCurve(rate=Decimal(fee))
        self.market = MarketState(fees=lambda iid: schedule)

    def event(self, eid: str, names: list[str], *, neg_risk: bool = True,
              exhaustive: bool = True) -> list[tuple[str, str]]:
        ids = [(f"polymarket:{eid}{i}1", f"polymarket:{eid}{i}2") for i in range(len(names))]
        outcomes = [Outcome(n, y, no) for n, (y, no) in zip(names, ids, strict=True)]
        if not neg_risk:  # a binary market: outcome "No" is (NO token, YES token)
            ids = ids[:1]
            outcomes = [Outcome(names[0], *ids[0]), Outcome(names[1], ids[0][1], ids[0][0])]
        self.market.apply(Event("polymarket", eid, eid, tuple(outcomes), neg_risk=neg_risk,
                                exhaustive=exhaustive))
        for y, no in ids:
            self.market.add_instruments([_inst(y), _inst(no)])
        return ids

    def asks(self, iid: str, levels: list[tuple[float, float]],
             bids: list[tuple[float, float]] = ()) -> None:
        self.market.apply(OrderBook(iid, 1, np.array(bids or np.empty((0, 2))).reshape(-1, 2),
                                    np.array(levels)))


def _hand_book(fee: str = "0") -> tuple[Book, dict[str, list[tuple[str, str]]]]:
    b = Book(fee)
    ev = {}
    # E1: long rebalance (YES asks sum 0.95 at the top); NO asks keep pairs/short closed
    ev["E1"] = b.event("E1", ["A", "B", "C"])
    (a, a_no), (bb, b_no), (c, c_no) = ev["E1"]
    b.asks(a, [(0.30, 100), (0.32, 100)])
    b.asks(bb, [(0.30, 50), (0.31, 200)])
    b.asks(c, [(0.35, 80), (0.40, 100)])
    for no in (a_no, b_no, c_no):
        b.asks(no, [(0.75, 100)])
    # E2: short rebalance (NO asks 1.89 < 2)
    ev["E2"] = b.event("E2", ["X", "Y", "Z"])
    (x, x_no), (y, y_no), (z, z_no) = ev["E2"]
    for yes in (x, y, z):
        b.asks(yes, [(0.40, 100)])
    b.asks(x_no, [(0.62, 10)])
    b.asks(y_no, [(0.63, 20)])
    b.asks(z_no, [(0.64, 5), (0.66, 100)])
    # E3: a binary market, YES + NO asks 0.98 then 0.99
    ev["E3"] = b.event("E3", ["Yes", "No"], neg_risk=False)
    ((yes3, no3),) = ev["E3"]
    b.asks(yes3, [(0.45, 30)])
    b.asks(no3, [(0.53, 10), (0.54, 100)])
    # E4: would be a long rebalance, but one book is stale
    ev["E4"] = b.event("E4", ["P", "Q"])
    (p, p_no), (q, q_no) = ev["E4"]
    b.asks(p, [(0.40, 50)])
    b.asks(q, [(0.40, 50)])
    b.asks(p_no, [(0.70, 50)])
    b.asks(q_no, [(0.70, 50)])
    b.market.apply(BookStatus(q, 2, False, "websocket disconnected"))
    # E5: augmented (not exhaustive): cheap YES must not be reported as risk-free
    ev["E5"] = b.event("E5", ["R", "S", "Other"], exhaustive=False)
    for yes, no in ev["E5"]:
        b.asks(yes, [(0.20, 50)])
        b.asks(no, [(0.85, 50)])
    # E6: profitable only below the minimum order size (5)
    ev["E6"] = b.event("E6", ["U", "V"])
    (u, u_no), (v, v_no) = ev["E6"]
    b.asks(u, [(0.40, 3)])
    b.asks(v, [(0.50, 100)])
    b.asks(u_no, [(0.70, 50)])
    b.asks(v_no, [(0.60, 50)])
    return b, ev


def test_hand_computed_opportunities_without_fees() -> None:
    b, ev = _hand_book()
    opps = {o.kind + ":" + o.event_id: o for o in NegRiskScanner().scan(b.market, 7)}
    assert set(opps) == {"long_rebalance:E1", "short_rebalance:E2", "binary:E3"}

    long = opps["long_rebalance:E1"]
    # 50 units at 0.30+0.30+0.35 = 0.95, then 30 at 0.30+0.31+0.35 = 0.96; next step 1.01
    assert long.max_size == D("80")
    assert long.expected_profit == D("80") - (D("50") * D("0.95") + D("30") * D("0.96"))
    assert long.expected_profit == D("3.7")
    assert long.edge_per_unit == D("0.04625")
    assert [(leg.instrument_id, leg.side, leg.limit_price, leg.quantity) for leg in long.legs] == [
        (ev["E1"][0][0], Side.BUY, D("0.30"), D("80")),
        (ev["E1"][1][0], Side.BUY, D("0.31"), D("80")),
        (ev["E1"][2][0], Side.BUY, D("0.35"), D("80"))]
    assert long.risk_free and long.costs == 0 and long.ts_ns == 7
    # score on the pmscanners ranking's scale: 0.35 E + 0.15 K + 0.25 (risk-free), with
    # E = 0.04625 / 0.05 and K = log10(1 + 80 x (0.30 + 0.31 + 0.35)) / log10(1001)
    assert long.score == pytest.approx(0.35 * 0.925 + 0.15 * math.log10(77.8) / math.log10(1001)
                                       + 0.25) == pytest.approx(0.6682845, abs=1e-6)
    # the id names the book state (newest leg book update, ts 1), not the scan time: scanned
    # again before a book changed (orders in flight) it is the same opportunity, which the
    # core acts on once; a changed book makes it a new one
    assert long.opportunity_id == "negrisk:long_rebalance:E1:1"
    again = {o.kind: o for o in NegRiskScanner().scan(b.market, 9) if o.event_id == "E1"}
    assert again["long_rebalance"].opportunity_id == long.opportunity_id
    b.market.apply(OrderBook(ev["E1"][0][0], 8, np.empty((0, 2)),
                             np.array([(0.29, 100), (0.32, 100)])))
    moved = {o.kind: o for o in NegRiskScanner().scan(b.market, 9) if o.event_id == "E1"}
    assert moved["long_rebalance"].opportunity_id == "negrisk:long_rebalance:E1:8"

    short = opps["short_rebalance:E2"]
    # 5 units at 0.62+0.63+0.64 = 1.89, 5 at 0.62+0.63+0.66 = 1.91 (X exhausted); payout 2
    assert short.max_size == D("10")
    assert short.expected_profit == D("20") - (D("5") * D("1.89") + D("5") * D("1.91"))
    assert [leg.limit_price for leg in short.legs] == [D("0.62"), D("0.63"), D("0.66")]

    binary = opps["binary:E3"]
    # 10 at 0.45+0.53, 20 at 0.45+0.54 (YES exhausted at 30)
    assert binary.max_size == D("30")
    assert binary.expected_profit == D("30") - (D("10") * D("0.98") + D("20") * D("0.99"))
    assert [leg.limit_price for leg in binary.legs] == [D("0.45"), D("0.54")]
    # scores by hand: short edge 1.0 / 10 = 0.1 (E capped at 1), notional 10 x 1.91;
    # binary edge 0.4 / 30, notional 30 x 0.99
    assert short.score == pytest.approx(0.35 + 0.15 * math.log10(20.1) / math.log10(1001)
                                        + 0.25) == pytest.approx(0.66515, abs=1e-5)
    assert binary.score == pytest.approx(0.35 * (0.4 / 30 / 0.05) + 0.15 * math.log10(30.7)
                                         / math.log10(1001) + 0.25)
    assert binary.score == pytest.approx(0.41768, abs=1e-5)
    ranked = NegRiskScanner().scan(b.market, 7)
    assert [o.score for o in ranked] == sorted((o.score or 0 for o in ranked), reverse=True)


def test_hand_computed_long_rebalance_with_fees_and_gas() -> None:
    b, _ev = _hand_book(fee="0.05")
    s = NegRiskSettings(gas_usd_per_leg=D("0.01"))
    opps = {o.kind + ":" + o.event_id: o for o in NegRiskScanner(s).scan(b.market, 1)}
    long = opps["long_rebalance:E1"]

    def f(p: str) -> D:  # Polymarket taker fee per share, rate 0.05, exponent 1
        return D("0.05") * D(p) * (1 - D(p))

    # marginal costs with fees: 0.95 + f(.30)+f(.30)+f(.35) = 0.982375 < 1 (50 units),
    # 0.96 + f(.30)+f(.31)+f(.35) = 0.99257 < 1 (30 units), 1.01 + ... stop
    fees = D(50) * (f("0.30") * 2 + f("0.35")) + D(30) * (f("0.30") + f("0.31") + f("0.35"))
    assert long.max_size == D("80")
    assert long.costs == fees + D("0.03")
    assert long.expected_profit == D("80") - D("76.3") - fees - D("0.03")
    assert long.expected_profit == D("1.07415")
    assert long.edge_per_unit == D("0.01342687")
    # scored after fees and gas: edge 1.07415 / 80 per unit, notional 80 x 0.96
    assert fees == D("2.59585")
    assert long.score == pytest.approx(0.35 * (0.01342687 / 0.05) + 0.15 * math.log10(77.8)
                                       / math.log10(1001) + 0.25, abs=1e-9)
    # with fees the binary's first step costs 0.98 + f(.45) + f(.53) = 1.00483 > 1: gone
    assert 0.98 + float(f("0.45") + f("0.53")) > 1 and "binary:E3" not in opps
    assert "short_rebalance:E2" in opps


def test_scanner_prices_fees_with_the_venues_fee_schedule() -> None:
    """The scanner holds no fee formula: bound to the Polymarket venue's FeeSchedule it
    finds the same baskets at the same costs as under the tests' hand-written curve, and
    its kernel's per-share fees are the venue curve's (any exponent)."""
    fees_module = pytest.importorskip("argus_venue_polymarket.fees")
    PolymarketFeeSchedule = fees_module.PolymarketFeeSchedule

    by_hand, _ = _hand_book(fee="0.05")
    want = NegRiskScanner().scan(by_hand.market, 1)
    venue = PolymarketFeeSchedule(rate=Decimal("0.05"), exponent=Decimal("1"))
    by_hand.market.fees = lambda iid: venue
    got = NegRiskScanner().scan(by_hand.market, 1)
    assert got == want and sum(o.costs for o in got) > 0

    curved = PolymarketFeeSchedule(rate=Decimal("0.25"), exponent=Decimal("1.5"))
    by_hand.market.fees = lambda iid: curved
    scanner = NegRiskScanner()
    scanner.scan(by_hand.market, 1)
    packed = scanner._packed
    assert packed is not None
    for row in range(len(packed.keys)):
        for level in range(int(packed.nlev[row])):
            price = Decimal(repr(float(packed.prices[level, row])))
            assert packed.fees[level, row] == pytest.approx(
                float(curved.curve.per_share(price)), rel=1e-12)


def test_min_edge_and_size_cap() -> None:
    b, _ = _hand_book()
    opps = NegRiskScanner(NegRiskSettings(min_edge=D("0.02"))).scan(b.market, 1)
    # the binary's first level earns 0.02 on 10 units, its second 0.01: the 10 are reported
    # (walked on, the average 0.0133 hid them: test_heldout3_negrisk)
    assert {o.kind for o in opps} == {"long_rebalance", "short_rebalance", "binary"}
    binary = next(o for o in opps if o.kind == "binary")
    assert binary.max_size == D("10") and binary.edge_per_unit == D("0.02")
    capped = NegRiskScanner(NegRiskSettings(max_basket_size=D("20"))).scan(b.market, 1)
    long = next(o for o in capped if o.kind == "long_rebalance")
    assert long.max_size == D("20") and long.expected_profit == D("20") * D("0.05")


def test_bounded_subset_is_labelled_not_risk_free() -> None:
    b = Book()
    ids = b.event("E7", ["a", "b", "c", "d", "e"])
    for (yes, no), price in zip(ids, [0.50, 0.30, 0.15, 0.01, 0.005], strict=True):
        b.asks(yes, [(price, 10)])
        b.asks(no, [(round(1 - price + 0.01, 3), 10)])
    assert not [o for o in NegRiskScanner(NegRiskSettings(max_outcomes=3)).scan(b.market, 1)
                if o.event_id == "E7"]
    opps = NegRiskScanner(NegRiskSettings(max_outcomes=3, bounded_subset=True,
                                          tail_probability_cap=D("0.02"))).scan(b.market, 1)
    (o,) = opps
    assert o.kind == "bounded_long" and not o.risk_free
    # kept: 0.50+0.30+0.15 = 0.95 for 10 units; expected payout 1 - (0.01+0.005) = 0.985
    assert o.max_size == D("10") and o.expected_profit == D("9.85") - D("9.5")
    assert [leg.instrument_id for leg in o.legs] == [ids[0][0], ids[1][0], ids[2][0]]
    assert "0.015" in o.reason
    tight = NegRiskScanner(NegRiskSettings(max_outcomes=3, bounded_subset=True,
                                           tail_probability_cap=D("0.01"))).scan(b.market, 1)
    assert tight == []


def test_sell_yes_basket_against_inventory() -> None:
    b = Book()
    (a, _), (c, _) = b.event("E8", ["a", "b"])
    b.asks(a, [(0.60, 10)], bids=[(0.58, 10), (0.50, 5)])
    b.asks(c, [(0.50, 10)], bids=[(0.47, 20)])
    opps = NegRiskScanner(NegRiskSettings(sell_yes_basket=True, pairs=False)).scan(b.market, 1)
    (o,) = [o for o in opps if o.kind == "sell_yes_basket"]
    assert o.max_size == D("10") and o.expected_profit == D("10") * (D("1.05") - 1)
    assert all(leg.side is Side.SELL for leg in o.legs)


def test_rescan_sees_book_updates_and_staleness() -> None:
    b, ev = _hand_book()
    scanner = NegRiskScanner()
    assert any(o.kind == "long_rebalance" for o in scanner.scan(b.market, 1))
    b.asks(ev["E1"][2][0], [(0.36, 80), (0.40, 100)])  # C worse: 0.96 then 0.97 for 30
    long = next(o for o in scanner.scan(b.market, 2) if o.kind == "long_rebalance")
    assert long.expected_profit == D("80") - (D("50") * D("0.96") + D("30") * D("0.97"))
    b.market.apply(BookStatus(ev["E1"][0][0], 3, False, "hash mismatch"))
    assert not any(o.kind == "long_rebalance" for o in scanner.scan(b.market, 3))


@pytest.mark.parametrize("seed", range(6))
def test_kernel_matches_reference_on_random_books(seed: int) -> None:
    rng = random.Random(seed)
    b = Book(fee=rng.choice(["0", "0.02", "0.05"]))
    for e in range(25):
        n = rng.randint(2, 7)
        binary = rng.random() < 0.2
        ids = b.event(f"R{e}x", [f"o{i}" for i in range(2 if binary else n)],
                      neg_risk=not binary)
        probs = [rng.random() for _ in range(n)]
        total = sum(probs) * rng.uniform(0.85, 1.1)
        for (yes, no), pr in zip(ids, probs[: len(ids)], strict=True):
            p = min(0.97, max(0.02, round(pr / total, 2)))
            b.asks(yes, [(round(p + 0.01 * k, 2), rng.randint(1, 60)) for k in range(
                rng.randint(1, 4)) if p + 0.01 * k < 0.99])
            q = min(0.97, max(0.02, round(1 - p + rng.choice([-0.03, 0.0, 0.02]), 2)))
            b.asks(no, [(round(q + 0.01 * k, 2), rng.randint(1, 60)) for k in range(
                rng.randint(1, 4)) if q + 0.01 * k < 0.99])
    ref = {(r["kind"], r["event_id"]): r for r in reference_scan(b.market)}
    scanner = NegRiskScanner()
    scanner.scan(b.market, 1)
    comp = scanner._static
    got = {(comp.baskets[i].kind, comp.baskets[i].event_id): i
           for i in np.flatnonzero(comp.out_qty > 0)}
    assert set(got) == set(ref)
    for key, i in got.items():
        assert comp.out_qty[i] == pytest.approx(ref[key]["qty"])
        assert comp.out_value[i] == pytest.approx(ref[key]["value"])
        assert comp.out_fee[i] == pytest.approx(ref[key]["fees"])


def test_incremental_scan_repacks_only_changed_books_and_matches_a_fresh_scan() -> None:
    """Random level deltas and liveness flips between scans: the long-lived scanner (which
    repacks only books whose ``L2Book.version`` moved) always agrees with a fresh one."""
    from argus_core.models import BookDelta

    rng = random.Random(11)
    b, ev = _hand_book(fee="0.02")
    scanner = NegRiskScanner()
    scanner.scan(b.market, 1)
    packed = scanner._packed
    assert packed is not None
    assert scanner.scan(b.market, 1) is not None and packed.repacked == 0  # nothing changed
    ids = [iid for pairs in ev.values() for pair in pairs for iid in pair]
    reused = 0
    for step in range(40):
        touched = set(rng.sample(ids, rng.randint(1, 4)))
        for iid in touched:
            if rng.random() < 0.15:
                b.market.apply(BookStatus(iid, step + 2, rng.random() < 0.5, "test"))
                continue
            price = round(rng.uniform(0.05, 0.9), 2)
            size = rng.choice([0.0, 5.0, 40.0, 120.0])
            book = b.market.books[iid]
            if book.best_bid() is not None and price <= book.best_bid():
                price = round(book.best_bid() + 0.01, 2)
            b.market.apply(BookDelta(iid, step + 2, Side.SELL, price, size))
        got = scanner.scan(b.market, step + 2)
        want = NegRiskScanner().scan(b.market, step + 2)
        # (unchanged baskets' opportunities are reused and re-stamped: same fields, new id)
        assert got == want and all(o.ts_ns == step + 2 for o in got)
        reused += sum(1 for o in got if o.event_id not in {i.split(":")[1][:2] for i in touched})
        assert packed.repacked == len(touched & set(packed.book_ids))
    assert reused > 10  # opportunities of untouched events were served from the cache


def test_a_finding_reports_the_instruments_gamma_event_id() -> None:
    """``event_id`` is the legs' ``meta["event_id"]`` (the Gamma event) when non-empty, else
    the core event's id; the opportunity id keeps the core event id, so two binary markets
    of one Gamma event found at the same book time do not share an id."""
    b = Book()
    markets = []
    for m in ("m1", "m2"):
        # the Polymarket venue's shape: each binary market is its own core event
        eid = f"G77:{m}"
        yes, no = f"polymarket:{m}y", f"polymarket:{m}n"
        b.market.apply(Event("polymarket", eid, eid, (Outcome("Yes", yes, no),
                                                       Outcome("No", no, yes))))
        b.market.add_instruments(
            attrs.evolve(_inst(iid), meta={"event_id": "G77", "market_id": m})
            for iid in (yes, no))
        b.asks(yes, [(0.45, 30)])
        b.asks(no, [(0.53, 10)])
        markets.append(eid)
    ids = b.event("E9", ["a", "b"])  # no meta: the core id
    b.asks(ids[0][0], [(0.40, 10)])
    b.asks(ids[1][0], [(0.50, 10)])
    empty = b.event("E10", ["a", "b"])  # an empty meta id: the core id
    b.market.add_instruments(attrs.evolve(_inst(iid), meta={"event_id": ""})
                             for pair in empty for iid in pair)
    b.asks(empty[0][0], [(0.40, 10)])
    b.asks(empty[1][0], [(0.50, 10)])
    opps = NegRiskScanner(NegRiskSettings(pairs=False)).scan(b.market, 3)
    got = sorted((o.kind, o.event_id, o.opportunity_id) for o in opps)
    assert got == [("binary", "G77", "negrisk:binary:G77:m1:1"),
                   ("binary", "G77", "negrisk:binary:G77:m2:1"),
                   ("long_rebalance", "E10", "negrisk:long_rebalance:E10:1"),
                   ("long_rebalance", "E9", "negrisk:long_rebalance:E9:1")]


def test_restamped_is_evolve_of_the_time_and_id() -> None:
    o = Opportunity("x", "negrisk", 1, "binary", (Leg("polymarket:a", Side.BUY, D("0.3"),
                                                      D("10")),), D("0.01"), D("10"),
                    D("0.1"), D("0.02"), "why", risk_free=False, event_id="G",
                    lane="research", score=0.1)
    assert restamped(o, 9) == attrs.evolve(o, ts_ns=9) and restamped(o, 9).ts_ns == 9
    assert restamped(o, 9, "y") == attrs.evolve(o, ts_ns=9, opportunity_id="y")
    assert o.ts_ns == 1 and o.opportunity_id == "x"  # the original is left as it was
    assert {f.name for f in attrs.fields(Opportunity)} == {
        "opportunity_id", "scanner", "ts_ns", "kind", "legs", "edge_per_unit", "max_size",
        "expected_profit", "costs", "reason", "risk_free", "event_id", "lane", "score"}


def test_partial_depth_packs_deeper_only_where_a_walk_needs_it() -> None:
    """A basket whose walk runs past the packed levels has those rows packed deeper and
    walked again (same findings as packing every level); levels changed beyond the packed
    ones, and deeper levels that move up when the best goes, are seen."""
    from argus_core.models import BookDelta

    b, ev = _hand_book(fee="0.02")
    (u, _), (w, _) = dull = b.event("E11", ["u", "w"])  # 1.05 at the top: no walk goes on
    b.asks(u, [(0.55, 10), (0.56, 10), (0.57, 10)])
    b.asks(w, [(0.50, 10), (0.51, 10)])
    for _, no in dull:
        b.asks(no, [(0.6, 10), (0.7, 10)])
    shallow = NegRiskScanner(first_levels=1)
    assert shallow.scan(b.market, 1) == NegRiskScanner(first_levels=None).scan(b.market, 1)
    packed = shallow._packed
    assert packed is not None
    (a, _), (bb, _), (c, _) = ev["E1"]
    rows = {iid: packed.index[(iid, Side.SELL)] for iid in (a, bb, c)}
    # E1's long rebalance walks 2 levels of each leg: its rows were packed deeper ...
    assert all(packed.nlev[r] == 2 and not packed.more[r] for r in rows.values())
    # ... and books no walk went deep in keep their best level only
    for iid in (u, w):
        assert packed.nlev[packed.index[(iid, Side.SELL)]] == 1
        assert packed.more[packed.index[(iid, Side.SELL)]]
    steps = [
        BookDelta(c, 2, Side.SELL, 0.36, 500.0),  # a third level of C
        BookDelta(a, 3, Side.SELL, 0.30, 0.0),  # A's best goes: 0.32 moves up
        BookDelta(bb, 4, Side.SELL, 0.305, 20.0),  # a new level inside B's top
        BookDelta(c, 5, Side.SELL, 0.35, 0.0),  # C's best goes too
        BookDelta(w, 6, Side.SELL, 0.51, 0.0),  # an unpacked level of W goes
        BookDelta(u, 7, Side.SELL, 0.55, 0.0),  # U's best goes: 0.56 + 0.50 = 1.06
        BookDelta(w, 8, Side.SELL, 0.40, 10.0),  # W's new best: 0.96 + fees, for 10
    ]
    for step in steps:
        b.market.apply(step)
        got = shallow.scan(b.market, step.ts_ns)
        assert got == NegRiskScanner(first_levels=None).scan(b.market, step.ts_ns), step
        if step.ts_ns == 8:  # the walk of E11 now runs past U's packed level
            assert any(o.event_id == "E11" for o in got)
    assert packed.deepened >= 4
