"""VRP through the real loop: per-contract commissions, probability-of-profit selection
(Heston through ``register_pricers`` vs an independent characteristic-function
probability, and the lognormal fallback), spreads held to a worthless expiry counted as
round trips, and the regime guard reading the venue's signals in the risk layer."""

from __future__ import annotations

import asyncio
import cmath
import math
import warnings
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from argus_lab.sweep import play_pnls
from argus_strategy_vrp.config import VrpSettings
from argus_strategy_vrp.constants import MULTIPLIER
from argus_strategy_vrp.data import VrpVenue
from argus_strategy_vrp.instruments import PutContract
from argus_strategy_vrp.strategy import VrpPutSpread, _day_of
from scipy import integrate, optimize
from scipy import stats as st

from argus_core.backtest import run_backtest
from argus_core.config import parse_config
from argus_core.interfaces import StrategyContext
from argus_core.ledger import Ledger
from argus_core.market_state import MarketState
from argus_core.metrics import compute_metrics
from argus_core.models import Bar, Portfolio

OPTION = "vrp_options:SPY-20190118-P-250"


def _config(vrp: dict, *, plugins: tuple[str, ...] = ("vrp",), extra: dict | None = None):
    raw = {"argus": {"plugins": list(plugins)},
           "run": {"venue": "vrp_options", "strategies": ["vrp_put_spread"],
                   "starting_cash": "100000"},
           "plugins": {"vrp": {"symbols": ["SPY"], "spread_scale": 0.25, "min_vrp": 0.0,
                               **vrp},
                       "risk": {"max_consecutive_losses": 1000, "per_play_fraction": "0.10"}}}
    for key, value in (extra or {}).items():
        raw.setdefault(key, {}).update(value)
    return parse_config(raw)


def _option_fills(run_dir: Path) -> list[dict]:
    with Ledger.in_dir(run_dir) as ledger:
        return [f for f in ledger.fills() if f["instrument_id"].count("-") == 3]


# -- commissions -----------------------------------------------------------------------
def test_fee_schedule_charges_the_commission_per_contract():
    venue = VrpVenue(VrpSettings(commission_per_contract=0.65, commission_per_fill=0.1))
    fees = venue.fee_schedule(OPTION)
    assert fees.fee(Decimal("123"), Decimal("7"), maker=False) == Decimal("0.65") * 7 + \
        Decimal("0.1")
    assert fees.fee(Decimal("5"), Decimal("1"), maker=True) == Decimal("0.75")
    assert venue.fee_schedule("vrp_options:SPY").fee(Decimal("300"), Decimal("10"),
                                                     maker=False) == 0


def test_every_option_fill_pays_the_commission_per_contract_times_the_cost_multiplier(
        tmp_path):
    config = _config({"start": "2017-06-01", "end": "2017-09-29",
                      "commission_per_contract": 0.65},
                     extra={"paper": {"cost_multiplier": "1.5"}})
    run_backtest(config, tmp_path / "run")
    fills = [f for f in _option_fills(tmp_path / "run") if f["liquidity"] != "settlement"]
    assert fills and any(Decimal(f["quantity"]) > 1 for f in fills)
    for f in fills:
        assert Decimal(f["fee"]) == Decimal("0.975") * Decimal(f["quantity"]), f


# -- probability of profit -------------------------------------------------------------
def heston_prob_above(s0: float, k: float, t: float, r: float, v0: float, kappa: float,
                      theta: float, sigma: float, rho: float) -> float:
    """P(S_T > k) under Heston, by Gil-Pelaez inversion of the characteristic function of
    ln S_T in the "little trap" form of Albrecher et al. (2007) -- independent of the
    plugin's Monte Carlo."""
    x0 = math.log(s0)

    def cf(u: float) -> complex:
        iu = 1j * u
        b = kappa - rho * sigma * iu
        d = cmath.sqrt(b * b + sigma * sigma * (iu + u * u))
        g = (b - d) / (b + d)
        e = cmath.exp(-d * t)
        c = kappa * theta / sigma**2 * ((b - d) * t - 2 * cmath.log((1 - g * e) / (1 - g)))
        dd = (b - d) / sigma**2 * (1 - e) / (1 - g * e)
        return cmath.exp(iu * (x0 + r * t) + c + dd * v0)

    def integrand(u: float) -> float:
        return (cmath.exp(-1j * u * math.log(k)) * cf(u) / (1j * u)).real

    val, _err = integrate.quad(integrand, 1e-10, 400.0, limit=400)
    return 0.5 + val / math.pi


def test_the_characteristic_function_reference_reduces_to_lognormal():
    s0, k, t, r, v = 300.0, 285.0, 35 / 365, 0.01, 0.04
    d2 = (math.log(s0 / k) + (r - v / 2) * t) / math.sqrt(v * t)
    assert heston_prob_above(s0, k, t, r, v, 2.0, v, 1e-4, 0.0) == pytest.approx(
        st.norm.cdf(d2), abs=1e-6)


