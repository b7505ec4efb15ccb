"""Third held-out red team of the probability layer (look-ahead, hostile files, units).

Found:

* The ``updown_replay`` venue lists every window before the first bar (the runner adds
  all instruments at start-up), and each contract's ``meta["reference_close"]`` was the
  close of its opening bar: the next window's reference close is this window's outcome,
  so any strategy reading ``ctx.market.instruments`` knew every outcome of the run (498
  of 498 read right on the bundled bars).  Nothing read the field; it is gone, and a
  listing no longer depends on any price.
* A model registered before ``trained_on`` estimated its training end as the last CV
  test row plus ``horizon x bar_seconds``; after a gap in the bars the label ended later,
  and the bars in between got forecasts from a model that had seen their outcomes.  The
  forecaster now counts ``horizon`` bars after the last training row as it sees them.
* Model files: no size cap (a 300 MB file read whole, about 900 MB of memory to refuse
  it) and deep JSON nesting raised ``RecursionError``.  Now a file or registry row above
  ``MAX_MODEL_BYTES`` is refused before it is read, and nesting is a ``DataError``.  A
  pickle is refused as "not JSON" and never unpickled (kept as a guard).
* A dataset with non-finite features ended in scikit-learn's ``ValueError``; one whose
  times are out of order or duplicated, or whose labels were known at or before their
  decision time, trained silently with a wrong purge; one stamped in seconds trained a
  model whose ``trained_on`` (seconds) made every later bar look out of sample.  A
  :class:`Dataset` now refuses each, naming the row.
* A model file whose ``trained_on`` is in seconds (or its CV report's) against bars in
  nanoseconds: every bar counted as after training, so no in-sample bar was withheld.
  Now a ``DataError`` at the first bar naming both clocks.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from argus_ml import modelfile
from argus_ml.config import MLSettings
from argus_ml.dataset import Dataset
from argus_ml.forecaster import MLForecaster
from argus_ml.labels import LabelSpec
from argus_ml.modelfile import load_model
from argus_ml.venue import UpDownReplayVenue
from ml_testdata import OneModelRegistry

from argus_core import Bar, DataError, MarketState

SPOT = "kraken:XBT/USD"
H = 3600 * 10**9
T0 = 1_600_000_000 * 10**9  # a real clock, in ns


def _doc(meta: dict[str, Any]) -> dict[str, Any]:
    return {"format": "argus-ml-model/1", "features": ["ret_1@1"],
            "steps": [{"kind": "logistic", "coef": [1.0], "intercept": 0.0}],
            "calibrator": {"kind": "none"}, "meta": meta}


def _registry(doc: dict[str, Any], report: dict[str, Any] | None = None) -> OneModelRegistry:
    """A registry holding the model file ``doc`` (loaded as the registry loads it)."""
    return OneModelRegistry(load_model(json.dumps(doc).encode()), report)


def _feed(f: MLForecaster, closes_at: list[int]) -> dict[int, bool]:
    """Whether the bar closing at each of ``closes_at`` (ns) got a forecast."""
    market, out = MarketState(), {}
    for i, ts in enumerate(closes_at):
        bar = Bar(SPOT, ts, 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i, 10.0)
        market.apply(bar)
        out[ts] = f.forecast(SPOT, market, ts) is not None
    return out


def _csv(path: Path, closes: list[float]) -> Path:
    rows = [f"{1_700_000_000 + 3600 * i},{c},{c + 1},{c - 1},{c},5.0,3"
            for i, c in enumerate(closes)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_the_venues_listing_reveals_no_price_of_the_run(tmp_path: Path) -> None:
    """Two files alike up to their first bar, different after it: what the venue lists
    before the first bar must be the same.  Before: ``meta["reference_close"]`` held each
    window's opening close, so the listing gave every future close (and every outcome)."""
    listed = []
    for k, closes in enumerate(([100.0, 101.0, 99.0, 99.0, 105.0, 104.0, 103.0],
                                [100.0, 90.0, 120.0, 80.0, 130.0, 70.0, 140.0])):
        venue = UpDownReplayVenue(MLSettings(bars_csv=_csv(tmp_path / f"{k}.csv", closes),
                                             window_bars=2))
        listed.append([(i.id, i.kind, dict(i.meta)) for i in asyncio.run(venue.instruments())])
    assert listed[0] == listed[1]


def test_an_older_models_training_end_counts_bars_across_a_gap() -> None:
    """A model without ``trained_on``, horizon 3, last training row the bar closing at
    20h; the data then has no bars for hours 21-25.  Its last label was known at the third
    bar after 20h (28h).  Before: the estimate 20h + 3h gave forecasts at 26h and 27h."""
    report = {"folds": [{"test_end_ts_ns": T0 + 20 * H}]}
    f = MLForecaster(MLSettings(model_id="m1"), registry=_registry(  # type: ignore[arg-type]
        _doc({"label": {"kind": "up", "horizon_bars": 3}}), report))
    hours = [*range(1, 21), *range(26, 32)]
    got = _feed(f, [T0 + h * H for h in hours])
    assert [h for h in hours if got[T0 + h * H]] == [28, 29, 30, 31]
    # the count survives a checkpoint
    g = MLForecaster(MLSettings(model_id="m1"), registry=f.registry)
    g.set_state(f.get_state())
    assert _feed(g, [T0 + 32 * H]) == {T0 + 32 * H: True}


