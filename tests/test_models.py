"""Domain model: validation at the edge and cattrs round trips."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from argus_core import models as m
from argus_core.errors import DataError
from argus_core.serde import converter, dump_event, load_event

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz:/_-0123456789", min_size=1, max_size=20)
ts = st.integers(min_value=0, max_value=2**62)
pos_dec = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1e9"),
                      allow_nan=False, allow_infinity=False, places=8)
price_f = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def bars(draw: st.DrawFn) -> m.Bar:
    o, c = draw(price_f), draw(price_f)
    hi = max(o, c) * (1 + draw(st.floats(0, 0.1)))
    lo = min(o, c) * (1 - draw(st.floats(0, 0.1)))
    return m.Bar(draw(ids), draw(ts), o, hi, lo, c, draw(st.floats(0, 1e6)))


@st.composite
def books(draw: st.DrawFn) -> m.OrderBook:
    mid = draw(st.floats(10, 1000))
    n_b, n_a = draw(st.integers(0, 5)), draw(st.integers(0, 5))
    bids = [[mid - 0.5 - i, draw(st.floats(0, 100))] for i in range(n_b)]
    asks = [[mid + 0.5 + i, draw(st.floats(0, 100))] for i in range(n_a)]
    return m.OrderBook(draw(ids), draw(ts), bids, asks)


trades = st.builds(m.Trade, ids, ts, pos_dec, pos_dec, st.sampled_from(m.Side))
deltas = st.builds(m.BookDelta, ids, ts, st.sampled_from(m.Side), pos_dec,
                   st.one_of(st.just(Decimal(0)), pos_dec))
outcomes = st.builds(m.Outcome, ids, ids, ids, st.booleans())
events = st.builds(m.Event, ids, ids, st.text(max_size=30), st.lists(outcomes, max_size=4),
                   st.booleans(), st.booleans(), st.booleans())
signals = st.builds(m.Signal, ids, ids, ts, st.floats(-1e6, 1e6))
settlements = st.builds(m.Settlement, ids, ts, st.decimals(0, 1e6, places=4))
statuses = st.builds(m.BookStatus, ids, ts, st.booleans(), st.text(max_size=20))


@given(st.one_of(bars(), books(), trades, deltas, events, signals, settlements, statuses))
def test_market_events_round_trip_through_the_converter(event: m.MarketEvent) -> None:
    assert load_event(dump_event(event)) == event


fills = st.builds(m.Fill, ids, ids, ids, ids, st.sampled_from(m.Side), pos_dec, pos_dec,
                  pos_dec, st.sampled_from(m.Liquidity), ts)
orders = st.builds(m.Order, ids, ids, ids, st.sampled_from(m.Side), pos_dec,
                   st.one_of(st.none(), pos_dec))
forecasts = st.builds(m.Forecast, st.floats(-1, 1), st.floats(0, 1),
                      st.one_of(st.none(), st.floats(0, 1)), st.none(), st.floats(0, 1))
intents = st.builds(m.Intent, ids, ids, st.sampled_from(m.Side), st.one_of(st.none(), pos_dec),
                    forecast=st.one_of(st.none(), forecasts))
legs = st.builds(m.Leg, ids, st.sampled_from(m.Side), pos_dec, pos_dec)
opps = st.builds(m.Opportunity, ids, ids, ts, ids, st.lists(legs, max_size=3), pos_dec,
                 pos_dec, pos_dec, pos_dec)
decisions = st.builds(m.RiskDecision, st.sampled_from(m.RiskAction), ids)
instruments = st.builds(m.Instrument, ids, ids, tick_size=pos_dec, lot_size=pos_dec)


@pytest.mark.parametrize("strategy,cls", [
    (fills, m.Fill), (orders, m.Order), (intents, m.Intent), (opps, m.Opportunity),
    (decisions, m.RiskDecision), (instruments, m.Instrument), (forecasts, m.Forecast)])
def test_domain_objects_round_trip(strategy: st.SearchStrategy, cls: type) -> None:
    @given(strategy)
    def check(obj: object) -> None:
        assert converter.structure(converter.unstructure(obj), cls) == obj

    check()


def test_portfolio_round_trip_and_equity() -> None:
    pos = m.Position("v:x", "2", "100", "5")
    pf = m.Portfolio("1000", {"v:x": pos}, {"v:x": Decimal("110")})
    assert converter.structure(converter.unstructure(pf), m.Portfolio) == pf
    assert pf.equity == Decimal("1220")
    assert pf.gross_exposure == Decimal("220")


@pytest.mark.parametrize("bad", ["nan", "inf", float("nan"), float("inf"), "abc", True])
def test_non_finite_or_non_numeric_prices_are_rejected(bad: object) -> None:
    with pytest.raises(DataError):
        m.Trade("v:x", 1, bad, "1")  # type: ignore[arg-type]


def test_negative_sizes_are_rejected() -> None:
    with pytest.raises(DataError, match="negative"):
        m.BookDelta("v:x", 1, m.Side.BUY, "1", "-1")
    with pytest.raises(DataError):
        m.Intent("s", "v:x", m.Side.BUY, quantity="-1")
    with pytest.raises(DataError):
        m.Fill("f", "o", "v", "v:x", m.Side.BUY, "1", "-2", "0", m.Liquidity.TAKER, 1)


def test_crossed_and_unsorted_books_are_rejected() -> None:
    with pytest.raises(DataError, match="crossed"):
        m.OrderBook("v:x", 1, [[10.0, 1.0]], [[9.5, 1.0]])
    with pytest.raises(DataError, match="descending"):
        m.OrderBook("v:x", 1, [[9.0, 1.0], [10.0, 1.0]], [])
    with pytest.raises(DataError, match="NaN"):
        m.OrderBook("v:x", 1, [[np.nan, 1.0]], [])


def test_limit_intent_needs_a_price() -> None:
    with pytest.raises(DataError, match="limit_price"):
        m.Intent("s", "v:x", m.Side.BUY, order_type=m.OrderType.LIMIT)


def test_position_accounting_long_short_and_flip() -> None:
    def fill(side: m.Side, px: str, q: str) -> m.Fill:
        return m.Fill("f", "o", "v", "v:x", side, px, q, "0", m.Liquidity.TAKER, 1)

    p = m.Position("v:x").apply(fill(m.Side.BUY, "100", "2")).apply(fill(m.Side.BUY, "110", "2"))
    assert (p.quantity, p.avg_price) == (Decimal(4), Decimal(105))
    p = p.apply(fill(m.Side.SELL, "120", "1"))
    assert (p.quantity, p.realized_pnl) == (Decimal(3), Decimal(15))
    p = p.apply(fill(m.Side.SELL, "90", "5"))  # flips short 2 @ 90
    assert (p.quantity, p.avg_price, p.realized_pnl) == (Decimal(-2), Decimal(90),
                                                         Decimal(15) - Decimal(45))


def test_load_event_errors_say_where() -> None:
    with pytest.raises(DataError, match=r"rec.ndjson:3: unknown or missing event type"):
        load_event({"type": "nope"}, where="rec.ndjson:3")
    with pytest.raises(DataError, match="extra"):
        load_event({"type": "signal", "name": "a", "instrument_id": "b", "ts_ns": 1,
                    "value": 1.0, "bogus": 1})


@pytest.mark.parametrize("text", ["1_0", "0.\uff15", "\u0661", "1__0.5", " 2_000 "])
def test_number_text_no_venue_writes_is_refused(text: str) -> None:
    # Decimal itself reads these (underscores, any script's digits): in a recording or a
    # payload they are damage, never a number
    assert Decimal(text.strip())
    with pytest.raises(DataError, match="is not a number"):
        m.to_decimal(text, field="price")


@pytest.mark.parametrize(("value", "step", "ticks"), [
    (Decimal("0.6799999999999999"), Decimal("0.01"), Decimal(68)),     # float noise: on it
    (Decimal("0.30100000000000005"), Decimal("0.001"), Decimal(301)),
    (Decimal("50000.00000000001"), Decimal("0.01"), Decimal(5000000)),
    (Decimal("0.954"), Decimal("0.01"), Decimal("95.4")),              # a real price off it
    (Decimal("0.0100001"), Decimal("0.01"), Decimal("1.00001")),       # a visible share off
    (Decimal("-0.3"), Decimal("0.1"), Decimal(-3)),
])
def test_ticks_of_snaps_float_noise_and_nothing_more(value: Decimal, step: Decimal,
                                                     ticks: Decimal) -> None:
    assert m.ticks_of(value, step) == ticks
    assert (m.ticks_of(value, step) == m.ticks_of(value, step).to_integral_value()) is (
        ticks == ticks.to_integral_value())


def test_to_decimal_reads_a_numpy_float_by_its_value() -> None:
    """numpy 2 writes ``repr(np.float64(1.5))`` as ``np.float64(1.5)``: read as text it was
    a raw ``InvalidOperation``; a float subclass is read by its float's repr."""
    to_decimal = m.to_decimal
    assert to_decimal(np.float64(0.1)) == Decimal("0.1")
    with pytest.raises(DataError, match="not finite"):
        to_decimal(np.float64("nan"))