def _market_on_first_bar(settings: VrpSettings) -> tuple[MarketState, Bar]:
    venue = VrpVenue(settings)

    async def first_day() -> tuple[MarketState, Bar]:
        market = MarketState()
        async for ev in venue.stream():
            market.apply(ev)
            if type(ev) is Bar and ev.instrument_id == "vrp_options:SPY":
                return market, ev
        raise AssertionError("no SPY bar")

    return asyncio.run(first_day())


@pytest.fixture(scope="module")
def first_day():
    settings = VrpSettings(symbols=["SPY"], start="2017-06-01", end="2017-07-31",
                           selection="pop", heston_paths=20_000, spread_scale=0.25)
    market, bar = _market_on_first_bar(settings)
    strategy = VrpPutSpread(settings)
    dte, strikes = strategy._chain("SPY", _day_of(bar.ts_ns), market)
    s, t = bar.close, dte / 365.0
    atm = min(strikes, key=lambda x: abs(x[0].strike - s))
    atm_iv = strategy._iv(atm, s, t)
    # A short strike about 4% out of the money with its long leg quoted.
    quoted = {c.strike for c, _b in strikes}
    item = min((x for x in strikes if x[0].strike - settings.width in quoted),
               key=lambda x: abs(x[0].strike - 0.96 * s))
    return settings, market, bar, strategy, strikes, item, s, t, atm_iv


def _credit_per_share(item, strikes, width: float) -> float:
    c, book = item
    long_book = next(b for k, b in strikes if k.strike == c.strike - width)
    return (book.best_bid() - long_book.best_ask()) / MULTIPLIER


