"""Held-out market data through the VRP options route (``plugins/argus-strategy-vrp``).

Found and fixed (each test below failed before):

* the raw Lean QQQ file holds the 2:1 split of 2000-03-20 unadjusted: a replay across it
  saw the underlying fall 52% in a day, every listed put deep in the money (marks x10,
  the equity curve a spike the market did not make) and the regime tracker a crash;
  the loader now applies ``constants.SPLITS`` and refuses any later unexplained move
  beyond ``MAX_DAILY_MOVE``;
* the QQQ file has no bars from 2004-12-01 to 2011-03-22: a replay asking for 2010 with
  QQQ silently started in 2011-03 (SPY's days dropped with it), and the warm-up of a
  replay starting after it read six years of drift as one day's +35% move.  A range
  with a hole is refused naming the symbol and the dates; the warm-up stops at a hole;
* the loader took duplicate or out-of-order rows and impossible bars (low above close)
  silently; now a ``DataError`` names the file and line.

Held: every equity row of a backtest equals cash plus position x the book's mid
recomputed independently from the venue's own books (no mid fills: every fill at the
touch, every option fill pays its commission), and Black-Scholes prices, deltas and
implied vols of the plugin agree with an independent formula at prices of 0.0001 and
100,000.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import types
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from argus_strategy_vrp import data as vrp_data
from argus_strategy_vrp.config import VrpSettings
from argus_strategy_vrp.constants import MULTIPLIER
from argus_strategy_vrp.data import VrpVenue, load_lean_daily
from argus_strategy_vrp.pricing import bs_put, bs_put_delta, implied_vol_put
from scipy import stats

from argus_core import Bar, DataError, OrderBook
from argus_core.backtest import run_backtest
from argus_core.config import parse_config
from argus_core.ledger import Ledger


def _stream(venue: VrpVenue) -> list[object]:
    import asyncio

    async def go() -> list[object]:
        return [e async for e in venue.stream()]

    return asyncio.run(go())


# -- splits ------------------------------------------------------------------------------
def test_qqq_split_of_2000_03_20_is_adjusted_in_the_loaded_bars():
    bars = load_lean_daily("QQQ")
    before, after = bars[dt.date(2000, 3, 17)], bars[dt.date(2000, 3, 20)]
    # The market moved -3.7% that day; the raw file says 221.73 -> 106.81.
    assert after.close / before.close == pytest.approx(106.81 / 110.865)
    days = sorted(bars)
    moves = [bars[b].close / bars[a].close for a, b in itertools.pairwise(days)]
    assert min(moves) > 1 / 1.6 and max(moves) < 1.6


def test_puts_quoted_across_the_split_are_not_marked_deep_in_the_money():
    venue = VrpVenue(VrpSettings(symbols=["QQQ"], start="2000-03-10", end="2000-03-24"))
    mids: dict[str, dict[int, float]] = {}
    closes = []
    for e in _stream(venue):
        if type(e) is OrderBook:
            mid = (e.bids[0, 0] + e.asks[0, 0]) / 2
            mids.setdefault(e.instrument_id, {})[e.ts_ns] = mid
        elif type(e) is Bar:
            closes.append(e.close)
    assert max(abs(math.log(b / a)) for a, b in itertools.pairwise(closes)) < 0.2
    t17 = vrp_data.close_ts_ns(dt.date(2000, 3, 17))
    t20 = vrp_data.close_ts_ns(dt.date(2000, 3, 20))
    both = [m for m in mids.values() if t17 in m and t20 in m]
    assert both
    # A 3.7% fall in the underlying cannot multiply a put's price by more than ~3 (the
    # raw file made every strike above 107 worth its 100+ dollars of intrinsic value).
    assert max(m[t20] / m[t17] for m in both) < 3.0


def test_an_unlisted_split_or_bad_row_is_refused_with_file_and_line(tmp_path, monkeypatch):
    rows = ["20200102 00:00,3000000,3010000,2990000,3005000,100",
            "20200103 00:00,3000000,3010000,2990000,3004000,100",
            "20200106 00:00,1500000,1510000,1490000,1502000,100"]
    _bundled(tmp_path, monkeypatch, rows)
    with pytest.raises(DataError, match=r"lean_spy_daily.csv line 3: .*0\.500 x the close "
                                        r"of 2020-01-03"):
        load_lean_daily("SPY")


@pytest.mark.parametrize(("rows", "match"), [
    (["20200103 00:00,3000000,3010000,2990000,3005000,100",
      "20200102 00:00,3000000,3010000,2990000,3004000,100"],
     r"line 2: 2020-01-02 does not follow 2020-01-03"),
    (["20200102 00:00,3000000,3010000,2990000,3005000,100",
      "20200102 00:00,3000000,3010000,2990000,3005000,100"],
     r"line 2: 2020-01-02 does not follow 2020-01-02"),
    (["20200102 00:00,3000000,3010000,2990000,3005000,100",
      "20200103 00:00,3000000,3010000,3020000,3005000,100"],
     r"line 2: 2020-01-03 prices do not satisfy 0 < low"),
    (["20200102 00:00,0,0,0,0,0"], r"line 1: 2020-01-02 prices do not satisfy 0 < low"),
])
def test_lean_rows_out_of_order_duplicated_or_impossible_are_refused(tmp_path, monkeypatch,
                                                                      rows, match):
    _bundled(tmp_path, monkeypatch, rows)
    with pytest.raises(DataError, match="lean_spy_daily.csv " + match):
        load_lean_daily("SPY")


def _bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: list[str]) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "lean_spy_daily.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.setattr(vrp_data, "resources", types.SimpleNamespace(files=lambda _p: tmp_path))


# -- holes in the data -------------------------------------------------------------------
def test_a_range_over_the_qqq_hole_is_refused_naming_symbol_and_dates():
    with pytest.raises(DataError, match=r"no bars for QQQ from 2010-01-04 to 2011-03-22"):
        VrpVenue(VrpSettings(symbols=["SPY", "QQQ"], start="2010-01-04"))
    with pytest.raises(DataError, match=r"no bars for QQQ from 2004-12-01 to 2011-03-22"):
        VrpVenue(VrpSettings(symbols=["QQQ"], start="2004-06-01", end="2012-01-03"))
    with pytest.raises(DataError, match=r"no bars for SPY from 2021-04-01 to 2021-12-31"):
        VrpVenue(VrpSettings(symbols=["SPY"], start="2021-01-04", end="2021-12-31"))
    # Weekends, holidays and the 2001-09-11 closure are not holes.
    assert VrpVenue(VrpSettings(symbols=["SPY"], start="2001-09-01", end="2001-10-01")).days


def test_the_warm_up_does_not_read_the_hole_as_one_move(monkeypatch):
    seen: list[int] = []

    class Recording(vrp_data.RegimeTracker):  # type: ignore[misc]  # test double
        def update(self, ts_ns: int, close: float):  # type: ignore[override]
            seen.append(ts_ns)
            return super().update(ts_ns, close)

    monkeypatch.setattr(vrp_data, "RegimeTracker", Recording)
    VrpVenue(VrpSettings(symbols=["QQQ"], start="2012-01-03"))._trackers()
    gaps = np.diff(np.array(seen)) / 86_400e9
    assert seen and gaps.max() <= 10, gaps.max()


# -- the equity curve against the books --------------------------------------------------
@pytest.fixture(scope="module")
def spy_2017(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], list[dict],
                                                                dict[tuple[str, int],
                                                                     tuple[float, float]]]:
    """A backtest's fills and equity rows, and the venue's own touch per contract and close."""
    run = tmp_path_factory.mktemp("vrp") / "run"
    raw = {"argus": {"plugins": ["vrp"]},
           "run": {"venue": "vrp_options", "strategies": ["vrp_put_spread"],
                   "starting_cash": "100000"},
           "plugins": {"vrp": {"symbols": ["SPY"], "spread_scale": 0.25, "min_vrp": 0.0,
                               "start": "2017-06-01", "end": "2017-09-29"},
                       "risk": {"max_consecutive_losses": 1000, "per_play_fraction": "0.10"}}}
    run_backtest(parse_config(raw), run)
    with Ledger.in_dir(run) as ledger:
        fills = ledger.fills()
        equity = ledger.query("select ts_ns, equity from equity order by ts_ns")
    venue = VrpVenue(VrpSettings(symbols=["SPY"], spread_scale=0.25, start="2017-06-01",
                                 end="2017-09-29"))
    books = {(e.instrument_id, e.ts_ns): (float(e.bids[0, 0]), float(e.asks[0, 0]))
             for e in _stream(venue) if type(e) is OrderBook}
    return fills, equity, books


def test_option_fills_are_at_the_touch_of_their_own_close_and_pay_commission(spy_2017):
    fills, _equity, books = spy_2017
    options = [f for f in fills if f["instrument_id"].count("-") == 3]
    assert len([f for f in options if f["liquidity"] != "settlement"]) >= 4
    for f in options:
        if f["liquidity"] == "settlement":
            assert Decimal(f["fee"]) == 0
            continue
        bid, ask = books[(f["instrument_id"], f["ts_ns"])]
        # Never at mid, never before its book: a sell at the bid, a buy at the ask.
        assert float(f["price"]) == (bid if f["side"].upper() == "SELL" else ask), f
        assert Decimal(f["fee"]) == Decimal("0.65") * Decimal(f["quantity"]), f


def _check_equity(fills: list[dict], equity: list[dict],
                  books: dict[tuple[str, int], tuple[float, float]]) -> int:
    """Every equity row == cash + position x mark, the mark being the book's mid (at a
    fill's own timestamp too, a settlement's at its price); returns the rows held."""
    cash = Decimal("100000")
    pos: dict[str, Decimal] = {}
    mark: dict[str, float] = {}
    by_ts: dict[int, list[dict]] = {}
    for f in fills:
        by_ts.setdefault(f["ts_ns"], []).append(f)
    held = 0
    for row in equity:
        ts = row["ts_ns"]
        for iid, q in pos.items():
            if q and (iid, ts) in books:
                mark[iid] = sum(books[(iid, ts)]) / 2
        for f in by_ts.get(ts, []):
            q = Decimal(f["quantity"]) * (1 if f["side"].upper() == "BUY" else -1)
            cash -= q * Decimal(f["price"]) + Decimal(f["fee"])
            iid = f["instrument_id"]
            pos[iid] = pos.get(iid, Decimal(0)) + q
            mark[iid] = (sum(books[(iid, ts)]) / 2 if (iid, ts) in books
                         and f["liquidity"] != "settlement" else float(f["price"]))
        expected = float(cash) + sum(float(q) * mark[i] for i, q in pos.items() if q)
        assert float(row["equity"]) == pytest.approx(expected, abs=0.01), (ts, pos)
        held += any(pos.values())
    return held


def test_every_equity_row_is_cash_plus_positions_at_the_books_mids(spy_2017):
    """A fill's own row marks at its book's mid too: the entry row of a spread shows the
    spread paid (marked at the fill price, the next row dropped by it: a half-spread step
    the market did not make)."""
    fills, equity, books = spy_2017
    assert _check_equity(fills, equity, books) > 10


# -- Black-Scholes against an independent formula ----------------------------------------
def _ref_put(s: float, k: float, t: float, r: float, v: float) -> tuple[float, float]:
    d1 = (math.log(s / k) + (r + v * v / 2) * t) / (v * math.sqrt(t))
    d2 = d1 - v * math.sqrt(t)
    norm = stats.norm
    return (k * math.exp(-r * t) * norm.cdf(-d2) - s * norm.cdf(-d1), norm.cdf(d1) - 1)


@pytest.mark.parametrize("scale", [1e-4, 1.0, 1e5])
@pytest.mark.parametrize(("m", "t", "v"), [(0.8, 0.1, 0.6), (0.95, 30 / 365, 0.18),
                                           (1.0, 1.0, 0.25), (1.1, 7 / 365, 0.12)])
def test_black_scholes_put_delta_and_iv_match_a_reference_at_any_price_scale(scale, m, t, v):
    s, k, r = 100.0 * scale, 100.0 * scale * m, 0.01
    price, delta = _ref_put(s, k, t, r, v)
    assert float(bs_put(s, k, t, r, v)) == pytest.approx(price, rel=1e-9, abs=1e-12 * scale)
    assert float(bs_put_delta(s, k, t, r, v)) == pytest.approx(delta, abs=1e-9)
    if price > max(k * math.exp(-r * t) - s, 0) + 1e-6 * scale:
        assert implied_vol_put(price, s, k, t, r) == pytest.approx(v, rel=1e-5)
    assert MULTIPLIER == 100
