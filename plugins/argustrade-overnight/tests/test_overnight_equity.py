"""SPY close-to-open versus open-to-close on the bundled daily bars, against pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from argus_overnight.equity import (
    INTRADAY_LEG,
    OVERNIGHT_LEG,
    bundled_spy_path,
    equity_rule,
    read_lean_daily,
)


@pytest.fixture
def spy():
    path = bundled_spy_path()
    if not path.exists():
        pytest.skip("the SPY daily file is not bundled in this install")
    return path


def test_legs_match_a_pandas_reference(spy) -> None:
    df = pd.read_csv(spy, header=None, names=["d", "o", "h", "l", "c", "v"])
    o, c = df.o / 10_000, df.c / 10_000
    overnight = np.log(o / c.shift()).iloc[1:].to_numpy()
    intraday = np.log(c / o).iloc[1:].to_numpy()
    legs = read_lean_daily(spy)
    np.testing.assert_allclose(legs.close_to_open, overnight, rtol=1e-12)
    np.testing.assert_allclose(legs.open_to_close, intraday, rtol=1e-12)
    assert legs.day[0] == 19980105 and legs.day.size == len(df) - 1


def test_the_rule_trains_before_and_tests_after_the_split(spy) -> None:
    legs = read_lean_daily(spy)
    verdicts = {v.leg: v for v in equity_rule(legs, 20150101, cost_bps_per_side=1.0)}
    train = legs.day < 20150101
    for leg in (OVERNIGHT_LEG, INTRADAY_LEG):
        v = verdicts[leg]
        x = getattr(legs, leg)
        assert v.train.n == train.sum() and v.test.n == (~train).sum()
        assert v.train.mean_log == pytest.approx(x[train].mean(), rel=1e-12)
        assert v.held == (v.train.t_stat >= 2.0 and v.train.mean_simple > 2e-4)
