"""Third red team of the portfolio plugin: working orders the caps, the per-strategy
REDUCING checks and the sizer did not see, and a busted fill the drift monitor kept.

What was found (each test failed before its fix):

* ``portfolio_caps``' family cap counted only the *filled* positions of the family's other
  instruments: resting buys on ETH let a BTC buy take the crypto family past its cap (the
  core's ``RiskContext`` carried only the intent's own instrument and side, ``pending``,
  and one total over every instrument, ``pending_exposure``; it now also carries
  ``pending_sides``, per instrument);
* ``slippage_drift`` and ``league`` let a strategy they hold to "reduce only" send a sell
  that shrinks its own long on its own, ignoring its sells already working: together they
  flip the position through zero into a short;
* the drift monitor kept a busted fill's slippage in its window (it only skipped the
  offset), so one trade, taken back, still counted and could trip REDUCING;
* ``portfolio_weight`` sized each intent as if none of its strategy's orders were working:
  resting buys sized one after another built a multiple of the target;
* a basket's legs are all judged before any is sent, so each leg passed every check as if
  the others did not exist: two legs of 6% each built 12% in a family capped at 10% (the
  core now counts the legs judged before one as working);
* at a tiny price (1E-30) the room in units overflowed the 1e-8 quantum and the check and
  the sizer raised ``InvalidOperation`` (a veto with no reason a person could act on).

Expected figures are worked out by hand in each test.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from argus_portfolio.drift import SlippageDrift
from argus_portfolio.enforcement import PortfolioCaps, PortfolioWeight
from argus_portfolio.league import League, Status
from argus_portfolio.settings import PortfolioSettings

from argus_core import (
    Fill,
    Intent,
    Ledger,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Portfolio,
    Position,
    RiskAction,
    RiskContext,
    Side,
    TimeInForce,
    structure,
)

BTC, ETH, SOL = "v:BTC/USD", "v:ETH/USD", "v:SOL/USD"
PRICE = Decimal(100)


def _settings(**raw: Any) -> PortfolioSettings:
    return structure(raw, PortfolioSettings, "<test>", prefix="plugins.portfolio")


def _rest(ledger: Ledger, coid: str, iid: str, side: Side, qty: str, *,
          strategy: str = "a") -> None:
    """A limit order at 100 resting at the venue (OPEN in the ledger)."""
    ledger.insert_order(Order(coid, "v", iid, side, Decimal(qty), limit_price=PRICE,
                              order_type=OrderType.LIMIT, time_in_force=TimeInForce.GTC,
                              strategy=strategy, status=OrderStatus.OPEN), "r")


def _intent(side: Side, qty: str, iid: str = BTC, strategy: str = "a") -> Intent:
    return Intent(strategy, iid, side, quantity=Decimal(qty))


def test_working_orders_on_other_instruments_count_towards_the_family_cap() -> None:
    """Crypto family {BTC, ETH} capped at 10% of 100,000 = 10,000; flat; 80 ETH buys rest
    at 100 (8,000).  A BTC buy of 50 (5,000, within the 7% per-play cap) has 2,000 = 20
    units left in the family.  Before: allowed whole, the family at 13,000 once all fill.
    Resting orders on an instrument outside the family (SOL) do not count against it.
    (The core's ``RiskContext.pending_sides`` says which instrument each is on.)"""
    settings = _settings(families={BTC: "crypto", ETH: "crypto"}, family_caps={"crypto": 0.1})
    flat = Portfolio(Decimal(100_000))
    on_eth = RiskContext(pending_exposure=Decimal(8000),
                         pending_sides={ETH: (Decimal(8000), Decimal(0))})
    d = PortfolioCaps(settings).check(_intent(Side.BUY, "50"), Decimal(50), PRICE, flat, on_eth)
    assert d.action is RiskAction.SHRINK and d.quantity == 20, d
    assert "family 'crypto'" in d.reason, d
    on_sol = RiskContext(pending_exposure=Decimal(8000),
                         pending_sides={SOL: (Decimal(8000), Decimal(0))})
    d = PortfolioCaps(settings).check(_intent(Side.BUY, "50"), Decimal(50), PRICE, flat, on_sol)
    assert d.action is RiskAction.ALLOW, d
    # a family member's sells working beside a held long: the worse side counts
    long_eth = Portfolio(Decimal(100_000), {ETH: Position(ETH, Decimal(30), PRICE)},
                         {ETH: PRICE})
    both = RiskContext(pending_exposure=Decimal(5000),
                       pending_sides={ETH: (Decimal(2000), Decimal(5000))})
    d = PortfolioCaps(settings).check(_intent(Side.BUY, "70"), Decimal(70), PRICE, long_eth,
                                      both)
    # equity 103,000 (cash and the held 3,000): cap 10,300; ETH counts
    # max(|3,000 + 2,000|, |3,000 - 5,000|) = 5,000: 5,300 left, 53 units
    assert d.action is RiskAction.SHRINK and d.quantity == 53, d


def test_a_reducing_strategy_cannot_flip_through_its_working_exits(tmp_path: Path) -> None:
    """Strategy ``a`` is long 10 BTC of its own and held to reducing (drifting slippage;
    quarantined in the league), with a sell of 10 already working.  Another sell of 10
    would leave it short 10: vetoed; a sell of 10 with nothing working, or of 4 beside 6
    working, still passes.  Before: the second sell of 10 passed both checks."""
    flat = Portfolio(Decimal(100_000))
    drift = SlippageDrift(_settings())
    drift.reducing["a"] = "drifting (test)"
    league = League(_settings())
    with Ledger.in_dir(tmp_path / "run") as ledger:
        drift.attach(ledger)
        league.attach(ledger)
        st = league._slot("a")
        st.status, st.reason = Status.QUARANTINED, "quarantined (test)"
        for check in (drift, league):
            check.positions.held = {"a": {BTC: Decimal(10)}}
            judged = check.check(_intent(Side.SELL, "10"), Decimal(10), PRICE, flat,
                                 RiskContext())
            assert judged.action is RiskAction.ALLOW, (check.name, judged)
        _rest(ledger, "s1", BTC, Side.SELL, "6")
        _rest(ledger, "s2", BTC, Side.SELL, "4")
        _rest(ledger, "b-other", BTC, Side.SELL, "50", strategy="b")  # not a's
        for check in (drift, league):
            sell10 = check.check(_intent(Side.SELL, "10"), Decimal(10), PRICE, flat,
                                 RiskContext(pending=Decimal(60)))
            assert sell10.action is RiskAction.VETO and "working" in sell10.reason, \
                (check.name, sell10)
        ledger.set_order_status("s2", OrderStatus.CANCELLED)
        for check in (drift, league):
            sell4 = check.check(_intent(Side.SELL, "4"), Decimal(4), PRICE, flat,
                                RiskContext(pending=Decimal(56)))
            assert sell4.action is RiskAction.ALLOW, (check.name, sell4)


def _taker(fid: str, side: Side, price: str, ts: int) -> Fill:
    return Fill(fid, "o1", "v", BTC, side, Decimal(price), Decimal(1), Decimal(0),
                Liquidity.TAKER, ts)


def test_a_busted_fill_leaves_the_drift_window(tmp_path: Path) -> None:
    """min_fills 2, assumed 0 bps: f1 (50 bps) busted, then f2 (50 bps).  Only f2 was
    traded: one sample, never judged.  Before: f1 stayed in the window, so [50, 50] (SD 0)
    tripped REDUCING on a trade that was taken back."""
    settings = _settings(drift={"min_fills": 2, "window": 5, "assumed_slippage_bps": 0.0,
                                "bar_half_spread_bps": 0.0})
    check = SlippageDrift(settings)
    with Ledger.in_dir(tmp_path / "run") as ledger:
        check.attach(ledger)
        ledger.insert_order(Order("o1", "v", BTC, Side.BUY, Decimal(3), strategy="a",
                                  arrival_price="100"), "r")
        p, ctx = Portfolio(Decimal(100_000)), RiskContext()
        check.on_fill(_taker("f1", Side.BUY, "100.5", 1), p, ctx)
        check.on_fill(_taker("f1:bust", Side.SELL, "100.5", 2), p, ctx)
        assert list(check.windows["a"]) == []
        check.on_fill(_taker("f2", Side.BUY, "100.5", 3), p, ctx)
    assert [round(x, 9) for x in check.windows["a"]] == [50.0]
    assert check.reducing == {}
    restored = SlippageDrift(settings)
    restored.set_state(check.get_state())  # which sample is whose survives a checkpoint
    assert restored.get_state() == check.get_state()


def test_the_sizer_counts_its_own_working_orders(tmp_path: Path) -> None:
    """Weight 5% of 100,000 at 100: a target of 50 units.  With 30 of its own buys
    working, a buy is sized 20; with 50 working, 0 (and another strategy's working buys
    do not shrink ``a``'s).  Before: 50 each time, so ten resting buys built 500 units,
    ten times the target."""
    sizer = PortfolioWeight(_settings())
    sizer.weights = {"a": 0.05}
    flat = Portfolio(Decimal(100_000))
    with Ledger.in_dir(tmp_path / "run") as ledger:
        sizer.ledger = ledger
        assert sizer.size(_intent(Side.BUY, "1"), PRICE, flat, None) == 50
        _rest(ledger, "b1", BTC, Side.BUY, "30")
        _rest(ledger, "other", BTC, Side.BUY, "40", strategy="b")
        assert sizer.size(_intent(Side.BUY, "1"), PRICE, flat, None) == 20
        _rest(ledger, "b2", BTC, Side.BUY, "20")
        assert sizer.size(_intent(Side.BUY, "1"), PRICE, flat, None) == 0


def test_the_legs_of_one_basket_count_towards_each_other() -> None:
    """A basket's legs are all judged before any is sent; the core now counts the legs
    judged before one as working (``pending``, ``pending_exposure``, ``pending_sides``:
    tests/test_pending_orders_risk.py).  Crypto family capped at 10,000, flat: legs BTC
    buy 60 and ETH buy 60 (6,000 each) would put 12,000 in the family; the second is
    trimmed to 40.  Two BTC buys of 50 in one basket are one play of 100 > 70: the second
    is trimmed to 20.  Before: every leg allowed whole."""
    settings = _settings(families={BTC: "crypto", ETH: "crypto"}, family_caps={"crypto": 0.1})
    flat, check = Portfolio(Decimal(100_000)), PortfolioCaps(settings)

    def leg(iid: str, qty: str) -> Intent:
        return Intent("a", iid, Side.BUY, quantity=Decimal(qty), basket_id="k1")

    assert check.check(leg(BTC, "60"), Decimal(60), PRICE, flat,
                       RiskContext()).action is RiskAction.ALLOW
    after_btc = RiskContext(pending_exposure=Decimal(6000),
                            pending_sides={BTC: (Decimal(6000), Decimal(0))})
    d = check.check(leg(ETH, "60"), Decimal(60), PRICE, flat, after_btc)
    assert d.action is RiskAction.SHRINK and d.quantity == 40, d
    assert "family 'crypto'" in d.reason, d
    same = RiskContext(pending=Decimal(50), pending_exposure=Decimal(5000),
                       pending_sides={BTC: (Decimal(5000), Decimal(0))})
    d = check.check(leg(BTC, "50"), Decimal(50), PRICE, flat, same)
    assert d.action is RiskAction.SHRINK and d.quantity == 20 and "per-play" in d.reason, d


def test_a_tiny_price_is_judged_not_raised() -> None:
    """At a price of 1E-30 the per-play room of 7,000 is 7E+33 units, more digits than
    Decimal's 28 at a 1e-8 quantum.  Before: the check and the sizer raised
    InvalidOperation (the core turned it into a veto saying only "check raised
    InvalidOperation: [<class 'decimal.InvalidOperation'>]")."""
    tiny, flat = Decimal("1E-30"), Portfolio(Decimal(100_000))
    check = PortfolioCaps(None)
    assert check.check(_intent(Side.BUY, "5"), Decimal(5), tiny, flat,
                       RiskContext()).action is RiskAction.ALLOW
    d = check.check(_intent(Side.BUY, "1E+40"), Decimal("1E+40"), tiny, flat, RiskContext())
    assert d.action is RiskAction.SHRINK and d.quantity == Decimal("7E+33"), d
    sizer = PortfolioWeight(_settings())
    sizer.weights = {"a": 0.05}
    assert sizer.size(_intent(Side.BUY, "1"), tiny, flat, None) == Decimal("5E+33")
