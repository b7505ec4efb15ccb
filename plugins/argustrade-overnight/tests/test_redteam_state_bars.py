"""Red team of ``overnight_session``: bars shorter than ``bar_seconds``, and damaged
states after a restart.

Found and fixed (each test failed before):

* 15-minute bars replayed with the default ``bar_seconds = 3600`` were taken without a
  word: each bar's open was put an hour back, so the three bars after every cut were
  booked to the segment before it as one-bar instances of their own. Every segment's
  training sample was four times too large (164 Asia instances in ten weeks, not 41)
  with near-zero returns, and the strategy that trades the weekends six times on hourly
  bars never traded; a bar whose close is not on the ``bar_seconds`` grid (it straddles
  a cut) was taken too. Both are now a ``DataError`` naming the bar and the setting;
* ``set_state({})`` (a state from another strategy, or a truncated checkpoint) was taken
  and silently threw the training sample away, and damaged fields raised ``IndexError``
  / ``TypeError`` / ``AttributeError`` at the next bar or at once; now a ``DataError``
  names the field and the strategy is left as it was;
* the regime tracker's last reading (``RegimeTracker.last``) is not part of its state, so
  after a restart the regime gate was open until the next UTC midnight: restarted at
  Friday noon, the strategy bought a weekend that the uninterrupted run refused. The
  strategy now keeps (and saves) the last daily reading itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from argus_overnight.strategy import OvernightSession

from argus_core import Bar, DataError

HERE = Path(__file__).parent


def _helpers() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("_ov_helpers",
                                                  HERE / "test_overnight_strategy.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


H = _helpers()


def _quarter_hours(bars: list[Bar]) -> list[Bar]:
    return [Bar(b.instrument_id, b.ts_ns - (3 - k) * 900 * 10**9, b.open, b.high, b.low,
                b.close, 1.0) for b in bars for k in range(4)]


def test_bars_shorter_than_bar_seconds_are_refused_naming_the_setting() -> None:
    bars = _quarter_hours(H.constructed_bars("2022-01-03", "2022-01-05"))[3:]  # on the hour
    with pytest.raises(DataError, match=r"900 s after the previous one.*bar_seconds = 3600"):
        H.drive(OvernightSession(H.settings()), bars)


def test_a_bar_off_the_bar_seconds_grid_is_refused() -> None:
    bars = H.constructed_bars("2022-01-03", "2022-01-05")
    shifted = [Bar(b.instrument_id, b.ts_ns + 1800 * 10**9, b.open, b.high, b.low, b.close,
                   1.0) for b in bars]
    with pytest.raises(DataError, match=r"not a multiple of bar_seconds = 3600"):
        H.drive(OvernightSession(H.settings()), shifted)


def test_quarter_hour_bars_with_bar_seconds_900_train_like_hourly_bars() -> None:
    hourly = H.constructed_bars("2022-01-03", "2022-03-22")
    by_hour = OvernightSession(H.settings())
    by_quarter = OvernightSession(H.settings(bar_seconds=900))
    decisions_hourly = H.drive(by_hour, hourly)
    decisions_quarter = H.drive(by_quarter, _quarter_hours(hourly))
    assert {k: len(v) for k, v in by_quarter.train.items()} == \
        {k: len(v) for k, v in by_hour.train.items()}
    assert decisions_quarter == decisions_hourly and decisions_hourly


def test_gaps_and_duplicates_still_pass() -> None:
    bars = H.constructed_bars("2022-01-03", "2022-03-22")
    gappy = [b for i, b in enumerate(bars) if i % 7 != 3]
    doubled = [b for b in gappy for _ in range(2)]  # a repeated bar is ignored
    assert H.drive(OvernightSession(H.settings()), doubled) == \
        H.drive(OvernightSession(H.settings()), gappy)


def _trained() -> OvernightSession:
    strategy = OvernightSession(H.settings(regime_gate=True, max_p_change=1.0))
    H.drive(strategy, H.constructed_bars("2022-01-03", "2022-02-20"))
    return strategy


@pytest.mark.parametrize(("change", "word"), [
    (lambda s: s.clear(), "train"),
    (lambda s: s.pop("prev_close"), "prev_close"),
    (lambda s: s.update(current=["weekend", 1]), "current"),
    (lambda s: s.update(current=["nowhere", 1, 2, 0.0]), "current"),
    (lambda s: s["train"].update(weekend=["x"]), "train"),
    (lambda s: s["train"].update(weekend=[float("nan")]), "train"),
    (lambda s: s["train"].pop("weekend"), "train"),
    (lambda s: s.update(prev_close="1"), "prev_close"),
    (lambda s: s.update(prev_close=-1.0), "prev_close"),
    (lambda s: s.update(last_ts_s=1.5), "last_ts_s"),
    (lambda s: s.update(last_ts_s=None), "last_ts_s"),
    (lambda s: s.update(regime=None), "regime"),
])
def test_a_damaged_state_is_a_data_error_naming_the_field(change, word) -> None:
    strategy = _trained()
    before = json.dumps(strategy.get_state())
    state = json.loads(before)
    change(state)
    with pytest.raises(DataError, match=rf"overnight_session: state.*{word}"):
        strategy.set_state(state)
    assert json.dumps(strategy.get_state()) == before


@pytest.mark.parametrize("state", [None, [], "x"])
def test_a_state_that_is_not_a_dict_is_refused(state) -> None:
    with pytest.raises(DataError, match="overnight_session: a state is a dict"):
        OvernightSession(H.settings()).set_state(state)


def test_good_states_round_trip_including_a_fresh_one() -> None:
    strategy = _trained()
    copy = OvernightSession(H.settings(regime_gate=True, max_p_change=1.0))
    copy.set_state(json.loads(json.dumps(strategy.get_state())))
    assert json.dumps(copy.get_state()) == json.dumps(strategy.get_state())
    fresh = OvernightSession(H.settings())
    fresh.set_state(json.loads(json.dumps(OvernightSession(H.settings()).get_state())))


def test_a_restart_keeps_the_regime_gate_closed_until_the_next_daily_close() -> None:
    """Before: the regime tracker's last reading is not in its state, so a strategy
    restarted at Friday noon saw no P(change) until midnight and bought the weekend that
    the uninterrupted run refused (P(change) about 0.005 > max_p_change 0.004)."""
    bars = H.constructed_bars("2022-01-03", "2022-03-22")
    gated = {"regime_gate": True, "max_p_change": 0.004}
    assert H.drive(OvernightSession(H.settings(**gated)), bars) == []
    cut = next(i for i, b in enumerate(bars)
               if b.ts_ns // 10**9 == H.ts("2022-03-04T12:00"))
    first = OvernightSession(H.settings(**gated))
    assert H.drive(first, bars[:cut]) == []
    second = OvernightSession(H.settings(**gated))
    second.set_state(json.loads(json.dumps(first.get_state())))
    assert H.drive(second, bars[cut:]) == []
