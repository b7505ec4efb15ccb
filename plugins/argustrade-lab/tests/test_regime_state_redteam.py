"""RegimeTracker / OnlineBocpd state: a restart mid-stream continues exactly as an
uninterrupted run, ``last`` included; a damaged state is a DataError naming the field,
and nothing changes.

Before: ``RegimeTracker.get_state()`` left out ``last`` (a restored tracker had no reading
until its next bar: the overnight strategy kept its own copy), and ``set_state`` trusted
its input: a NaN probability, a negative close or a state of another ``max_run_length``
loaded silently (or half-loaded: the BOCPD arrays were written one by one before a
later one failed), and a missing field was a bare KeyError.
"""

from __future__ import annotations

import copy
import json
import math
import re

import numpy as np
import pytest
from argus_lab.regime import (
    BocpdParams,
    OnlineBocpd,
    RegimeState,
    RegimeTracker,
    VolRegimeParams,
)

from argus_core.errors import DataError

# Small windows so the vol features become known and BOCPD truncates within 120 bars.
BOCPD = BocpdParams(max_run_length=30, window=3, beta0=1e-4)
VOL = VolRegimeParams(vol_window=5, short_window=2, lookback=20, trend_window=10)


def _closes(n: int = 120, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = np.concatenate([rng.normal(0, 0.01, n // 2), rng.normal(0.002, 0.04, n - n // 2)])
    return 100 * np.exp(np.cumsum(r))


def _reading(s: RegimeState | None) -> str:
    """A reading as text, NaN-aware (attrs' == says NaN != NaN)."""
    return "None" if s is None else repr(s)


def _tracker() -> RegimeTracker:
    return RegimeTracker(BOCPD, VOL)


def _uninterrupted(closes: np.ndarray) -> list[str]:
    t = _tracker()
    return [_reading(t.update(i, float(c))) for i, c in enumerate(closes)]


@pytest.mark.parametrize("cut", [0, 1, 2, 7, 25, 31, 33, 60, 119])
def test_a_restart_mid_stream_gives_identical_next_readings(cut: int) -> None:
    """Restart at ``cut`` (before any bar, after one, in the vol warm-up, around the
    BOCPD truncation at 31 returns, late): a fresh tracker from the JSON state reads
    every later bar exactly as the uninterrupted run, and has its last reading."""
    closes = _closes()
    expected = _uninterrupted(closes)
    before = _tracker()
    for i, c in enumerate(closes[:cut]):
        before.update(i, float(c))
    text = json.dumps(before.get_state(), allow_nan=False)  # strict JSON: NaNs are null
    after = _tracker()
    after.set_state(json.loads(text))
    assert _reading(after.last) == (expected[cut - 1] if cut else "None")
    assert json.dumps(after.get_state(), allow_nan=False) == text
    got = [_reading(after.update(i, float(c))) for i, c in enumerate(closes) if i >= cut]
    assert got == expected[cut:]


def test_a_state_saved_without_last_still_loads() -> None:
    """A checkpoint written before ``last`` was kept: it loads, with no reading until the
    next bar, and the next readings are the uninterrupted run's."""
    closes = _closes()
    expected = _uninterrupted(closes)
    t = _tracker()
    for i, c in enumerate(closes[:50]):
        t.update(i, float(c))
    state = t.get_state()
    del state["last"]
    restored = _tracker()
    restored.set_state(json.loads(json.dumps(state)))
    assert restored.last is None
    assert [_reading(restored.update(i, float(c))) for i, c in enumerate(closes)
            if i >= 50] == expected[50:]


def test_a_state_whose_unknowns_are_nan_loads() -> None:
    """json.dumps without allow_nan=False writes NaN; json.loads reads it back."""
    t = _tracker()
    for i, c in enumerate(_closes()[:3]):
        t.update(i, float(c))
    state = t.get_state()
    state["last"]["realised_vol"] = float("nan")  # type: ignore[index]
    restored = _tracker()
    restored.set_state(json.loads(json.dumps(state)))
    assert restored.last is not None and math.isnan(restored.last.realised_vol)


def _trained_state() -> tuple[RegimeTracker, dict]:
    t = _tracker()
    for i, c in enumerate(_closes()[:60]):
        t.update(i, float(c))
    return t, json.loads(json.dumps(t.get_state()))


def _set(path: str, value: object):
    def change(state: dict) -> None:
        *parents, leaf = path.split(".")
        node = state
        for p in parents:
            node = node[p]
        node[leaf] = value
    return change


def _drop(path: str):
    def change(state: dict) -> None:
        *parents, leaf = path.split(".")
        node = state
        for p in parents:
            node = node[p]
        del node[leaf]
    return change


DAMAGE = [
    (_set("closes", None), "tracker.closes"),
    (_set("closes", [100.0, -1.0]), "tracker.closes"),
    (_set("closes", [100.0, float("nan")]), "tracker.closes"),
    (_set("closes", [100.0, "101"]), "tracker.closes"),
    (_set("closes", [100.0, True]), "tracker.closes"),
    (_set("closes", [10 ** 400]), "tracker.closes"),
    (_set("closes", []), "bocpd.n_seen"),  # 59 returns, no closes: not the same tracker
    (_drop("closes"), "tracker.closes"),
    (_drop("bocpd"), "tracker.bocpd"),
    (_set("bocpd", [1, 2]), "state bocpd"),
    (_drop("bocpd.probs"), "bocpd.probs"),
    (_set("bocpd.n_active", "31"), "bocpd.n_active"),
    (_set("bocpd.n_active", 5), "bocpd.n_active"),
    (_set("bocpd.n_active", True), "bocpd.n_active"),
    (_set("bocpd.n_seen", -1), "bocpd.n_seen"),
    (_set("bocpd.n_seen", 3), "bocpd.n_active"),  # 3 returns cannot fill 31 cells
    (_set("bocpd.n_seen", 50.0), "bocpd.n_seen"),
    (_set("bocpd.probs", [float("nan")] * 31), "bocpd.probs"),
    (_set("bocpd.probs", [0.0] * 31), "bocpd.probs"),  # no distribution: 0/0 on the next bar
    (_set("bocpd.probs", [-0.5, 1.5] + [0.0] * 29), "bocpd.probs"),
    (_set("bocpd.probs", [1.0] * 30), "bocpd.probs"),  # one short
    (_set("bocpd.mu", [0.0] * 30 + [float("inf")]), "bocpd.mu"),
    (_set("bocpd.kappa", [0.0] * 31), "bocpd.kappa"),
    (_set("bocpd.alpha", [1.0] * 30 + [-1.0]), "bocpd.alpha"),
    (_set("bocpd.beta", [1e-4] * 32), "bocpd.beta"),
    (_set("last", []), "state last"),
    (_drop("last.regime"), "last.regime"),
    (_set("last.regime", 7), "last.regime"),
    (_set("last.regime", 1.0), "last.regime"),
    (_set("last.ts_ns", "0"), "last.ts_ns"),
    (_set("last.run_length", -2), "last.run_length"),
    (_set("last.vol_spike", 1), "last.vol_spike"),
    (_set("last.p_change", None), "last.p_change"),
    (_set("last.p_change", 1.5), "last.p_change"),
    (_set("last.realised_vol", -0.1), "last.realised_vol"),
    (_set("last.realised_vol", float("inf")), "last.realised_vol"),
    (_set("last.vol_percentile", 2.0), "last.vol_percentile"),
    (_set("last.trend", "up"), "last.trend"),
]


@pytest.mark.parametrize(("change", "field"), DAMAGE)
def test_a_damaged_tracker_state_is_a_data_error_and_changes_nothing(change, field) -> None:
    _, state = _trained_state()
    other, _ = _trained_state()
    for i, c in enumerate(_closes(seed=3)[:40]):  # a different tracker, to be left alone
        other.update(i, float(c))
    before = json.dumps(other.get_state())
    before_last = _reading(other.last)
    detector, closes = other.detector, other.closes
    change(state)
    with pytest.raises(DataError, match=rf"^regime .*{re.escape(field)}\b"):
        other.set_state(state)
    assert json.dumps(other.get_state()) == before
    assert _reading(other.last) == before_last
    assert other.detector is detector and other.closes is closes


def test_no_closes_with_a_reading_is_refused() -> None:
    fresh = _tracker()
    state = fresh.get_state()
    _, trained = _trained_state()
    state["last"] = trained["last"]
    with pytest.raises(DataError, match="last"):
        fresh.set_state(state)
    assert fresh.last is None


@pytest.mark.parametrize("state", [None, [], "x", 3])
def test_a_state_that_is_not_a_dict_is_refused(state) -> None:
    with pytest.raises(DataError, match="regime state tracker must be the dict"):
        _tracker().set_state(state)


def test_damage_is_also_a_value_error_for_callers_that_caught_one() -> None:
    """Callers (the overnight strategy) wrapped set_state against the ValueError /
    KeyError it leaked; theirs still catches it."""
    with pytest.raises(ValueError, match="closes"):
        _tracker().set_state({"closes": ["x"], "bocpd": {}})


def test_online_bocpd_set_state_is_all_or_nothing() -> None:
    """Before: probs were written into the live arrays, then a short ``mu`` raised a
    numpy broadcast error, leaving a detector with new probs and old statistics."""
    d = OnlineBocpd(BOCPD)
    rng = np.random.default_rng(1)
    d.update_many(rng.normal(0, 0.01, 10))
    before = d.get_state()
    arrays = [a.copy() for a in (d.probs, d.mu, d.kappa, d.alpha, d.beta)]
    bad = copy.deepcopy(before)
    bad["probs"] = [1.0] + [0.0] * 10
    bad["mu"] = [0.0] * 3
    with pytest.raises(DataError, match=r"bocpd\.mu"):
        d.set_state(bad)
    assert d.get_state() == before
    for kept, now in zip(arrays, (d.probs, d.mu, d.kappa, d.alpha, d.beta), strict=True):
        np.testing.assert_array_equal(kept, now)


def test_online_bocpd_restart_equals_uninterrupted() -> None:
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(0, 0.01, 50), rng.normal(0.01, 0.03, 50)])
    whole = OnlineBocpd(BOCPD).update_many(x)
    first = OnlineBocpd(BOCPD)
    first.update_many(x[:40])
    second = OnlineBocpd(BOCPD)
    second.set_state(json.loads(json.dumps(first.get_state())))
    rest = second.update_many(x[40:])
    np.testing.assert_array_equal(rest.p_change, whole.p_change[40:])
    np.testing.assert_array_equal(rest.map_run_length, whole.map_run_length[40:])


def test_a_state_of_another_max_run_length_is_refused() -> None:
    d = OnlineBocpd(BOCPD)
    d.update_many(np.zeros(40))
    with pytest.raises(DataError, match="n_active"):
        OnlineBocpd(BocpdParams(max_run_length=10, window=3)).set_state(d.get_state())