@pytest.mark.parametrize("what", ["file", "registry row"])
def test_a_model_larger_than_the_cap_is_refused_before_it_is_read(
        what: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: any size was read whole (a 300 MB file: ~900 MB of memory to refuse it)."""
    from argus_ml.registry import ModelRegistry, open_registry

    small = load_model(json.dumps(_doc({"label": {"kind": "up"}})).encode())
    monkeypatch.setattr(modelfile, "MAX_MODEL_BYTES", 100, raising=False)
    if what == "file":
        path = tmp_path / "model.json"
        modelfile.save_model(small, path)
        with pytest.raises(DataError, match=r"model\.json.*bytes"):
            load_model(path)
    else:
        reg = ModelRegistry(open_registry(tmp_path / "reg.db"))
        model_id = reg.register(small, {}, name="x", dataset_hash="", source_sha256="",
                                code_version="")
        with pytest.raises(DataError, match=f"{model_id}.*bytes"):
            reg.load(model_id)


class _Bomb:
    """Unpickling this writes a marker file: proof that a pickle was run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "unpickled"))


@pytest.mark.parametrize("kind", ["deep nesting", "pickle"])
def test_hostile_model_files_are_data_errors_and_never_run(kind: str, tmp_path: Path) -> None:
    """Before: 100,000 nested lists raised RecursionError (a traceback), or crashed the
    process where an import had raised the recursion limit (py_ecc, which the Polymarket
    venue's signing imports, sets it to 100,000: a C stack overflow, seen in the suite)."""
    marker = tmp_path / "ran"
    depth = max(100_000, 2 * sys.getrecursionlimit())  # deeper than Python's limit
    data = (b"[" * depth + b"]" * depth if kind == "deep nesting"
            else pickle.dumps(_Bomb(marker)))
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    with pytest.raises(DataError, match="model file"):
        load_model(path)
    assert not marker.exists()


def _dataset(**change: Any) -> Dataset:
    n = 50
    ts = T0 + np.arange(1, n + 1, dtype=np.int64) * H
    cols: dict[str, Any] = {"ts_ns": ts, "X": np.zeros((n, 1)), "y": np.arange(n) % 2.0,
                            "forward_return": np.zeros(n), "label_end_ts_ns": ts + H}
    for key, edit in change.items():
        cols[key] = edit(cols[key].copy())
    return Dataset(("ret_1@1",), LabelSpec("up", 1), **cols)


def _at(i: int, v: Any) -> Any:
    def edit(a: np.ndarray) -> np.ndarray:
        a[i] = v
        return a
    return edit


@pytest.mark.parametrize(("change", "says"), [
    ({"X": _at(7, np.inf)}, "row 7.*not finite"),
    ({"X": _at(7, np.nan)}, "row 7.*not finite"),
    ({"ts_ns": _at(7, T0 + 7 * H)}, "row 7.*not after"),  # the same time as row 6
    ({"ts_ns": _at(7, T0 + 5 * H)}, "row 7.*not after"),  # out of order
    ({"label_end_ts_ns": _at(7, T0 + 8 * H)}, "row 7.*label.*not after"),  # = its decision
    ({"y": _at(7, 0.5)}, "row 7.*0 or 1"),
    ({"ts_ns": lambda a: a // 10**9, "label_end_ts_ns": lambda a: a // 10**9},
     "nanoseconds"),
])
def test_a_dataset_that_would_train_wrong_is_refused(change: dict[str, Any], says: str
                                                     ) -> None:
    """Before: non-finite features ended in scikit-learn's ValueError; the rest trained
    silently (a wrong purge, or a training end in seconds)."""
    _dataset()  # the unchanged rows are fine
    with pytest.raises(DataError, match=says):
        _dataset(**change)


@pytest.mark.parametrize("where", ["trained_on", "cv report"])
def test_a_training_end_in_another_clock_unit_is_refused(where: str) -> None:
    """A model whose training end is in seconds, bars in nanoseconds.  Before: every bar
    counted as after training, so forecasts came on the bars the model was fitted on."""
    end_s = T0 // 10**9 + 20 * 3600
    meta: dict[str, Any] = {"label": {"kind": "up", "horizon_bars": 1}}
    report = None
    if where == "trained_on":
        meta["trained_on"] = {"first_ts_ns": end_s - 3600 * 10, "last_ts_ns": end_s - 3600,
                              "label_end_ts_ns": end_s}
    else:
        report = {"folds": [{"test_end_ts_ns": end_s}]}
    f = MLForecaster(MLSettings(model_id="m1"),
                     registry=_registry(_doc(meta), report))  # type: ignore[arg-type]
    with pytest.raises(DataError, match="nanoseconds"):
        _feed(f, [T0 + h * H for h in range(1, 5)])
