"""Red team r40 of the probability layer: reference probabilities, leaks that got past the
guard, hostile model files, expiry edges, restarts, settings and the command line.

Found (each test marked ``# was:`` failed before its fix):

* Leakage guard.  The batch hands a feature every window at once, and the truncation
  test recomputed only ~34 sampled rows on a *view* of the history.  A feature that
  back-fills across a gap in the bars (the next bar's close, on the rows before a gap)
  passed on 4 of 5 gap layouts, and one reading the whole column through the window's
  ``.base`` passed always.  Now every row is recomputed from its own window alone (a copy),
  and the truncated histories are copies.
* Model files: a JSON integer past float64 or int64 (``1`` and 400 zeros) in a
  coefficient, an intercept, a Platt slope or a tree index escaped as ``OverflowError``
  (a traceback, not the file's refusal); ``meta.oof_brier`` (the Brier alarm's baseline)
  was not checked (``"x"``: a ValueError at load; 5 or NaN: the Brier alarm never fired),
  nor was ``meta.reference`` (a TypeError 500 bars into the run; NaN shares: PSI NaN, the
  PSI alarm off).  The registry's ``drift_json`` (outside the model's sha256) with no
  ``window`` was a KeyError; a threshold of 1e308 switched a feature's alarm off.
* Platt calibration with a steep slope overflowed ``exp`` (RuntimeWarning on every row,
  an exception under ``-W error``).
* The forecaster, after a restart from a checkpoint, met a venue's backfill (a bar older
  than its newest): the feature engine's DataError ended the run, after counting the bar.
  A binary whose ``outcome`` was neither "up" nor "down" ("Up", "Yes") was priced at
  1 - P(up).
* ``ml_near_expiry``: a contract that resolved early (a Settlement before ``settles_ns``)
  or whose book closed was still bought (the risk layer vetoes it, but it counted as a
  bet and was never looked at again); a ``settles_ns`` that is not an integer (a string,
  NaN) raised inside the strategy, and ``True`` read as 1 ns.
* Settings: ``drift_min_obs`` accepted None (a TypeError on the first outcome);
  ``bars_end`` not after ``bars_start`` said only "0 bars"; a missing ``registry`` file was
  created empty (folders too), and an unknown ``model_id`` did not name the setting.
* ``argus ml dataset|train --features ret_1,ret_1`` was a DataError (exit 4) after the
  option was taken; ``argus ml evaluate|promote`` of a model registered without the
  out-of-fold record (a library registration) ended in a KeyError traceback, and an
  edited record (a forecast of 1.7) was judged; a damaged dataset manifest was a
  KeyError; ``murphy(bins=0)`` was numpy's ValueError.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from argus_ml.bars import COLUMNS, BarColumns
from argus_ml.calibration import CLIP, Calibrator, fit_calibrator
from argus_ml.config import MLSettings
from argus_ml.dataset import build_dataset, read_dataset
from argus_ml.drift import PSI_MAX, BrierEMA, FeatureDrift, psi, reference_bins
from argus_ml.features import Feature, FeatureRegistry
from argus_ml.forecaster import MLForecaster
from argus_ml.labels import LabelSpec
from argus_ml.leakage import check_leakage, sample_rows
from argus_ml.modelfile import load_model
from argus_ml.near_expiry import MLNearExpiry
from argus_ml.registry import ModelRegistry, open_registry
from argus_ml.scoring import auc, brier, log_loss, murphy
from click.testing import CliRunner
from ml_testdata import KRAKEN, TRAIN_START, OneModelRegistry

from argus_core import (
    Bar,
    BookStatus,
    ConfigError,
    DataError,
    FeeSchedule,
    Forecast,
    Forecaster,
    Instrument,
    Intent,
    MarketState,
    OrderBook,
    Portfolio,
    Settlement,
    StrategyContext,
    structure,
)
from argus_core.cli import cli

H = 3600 * 10**9
T0 = 1_600_000_000 * 10**9
SPOT = "kraken:XBT/USD"
SPEC = [{"name": "ret_1", "version": 1, "lookback": 2, "lag": 0},
        {"name": "range_1", "version": 1, "lookback": 1, "lag": 0}]
COEF, INTERCEPT = (50.0, -3.0), 0.1


def _doc(**meta: Any) -> dict[str, Any]:
    """A two-feature logistic model file as training writes it (no calibration)."""
    return {"format": "argus-ml-model/1", "features": ["ret_1@1", "range_1@1"],
            "steps": [{"kind": "logistic", "coef": list(COEF), "intercept": INTERCEPT}],
            "calibrator": {"kind": "none"},
            "meta": {"label": {"kind": "up", "horizon_bars": 1}, "feature_spec": SPEC,
                     **meta}}


def _forecaster(settings: MLSettings | None = None, **meta: Any) -> MLForecaster:
    model = load_model(json.dumps(_doc(**meta)).encode())
    return MLForecaster(settings or MLSettings(model_id="m1"),
                        registry=OneModelRegistry(model))  # type: ignore[arg-type]


def _bars(n: int, seed: int = 0) -> list[Bar]:
    """Hourly bars of a random walk, closing at ``T0 + (i + 1) h``."""
    rng = np.random.default_rng(seed)
    close, out = 100.0, []
    for i in range(n):
        o = close
        close = o * math.exp(rng.normal(0.0, 0.01))
        out.append(Bar(SPOT, T0 + (i + 1) * H, o, max(o, close) * 1.002,
                       min(o, close) * 0.998, close, 10.0))
    return out


def _feed(f: MLForecaster, market: MarketState, bars: list[Bar]) -> list[float | None]:
    out = []
    for bar in bars:
        market.apply(bar)
        fc = f.forecast(SPOT, market, bar.ts_ns)
        out.append(None if fc is None else fc.p_win)
    return out


def _phi(x: float) -> float:
    """The standard normal CDF, from math.erf (the test's own reference)."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


# -- probabilities against independent references -----------------------------------------
def test_the_forecasters_p_up_is_the_logistic_of_hand_computed_features() -> None:
    """P(up) from two bars by hand: ret_1 = ln(c1/c0), range_1 = (h1 - l1)/c1, then
    1/(1 + e^-z) with math.exp; the down contract's is its complement."""
    f, market = _forecaster(), MarketState()
    bars = _bars(30, seed=4)
    got = _feed(f, market, bars)
    assert got[0] is None  # warm-up: ret_1 needs two bars
    for i in range(1, 30):
        b0, b1 = bars[i - 1], bars[i]
        z = COEF[0] * math.log(b1.close / b0.close) + COEF[1] * (b1.high - b1.low) / b1.close \
            + INTERCEPT
        want = min(max(1.0 / (1.0 + math.exp(-z)), CLIP), 1 - CLIP)
        assert got[i] == pytest.approx(want, abs=1e-12)
        assert 0.0 < got[i] < 1.0  # type: ignore[operator]


def test_platt_calibration_matches_a_hand_newton_fit_and_stays_in_bounds() -> None:
    """Platt's (a, b) against a maximum-likelihood fit by Newton's method written here,
    on a tiny non-separable set; the map stays inside [CLIP, 1 - CLIP] at any slope."""
    raw = np.array([0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.72,
                    0.75, 0.8, 0.82, 0.85, 0.9, 0.93, 0.95])
    y = np.array([0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1], float)
    z = [math.log(p / (1 - p)) for p in raw]
    a, b = 1.0, 0.0
    for _ in range(100):  # Newton on the log-likelihood of sigmoid(a z + b)
        ga = gb = haa = hab = hbb = 0.0
        for zi, yi in zip(z, y, strict=True):
            q = 1.0 / (1.0 + math.exp(-(a * zi + b)))
            ga += (yi - q) * zi
            gb += yi - q
            w = q * (1 - q)
            haa, hab, hbb = haa + w * zi * zi, hab + w * zi, hbb + w
        det = haa * hbb - hab * hab
        a += (hbb * ga - hab * gb) / det
        b += (haa * gb - hab * ga) / det
    cal = fit_calibrator("platt", raw, y)
    assert cal.a == pytest.approx(a, rel=2e-3) and cal.b == pytest.approx(b, abs=2e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # was: exp overflowed at a steep slope
        steep = Calibrator("platt", a=1000.0, b=0.0)(np.array([0.0, 0.01, 0.5, 0.99, 1.0]))
    assert steep.tolist() == [CLIP, CLIP, 0.5, 1 - CLIP, 1 - CLIP]


def _pav(y: list[float]) -> list[float]:
    """Pool-adjacent-violators on outcomes already in forecast order (the test's own)."""
    blocks: list[list[float]] = []  # [mean, weight]
    for v in y:
        blocks.append([v, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2 = blocks.pop()
            m1, w1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2])
    out: list[float] = []
    for m, w in blocks:
        out += [m] * int(w)
    return out


def test_isotonic_calibration_matches_pool_adjacent_violators_by_hand() -> None:
    raw = np.linspace(0.05, 0.95, 20)
    y = [0, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1]
    cal = fit_calibrator("isotonic", raw, np.array(y, float))
    want = [min(max(v, CLIP), 1 - CLIP) for v in _pav([float(v) for v in y])]
    np.testing.assert_allclose(cal(raw), want, atol=1e-12)
    # between two forecasts: the straight line between their calibrated values
    mid = (raw[3] + raw[4]) / 2
    assert float(cal(np.array([mid]))[0]) == pytest.approx((want[3] + want[4]) / 2)
    assert cal(np.array([-1.0, 2.0])).tolist() == [want[0], want[-1]]  # clipped at the ends


def test_scores_are_the_hand_sums() -> None:
    p = np.array([0.9, 0.8, 0.3, 0.3, 0.6])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    assert brier(p, y) == pytest.approx((0.01 + 0.64 + 0.09 + 0.49 + 0.16) / 5)
    assert log_loss(p, y) == pytest.approx(
        -(math.log(0.9) + math.log(0.2) + math.log(0.7) + math.log(0.3) + math.log(0.6)) / 5)
    assert auc(p, y) == pytest.approx(3.5 / 6)  # 0.3 vs 0.3 is a tie: half
    d = murphy(p, y)  # identical forecasts grouped: 0.3 holds one up and one down
    assert d.reliability == pytest.approx((0.01 + 0.64 + 2 * 0.04 + 0.16) / 5)
    assert d.resolution == pytest.approx((0.16 + 0.36 + 2 * 0.01 + 0.16) / 5)
    assert d.uncertainty == pytest.approx(0.24) and d.within_bin == pytest.approx(0.0)
    with pytest.raises(DataError, match="bins must be a whole number >= 1"):  # was: numpy's
        murphy(p, y, bins=0)


# -- ml_near_expiry: a lognormal digital as the reference ---------------------------------
IID = "pm:DIGITAL-YES"
SETTLES = T0 + 10_000 * 10**9
YEAR_NS = 365.25 * 24 * 3600 * 10**9


class Digital(Forecaster):
    """P(S_T > K) of a driftless lognormal: N(d2), d2 = (ln(S/K) - s^2 T / 2) / (s sqrt T)."""

    name = "digital"

    def __init__(self, spot: float, strike: float, sigma: float) -> None:
        self.spot, self.strike, self.sigma = spot, strike, sigma

    def p(self, ts_ns: int) -> float:
        t = (SETTLES - ts_ns) / YEAR_NS
        if t <= 0:
            return 1.0 if self.spot > self.strike else 0.0
        sd = self.sigma * math.sqrt(t)
        return _phi((math.log(self.spot / self.strike) - sd * sd / 2) / sd)

    def forecast(self, instrument_id: str, market: MarketState, ts_ns: int
                 ) -> Forecast | None:
        return Forecast(p_win=self.p(ts_ns))


def _near(ts_ns: int, *, ask: float = 0.90, settles: object = SETTLES,
          forecaster: Forecaster | None = None, before: tuple[Any, ...] = (),
          strategy: MLNearExpiry | None = None, **settings: Any
          ) -> tuple[list[Intent], MLNearExpiry]:
    fees = FeeSchedule(taker_bps=Decimal(100))  # 1% of the price
    market = MarketState(fees=lambda _iid: fees)
    market.add_instruments([Instrument("pm", "DIGITAL-YES", "binary", Decimal("0.001"),
                                       Decimal(1), Decimal(1), meta={"settles_ns": settles})])
    market.forecasters = {"ml": forecaster or Digital(101.0, 100.0, 0.5)}
    book = OrderBook(IID, ts_ns, np.array([[ask - 0.01, 100_000.0]]),
                     np.array([[ask, 100_000.0]]))
    market.apply(book)
    for event in before:
        market.apply(event)
    s = strategy or MLNearExpiry(MLSettings(**settings))
    ctx = StrategyContext(ts_ns, Portfolio(Decimal(10_000)), market, None, "replay")
    return list(s.on_event(book, ctx)), s


def test_near_expiry_stakes_kelly_on_the_lognormal_probability() -> None:
    """Half an hour out, S = 101, K = 100, 50% vol: p = N(d2) by erf; cost = 0.9 + 1%;
    contracts = floor(equity x Kelly x 0.1 / cost)."""
    ts = SETTLES - 1800 * 10**9
    p = Digital(101.0, 100.0, 0.5).p(ts)
    assert 0.99 < p < 1.0
    cost = 0.9 + 0.009
    want = math.floor(10_000 * ((p - cost) / (1 - cost)) * 0.1 / cost)
    [intent], _ = _near(ts, kelly_fraction=0.1, max_fraction=1.0)
    assert intent.quantity == Decimal(want) and intent.forecast is not None
    assert intent.forecast.p_win == pytest.approx(p, abs=1e-15)
    # a strike above the spot: N(d2) below the ask, no bet
    assert _near(ts, forecaster=Digital(99.0, 100.0, 0.5))[0] == []


@pytest.mark.parametrize(("left_ns", "trades"), [
    (0, False),  # at resolution: nothing is left to forecast
    (-1, False),  # after it
    (-10**9, False),
    (1, True),  # the last nanosecond: p = N(d2) -> 1, Kelly held below everything
    (999_999_999, True),  # within the last second
    (3600 * 10**9, True),  # exactly the window
    (3600 * 10**9 + 1, False),  # just outside it
])
def test_time_to_expiry_at_its_edges(left_ns: int, trades: bool) -> None:
    intents, _ = _near(SETTLES - left_ns, kelly_fraction=1.0, max_fraction=1.0)
    assert bool(intents) is trades
    if intents:
        p = min(Digital(101.0, 100.0, 0.5).p(SETTLES - left_ns), 1 - CLIP)
        cost = 0.9 + 0.009
        # full Kelly on a p held at 0.999 at most: never the whole of equity
        assert intents[0].quantity == Decimal(math.floor(10_000 * (p - cost) / (1 - cost)
                                                         / cost))
        assert intents[0].quantity * Decimal("0.909") < 10_000


@pytest.mark.parametrize("settles", ["soon", float("nan"), True, None, [1, 2]])
def test_a_settles_ns_that_is_not_integer_nanoseconds_is_no_trade(settles: object) -> None:
    intents, s = _near(SETTLES - 60 * 10**9, settles=settles)  # was: ValueError / 1 ns
    assert intents == [] and s.stats["candidates"] == 0


def test_a_float_settles_ns_that_is_whole_still_trades() -> None:
    assert len(_near(SETTLES - 60 * 10**9, settles=float(SETTLES))[0]) == 1


def test_a_market_that_resolved_early_is_not_bought() -> None:
    ts = SETTLES - 60 * 10**9
    early = Settlement(IID, ts - 10**9, Decimal(1), "resolved early")
    intents, s = _near(ts, before=(early,))
    assert intents == [] and s.stats["bets"] == 0 and IID not in s.bought  # was: a "bet"
    closed = BookStatus(IID, ts, False, "market closed")
    intents, s = _near(ts, before=(closed,))
    assert intents == [] and not s.bought


def test_near_expiry_checkpoint_round_trip_buys_each_contract_once() -> None:
    ts = SETTLES - 120 * 10**9
    [_intent], first = _near(ts)
    state = json.loads(json.dumps(first.get_state()))  # as a checkpoint stores it
    resumed = MLNearExpiry(MLSettings())
    resumed.set_state(state)
    assert resumed.get_state() == first.get_state()
    assert _near(ts + 10**9, strategy=resumed)[0] == []  # bought before the restart


# -- the leakage guard: inputs that got past it -------------------------------------------
def _gapped(kraken_bars: BarColumns, seed: int, gaps: int = 12) -> BarColumns:
    """The fixture's bars with ``gaps`` single hours removed (a real feed's holes)."""
    keep = np.ones(len(kraken_bars), dtype=bool)
    keep[np.random.default_rng(seed).choice(np.arange(100, len(kraken_bars) - 100), gaps,
                                            replace=False)] = False
    c = {name: kraken_bars.column(name)[keep].copy() for name in COLUMNS}
    return BarColumns(c["ts_ns"], c["open"], c["high"], c["low"], c["close"], c["volume"])


def _backfilled_return(w: Mapping[str, np.ndarray]) -> np.ndarray:
    """ret_1 on an hourly grid back-filled across gaps: a row before a gap takes the next
    bar's close (what ``resample('1h').bfill()`` does to a series with holes)."""
    c, ts = w["close"][:, -1].copy(), w["ts_ns"][:, -1]
    before_gap = np.flatnonzero(np.diff(ts) > H)
    c[before_gap] = c[before_gap + 1]
    return np.asarray(np.log(c / w["close"][:, 0]))


def _whole_column_mean(w: Mapping[str, np.ndarray]) -> np.ndarray:
    """Close over the mean of the whole close column, reached through the views' bases."""
    arr: Any = w["close"]
    column = None
    while arr is not None:
        if isinstance(arr, np.ndarray) and arr.ndim == 1:
            column = arr
        arr = getattr(arr, "base", None)
    assert column is not None
    return np.asarray(w["close"][:, -1] / column.mean())


@pytest.mark.parametrize("seed", range(5))
def test_a_backfill_across_gaps_is_caught_on_every_layout(kraken_bars: BarColumns,
                                                          seed: int) -> None:
    bars = _gapped(kraken_bars, seed)
    fs = FeatureRegistry([Feature("ret_bfill", 1, 2, _backfilled_return)]).select()
    report = check_leakage(fs, bars)
    assert not report.ok  # was: passed on seeds 0, 1, 3 and 4
    first_gap = int(np.flatnonzero(np.diff(bars.ts_ns) > H)[0])
    assert f"given the window of row {first_gap} alone" in report.problems[0]
    with pytest.raises(DataError, match="ret_bfill@1"):
        build_dataset(bars, fs, LabelSpec())


def test_the_sampled_truncation_test_alone_does_not_see_the_gaps(kraken_bars: BarColumns
                                                                 ) -> None:
    """Why the own-window test is needed: seed 0's gaps are not among the sampled rows."""
    bars = _gapped(kraken_bars, 0)
    before_gap = set(np.flatnonzero(np.diff(bars.ts_ns) > H).tolist())
    assert not before_gap & set(sample_rows(len(bars), 1, 32, 0).tolist())


def test_a_feature_reading_the_whole_column_through_views_is_caught(
        kraken_bars: BarColumns) -> None:
    bars = kraken_bars.head(600)
    fs = FeatureRegistry([Feature("zbase", 1, 1, _whole_column_mean)]).select()
    report = check_leakage(fs, bars)
    assert not report.ok  # was: passed (the cut history was a view of every bar)
    assert all(p.startswith("zbase@1: ") for p in report.problems)


def test_a_feature_that_fails_on_its_own_window_is_reported(kraken_bars: BarColumns) -> None:
    def against_the_second_bar(w: Mapping[str, np.ndarray]) -> np.ndarray:
        c = w["close"][:, -1]
        return np.asarray(c / c[1])  # the batch's second row: an IndexError on one window

    fs = FeatureRegistry([Feature("xrow", 1, 1, against_the_second_bar)]).select()
    report = check_leakage(fs, kraken_bars.head(300))
    assert report.problems[0].startswith("xrow@1: given the window of row 0 alone it fails "
                                         "(IndexError")


def test_the_builtin_features_pass_on_bars_with_gaps(kraken_bars: BarColumns) -> None:
    report = check_leakage(FeatureRegistry.default().select(), _gapped(kraken_bars, 2, 40))
    assert report.ok, report.problems


# -- model files: crafted numbers, drift baselines ----------------------------------------
BIG = "1" + "0" * 400


@pytest.mark.parametrize(("raw", "field"), [
    ('"coef": [BIG, 1]', "'coef'"),
    ('"coef": [1, 1], "intercept": BIG', "'intercept'"),
], ids=["coef", "intercept"])
def test_integers_past_float64_are_data_errors(raw: str, field: str) -> None:
    doc = ('{"format": "argus-ml-model/1", "features": ["ret_1@1", "range_1@1"], '
           '"steps": [{"kind": "logistic", ' + raw.replace("BIG", BIG) + "}]}")
    with pytest.raises(DataError, match=field):  # was: OverflowError
        load_model(doc.encode())


def test_a_platt_slope_or_tree_index_past_its_type_is_a_data_error() -> None:
    platt = json.dumps(_doc()).replace('{"kind": "none"}', '{"kind": "platt", "a": BIG}')
    with pytest.raises(DataError, match="calibrator"):
        load_model(platt.replace("BIG", BIG).encode())
    gbm = {"format": "argus-ml-model/1", "features": ["ret_1@1"],
           "steps": [{"kind": "gbm", "init": 0.0, "learning_rate": 0.1,
                      "trees": [{"left": ["BIG"], "right": [-1], "feature": [0],
                                 "threshold": [0.0], "value": [0.0]}]}]}
    with pytest.raises(DataError, match="'left'"):
        load_model(json.dumps(gbm).replace('"BIG"', str(2**70)).encode())


def test_a_truncated_or_newer_model_file_is_a_data_error() -> None:
    data = json.dumps(_doc()).encode()
    for cut in (1, len(data) // 2, len(data) - 1):
        with pytest.raises(DataError, match="not JSON"):
            load_model(data[:cut])
    newer = dict(_doc(), format="argus-ml-model/2")
    with pytest.raises(DataError, match="another version's file"):
        load_model(json.dumps(newer).encode())


@pytest.mark.parametrize("oof", ["x", 5.0, -0.1, True, None, [0.2]])
def test_an_oof_brier_that_is_not_a_brier_score_is_refused(oof: object) -> None:
    with pytest.raises(DataError, match="oof_brier"):
        load_model(json.dumps(_doc(oof_brier=oof)).encode())


def test_a_nan_oof_brier_is_refused() -> None:
    data = json.dumps(_doc(oof_brier=0.25)).replace("0.25", "NaN").encode()
    with pytest.raises(DataError, match="oof_brier"):  # was: the Brier alarm never fired
        load_model(data)


GOOD_REF = reference_bins(np.random.default_rng(0).normal(0, 0.01, 2000))


@pytest.mark.parametrize(("reference", "said"), [
    ([1, 2], "must be an object"),
    ({"ret_1@1": 5}, "must be an object with 'edges' and 'props'"),
    ({"ret_1@1": {"edges": "x"}}, "'edges'"),
    ({"ret_1@1": {"edges": [0.0, 1.0], "props": [0.5, 0.5]}}, "'props' has the wrong shape"),
    ({"ret_1@1": {"edges": [1.0, 0.0], "props": [0.3, 0.3, 0.4]}}, "edges must be sorted"),
    ({"ret_1@1": {"edges": [0.0], "props": [1.5, -0.5]}}, "props shares in"),
    ({"vol_24@1": GOOD_REF}, "not one of the model's features"),
], ids=["list", "number", "edges", "props-length", "unsorted", "shares", "foreign"])
def test_a_psi_reference_of_the_wrong_shape_is_refused(reference: object, said: str) -> None:
    with pytest.raises(DataError, match=said):  # was: a TypeError 500 bars into the run
        load_model(json.dumps(_doc(reference=reference)).encode())


def test_a_good_reference_loads_and_its_psi_alarm_works() -> None:
    f = _forecaster(MLSettings(model_id="m1", drift_min_obs=10**9),
                    reference={"ret_1@1": GOOD_REF}, oof_brier=0.25)
    market = MarketState()
    _feed(f, market, _bars(520, seed=1))
    assert f.monitor is not None and f.monitor.tripped is None
    assert 0.0 <= f.monitor.features.last["ret_1@1"] < 0.25


def _registered(tmp_path: Path, drift: dict[str, Any]) -> tuple[Path, str]:
    path = tmp_path / "reg.db"
    with open_registry(path) as ledger:
        mid = ModelRegistry(ledger).register(
            load_model(json.dumps(_doc()).encode()), {}, name="m", dataset_hash="d",
            source_sha256="s", code_version="t", drift=drift)
    return path, mid


@pytest.mark.parametrize(("drift_json", "said"), [
    ('{"features": {}}', "'window' must be a whole number"),
    ('{"window": 500, "features": {"ret_1@1": {"threshold": 1e308}}}', "must be a PSI in"),
    ('{"window": 500, "features": {"ret_1@1": {"threshold": Infinity}}}', "must be a PSI in"),
    ('{"window": 500, "features": {"ret_1@1": {"threshold": "high"}}}', "must be a PSI in"),
    ('{"window": 500, "features": []}', "'features' must be an object"),
    ("not json", "not JSON"),
], ids=["no-window", "huge", "infinite", "text", "list", "garbage"])
def test_drift_thresholds_edited_in_the_registry_are_refused(tmp_path: Path, drift_json: str,
                                                            said: str) -> None:
    path, mid = _registered(tmp_path, {"window": 500, "features": {}})
    with open_registry(path) as ledger:
        ledger.conn.execute("update ml_models set drift_json = ?", (drift_json,))
        with pytest.raises(DataError, match=said):
            ModelRegistry(ledger).drift_calibration(mid)
    with pytest.raises(DataError, match=said):
        MLForecaster(MLSettings(registry=path, model_id=mid)).load()


def test_a_calibrated_threshold_at_the_psi_maximum_still_loads(tmp_path: Path) -> None:
    path, mid = _registered(tmp_path, {"window": 500, "features": {
        "ret_1@1": {"threshold": PSI_MAX, "median": 1.0, "max": PSI_MAX}}})
    f = MLForecaster(MLSettings(registry=path, model_id=mid))
    f.load()
    assert f.monitor is not None and f.monitor.features.thresholds["ret_1@1"] == PSI_MAX


def test_no_psi_exceeds_the_bound() -> None:
    ref = reference_bins(np.zeros(1000))
    assert psi(ref, np.full(500, 5.0)) <= PSI_MAX


# -- the forecaster: restarts, other venues' binaries, settings ----------------------------
def test_a_backfill_after_a_restart_is_not_news() -> None:
    """Restart from a checkpoint into a fresh market state; the venue backfills the last
    ten bars before going on.  Before: DataError at the first old bar (the run ended)."""
    bars = _bars(260, seed=2)
    settings = MLSettings(model_id="m1", drift_min_obs=10)
    whole = _forecaster(settings)
    expected = _feed(whole, MarketState(), bars)
    first = _forecaster(settings)
    _feed(first, MarketState(), bars[:150])
    resumed = _forecaster(settings)
    resumed.set_state(json.loads(json.dumps(first.get_state())))
    market = MarketState()
    backfill = _feed(resumed, market, bars[140:149])
    assert backfill == [None] * 9
    market2 = MarketState()  # and again in a market that already holds a newer bar
    _feed(resumed, market2, bars[149:150])
    got = _feed(resumed, market2, bars[150:])
    assert got == expected[150:]
    assert resumed.tracks[SPOT].bar_index == whole.tracks[SPOT].bar_index == 260
    assert resumed.monitor is not None and whole.monitor is not None
    assert resumed.monitor.brier.value == whole.monitor.brier.value


@pytest.mark.parametrize("outcome", ["Up", "Yes", "DOWN", ""])
def test_a_binary_of_another_kind_gets_no_view(outcome: str) -> None:
    f, market = _forecaster(), MarketState()
    bars = _bars(5)
    _feed(f, market, bars)
    inst = Instrument("pm", "BTC-UPDOWN", "binary", Decimal("0.001"), Decimal(1), Decimal(1),
                      meta={"underlying": SPOT, "outcome": outcome, "window_bars": 1,
                            "opens_ns": bars[-1].ts_ns})
    market.add_instruments([inst])
    assert f.forecast(inst.id, market, bars[-1].ts_ns) is None  # was: 1 - P(up)
    up = Instrument("pm", "BTC-UP", "binary", Decimal("0.001"), Decimal(1), Decimal(1),
                    meta={**inst.meta, "outcome": "up"})
    market.add_instruments([up])
    fc = f.forecast(up.id, market, bars[-1].ts_ns)
    assert fc is not None and fc.p_win == f.tracks[SPOT].latest[1]


def test_a_missing_registry_is_named_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "typo.db"
    with pytest.raises(ConfigError, match=r"\[plugins.ml\] registry = .*typo.db: no such file"):
        MLForecaster(MLSettings(registry=path)).load()
    assert not path.exists() and not path.parent.exists()  # was: both created


def test_an_unknown_model_id_names_the_setting(tmp_path: Path) -> None:
    path, _mid = _registered(tmp_path, {"window": 500, "features": {}})
    with pytest.raises(ConfigError, match=r"\[plugins.ml\] model_id = 'nope': no model"):
        MLForecaster(MLSettings(registry=path, model_id="nope")).load()


def _settings(**table: Any) -> Any:
    return structure(table, MLSettings, "bt.toml", prefix="plugins.ml")


@pytest.mark.parametrize(("table", "said"), [
    ({"drift_min_obs": None}, "got None @ plugins.ml.drift_min_obs"),
    ({"drift_min_obs": 0}, "drift_min_obs = 0 is outside"),
    ({"bars_start": 100, "bars_end": 100}, "bars_end 100 is not after bars_start 100"),
    ({"bars_start": 100, "bars_end": 50}, "bars_end 50 is not after bars_start 100"),
    ({"min_price": 0.9, "max_price": 0.8}, "min_price 0.9 > max_price 0.8"),
    ({"expiry_window_s": float("inf")}, "expiry_window_s = inf is outside"),
    ({"brier_ema_alpha": 0.0}, "brier_ema_alpha = 0.0 is outside"),
    ({"psi_window": 0}, "psi_window = 0 is outside"),
    ({"half_spread": 0.5}, "half_spread = 0.5 is outside"),
])
def test_settings_out_of_range_are_refused_naming_the_setting(table: dict[str, Any],
                                                             said: str) -> None:
    with pytest.raises(ConfigError, match=said) as err:
        _settings(**table)
    assert "plugins.ml" in str(err.value)


# -- drift at its boundaries -----------------------------------------------------------------
def test_the_brier_alarm_fires_above_the_margin_not_at_it() -> None:
    """alpha = 1: the EMA is the last squared error.  p = 0.5 scores 0.25 either way."""
    at = BrierEMA(0.25, alpha=1.0, margin=0.0, min_obs=3)
    assert [at.update(0.5, 1.0) for _ in range(5)] == [None] * 5  # 0.25 is not > 0.25
    above = BrierEMA(0.25, alpha=1.0, margin=0.0, min_obs=3)
    said = [above.update(0.6, 0.0) for _ in range(3)]  # 0.36 > 0.25, from the third on
    assert said[:2] == [None, None] and said[2] is not None and "after 3 outcomes" in said[2]
    assert above.health == 0.0 and at.health == 1.0


def test_the_psi_alarm_fires_above_the_threshold_not_at_it() -> None:
    ref = {"x": reference_bins(np.linspace(0.0, 1.0, 1000))}
    window = np.r_[np.full(30, 0.95), np.linspace(0.0, 1.0, 70)]
    value = psi(ref["x"], window)
    at = FeatureDrift(ref, ["x"], limit=1e-9, window=100, thresholds={"x": value})
    below = FeatureDrift(ref, ["x"], limit=1e-9, window=100,
                         thresholds={"x": float(np.nextafter(value, 0.0))})
    twice = FeatureDrift(ref, ["x"], limit=1e-9, window=100,
                         thresholds={"x": float(np.nextafter(value, 0.0))}, consecutive=2)
    rows = [(float(v),) for v in window]
    for drift in (at, below, twice):
        for r in rows[:-1]:
            assert drift.update(r) is None  # the window is not full yet
    assert at.update(rows[-1]) is None
    assert below.update(rows[-1]) is not None
    assert twice.update(rows[-1]) is None and twice.update(rows[0]) is not None


# -- the command line and damaged datasets --------------------------------------------------
@pytest.mark.parametrize("command", ["dataset", "train"])
def test_a_feature_named_twice_is_a_usage_error(tmp_path: Path, command: str) -> None:
    where = ["--out", str(tmp_path / "ds")] if command == "dataset" else \
        ["--registry", str(tmp_path / "r.db")]
    out = CliRunner().invoke(cli, ["ml", command, "--bars", str(KRAKEN), "--start",
                                   str(TRAIN_START), "--end", str(TRAIN_START + 600 * 3600),
                                   "--features", "ret_1@1,vol_24,ret_1", *where],
                             prog_name="argus")
    assert out.exit_code == 2 and "Traceback" not in out.output  # was: exit 4
    assert out.output.strip().splitlines()[-1].startswith(
        f"Error: argus ml {command}: Invalid value for '--features': 'ret_1' names feature "
        "'ret_1' again (after 'ret_1@1')")
    assert not (tmp_path / "r.db").exists()


@pytest.mark.parametrize("manifest", ["[1]", '{"format": "argus-ml-dataset/1"}',
                                      '{"format": "argus-ml-dataset/1", "files": []}'])
def test_a_damaged_dataset_manifest_is_a_data_error(tmp_path: Path, manifest: str) -> None:
    (tmp_path / "manifest.json").write_text(manifest)
    (tmp_path / "data.ndjson").write_text("{}\n")
    with pytest.raises(DataError, match="not a dataset export this version reads"):
        read_dataset(tmp_path)


@pytest.mark.parametrize("command", ["evaluate", "promote"])
def test_gates_on_a_model_without_an_out_of_fold_record_are_one_line(tmp_path: Path,
                                                                    command: str) -> None:
    path, mid = _registered(tmp_path, {"window": 500, "features": {}})  # report {}
    extra = ["--to", "paper"] if command == "promote" else []
    out = CliRunner().invoke(cli, ["ml", command, "--registry", str(path), mid, *extra],
                             prog_name="argus")
    assert out.exit_code == 4 and "Traceback" not in out.output  # was: KeyError, exit 1
    assert out.output.strip().splitlines()[-1] == (
        "error: the model's CV report has no 'oof_calibrated' for the gates (it was "
        "registered without the out-of-fold record `argus ml train` writes)")


def test_an_edited_out_of_fold_record_is_not_judged() -> None:
    from argus_ml.registry import GateSettings, check_gates

    figures = {"brier": 0.2, "reliability": 0.0, "n": 600.0}
    report = {"oof_calibrated": figures, "climatology": {"brier": 0.25},
              "oof": {"p": [0.9] * 599 + [1.7], "y": [1] * 600}}
    with pytest.raises(DataError, match="not finite probabilities and 0/1 outcomes"):
        check_gates(report, GateSettings())
    report["oof"]["p"][-1] = 0.9  # type: ignore[index]
    assert check_gates(report, GateSettings()).passed
