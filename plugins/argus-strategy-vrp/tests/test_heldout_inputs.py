"""Held-out red team of the VRP plugin: its data files, settings and pricing formulas
under hostile input (``tests/test_heldout3_market_data_vrp.py`` in the core already holds
splits, holes, Lean row order and Black-Scholes at any price scale; not repeated here).

Found and fixed (each test below failed before):

* the VIX loader took any number: a NaN, zero, negative or infinite close, and rows out
  of date order or duplicated (the later one silently won).  A NaN or zero VIX reached
  the quote model and crashed the replay mid-run (``math.floor(nan)``) far from the
  file; now a ``DataError`` names the file, the line and the rule;
* the Lean loader checked the prices but not the volume: NaN, negative or infinite
  volume loaded, and ``argus_core.Bar`` refused it only when the day was replayed,
  without file or line;
* ``symbols = ["SPY", "SPY"]`` was accepted: every event of the day went out twice and
  the regime tracker read each close twice (a zero return every day), so the published
  realised vol and regime were wrong; now refused;
* a ``width`` that is not a multiple of ``strike_step`` (7 with the default 5) was
  accepted and the strategy then never traded ("long strike 238 not quoted" every day of
  a 4-month backtest, 0 fills); now the venue and the strategy refuse it when built,
  naming both settings;
* the cross-field checks said "need min_dte <= target_dte <= max_dte" without the
  values, unlike every other message of the table;
* ``bs_put``, ``bs_put_delta`` and ``lognormal_pop`` at expiry (``t = 0``) or with zero
  vol gave NaN with a RuntimeWarning, or raised ZeroDivisionError, instead of their
  limits (discounted intrinsic value, a delta of -1 or 0, a PoP of 0 or 1).

Held: put-call parity with a call priced independently, deep in/out of the money,
zero and negative rates, and implied-vol round trips of prices computed with scipy.
"""

from __future__ import annotations

import math
import types
from pathlib import Path

import pytest
from argus_strategy_vrp import data as vrp_data
from argus_strategy_vrp.config import VrpSettings
from argus_strategy_vrp.data import VrpVenue
from argus_strategy_vrp.pricing import bs_put, bs_put_delta, implied_vol_put, lognormal_pop
from argus_strategy_vrp.strategy import VrpPutSpread
from scipy.stats import norm

from argus_core import ConfigError, DataError, plugin_settings
from argus_core.config import parse_config

HEADER = "DATE,OPEN,HIGH,LOW,CLOSE"
LEAN_OK = "20200102 00:00,3000000,3010000,2990000,3005000,100"


def _bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
             rows: list[str]) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / name).write_text("\n".join(rows) + "\n")
    monkeypatch.setattr(vrp_data, "resources", types.SimpleNamespace(files=lambda _p: tmp_path))


# -- data files --------------------------------------------------------------------------
@pytest.mark.parametrize(("rows", "match"), [
    (["2020-01-02,1,1,1,12", "2020-01-03,1,1,1,nan"], r"line 3: .*VIX close nan"),
    (["2020-01-02,1,1,1,0"], r"line 2: .*VIX close 0"),
    (["2020-01-02,1,1,1,-3"], r"line 2: .*VIX close -3"),
    (["2020-01-02,1,1,1,inf"], r"line 2: .*VIX close inf"),
    (["2020-01-03,1,1,1,12", "2020-01-02,1,1,1,13"], r"line 3: 2020-01-02 does not follow "
                                                      r"2020-01-03"),
    (["2020-01-02,1,1,1,12", "2020-01-02,1,1,1,13"], r"line 3: 2020-01-02 does not follow "
                                                      r"2020-01-02"),
])
def test_vix_rows_that_are_not_a_positive_close_in_date_order_are_refused(
        tmp_path, monkeypatch, rows, match) -> None:
    """Before: every one of these loaded (a duplicate day kept the later close)."""
    _bundled(tmp_path, monkeypatch, "cboe_vix_daily.csv", [HEADER, *rows])
    with pytest.raises(DataError, match="cboe_vix_daily.csv " + match):
        vrp_data.load_vix()


@pytest.mark.parametrize("volume", ["nan", "-5", "inf"])
def test_lean_volume_that_is_not_a_finite_count_is_refused_with_file_and_line(
        tmp_path, monkeypatch, volume) -> None:
    """Before: loaded; the replay's ``Bar`` refused it on that day, without file or line."""
    _bundled(tmp_path, monkeypatch, "lean_spy_daily.csv",
             [LEAN_OK, f"20200103 00:00,3000000,3010000,2990000,3005000,{volume}"])
    with pytest.raises(DataError, match=r"lean_spy_daily.csv line 2: 2020-01-03 volume"):
        vrp_data.load_lean_daily("SPY")


def test_the_bundled_files_still_load() -> None:
    vix = vrp_data.load_vix()
    assert len(vix) > 7_000 and min(vix.values()) > 0
    assert vrp_data.load_lean_daily("SPY") and vrp_data.load_lean_daily("QQQ")


