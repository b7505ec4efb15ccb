"""``latency`` scanner: P(up) of a driftless log-normal by hand, realised volatility by
hand, lagging quotes found and fair ones not; the bundled Kraken minute bars as the spot
under constructed 15-minute up/down markets."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal

import attrs
import pytest
from argus_scanners_polymarket.common import EXECUTABLE, RESEARCH, lane_of
from argus_scanners_polymarket.config import LatencySettings
from argus_scanners_polymarket.fixtures import (
    MarketBuilder,
    data_dir,
    kraken_minute_bars,
    updown_pair,
)
from argus_scanners_polymarket.latency import (
    SECONDS_PER_YEAR,
    LatencyScanner,
    p_up,
    realised_vol,
)

from argus_core import Bar, FeeSchedule, Side, Trade

D = Decimal
S = 10**9
T0 = 1_700_000_000 * S
PAIR = "kraken:BTC/USD"
BTC = LatencySettings(pairs={"BTC": PAIR})


def _bar(ts: int, close: float) -> Bar:
    return Bar(PAIR, ts, close, close, close, close, 1.0)


def test_p_up_by_hand() -> None:
    tau = 600 / SECONDS_PER_YEAR
    scale = 0.6 * math.sqrt(tau)                      # 0.0026171...
    z = math.log(1.01) / scale                        # 3.802...
    assert p_up(101, 100, 0.6, tau) == pytest.approx(0.5 * (1 + math.erf(z / math.sqrt(2))))
    assert p_up(101, 100, 0.6, tau) == pytest.approx(0.99993, abs=1e-5)
    assert p_up(100, 100, 0.6, tau) == 0.5
    assert p_up(99, 100, 0.6, 0.0) == 0.0 and p_up(101, 100, 0.6, 0.0) == 1.0


def test_realised_vol_by_hand() -> None:
    samples = [(0, 100.0), (60 * S, 101.0), (120 * S, 100.0), (180 * S, 101.0)]
    r = math.log(1.01)
    r_down = math.log(100 / 101)
    want = math.sqrt((2 * r * r + r_down * r_down) / 180 * SECONDS_PER_YEAR)
    assert realised_vol(samples) == (pytest.approx(want), 3)
    assert realised_vol(samples[:1]) == (0.0, 0)


def _market(spot: float, up_asks: list[tuple[float, float]],
            down_asks: list[tuple[float, float]], fees: FeeSchedule | None = None
            ) -> tuple[MarketBuilder, str, str]:
    b = MarketBuilder(fees)
    up, down = updown_pair(b, "w", "BTC", T0, T0 + 900 * S, open_price=100.0)
    b.market.apply(_bar(T0 + 290 * S, spot))
    b.book(up, [(0.30, 100)], up_asks, ts_ns=T0 + 300 * S)
    b.book(down, [(0.30, 100)], down_asks, ts_ns=T0 + 300 * S)
    return b, up, down


def test_lagging_up_token_found_by_hand_with_fees() -> None:
    b, up, _down = _market(101.0, [(0.60, 50), (0.95, 30), (0.999, 10)], [(0.40, 100)],
                           FeeSchedule(taker_bps=D(100)))
    now = T0 + 300 * S
    (opp,) = LatencyScanner(BTC).scan(b.market, now)  # default_vol 0.6: too few samples
    fair = D(repr(round(p_up(101, 100, 0.6, 600 / SECONDS_PER_YEAR), 9)))
    # 0.60 + 0.006 and 0.95 + 0.0095 are >= 0.03 under fair (0.99993); 0.999 is not
    assert opp.max_size == D(80) and opp.legs[0].limit_price == D("0.95")
    assert opp.costs == D("0.30") + D("0.285")
    assert opp.expected_profit == fair * 80 - D(30) - D("28.5") - D("0.585")
    assert opp.legs[0].side is Side.BUY and opp.legs[0].instrument_id == up
    assert lane_of(opp) == RESEARCH and not opp.risk_free and "default" in opp.reason
    gated = LatencyScanner(LatencySettings(pairs={"BTC": PAIR}, executable_min_edge=D("0.1")))
    assert lane_of(gated.scan(b.market, now)[0]) == EXECUTABLE


def test_an_instrument_replaced_mid_run_is_read_again() -> None:
    """A venue may replace an instrument mid-run (an ``Instrument`` event: new rules or
    meta under the same id, the count unchanged): the scanner's memoised token list is
    rebuilt, so the new window counts (here it ended early: nothing to flag)."""
    b, up, down = _market(101.0, [(0.60, 50)], [(0.40, 100)])
    now = T0 + 300 * S
    for incremental in (True, False):
        scanner = LatencyScanner(BTC, incremental=incremental)
        assert len(scanner.scan(b.market, now)) == 1
        for iid in (up, down):
            inst = b.market.instruments[iid]
            b.market.apply(attrs.evolve(inst, meta={**inst.meta, "window_end_ns": now}))
        assert scanner.scan(b.market, now) == []
        for iid in (up, down):  # back as it was, for the other path
            inst = b.market.instruments[iid]
            b.market.apply(attrs.evolve(inst, meta={**inst.meta,
                                                    "window_end_ns": T0 + 900 * S}))


def test_fair_quotes_and_thresholds_give_nothing() -> None:
    # spot 100.05: z = ln(1.0005) / 0.0026171 = 0.1910, P(up) = 0.5757
    fair = p_up(100.05, 100, 0.6, 600 / SECONDS_PER_YEAR)
    assert fair == pytest.approx(0.5757, abs=1e-4)
    b, _, _ = _market(100.05, [(0.55, 100)], [(0.45, 100)])  # 0.0257 < 0.03; down: -0.0257
    assert LatencyScanner(BTC).scan(b.market, T0 + 300 * S) == []
    b, up, _ = _market(100.05, [(0.54, 100)], [(0.45, 100)])  # 0.0357 >= 0.03
    (opp,) = LatencyScanner(BTC).scan(b.market, T0 + 300 * S)
    assert opp.legs[0].instrument_id == up and opp.max_size == D(100)
    # no mapping for the underlying, before the window, after it: nothing
    assert LatencyScanner(LatencySettings(pairs={"ETH": PAIR})).scan(b.market, T0 + 300 * S) \
        == []
    assert LatencyScanner(BTC).scan(b.market, T0 - S) == []
    assert LatencyScanner(BTC).scan(b.market, T0 + 900 * S) == []


def test_open_price_from_samples_and_a_token_mapping_wins() -> None:
    b = MarketBuilder()
    up, down = updown_pair(b, "w", "BTC", T0 + 60 * S, T0 + 960 * S)  # no open_price
    sc = LatencyScanner(LatencySettings(pairs={up: PAIR, down: PAIR, "BTC": "kraken:none"}))
    b.market.apply(_bar(T0, 100.0))
    assert sc.scan(b.market, T0) == []                   # window not open yet: sampled
    b.market.apply(Trade(PAIR, T0 + 120 * S, "102", "0.5", Side.BUY))  # the newest spot
    b.book(up, [(0.40, 10)], [(0.50, 10)], ts_ns=T0 + 120 * S)
    b.book(down, [(0.40, 10)], [(0.50, 10)], ts_ns=T0 + 120 * S)
    (opp,) = sc.scan(b.market, T0 + 120 * S)
    assert opp.legs[0].instrument_id == up and "open 100" in opp.reason
    assert "spot 102" in opp.reason
    state = sc.get_state()
    again = LatencyScanner(BTC)
    again.set_state(state)
    assert again.get_state() == state and state["open"] == {up: 100.0, down: 100.0}


needs_data = pytest.mark.skipif(not (data_dir().parent / "crypto").is_dir(),
                                reason="bundled Kraken data missing")


def _replay(quote: str) -> tuple[list[tuple[int, str, Decimal]], int]:
    """The 721 Kraken minute bars as the spot of 15-minute up/down markets (one per
    window from the first bar's close), scanned once a minute.  ``quote``: "frozen" (both
    tokens 0.49/0.51 throughout) or "fair" (each token at the hand model's fair value, one
    0.02 either side, from the bars alone)."""
    bars = kraken_minute_bars("kraken:XBT/USDT")
    b = MarketBuilder()
    sc = LatencyScanner(LatencySettings(pairs={"BTC": "kraken:XBT/USDT"}))
    t0, width = bars[0].ts_ns, 900 * S
    windows: dict[int, tuple[str, str, float]] = {}
    found = []
    for i, bar in enumerate(bars):
        b.market.apply(bar)
        k = (bar.ts_ns - t0) // width
        if k not in windows:
            windows[k] = (*updown_pair(b, f"w{k}", "BTC", t0 + k * width,
                                       t0 + (k + 1) * width), bar.close)
        up, down, open_price = windows[k]
        if quote == "frozen":
            p = 0.5
        else:  # the hand model: realised vol of the last hour's closes (or 0.6)
            closes = [x.close for x in bars[max(0, i - 60):i + 1]]
            rets = [math.log(y / x) for x, y in itertools.pairwise(closes)]
            sigma = (math.sqrt(sum(r * r for r in rets) / (60 * len(rets)) * SECONDS_PER_YEAR)
                     if len(rets) >= 10 else 0.6)
            tau = (t0 + (k + 1) * width - bar.ts_ns) / S / SECONDS_PER_YEAR
            p = p_up(bar.close, open_price, sigma, tau)
        for iid, fair in ((up, p), (down, 1 - p)):
            bid, ask = max(round(fair - 0.02, 2), 0.01), min(round(fair + 0.02, 2), 0.99)
            if quote == "frozen":
                bid, ask = 0.49, 0.51
            b.book(iid, [(bid, 100)], [(ask, 100)], ts_ns=bar.ts_ns)
        found += [(i, o.legs[0].instrument_id, o.edge_per_unit)
                  for o in sc.scan(b.market, bar.ts_ns)]
    return found, len(windows)


@needs_data
def test_kraken_minutes_fair_quotes_give_nothing() -> None:
    found, windows = _replay("fair")
    assert windows == 49 and found == []


@needs_data
def test_kraken_minutes_frozen_quotes_lag_and_are_flagged() -> None:
    """Quotes stuck at 0.49/0.51 while BTC moves: flagged in 48 of the 49 windows (the
    side the spot moved to), never both sides of one window at one minute."""
    found, windows = _replay("frozen")
    flagged_windows = {iid.split(":")[1].rsplit("-", 1)[0] for _, iid, _ in found}
    assert len(flagged_windows) == 48 and windows == 49
    per_minute: dict[int, set[str]] = {}
    for i, iid, e in found:
        per_minute.setdefault(i, set()).add(iid.rsplit("-", 1)[0])
        assert D("0.03") <= e <= D("0.49")
    assert all(len(v) == 1 for v in per_minute.values())


def test_window_and_direction_from_other_meta_shapes() -> None:
    from argus_core import Event, Instrument, Outcome

    b = MarketBuilder()
    ids = []
    for sym, outcome in (("u", "Up"), ("d", "Down")):
        b.market.add_instruments([Instrument(
            "polymarket", sym, kind="binary", tick_size="0.01", lot_size="0.01",
            meta={"underlying": "BTC", "window_start_s": T0 // S, "outcome": outcome,
                  "event_id": "E", "open_price": 100.0})])
        ids.append(f"polymarket:{sym}")
    b.market.apply(Event("polymarket", "E", "BTC up or down", (Outcome("Up", *ids),),
                         neg_risk=False, end_ts_ns=T0 + 900 * S))
    up, down = ids
    sc = LatencyScanner(BTC)
    assert sc.window(b.market, b.market.instruments[up]) == (T0, T0 + 900 * S)
    assert (sc.direction(b.market.instruments[up]),
            sc.direction(b.market.instruments[down])) == ("up", "down")
    b.market.apply(_bar(T0 + 290 * S, 99.0))  # spot fell 1%: the down token is cheap
    b.book(up, [(0.30, 100)], [(0.60, 100)], ts_ns=T0 + 300 * S)
    b.book(down, [(0.30, 100)], [(0.60, 100)], ts_ns=T0 + 300 * S)
    (opp,) = sc.scan(b.market, T0 + 300 * S)
    assert opp.legs[0].instrument_id == down and "down token" in opp.reason


@pytest.mark.parametrize("max_qty", [None, D("0.01"), D("25"), D("120.37")])
def test_prefix_walks_equal_the_walk_for_every_fair_value(max_qty: Decimal | None) -> None:
    # the incremental scan counts the leading levels passing the edge test and reads the
    # memoised walk of that prefix: it must be walk_asks' walk, leg included, to the digit
    import numpy as np
    from argus_scanners_polymarket.common import Ladders, buy_leg, walk_asks
    from argus_scanners_polymarket.latency import PrefixWalks

    rng = np.random.default_rng(3)
    schedule = FeeSchedule(taker_bps=D(100))
    ladders, prefixes = Ladders(), PrefixWalks()
    min_edge = D("0.03")
    for version in range(30):
        k = int(rng.integers(1, 8))
        prices = np.round(np.sort(rng.uniform(0.01, 0.99, k)), 2)
        sizes = rng.choice([0.004, 3.0, 17.5, 60.0, 250.0], k)  # 0.004 lot-rounds to 0
        levels = np.column_stack([prices, sizes])
        ladder = ladders.get("t", version, levels, schedule)
        for fair_f in np.linspace(0.0, 1.05, 40).tolist():
            fair = D(repr(round(fair_f, 9)))

            def keep(price: Decimal, unit_fee: Decimal, fair: Decimal = fair) -> bool:
                return fair - price - unit_fee >= min_edge

            want = walk_asks(levels, schedule, keep=keep, max_qty=max_qty)
            n = 0
            for price, unit_fee, _size, _fee in ladder:
                if not keep(price, unit_fee):
                    break
                n += 1
            walk, leg = prefixes.get("t", version, ladder, schedule, n, max_qty)
            assert walk == want
            assert leg == (buy_leg("t", want) if want.quantity > 0 else None)
