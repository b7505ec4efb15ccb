"""Red team 40 of the VRP plugin: hostile signals and bars, sizing at the exact budget,
the settings' ranges, the quote model's chain file, and the strategy's state across a
restart.

Found and fixed (each test marked "Before" failed before):

* a NaN regime feature passed every entry filter (``NaN > max_p_change`` is False, and
  so are ``regime == STRESSED`` and ``vrp < min_vrp``): a NaN ``bocpd_p_change``,
  ``vol_regime`` or ``realised_vol`` opened a spread, and ``vrp_regime_guard`` let its
  orders through; both now fail closed;
* a second bar of a day already acted on (a duplicated row or event) managed the spread
  opened on the first against the same books: with ``stop_multiple`` 1.01 it closed the
  spread at once, paying both half-spreads twice in a day.  The strategy acts once per
  underlying per day (as its docstring said), and ignores an earlier day's bar;
* sizing in floats undersized at the exact budget: $11,785.80 affords 13 spreads whose
  worst loss is $906.60 each, and the strategy sold 12 (42 of 300 such budgets lost
  one spread); the arithmetic is now decimal on the amounts as written;
* ``get_state`` handed out the live dict (a later fill's credit rewrote a checkpoint
  already taken); ``set_state`` took anything: a list raised AttributeError (a traceback,
  not the runner's damaged-checkpoint error), a spread without its long leg was restored
  and failed on the next bar with KeyError (the run went REDUCING).  The state is now a
  copy, checked on restore, and the last day acted on is part of it;
* ``start`` / ``end`` that are not dates were refused without naming the setting
  (placed at ``plugins.vrp``, not the key); ``book_levels`` and ``heston_paths`` had no
  upper bound (1e9 levels hung the first book, 1,100 overflowed; a trillion paths failed
  allocating 48 TB at the first scored strike): now at most 20 and 10,000,000;
* the quote model's chain file took NaN, zero or negative vols, strikes and forwards, a
  negative bid and repeated rows: a NaN vol made every skew coefficient NaN and the
  replay crashed on its first book (``math.floor(nan)``); now a ``DataError`` names the
  file, line and column (non-put rows are left out of the put fit).

Held (no change needed): a restart at any point of a 4-month backtest, with a spread
open or not, gives the same fills as the uninterrupted run; Black-Scholes delta and the
lognormal PoP against closed forms written here with math.erf; only quoted expiries in
the DTE window are traded (expired and missing ones are skipped with the reason).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import types
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from argus_strategy_vrp import pricing
from argus_strategy_vrp.config import VrpSettings
from argus_strategy_vrp.constants import MULTIPLIER, VENUE
from argus_strategy_vrp.instruments import PutContract
from argus_strategy_vrp.pricing import bs_put, bs_put_delta, lognormal_pop
from argus_strategy_vrp.risk import VrpRegimeGuard
from argus_strategy_vrp.strategy import VrpPutSpread

from argus_core import Bar, ConfigError, DataError, Intent, Side, plugin_settings
from argus_core.config import parse_config
from argus_core.errors import LedgerError
from argus_core.ledger import Ledger
from argus_core.models import RiskAction
from argus_core.runner import CHECKPOINT, Runner

TODAY = dt.date(2020, 1, 2)
EXPIRY = dt.date(2020, 2, 6)  # 35 days out
SPOT = 300.0


def _ns(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, 21, tzinfo=dt.UTC).timestamp()) \
        * 1_000_000_000


NOW_NS = _ns(TODAY)
CALM = {"bocpd_p_change": 0.01, "vol_regime": 0.0, "vol_spike": 0.0, "realised_vol": 0.05}


# -- fakes of the slices of the core the strategy reads ----------------------------------

class _Book:
    def __init__(self, bid: float, ask: float, ts_ns: int = NOW_NS) -> None:
        self.bid, self.ask, self.ts_ns, self.live = bid, ask, ts_ns, True

    def best_bid(self) -> float:
        return self.bid

    def best_ask(self) -> float:
        return self.ask

    def bid_levels(self) -> Any:
        return np.array([[self.bid, 1000.0]])

    def ask_levels(self) -> Any:
        return np.array([[self.ask, 1000.0]])


class _Market:
    def __init__(self, books: dict[str, _Book], signals: dict[str, float] | None = None,
                 now_ns: int = NOW_NS) -> None:
        self.books, self.now_ns = books, now_ns
        self.signals = dict(CALM if signals is None else signals)

    def signal(self, name: str, sid: str) -> float | None:
        return self.signals.get(name)


class _Position:
    def __init__(self, quantity: float = 0.0, avg_price: float = 0.0) -> None:
        self.quantity, self.avg_price = Decimal(repr(quantity)), Decimal(repr(avg_price))


class _Portfolio:
    def __init__(self, equity: float) -> None:
        self.equity = equity
        self.positions: dict[str, _Position] = {}

    def position(self, instrument_id: str) -> _Position:
        return self.positions.get(instrument_id, _Position())


class _Ctx:
    def __init__(self, books: dict[str, _Book], equity: float = 1e6,
                 signals: dict[str, float] | None = None, now_ns: int = NOW_NS) -> None:
        self.market = _Market(books, signals, now_ns)
        self.portfolio = _Portfolio(equity)
        self.pricers: dict[str, Any] = {}


def _chain(expiry: dt.date = EXPIRY, ts_ns: int = NOW_NS) -> dict[str, _Book]:
    """Puts every 5 points, $1 either side of Black-Scholes at 20% (per contract)."""
    t = (expiry - dt.datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=dt.UTC).date()).days / 365
    books = {}
    for strike in np.arange(200.0, 305.0, 5.0):
        mid = round(float(bs_put(SPOT, strike, max(t, 1e-9), 0.01, 0.2)) * MULTIPLIER)
        books[PutContract("SPY", expiry, float(strike)).instrument_id] = _Book(
            max(mid - 1.0, 1.0), mid + 1.0, ts_ns)
    return books


def _bar(day: dt.date = TODAY) -> Bar:
    return Bar(f"{VENUE}:SPY", _ns(day), SPOT, SPOT, SPOT, SPOT, 1.0)


def _settings(**kw: Any) -> VrpSettings:
    base: dict[str, Any] = dict(symbols=["SPY"], min_vrp=-1.0, min_credit=0.0,
                                max_risk_per_play=1e9, max_contracts=1000)
    return VrpSettings(**{**base, **kw})


# -- NaN regime features -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["bocpd_p_change", "vol_regime", "realised_vol",
                                  "vol_spike"])
def test_a_nan_regime_feature_never_opens_a_spread(name: str) -> None:
    """Before: a NaN p_change, regime or realised vol passed every filter and sold."""
    clean = VrpPutSpread(_settings())._enter("SPY", _bar(), _Ctx(_chain()))
    assert len(clean) == 2  # the calm chain trades
    strategy = VrpPutSpread(_settings())
    got = strategy.on_event(_bar(), _Ctx(_chain(), signals={**CALM, name: math.nan}))
    assert got == [], strategy.last_decision  # (a NaN spike was refused before too)
    assert "not finite" in strategy.last_decision["SPY"], strategy.last_decision


@pytest.mark.parametrize("name", ["bocpd_p_change", "vol_regime", "vol_spike"])
def test_the_regime_guard_vetoes_a_nan_feature(name: str) -> None:
    """Before: a NaN p_change or regime was allowed (NaN > limit is False)."""
    guard = VrpRegimeGuard(VrpSettings())
    intent = Intent("x", PutContract("SPY", EXPIRY, 280.0).instrument_id, Side.SELL,
                    quantity=1, limit_price=Decimal("100"))
    calm = types.SimpleNamespace(market=_Market({}))
    assert guard.check(intent, Decimal(1), Decimal(100), None, calm).action \
        is RiskAction.ALLOW  # type: ignore[arg-type]
    ctx = types.SimpleNamespace(market=_Market({}, {**CALM, name: math.nan}))
    decision = guard.check(intent, Decimal(1), Decimal(100), None, ctx)  # type: ignore[arg-type]
    assert decision.action is RiskAction.VETO, decision  # (a NaN spike was vetoed before)
    assert name == "vol_spike" or "not finite" in decision.reason, decision


# -- duplicate and out-of-order bars -----------------------------------------------------

def _filled(ctx: _Ctx, intents: list[Intent]) -> None:
    """Book the entry as filled at its touch prices (the limits less the slack)."""
    short, long_ = intents
    bid = ctx.market.books[short.instrument_id].bid
    ask = ctx.market.books[long_.instrument_id].ask
    n = float(short.quantity or 0)
    ctx.portfolio.positions = {short.instrument_id: _Position(-n, bid),
                               long_.instrument_id: _Position(n, ask)}


def test_a_repeated_bar_is_not_acted_on_twice() -> None:
    """Before: the second copy of the entry bar managed the new spread against the same
    books and (stop 1.01 x credit < the close cost) closed it at once."""
    strategy = VrpPutSpread(_settings(stop_multiple=1.01))
    ctx = _Ctx(_chain())
    entry = strategy.on_event(_bar(), ctx)
    assert len(entry) == 2
    _filled(ctx, list(entry))
    assert strategy.on_event(_bar(), ctx) == []
    assert "already acted on" in strategy.last_decision["SPY"]
    # an earlier day's bar is ignored too; the next day's is managed (here: the stop)
    assert strategy.on_event(_bar(TODAY - dt.timedelta(days=1)), ctx) == []
    nxt = TODAY + dt.timedelta(days=1)
    ctx_next = _Ctx(_chain(), now_ns=_ns(nxt))  # the same quotes, stamped the next day
    for book in ctx_next.market.books.values():
        book.ts_ns = _ns(nxt)
    ctx_next.portfolio.positions = ctx.portfolio.positions
    closes = strategy.on_event(_bar(nxt), ctx_next)
    assert [i.reduce_only for i in closes] == [True, True], strategy.last_decision


def test_expired_and_missing_expiries_are_not_traded() -> None:
    """Held: books of an expiry already past, or only outside the DTE window, give no
    play (with the reason)."""
    for expiry in (TODAY - dt.timedelta(days=3), TODAY + dt.timedelta(days=3),
                   TODAY + dt.timedelta(days=200)):
        strategy = VrpPutSpread(_settings())
        assert strategy.on_event(_bar(), _Ctx(_chain(expiry))) == []
        assert "no quoted expiry" in strategy.last_decision["SPY"]


# -- sizing at the exact budget ----------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 13, 21, 26, 37])
def test_a_budget_of_exactly_n_worst_losses_affords_n_spreads(n: int) -> None:
    """Before: 13, 21, 26 and 37 sold one spread fewer (floats: 11785.8 / 906.6 < 13)."""
    settings = _settings(commission_per_contract=0.65, commission_per_fill=0.0,
                         limit_ticks=2)
    books = _chain()
    probe = VrpPutSpread(settings)._enter("SPY", _bar(), _Ctx(books, equity=1e9))
    short, long_ = (books[i.instrument_id] for i in probe)
    long_.ask = short.bid - 100.0  # a credit of exactly $100 at the touch
    # per spread: 10 points x 100 - $100 credit, 2 ticks of slack per leg, 4 fills x $0.65
    worst = Decimal("900") + 2 * 2 * Decimal("1") + 4 * Decimal("0.65")
    for cap, expect in ((worst * n, n), (worst * n - Decimal("0.01"), n - 1)):
        strategy = VrpPutSpread(attrs_evolve(settings, max_risk_per_play=float(cap)))
        got = strategy._enter("SPY", _bar(), _Ctx(books, equity=1e9))
        quantity = int(got[0].quantity) if got else 0  # type: ignore[arg-type]
        assert quantity == expect, (cap, strategy.last_decision)


def attrs_evolve(settings: VrpSettings, **changes: Any) -> VrpSettings:
    import attrs

    return attrs.evolve(settings, **changes)


# -- state across a restart --------------------------------------------------------------

def test_state_is_a_copy_that_survives_json() -> None:
    """Before: get_state returned the live dict, so filling in the spread's credit on
    the next bar rewrote the state a checkpoint had already taken."""
    strategy = VrpPutSpread(_settings())
    ctx = _Ctx(_chain())
    strategy.on_event(_bar(), ctx)
    saved = strategy.get_state()
    strategy.open["SPY"]["credit"] = 123.0
    assert "credit" not in saved["open"]["SPY"]
    restored = VrpPutSpread(_settings())
    restored.set_state(json.loads(json.dumps(strategy.get_state())))
    assert restored.get_state() == strategy.get_state()
    # a checkpoint written before last_day existed still restores
    old = VrpPutSpread(_settings())
    old.set_state({"open": saved["open"], "n_baskets": 1})
    assert old.open == saved["open"] and old.last_day == {}


LEG = PutContract("SPY", EXPIRY, 280.0).instrument_id


@pytest.mark.parametrize(("state", "error", "said"), [
    ([], TypeError, "must be a table"),
    ({"open": []}, TypeError, "table of spreads"),
    ({"open": {"SPY": []}}, TypeError, "open spread of 'SPY'"),
    ({"open": {"SPY": {"short": LEG}}}, ValueError, "no 'long' leg"),
    ({"open": {"SPY": {"short": LEG, "long": "garbage"}}}, ValueError, "not a VRP put"),
    ({"open": {"SPY": {"short": LEG, "long": LEG, "credit": "lots"}}}, ValueError, "credit"),
    ({"open": {}, "n_baskets": -1}, ValueError, "n_baskets"),
    ({"open": {}, "last_day": {"SPY": "today"}}, ValueError, "last_day"),
])
def test_a_damaged_state_is_refused_naming_what_is_wrong(state: Any, error: type,
                                                          said: str) -> None:
    """Before: a list raised AttributeError ([].get); the others were restored and
    failed later, on a bar."""
    with pytest.raises(error, match=said):
        VrpPutSpread(_settings()).set_state(state)


def _config(start: str = "2017-06-01", end: str = "2017-09-29") -> Any:
    return parse_config({
        "argus": {"plugins": ["vrp"]},
        "run": {"venue": "vrp_options", "strategies": ["vrp_put_spread"],
                "starting_cash": "100000"},
        "plugins": {"vrp": {"symbols": ["SPY"], "spread_scale": 0.25, "min_vrp": 0.0,
                            "start": start, "end": end},
                    "risk": {"max_consecutive_losses": 1000, "per_play_fraction": "0.10"}}})


def _fills(run: Path) -> list[tuple[Any, ...]]:
    with Ledger.in_dir(run) as ledger:
        return [(f["instrument_id"], f["side"], f["quantity"], f["price"], f["fee"])
                for f in ledger.fills()]


def test_a_restart_anywhere_gives_the_uninterrupted_runs_fills(tmp_path: Path) -> None:
    """Held: stopped after 150 / 777 / 1,900 events (a spread open each time) and
    resumed from the checkpoint, the backtest fills exactly as the run that never
    stopped."""
    full = tmp_path / "full"
    Runner(_config(), full).run_sync()
    expect = _fills(full)
    assert len(expect) > 20
    for cut in (150, 777, 1900):
        run = tmp_path / f"cut{cut}"
        Runner(_config(), run, max_events=cut).run_sync()
        with Ledger.in_dir(run) as ledger:
            _seq, _ts, state = ledger.load_checkpoint(CHECKPOINT)  # type: ignore[misc]
        assert state["strategies"]["vrp_put_spread"]["open"], cut  # a spread across it
        Runner(_config(), run).run_sync()
        assert _fills(run) == expect, cut


def test_a_damaged_strategy_checkpoint_is_a_ledger_error(tmp_path: Path) -> None:
    """Before: a spread without its long leg was restored, and the next SPY bar failed
    the strategy with KeyError 'long' (the run went on REDUCING)."""
    run = tmp_path / "run"
    Runner(_config(), run, max_events=150).run_sync()
    with Ledger.in_dir(run) as ledger:
        _seq, _ts, state = ledger.load_checkpoint(CHECKPOINT)  # type: ignore[misc]
        spread = state["strategies"]["vrp_put_spread"]["open"]["SPY"]
        del spread["long"]
        ledger.conn.execute("update checkpoints set state_json = ? where name = ?",
                            (json.dumps(state), CHECKPOINT))
    with pytest.raises(LedgerError, match="no 'long' leg"):
        Runner(_config(), run).run_sync()


# -- settings ----------------------------------------------------------------------------

def _validate(vrp: dict[str, Any]) -> VrpSettings:
    config = parse_config({"argus": {"plugins": ["vrp"]},
                           "run": {"venue": "vrp_options", "strategies": ["vrp_put_spread"]},
                           "plugins": {"vrp": vrp}})
    return plugin_settings(config, "vrp", VrpSettings)


@pytest.mark.parametrize(("key", "value"), [("start", "2012-13-01"), ("end", "garbage")])
def test_a_date_that_is_not_one_names_its_setting(key: str, value: str) -> None:
    """Before: "'2012-13-01' is not an ISO date (YYYY-MM-DD) @ plugins.vrp"."""
    with pytest.raises(ConfigError, match=rf"{key} = '{value}' is not an ISO date.*"
                                          rf"@ plugins\.vrp\.{key}"):
        _validate({key: value})


@pytest.mark.parametrize(("key", "inside", "outside"), [("book_levels", 20, 21),
                                                        ("heston_paths", 10_000_000,
                                                         10_000_001)])
def test_book_levels_and_heston_paths_are_bounded(key: str, inside: int,
                                                  outside: int) -> None:
    """Before: no upper bound (1e9 levels hung the replay; 1e12 paths cannot be held)."""
    assert getattr(_validate({key: inside}), key) == inside
    with pytest.raises(ConfigError, match=rf"{key} = {outside} is outside the allowed range"):
        _validate({key: outside})


@pytest.mark.parametrize(("key", "value"), [
    ("short_delta", 1.0), ("target_pop", 0.0), ("risk_budget", 1.0000001),
    ("stop_multiple", 1.0), ("heston_rho", -1.0), ("max_p_change", math.nan),
    ("strike_band", 1.0), ("spread_scale", 100.0001), ("rate", -0.21), ("exit_dte", -1),
    ("max_contracts", 0), ("limit_ticks", -1), ("min_credit", -0.01),
])
def test_each_setting_out_of_range_is_refused_by_name(key: str, value: Any) -> None:
    """Held: every boundary probe names its key."""
    with pytest.raises(ConfigError, match=rf"{key}\b"):
        _validate({key: value})


# -- the quote model's chain file ---------------------------------------------------------

CHAIN_HEADER = ("date,stock_price_close,option_expiration,strike,call/put,bid,ask,iv,"
                "forward_price,isinterpolated")
CHAIN_OK = "1/3/11,1271.87,2/18/11,1200,P,10.1,10.6,0.2,1270.7,"


@pytest.fixture
def chain_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def write(rows: list[str]) -> None:
        (tmp_path / "data").mkdir(exist_ok=True)
        (tmp_path / "data" / pricing.CHAIN_FILE).write_text(
            "\n".join([CHAIN_HEADER, *rows]) + "\n")
        monkeypatch.setattr(pricing, "resources",
                            types.SimpleNamespace(files=lambda _p: tmp_path))
        pricing.calibrated_model.cache_clear()

    yield write
    pricing.calibrated_model.cache_clear()  # the next caller fits the bundled file again


@pytest.mark.parametrize(("row", "said"), [
    (CHAIN_OK.replace(",0.2,", ",nan,"), "line 3: column 'iv' is 'nan'"),
    (CHAIN_OK.replace(",0.2,", ",0,"), "line 3: column 'iv' is '0'"),
    (CHAIN_OK.replace(",0.2,", ",-0.2,"), "line 3: column 'iv' is '-0.2'"),
    (CHAIN_OK.replace(",1200,", ",0,"), "line 3: column 'strike' is '0'"),
    (CHAIN_OK.replace(",1270.7,", ",inf,"), "line 3: column 'forward_price'"),
    (CHAIN_OK.replace(",10.1,", ",-1,"), "line 3: column 'bid' is '-1'"),
    (CHAIN_OK, "line 3: repeats line 2"),
])
def test_a_bad_chain_row_is_refused_with_file_line_and_column(chain_file: Any, row: str,
                                                                said: str) -> None:
    """Before: loaded; a NaN vol made the skew NaN and the replay died on its first book."""
    chain_file([CHAIN_OK, row])
    with pytest.raises(DataError, match=f"{pricing.CHAIN_FILE} {said}"):
        pricing.calibrated_model()


# -- formulas against closed forms written here ------------------------------------------

def _ncdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@pytest.mark.parametrize(("strike", "t", "vol"), [(300.0, 35 / 365, 0.2), (250.0, 0.1, 0.35),
                                                  (340.0, 1.0, 0.15), (150.0, 2 / 365, 0.6)])
def test_put_delta_and_pop_against_erf(strike: float, t: float, vol: float) -> None:
    r = 0.01
    d1 = (math.log(SPOT / strike) + (r + 0.5 * vol * vol) * t) / (vol * math.sqrt(t))
    assert float(bs_put_delta(SPOT, strike, t, r, vol)) == pytest.approx(_ncdf(d1) - 1.0,
                                                                         abs=1e-12)
    h = 1e-3
    fd = (float(bs_put(SPOT + h, strike, t, r, vol))
          - float(bs_put(SPOT - h, strike, t, r, vol))) / (2 * h)
    assert float(bs_put_delta(SPOT, strike, t, r, vol)) == pytest.approx(fd, abs=1e-6)
    be = strike - 1.5
    z = (math.log(SPOT / be) + (r - 0.5 * vol * vol) * t) / (vol * math.sqrt(t))
    assert lognormal_pop(SPOT, be, t, vol, r) == pytest.approx(_ncdf(z), abs=1e-12)
