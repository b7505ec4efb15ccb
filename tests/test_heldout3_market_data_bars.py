"""Held-out bar files through the ML data path (``argus_ml.bars``, the ``updown_replay``
venue) and the indicators (``argus_indicators``).

Variants derived from the bundled Kraken XBT/USD hourly OHLCVT file: millisecond times,
Kraken's REST OHLC layout (vwap before volume), a duplicated and an out-of-order row,
impossible prices, a negative volume, gaps (Kraken omits hours without trades), zero
volume, a flat session halt, and the file rescaled to prices of 0.0001 and 100,000.

Found and fixed (failed before):

* millisecond times were read as seconds: ``time * 1e9`` wrapped around int64 to
  negative stamps, silently;
* the REST layout's 8 columns were read as OHLCVT, the vwap taken as the volume;
* a duplicated / out-of-order row said "bars must be in strictly increasing time order"
  with no file or line; a negative open or a low above the close was accepted;
* ``updown_replay`` stated ``meta["settles_ns"] = open + window_bars x bar_seconds``
  but settles at the resolving bar's close, later when a gap stretches the window:
  ``ml_near_expiry`` reading the stated time would think a contract past resolution
  while it was still trading;
* a resolution table (``argus_ml.outcomes``) with a price of ``nan`` crashed with a bare
  ``decimal.InvalidOperation``; times in seconds or milliseconds were taken as
  nanoseconds (every outcome "known" in 1970, before every decision: the purge would
  let labels leak into training); a market listed twice with two outcomes gave two
  labels; line numbers skipped blank lines.

Held: the indicators on the rescaled file equal the unscaled ones times the scale
(RSI, realised vol and the ML features scale-free), gaps count as bars, zero-volume
bars leave VWAP on the last traded price, and a flat halt holds RSI and gives zero vol.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from argus_indicators import atr, bollinger, ema, macd, rolling_volatility, rsi, vwap
from argus_ml.bars import read_ohlcvt_csv
from argus_ml.config import MLSettings
from argus_ml.features import FeatureRegistry
from argus_ml.venue import UpDownReplayVenue

from argus_core import DataError, Instrument, Settlement

KRAKEN = Path(__file__).resolve().parents[1] / "examples" / "data" / "kraken_XBTUSD_60.csv"
LINES = KRAKEN.read_text().splitlines()[20_000:21_000]
GAPPY = KRAKEN.read_text().splitlines()[:2_000]  # 2013-14: many hours without a trade


def _write(tmp_path: Path, lines: list[str], name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _edit(i: int, **cols: str) -> list[str]:
    names = ["time", "open", "high", "low", "close", "volume", "trades"]
    out = list(LINES)
    fields = out[i].split(",")
    for k, v in cols.items():
        fields[names.index(k)] = v
    out[i] = ",".join(fields)
    return out


def test_the_bundled_file_reads_as_before():
    bars = read_ohlcvt_csv(KRAKEN)
    table = np.loadtxt(KRAKEN, delimiter=",", usecols=range(6))  # the plain reading
    assert len(bars) == table.shape[0] == 70_253
    assert np.array_equal(bars.ts_ns, (table[:, 0].astype(np.int64) + 3600) * 10**9)
    assert np.array_equal(bars.close, table[:, 4]) and np.array_equal(bars.volume, table[:, 5])


def test_millisecond_times_are_refused_not_wrapped(tmp_path):
    ms = [",".join([str(int(ln.split(",")[0]) * 1000), *ln.split(",")[1:]]) for ln in LINES]
    with pytest.raises(DataError, match=r"bars.csv line 1: time is not whole seconds since "
                                        r"1970 \(milliseconds\?\)"):
        read_ohlcvt_csv(_write(tmp_path, ms))


def test_krakens_rest_ohlc_layout_is_refused_not_read_as_volume(tmp_path):
    rest = []
    for ln in LINES:  # time, open, high, low, close, vwap, volume, count
        f = ln.split(",")
        rest.append(",".join([*f[:5], f[4], *f[5:]]))
    with pytest.raises(DataError, match=r"line 1: 8 columns; a Kraken OHLCVT row has 6 or 7"):
        read_ohlcvt_csv(_write(tmp_path, rest))


@pytest.mark.parametrize(("lines", "line", "what"), [
    ([*LINES[:10], LINES[9], *LINES[10:]], 11, "time is not after the row before"),
    ([*LINES[:10], LINES[11], LINES[10], *LINES[12:]], 12, "time is not after the row before"),
    (_edit(7, open="-1"), 8, "a price is not a number > 0"),
    (_edit(7, close="nan"), 8, "a price is not a number > 0"),
    (_edit(7, low="1e9"), 8, r"prices break low <= open, close <= high"),
    (_edit(7, volume="-2"), 8, "volume is not a number >= 0"),
])
def test_bad_rows_name_file_and_line(tmp_path, lines, line, what):
    with pytest.raises(DataError, match=rf"bars.csv line {line}: {what}"):
        read_ohlcvt_csv(_write(tmp_path, lines))


def test_a_blank_line_does_not_shift_the_line_number(tmp_path):
    lines = _edit(7, open="-1")
    with pytest.raises(DataError, match=r"bars.csv line 9: a price"):
        read_ohlcvt_csv(_write(tmp_path, [*lines[:3], "", *lines[3:]]))


def test_updown_contracts_state_the_time_they_settle_at_across_a_gap(tmp_path):
    times = [int(ln.split(",")[0]) for ln in GAPPY]
    gaps = [i for i in range(1, len(times)) if times[i] - times[i - 1] > 3600]
    assert gaps  # Kraken omits hours without trades: the held-out file has holes
    settings = MLSettings(bars_csv=str(_write(tmp_path, GAPPY)), window_bars=4)
    venue = UpDownReplayVenue(settings)
    events = list(venue.events())  # each window's contracts are listed as it opens
    insts = {i.id: i for i in events if isinstance(i, Instrument)}
    settled = {e.instrument_id: e.ts_ns for e in events if type(e) is Settlement}
    assert len(settled) > 400
    stretched = 0
    for iid, ts in settled.items():
        meta = insts[iid].meta
        assert meta["settles_ns"] == ts, iid
        stretched += ts - meta["opens_ns"] > 4 * 3600 * 10**9
    assert stretched > 0


# -- indicators and features on held-out scales, gaps, zero volume and halts --------------
@pytest.mark.parametrize("scale", [1e-4, 1e5])
def test_indicators_and_features_on_a_rescaled_file(tmp_path, scale):
    scaled = []
    for ln in LINES:
        f = ln.split(",")
        scaled.append(",".join([f[0], *(repr(float(x) * scale) for x in f[1:5]), *f[5:]]))
    a = read_ohlcvt_csv(_write(tmp_path, LINES, "a.csv"))
    b = read_ohlcvt_csv(_write(tmp_path, scaled, "b.csv"))
    for fn in (lambda c: ema(c, 20), lambda c: macd(c).histogram,
               lambda c: bollinger(c).upper):
        np.testing.assert_allclose(fn(b.close), fn(a.close) * scale, rtol=1e-9)
    np.testing.assert_allclose(atr(b.high, b.low, b.close), atr(a.high, a.low, a.close) * scale,
                               rtol=1e-9)
    np.testing.assert_allclose(vwap(b.ts_ns, b.high, b.low, b.close, b.volume),
                               vwap(a.ts_ns, a.high, a.low, a.close, a.volume) * scale,
                               rtol=1e-9)
    np.testing.assert_allclose(rsi(b.close), rsi(a.close), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(rolling_volatility(b.close), rolling_volatility(a.close),
                               rtol=1e-9)
    fs = FeatureRegistry.default().select()
    np.testing.assert_allclose(fs.batch(b).values, fs.batch(a).values, rtol=1e-6, atol=1e-9)


def test_zero_volume_and_a_flat_halt(tmp_path):
    halted = []
    for i, ln in enumerate(LINES):
        f = ln.split(",")
        if 500 <= i < 560:  # a session halt: the last price repeated, nothing traded
            last = halted[-1].split(",")[4]
            f = [f[0], last, last, last, last, "0", "0"]
        halted.append(",".join(f))
    b = read_ohlcvt_csv(_write(tmp_path, halted))
    r, vol = rsi(b.close, 14), rolling_volatility(b.close, 20)
    # Wilder's averages decay alike with no change: RSI holds its value; no returns, no vol.
    assert r[520] == pytest.approx(r[559], rel=1e-12) and vol[540] == 0.0
    day = 86_400 * 10**9
    v = vwap(b.ts_ns, b.high, b.low, b.close, b.volume)
    for i in range(500, 560):
        same_day = (b.ts_ns[i] - 1) // day == (b.ts_ns[i - 1] - 1) // day
        if same_day:
            np.testing.assert_equal(v[i], v[i - 1])  # zero volume moves nothing
        else:
            assert np.isnan(v[i])  # a new session with no trade yet has no VWAP


# -- resolved markets: the outcome table the ML labels read ------------------------------
T0 = 1_717_200_000 * 10**9


@pytest.mark.parametrize(("rows", "match"), [
    ([f"pm:A,{T0},nan"], r"r.csv:2: price nan is not in \[0, 1\]"),
    ([f"pm:A,{T0},Infinity"], r"r.csv:2: price Infinity is not in \[0, 1\]"),
    (["pm:A,1717200000,1"], r"r.csv:2: a time before 1973 .* not seconds or milliseconds"),
    (["pm:A,1717200000000,1"], r"r.csv:2: a time before 1973"),
    (["", f"pm:A,{T0},1", "", f"pm:A,{T0},0"],
     r"r.csv:5: pm:A resolved again, differently from line 3"),
])
def test_a_resolution_table_refuses_what_would_leak_or_crash(tmp_path, rows, match):
    from argus_ml.outcomes import read_resolution_table

    path = tmp_path / "r.csv"
    path.write_text("instrument_id,known_ts_ns,price\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=match):
        read_resolution_table(path)


def test_a_resolution_repeated_identically_is_one_label(tmp_path):
    from argus_ml.outcomes import ResolutionLabel, read_resolution_table

    path = tmp_path / "r.csv"
    path.write_text(f"instrument_id,known_ts_ns,price\npm:A,{T0},1\npm:B,{T0},0.5\n"
                    f"pm:A,{T0},1\n")
    assert read_resolution_table(path) == [ResolutionLabel("pm:A", Decimal(1), T0),
                                           ResolutionLabel("pm:B", Decimal("0.5"), T0)]