# -- settings ----------------------------------------------------------------------------
def _settings(**vrp: object) -> VrpSettings:
    """``[plugins.vrp]`` through the core's reader, as a run builds it."""
    config = parse_config({"argus": {"plugins": ["vrp"]},
                           "run": {"venue": "vrp_options", "strategies": ["vrp_put_spread"]},
                           "plugins": {"vrp": vrp}})
    return plugin_settings(config, "vrp", VrpSettings)


def test_a_symbol_listed_twice_is_refused() -> None:
    """Before: accepted; each bar went out twice and the regime tracker read it twice."""
    with pytest.raises(ConfigError, match=r"symbols.*SPY.*more than once.*plugins\.vrp"):
        _settings(symbols=["SPY", "SPY"])


@pytest.mark.parametrize(("width", "step"), [(7.0, 5.0), (2.5, 5.0), (10.0, 3.0)])
def test_a_width_off_the_strike_grid_is_refused(width, step) -> None:
    """Before: accepted, and the strategy never found its long strike (0 fills).  Refused
    when the venue or the strategy is built: the core's range test holds each field's
    bounds alone (width 0.01 with the default step is "inside" there)."""
    settings = _settings(width=width, strike_step=step, symbols=["SPY"])
    match = rf"plugins\.vrp\] width = {width:g} .* strike_step = {step:g}"
    with pytest.raises(ConfigError, match=match):
        VrpVenue(settings)
    with pytest.raises(ConfigError, match=match):
        VrpPutSpread(settings)
    for width, step in ((7.5, 2.5), (0.3, 0.1)):  # 0.3 / 0.1 is 2.9999999999999996
        VrpPutSpread(_settings(width=width, strike_step=step))


@pytest.mark.parametrize(("values", "match"), [
    ({"min_dte": 30, "target_dte": 20}, r"min_dte = 30, target_dte = 20, max_dte = 50"),
    ({"max_dte": 30}, r"target_dte = 35, max_dte = 30"),
    ({"exit_dte": 25}, r"exit_dte = 25 .* min_dte = 25"),
])
def test_cross_field_errors_say_the_values(values, match) -> None:
    """Before: "need min_dte <= target_dte <= max_dte" without the values."""
    with pytest.raises(ConfigError, match=match):
        _settings(**values)


@pytest.mark.parametrize(("values", "key"), [
    ({"stop_multiple": 1.0}, "stop_multiple"), ({"stop_multiple": 0.8}, "stop_multiple"),
    ({"spread_scale": 1e308}, "spread_scale"), ({"spread_scale": 101}, "spread_scale"),
])
def test_a_stop_at_the_credit_or_an_absurd_spread_is_refused(values, key) -> None:
    """Before: accepted.  A stop at 1x the credit or below fires on the bar after every
    entry (closing already costs the credit plus the spread), and a spread scale of 1e308
    overflowed the quote model mid-run."""
    with pytest.raises(ConfigError, match=rf"plugins\.vrp.*{key}|{key}.*plugins\.vrp"):
        _settings(**values)
    _settings(stop_multiple=1.5, spread_scale=100)  # the edges that stay


# -- pricing ------------------------------------------------------------------------------
@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize(("s", "k", "r"), [(100.0, 110.0, 0.0), (100.0, 90.0, 0.05),
                                           (100.0, 100.0, -0.01)])
def test_at_expiry_or_zero_vol_the_formulas_take_their_limits(s, k, r) -> None:
    """Before: NaN with a RuntimeWarning (price, delta) or ZeroDivisionError (PoP)."""
    for t, sigma in ((0.0, 0.2), (0.5, 0.0)):
        forward_gap = k * math.exp(-r * t) - s
        assert float(bs_put(s, k, t, r, sigma)) == pytest.approx(max(forward_gap, 0.0))
        delta = float(bs_put_delta(s, k, t, r, sigma))
        # the limit of N(d1) - 1: d1 -> -inf in the money, +inf out of it, 0 at the money
        assert delta == (-1.0 if forward_gap > 0 else 0.0 if forward_gap < 0 else -0.5)
        assert lognormal_pop(s, k, t, sigma, r) == (1.0 if s * math.exp(r * t) > k else 0.0)


def _call(s: float, k: float, t: float, r: float, v: float) -> float:
    d1 = (math.log(s / k) + (r + v * v / 2) * t) / (v * math.sqrt(t))
    return s * norm.cdf(d1) - k * math.exp(-r * t) * norm.cdf(d1 - v * math.sqrt(t))


@pytest.mark.parametrize("r", [0.0, 0.05, -0.01])
@pytest.mark.parametrize("moneyness", [0.3, 0.8, 1.0, 1.25, 3.0])
@pytest.mark.parametrize("t", [1 / 365, 0.25, 5.0])
def test_put_call_parity_and_iv_round_trip_deep_and_at_zero_rates(r, moneyness, t) -> None:
    s, v = 100.0, 0.3
    k = s * moneyness
    put = float(bs_put(s, k, t, r, v))
    assert _call(s, k, t, r, v) - put == pytest.approx(s - k * math.exp(-r * t), abs=1e-10)
    if put - max(k * math.exp(-r * t) - s, 0.0) > 1e-6:  # time value left to invert
        assert implied_vol_put(put, s, k, t, r) == pytest.approx(v, rel=1e-6)