def test_heston_pop_through_the_registered_pricer_matches_an_independent_probability(
        first_day):
    from argus_core.plugins import PluginHost
    from argus_core.runtime import build, validate_settings

    settings, market, bar, strategy, strikes, item, s, t, atm_iv = first_day
    config = parse_config({"argus": {"plugins": ["vrp", "heston"]},
                           "plugins": {"heston": {"backend": "cpu"}}})
    host = PluginHost()
    host.load(config.argus.plugins)
    pricer = build(host, validate_settings(config, host), "pricer", "heston")
    ctx = StrategyContext(bar.ts_ns, Portfolio(Decimal(100000)), market, {"heston": pricer})
    iv = strategy._iv(item, s, t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's pedantic IR notes on first compile
        pop, method = strategy.pop(item, strikes, s, t, iv, atm_iv, ctx)
    assert method == "heston"
    breakeven = item[0].strike - _credit_per_share(item, strikes, settings.width)
    ref = heston_prob_above(s, breakeven, t, settings.rate, atm_iv**2, settings.heston_kappa,
                            atm_iv**2, settings.heston_sigma, settings.heston_rho)
    stderr = math.sqrt(ref * (1 - ref) / settings.heston_paths)
    assert pop == pytest.approx(ref, abs=4 * stderr + 0.003)
    # Stochastic vol with rho < 0 reshapes the distribution: lognormal at the ATM vol gives
    # a visibly different answer, so the match above is not a lognormal coincidence.
    d2 = (math.log(s / breakeven) + (settings.rate - atm_iv**2 / 2) * t) / (atm_iv * t**0.5)
    assert abs(pop - st.norm.cdf(d2)) > 4 * stderr


def test_lognormal_pop_is_the_fallback_without_the_pricer(first_day):
    settings, market, bar, strategy, strikes, item, s, t, atm_iv = first_day
    ctx = StrategyContext(bar.ts_ns, Portfolio(Decimal(100000)), market, {})
    c, book = item
    mid = 0.5 * (book.best_bid() + book.best_ask()) / MULTIPLIER
    r = settings.rate

    def bs_put(v: float) -> float:
        d1 = (math.log(s / c.strike) + (r + v * v / 2) * t) / (v * math.sqrt(t))
        return c.strike * math.exp(-r * t) * st.norm.cdf(-(d1 - v * math.sqrt(t))) - \
            s * st.norm.cdf(-d1)

    iv = optimize.brentq(lambda v: bs_put(v) - mid, 1e-3, 3.0, xtol=1e-12)
    pop, method = strategy.pop(item, strikes, s, t, strategy._iv(item, s, t), atm_iv, ctx)
    assert method == "lognormal"
    breakeven = c.strike - _credit_per_share(item, strikes, settings.width)
    d2 = (math.log(s / breakeven) + (r - iv * iv / 2) * t) / (iv * math.sqrt(t))
    assert pop == pytest.approx(st.norm.cdf(d2), abs=1e-6)


class RecordingVrp(VrpPutSpread):
    """The real strategy, keeping every intent it returned (to read their reasons)."""

    def __init__(self, settings: VrpSettings) -> None:
        super().__init__(settings)
        self.intents: list = []

    def on_event(self, event, ctx):  # type: ignore[no-untyped-def]
        out = super().on_event(event, ctx)
        self.intents.extend(out)
        return out


def test_pop_selection_in_a_backtest_uses_heston_when_installed_else_lognormal(tmp_path):
    vrp = {"start": "2017-06-01", "end": "2017-08-31", "selection": "pop",
           "heston_paths": 4000}
    seen = {}
    for name, plugins, extra in (
            ("heston", ("vrp", "heston"), {"plugins": {"heston": {"backend": "cpu"}}}),
            ("lognormal", ("vrp",), None)):
        config = _config(vrp, plugins=plugins, extra=extra)
        strategy = RecordingVrp(VrpSettings(**config.plugins["vrp"]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run_backtest(config, tmp_path / name, strategies={"vrp_put_spread": strategy})
        seen[name] = [(i.reason, i.instrument_id) for i in strategy.intents
                      if "-open-" in (i.basket_id or "") and i.side.value == "sell"]
    assert seen["heston"] and all("(heston)" in r for r, _ in seen["heston"])
    assert seen["lognormal"] and all("(lognormal)" in r for r, _ in seen["lognormal"])
    # Different models, different short strikes: the choice really went through the pricer.
    assert [i for _, i in seen["heston"]] != [i for _, i in seen["lognormal"]]


# -- expiry at zero --------------------------------------------------------------------
def test_spreads_held_to_a_worthless_expiry_are_round_trips(tmp_path):
    config = _config({"start": "2017-06-01", "end": "2017-12-29", "exit_dte": 0,
                      "profit_target": 1.0, "stop_multiple": 100.0})
    res = run_backtest(config, tmp_path / "run")
    fills = _option_fills(tmp_path / "run")
    settled = [f for f in fills if f["liquidity"] == "settlement"]
    worthless = [f for f in settled if Decimal(f["price"]) == 0]
    assert worthless, "2017 was calm: most spreads should expire worthless"
    assert all(Decimal(f["fee"]) == 0 for f in settled)
    with Ledger.in_dir(tmp_path / "run") as ledger:
        plays = play_pnls(ledger)
        orders = ledger.query("select client_order_id, basket_id from orders")
        metrics = compute_metrics(ledger, Decimal(100000))
        open_qty = ledger.query("select instrument_id, quantity from positions")
    basket_of = {o["client_order_id"]: o["basket_id"] for o in orders}
    # Independent tally: per opening basket, cash in/out of its legs until both are flat.
    by_basket: dict[str, Decimal] = {}
    legs_open: dict[str, Decimal] = {}
    owner: dict[str, str] = {}
    closed: list[str] = []
    for f in fills:
        inst, q = f["instrument_id"], Decimal(f["quantity"])
        sign = 1 if f["side"] == "buy" else -1
        if legs_open.get(inst, Decimal(0)) == 0:
            owner[inst] = basket_of[f["client_order_id"]]
        b = owner[inst]
        by_basket[b] = by_basket.get(b, Decimal(0)) - sign * q * Decimal(f["price"]) - \
            Decimal(f["fee"])
        legs_open[inst] = legs_open.get(inst, Decimal(0)) + sign * q
        if legs_open[inst] == 0 and all(legs_open[i] == 0 for i in owner if owner[i] == b) \
                and b not in closed:
            closed.append(b)
    assert len(plays) == len(closed) >= 3
    np.testing.assert_allclose(plays, [float(by_basket[b]) for b in closed], rtol=0, atol=1e-9)
    # A spread that expired worthless kept its whole credit net of the entry commissions.
    worthless_baskets = {owner[f["instrument_id"]] for f in worthless}
    assert any(by_basket[b] > 0 for b in worthless_baskets)
    # Metrics count plays: a spread (both legs, settlement legs included) is one play.
    assert metrics["n_trades"] == len(closed)
    assert res.metrics["n_trades"] == metrics["n_trades"]
    assert all(Decimal(p["quantity"]) == 0 for p in open_qty
               if p["instrument_id"] in owner and owner[p["instrument_id"]] in closed)


# -- the regime guard in the risk layer ------------------------------------------------
def test_the_regime_guard_reads_the_published_signals_in_the_risk_layer(tmp_path):
    config = _config({"start": "2017-06-01", "end": "2018-06-29", "max_p_change": 1.0,
                      "guard_max_p_change": 0.02})
    run_backtest(config, tmp_path / "run")
    with Ledger.in_dir(tmp_path / "run") as ledger:
        vetoes = ledger.query("select ts_ns, reason, instrument_id from risk_events where "
                              "check_name = 'vrp_regime_guard'")
        signals = {r["ts_ns"]: r["value"] for r in ledger.query(
            "select ts_ns, value from signals where name = 'bocpd_p_change' and "
            "instrument_id = 'vrp_options:SPY'")}
        opened = ledger.query("select ts_ns from orders where basket_id like '%-open-%' and "
                              "status = 'filled'")
    assert vetoes and opened
    for v in vetoes:
        # The guard quoted the very P(change) the runner recorded for that close.
        quoted = float(v["reason"].split("P(change) ")[1].split(" ")[0])
        assert quoted == pytest.approx(signals[v["ts_ns"]], abs=1e-4)
        assert signals[v["ts_ns"]] > 0.02
        assert PutContract.parse(v["instrument_id"]).underlying == "SPY"
    assert all(signals[o["ts_ns"]] <= 0.02 for o in opened)
