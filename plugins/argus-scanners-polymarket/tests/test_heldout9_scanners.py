"""Ninth held-out audit: depth offered twice, taker limits off the tick in force, and a
``pm_maker.tokens`` entry that is not text.

Found:

* ``correlation`` offered one book's depth to every basket with a leg on it: three
  nested "BTC above" markets gave three baskets of 100, two of them on the 100 NO(100k)
  shares and two on the 100 YES(80k) shares (sending all three overfills the later ones).
  Each scan now holds back the depth a better finding took (``correlation.Depth``).
* A taker leg's limit was the deepest level's price as written: after the venue moved a
  market from tick 0.001 to 0.01 a level left at 0.957 made a risk-free, executable
  ``resolution`` leg limited at 0.957, which the venue refuses (off the grid).  Every
  taker limit is now ``common.buy_limit`` (ceiled to the tick in force).
* ``tick_in_force`` preferred a published tick signal over the instrument: the venue
  replaces the instrument just before it publishes the signal, so between the two (or
  with an older signal left) the maker quoted 0.401 on a market already at 0.01.  The
  coarser of the two is now used (on both grids).
* ``MakerStrategySettings(tokens=[123])`` kept the int: the strategy matched no
  instrument and quoted nothing, silently.  Ints are now their digits; other non-text,
  empty or spaced ids, and float-written ids, are refused by name.

Incremental and reference paths side by side, checked against a brute-force walk.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

import attrs
import pytest
from argus_scanners_polymarket.common import TICK_SIGNAL
from argus_scanners_polymarket.config import (
    CorrelationSettings,
    MakerStrategySettings,
    PmScannersSettings,
)
from argus_scanners_polymarket.correlation import CorrelationScanner
from argus_scanners_polymarket.fixtures import MarketBuilder
from argus_scanners_polymarket.maker import MakerScanner
from argus_scanners_polymarket.maker_strategy import MakerStrategy
from argus_scanners_polymarket.resolution import ResolutionScanner

from argus_core import ConfigError, FeeSchedule, Instrument, MarketState, Opportunity, Signal
from argus_core.config import structure

D = Decimal
ONE_PCT = FeeSchedule(taker_bps=D(100))
LOT = D("0.01")


def _family(b: MarketBuilder, asks: dict[int, tuple[float, float, float]]
            ) -> dict[int, tuple[str, str]]:
    """Binary "BTC above $<level>k" markets: ``level -> (YES ask, NO ask, size)``."""
    ids = {}
    for level, (yes_ask, no_ask, size) in asks.items():
        ((yes, no),) = b.event(f"btc{level}", [f"{level}k"], neg_risk=False, questions=[
            f"Will Bitcoin be above ${level},000 on December 31, 2025?"])
        b.book(yes, [], [(yes_ask, size)], ts_ns=3)
        b.book(no, [], [(no_ask, size)], ts_ns=3)
        ids[level] = (yes, no)
    return ids


def _both(market: MarketState, settings: CorrelationSettings) -> list[Opportunity]:
    inc = CorrelationScanner(settings).scan(market, 5)
    ref = CorrelationScanner(settings, incremental=False).scan(market, 5)
    assert inc == ref
    return inc


def _brute_force_basket(market: MarketState, legs: list[str], taken: dict[str, D]
                        ) -> tuple[D, D]:
    """Brute force, independent of the scanner: the largest whole-lot quantity ``q`` of a
    two-leg basket paying 1 whose every share clears the fees (1 % of notional), on each
    one-level book less ``taken``; returns ``(q, profit)``."""
    price = [D(repr(float(market.books[i].ask_levels()[0, 0]))) for i in legs]
    size = [D(repr(float(market.books[i].ask_levels()[0, 1]))) - taken.get(i, D(0))
            for i in legs]
    unit = 1 - sum(price) - sum(p * D("0.01") for p in price)
    if unit <= D("0.005"):
        return D(0), D(0)
    q = min(size).quantize(LOT, rounding=ROUND_DOWN)
    return q, q * unit


def test_a_books_depth_is_offered_to_one_basket_only() -> None:
    """BTC above 80k / 90k / 100k: YES asks 0.40 / 0.45 / 0.60, NO(100k) 0.41 with 150
    shares, every other book 100.  Before: three baskets of 100 (YES(80k) in two, NO(100k)
    in two; 300 shares offered on 250).  Now each basket's legs get what a better one
    left: brute force, best first, agrees level by level."""
    b = MarketBuilder(ONE_PCT)
    ids = _family(b, {80: (0.40, 0.61, 100), 90: (0.45, 0.56, 100), 100: (0.60, 0.41, 100)})
    b.book(ids[100][1], [], [(0.41, 150)], ts_ns=3)
    opps = _both(b.market, CorrelationSettings(trade_proven=True))
    # brute force: every constraint's basket, best first, on what the better ones left
    baskets = {(a, c): [ids[c][0], ids[a][1]] for a, c in ((100, 90), (100, 80), (90, 80))}
    taken: dict[str, D] = {}
    expected = []
    while baskets:
        priced = {k: _brute_force_basket(b.market, legs, taken) for k, legs in baskets.items()}
        best = max(priced, key=lambda k: priced[k][1])
        q, profit = priced.pop(best)
        legs = baskets.pop(best)
        if q >= 10:  # min_liquidity
            expected.append((legs, q, profit))
            for i in legs:
                taken[i] = taken.get(i, D(0)) + q
    got = [([leg.instrument_id for leg in o.legs], o.max_size, o.expected_profit)
           for o in opps]
    assert got == expected
    assert [q for _, q, _ in got] == [D(100), D(50)]  # 80=>100 NO(100k) 100, then 50 left
    offered: dict[str, D] = {}
    for o in opps:
        for leg in o.legs:
            offered[leg.instrument_id] = offered.get(leg.instrument_id, D(0)) + leg.quantity
    for iid, q in offered.items():
        assert q <= D(repr(float(b.market.books[iid].ask_levels()[:, 1].sum()))), iid


def _retick(market: MarketState, iid: str, tick: str, ts_ns: int) -> None:
    """What the Polymarket venue streams on a ``tick_size_change``: the instrument on its
    new tick, then the signal."""
    market.add_instruments([attrs.evolve(market.instruments[iid], tick_size=D(tick))])
    market.apply(Signal(TICK_SIGNAL, iid, ts_ns, float(tick)))


@pytest.mark.parametrize("incremental", [True, False])
def test_a_taker_limit_is_on_the_tick_in_force(incremental: bool) -> None:
    """Resolved at 1, asked 0.954 (100) and 0.957 (50) on tick 0.001; the venue moves the
    market to 0.01.  Before: one executable leg limited at 0.957, off the 0.01 grid (the
    venue refuses it).  Now 0.96: the 150 shares fill at their own prices under it.  A
    level at 0.995 no limit in [0.01, 0.99] reaches is not bought."""
    b = MarketBuilder()
    (a, _an), _ = b.event("R", ["A", "B"], tick="0.001")
    b.book(a, [(0.90, 100)], [(0.954, 100), (0.957, 50), (0.995, 70)], ts_ns=20)
    b.settle(a, 1)
    scanner = ResolutionScanner(incremental=incremental)
    (before,) = scanner.scan(b.market, 30)
    assert before.legs[0].limit_price == D("0.995") and before.max_size == D(220)
    _retick(b.market, a, "0.01", 25)
    (opp,) = scanner.scan(b.market, 31)
    leg = opp.legs[0]
    assert (leg.limit_price, leg.quantity) == (D("0.96"), D(150))
    assert leg.limit_price % D("0.01") == 0
    assert opp.expected_profit == 150 - D("95.4") - D("47.85")


@pytest.mark.parametrize("incremental", [True, False])
def test_the_maker_reads_the_replaced_instrument_before_its_signal(incremental: bool
                                                                   ) -> None:
    """A 0.01 market moved to 0.001 (instrument and signal), then back: the venue
    replaces the instrument first.  Before: read between the two, the old 0.001 signal
    won and the maker quoted 0.401 / 0.459 on a 0.01 market."""
    b = MarketBuilder()
    ((y, _n),) = b.event("M", ["T"], neg_risk=False)
    b.book(y, [(0.40, 100)], [(0.46, 100)], ts_ns=20)
    _retick(b.market, y, "0.001", 21)
    prices = [leg.limit_price for o in MakerScanner(incremental=incremental).scan(
        b.market, 22) for leg in o.legs]
    assert prices == [D("0.401"), D("0.459")]
    b.market.add_instruments([attrs.evolve(b.market.instruments[y], tick_size=D("0.01"))])
    prices = [leg.limit_price for o in MakerScanner(incremental=incremental).scan(
        b.market, 23) for leg in o.legs]
    assert prices == [D("0.41"), D("0.45")]


def test_pm_maker_tokens_written_as_numbers() -> None:
    """``tokens = [123]`` built directly: before, the int 123 matched no instrument and the
    strategy quoted nothing, silently.  Now it is the token "123"; a float, a bool, an
    empty or spaced id, or one written with an exponent is refused, naming the entry."""
    inst = Instrument("polymarket", "123", kind="binary", tick_size="0.01", lot_size="0.01")
    settings = PmScannersSettings(pm_maker=MakerStrategySettings(tokens=[123]))  # type: ignore[list-item]
    assert settings.pm_maker.tokens == ["123"]
    assert MakerStrategy(settings)._quotes(inst)
    for bad, needle in (([1.5], "tokens[0]: expected a token id (text), got float"),
                        ([None], "got NoneType"), (["7", ""], "tokens[1]"),
                        ([" 12 "], "has spaces")):
        with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("(", r"\(")
                           .replace(")", r"\)")):
            MakerStrategySettings(tokens=bad)  # type: ignore[arg-type]
    for value, needle in (([1.5e30], "1.5e+30' is a number with a fraction or exponent"),
                          (["polymarket:12.5"], "is a number with a fraction")):
        with pytest.raises(ConfigError) as info:
            structure({"pm_maker": {"tokens": value}}, PmScannersSettings, "c.toml",
                      prefix="plugins.pmscanners")
        assert needle in str(info.value) and str(info.value).startswith("c.toml")
    ok = structure({"pm_maker": {"tokens": [123, "polymarket:456"]}}, PmScannersSettings,
                   "c.toml", prefix="plugins.pmscanners")
    assert ok.pm_maker.tokens == ["123", "polymarket:456"]


def test_disjoint_baskets_keep_their_full_depth() -> None:
    """Control: two nested pairs on four distinct books each keep all 100 shares."""
    b = MarketBuilder(ONE_PCT)
    ids = _family(b, {90: (0.40, 0.61, 100), 100: (0.55, 0.46, 100)})
    (opp,) = _both(b.market, CorrelationSettings())
    assert opp.max_size == D(100) and [leg.instrument_id for leg in opp.legs] == [
        ids[90][0], ids[100][1]]
