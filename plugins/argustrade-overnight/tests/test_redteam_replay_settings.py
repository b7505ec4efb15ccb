"""Red team of ``overnight_session``: an honest replay, and a setting that switched the
strategy off without a word.

Found and fixed (failed before): ``segments = []`` was taken; the strategy then wants no
segment and never trades, and a backtest reads as "no edge" when the config said nothing.

Held (checked here so it stays held): in a replay through ``argus_core.run_backtest``
every fill is at a session cut (the decision bar's close) and priced from the *next*
bar's open moved 2 bps against the trader (the paper broker's synthetic half-spread),
never at the close the decision saw; DST moves the Europe cut from 08:00 UTC (winter)
to 07:00 UTC (summer).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from argus_overnight.config import Settings
from argus_overnight.sessions import EUROPE, US, segment_of
from argus_testkit import ConfigRunner

from argus_core import ConfigError, run_backtest, structure

HOUR = 3600


def test_an_empty_segment_list_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"segments = \[\] allows no segment"):
        structure({"segments": []}, Settings, "run.toml", prefix="plugins.overnight")


def test_one_segment_is_still_taken() -> None:
    assert structure({"segments": ["weekend"]}, Settings, "run.toml",
                     prefix="plugins.overnight").segments == ["weekend"]


def test_replay_fills_at_the_next_open_at_the_session_cut(run_config: ConfigRunner,
                                                           kraken_csv: Path) -> None:
    config = run_config({
        "argus": {"plugins": ["overnight"], "mode": "replay"},
        "run": {"venue": "replay", "strategies": ["overnight_session"],
                "sizer": "fixed_fraction", "starting_cash": "100000"},
        "plugins": {
            "replay": {"bars_csv": str(kraken_csv), "start": "2022-10-24",
                       "end": "2022-11-05", "taker_bps": "40", "maker_bps": "25"},
            "overnight": {"history_csv": str(kraken_csv), "train_start": "2020-01-01",
                          "train_end": "2022-10-24", "hurdle_bps": 0.0, "min_t": 1.0,
                          "segments": [EUROPE]},
            "sizing": {"fraction": "0.05"},
        },
    })
    raw = np.loadtxt(kraken_csv, delimiter=",", usecols=(0, 1, 4))
    by_open = {int(t): (float(o), float(c)) for t, o, c in raw}
    fills = run_backtest(config).fills
    assert fills, "the forced variant holds Europe mornings in late October 2022"
    cuts = set()
    for fill in fills:
        # a Bar is stamped at its close: the fill's bar opened an hour before ts_ns
        bar_open_s = fill.ts_ns // 10**9 - HOUR
        cut_segment = segment_of(bar_open_s)[0]
        assert cut_segment == (EUROPE if fill.side.value == "buy" else US), fill
        assert segment_of(bar_open_s - HOUR)[0] != cut_segment  # the bar right after a cut
        open_price, _ = by_open[bar_open_s]
        sign = 1 if fill.side.value == "buy" else -1
        expected = Decimal(repr(open_price)) * (1 + sign * Decimal("0.0002"))
        assert abs(fill.price - expected) <= Decimal("0.1"), (fill, open_price)
        cuts.add(bar_open_s % 86400 // HOUR)
    # 2022-10-30: the UK leaves summer time, so the Europe open moves from 07 to 08 UTC
    # (and New York, a week later, keeps the US open at 13 UTC until 2022-11-06)
    assert {7, 8, 13} <= cuts
