"""Per-segment returns against an independent pandas groupby (labels via tz_convert)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from argus_overnight.analysis import (
    read_kraken_bars,
    segment_returns,
    segment_stats,
)
from argus_overnight.config import utc_seconds as ts

from argus_core import DataError


def _pandas_labels(open_s: np.ndarray) -> pd.DataFrame:
    """Label bars from their local wall clocks, written independently of sessions.py."""
    t = pd.to_datetime(open_s, unit="s", utc=True)
    ny, ldn = t.tz_convert("America/New_York"), t.tz_convert("Europe/London")
    utc_day = t.normalize()
    wd = t.day_of_week
    label = np.where(wd >= 5, "weekend",
             np.where(ldn.hour + (ldn.normalize().tz_localize(None) > utc_day.tz_localize(None))
                      * 24 < 8, "asia_open_to_europe_open",
             np.where(ny.hour < 9, "europe_open_to_us_open",
             np.where(ny.hour < 16, "us_open_to_us_close",
             np.where(wd == 4, "weekend", "us_close_to_asia_open")))))
    # A weekend instance is keyed by its Friday; everything else by its UTC day.
    key = (utc_day - pd.to_timedelta(np.where(wd >= 5, wd - 4, 0), unit="D")).asi8
    return pd.DataFrame({"label": label, "key": key})


def test_segment_stats_match_a_pandas_groupby(kraken_csv) -> None:
    open_s, close = read_kraken_bars(str(kraken_csv), ts("2020-06-01T00:00"),
                                     ts("2021-06-01T00:00"))
    ours = segment_returns(open_s, close)
    df = _pandas_labels(open_s)
    df["r"] = np.log(pd.Series(close)).diff()
    df = df.iloc[1:]
    df["run"] = ((df.label != df.label.shift()) | (df.key != df.key.shift())).cumsum()
    inst = df.groupby("run").agg(label=("label", "first"), r=("r", "sum"))
    assert list(inst.label) == list(ours.segment)
    np.testing.assert_allclose(ours.log_return, inst.r.to_numpy(), rtol=0, atol=1e-12)
    ref = inst.groupby("label").r.agg(["count", "mean", "std"])
    stats = segment_stats(ours)
    for label, row in ref.iterrows():
        s = stats[str(label)]
        assert s.n == row["count"]
        assert s.mean_log == pytest.approx(row["mean"], abs=1e-14)
        assert s.std_log == pytest.approx(row["std"], rel=1e-10)
        assert s.t_stat == pytest.approx(row["mean"] / (row["std"] / np.sqrt(row["count"])),
                                         rel=1e-10)


def test_a_window_counts_only_instances_starting_inside_it(kraken_csv) -> None:
    open_s, close = read_kraken_bars(str(kraken_csv), ts("2022-01-01T00:00"),
                                     ts("2022-03-01T00:00"))
    rets = segment_returns(open_s, close)
    cut = ts("2022-02-01T00:00")
    first = segment_stats(rets, end_s=cut)
    second = segment_stats(rets, start_s=cut)
    total = segment_stats(rets)
    assert all(first[k].n + second[k].n == total[k].n for k in total)


def test_bad_bars_are_refused_and_good_ones_pass() -> None:
    with pytest.raises(DataError):
        segment_returns(np.array([10, 5]), np.array([1.0, 2.0]))
    with pytest.raises(DataError):
        segment_returns(np.array([0, 3600]), np.array([1.0, -2.0]))
    ok = segment_returns(np.array([0, 3600, 7200]), np.array([1.0, 2.0, 4.0]))
    assert ok.log_return.sum() == pytest.approx(np.log(4.0))
