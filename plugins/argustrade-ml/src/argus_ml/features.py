"""The feature registry: named, versioned features, one definition for both paths.

A feature is a function of a *window* of the ``lookback`` bars ending at bar
``t - lag`` (``lag = 0``: the decision bar itself).  The function receives every bar
column as a 2-d array of windows, shape ``(n, lookback)``, and returns ``n`` values.
The batch path hands it all windows of a history at once (a strided view); the
incremental path (:class:`FeatureEngine`, fed bar by bar on the event stream) hands it
the one window ending now, shape ``(1, lookback)``.  Same function, same arithmetic per
row, so the two agree to float precision (``tests/test_ml_features.py``).

Every value is stamped with the time it became known: the close time of the newest
bar its window read.  A row is usable at decision time ``ts_ns[t]`` only if every
stamp is ``<= ts_ns[t]``; :mod:`argus_ml.leakage` checks exactly that, and more.
A definition that changes meaning gets a new ``version``; datasets and models record
``name@version`` so a model never meets features it was not trained on.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence

import attrs
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from argus_core import Bar, DataError
from argus_ml.bars import COLUMNS, BarColumns

#: windows by column name -> one value per window
FeatureFn = Callable[[Mapping[str, np.ndarray]], np.ndarray]


@attrs.frozen
class Feature:
    """One named, versioned feature definition: ``fn`` over the ``lookback`` bars ending
    ``lag`` bars before the decision bar.  A negative ``lag`` reads the future; the
    registry accepts it only so that the leakage check can be shown to catch it."""

    name: str
    version: int
    lookback: int = attrs.field(validator=attrs.validators.ge(1))
    fn: FeatureFn = attrs.field(eq=False, repr=False)
    description: str = ""
    lag: int = 0

    @property
    def key(self) -> str:
        """``name@version``, how datasets and models name it."""
        return f"{self.name}@{self.version}"

    @property
    def warmup(self) -> int:
        """Bars of history needed before the first value."""
        return self.lookback + max(self.lag, 0)


@attrs.frozen
class FeatureMatrix:
    """Feature values of a bar history: ``values[t, j]`` for decision bar ``t`` and
    feature ``j`` (NaN in warm-up), ``known_ts_ns[t, j]`` when it became known (-1 for
    NaN), ``ts_ns[t]`` the decision time."""

    keys: tuple[str, ...]
    ts_ns: np.ndarray
    values: np.ndarray
    known_ts_ns: np.ndarray


def _compute(feature: Feature, windows: Mapping[str, np.ndarray]) -> np.ndarray:
    out = np.asarray(feature.fn(windows), dtype=np.float64)
    n = next(iter(windows.values())).shape[0]
    if out.shape != (n,):
        raise DataError(f"feature {feature.key} returned shape {out.shape}, expected ({n},)")
    return out


def batch_feature(feature: Feature, bars: BarColumns) -> tuple[np.ndarray, np.ndarray]:
    """Values and known-time stamps of one feature at every bar of ``bars``."""
    n, lb, lag = len(bars), feature.lookback, feature.lag
    values = np.full(n, np.nan)
    known = np.full(n, -1, dtype=np.int64)
    if n < lb:
        return values, known
    windows = {c: sliding_window_view(bars.column(c), lb) for c in COLUMNS}
    computed = _compute(feature, windows)  # computed[i]: window ending at bar i + lb - 1
    end = np.arange(lb - 1, n)  # the bar each window ends on
    target = end + lag  # the decision bar that window serves
    ok = (target >= 0) & (target < n)
    values[target[ok]] = computed[ok]
    known[target[ok]] = bars.ts_ns[end[ok]]
    known[np.isnan(values)] = -1
    return values, known


class FeatureSet:
    """An ordered set of features (a model's inputs); ``spec`` names them with versions."""

    def __init__(self, features: Iterable[Feature]) -> None:
        self.features: tuple[Feature, ...] = tuple(features)
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise DataError(f"feature set names {dupes} more than once")

    @property
    def keys(self) -> tuple[str, ...]:
        """``name@version`` of each feature, in order."""
        return tuple(f.key for f in self.features)

    @property
    def warmup(self) -> int:
        """Bars needed before every feature has a value."""
        return max((f.warmup for f in self.features), default=0)

    def spec(self) -> list[dict[str, object]]:
        """JSON-able description: name, version, lookback, lag of each feature."""
        return [{"name": f.name, "version": f.version, "lookback": f.lookback, "lag": f.lag}
                for f in self.features]

    def spec_hash(self) -> str:
        """sha256 of :meth:`spec` (canonical JSON)."""
        blob = json.dumps(self.spec(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def batch(self, bars: BarColumns) -> FeatureMatrix:
        """Every feature at every bar of a history."""
        n, k = len(bars), len(self.features)
        values = np.full((n, k), np.nan)
        known = np.full((n, k), -1, dtype=np.int64)
        for j, f in enumerate(self.features):
            values[:, j], known[:, j] = batch_feature(f, bars)
        return FeatureMatrix(self.keys, bars.ts_ns.copy(), values, known)


@attrs.frozen
class FeatureRow:
    """The features of one decision bar from the incremental path."""

    ts_ns: int
    values: tuple[float, ...]
    known_ts_ns: tuple[int, ...]

    @property
    def complete(self) -> bool:
        """Whether every feature has a value (warm-up is over)."""
        return not any(np.isnan(v) for v in self.values)


class FeatureEngine:
    """Incremental features of one instrument: feed bars in time order with :meth:`update`;
    keeps only the last ``warmup`` bars.  A negative-lag (look-ahead) feature cannot be
    computed incrementally and is NaN here."""

    def __init__(self, features: FeatureSet) -> None:
        self.features = features
        size = max(features.warmup, 1)
        self.window: deque[tuple[float, ...]] = deque(maxlen=size)  # open..volume
        self.stamps: deque[int] = deque(maxlen=size)  # close times (exact integers)
        self.last_ts_ns: int | None = None

    def update(self, bar: Bar) -> FeatureRow:
        """Add ``bar`` (the newest) and return the features known at its close."""
        if self.last_ts_ns is not None and bar.ts_ns <= self.last_ts_ns:
            raise DataError(f"FeatureEngine: bar at {bar.ts_ns} is not after {self.last_ts_ns}")
        self.last_ts_ns = bar.ts_ns
        self.window.append((bar.open, bar.high, bar.low, bar.close, bar.volume))
        self.stamps.append(bar.ts_ns)
        rows = np.array(self.window, dtype=np.float64)
        stamps = np.array(self.stamps, dtype=np.int64)
        values: list[float] = []
        known: list[int] = []
        for f in self.features.features:
            end = len(rows) - 1 - f.lag  # index of the window's last bar
            if f.lag < 0 or end - f.lookback + 1 < 0:
                values.append(float("nan"))
                known.append(-1)
                continue
            lo = end - f.lookback + 1
            windows: dict[str, np.ndarray] = {
                c: rows[lo:end + 1, i][None, :] for i, c in enumerate(COLUMNS[1:])}
            windows["ts_ns"] = stamps[lo:end + 1][None, :]
            v = float(_compute(f, windows)[0])
            values.append(v)
            known.append(-1 if np.isnan(v) else int(stamps[end]))
        return FeatureRow(bar.ts_ns, tuple(values), tuple(known))

    def get_state(self) -> dict[str, object]:
        """JSON-able state (the bars in the window) for checkpoints."""
        return {"window": [list(r) for r in self.window], "stamps": list(self.stamps),
                "last_ts_ns": self.last_ts_ns}

    def set_state(self, state: Mapping[str, object]) -> None:
        """Restore :meth:`get_state`."""
        self.window.clear()
        self.stamps.clear()
        for r in state.get("window", []):  # type: ignore[attr-defined]
            self.window.append(tuple(float(x) for x in r))
        for t in state.get("stamps", []):  # type: ignore[attr-defined]
            self.stamps.append(int(t))
        last = state.get("last_ts_ns")
        self.last_ts_ns = None if last is None else int(last)  # type: ignore[call-overload]


# -- the built-in definitions ------------------------------------------------------------

def _log_return(k: int) -> FeatureFn:
    def fn(w: Mapping[str, np.ndarray]) -> np.ndarray:
        c = w["close"]
        return np.log(c[:, -1] / c[:, 0])
    return fn


def _realised_vol(w: Mapping[str, np.ndarray]) -> np.ndarray:
    r = np.diff(np.log(w["close"]), axis=1)
    return r.std(axis=1, ddof=1)


def _zscore(w: Mapping[str, np.ndarray]) -> np.ndarray:
    c = w["close"]
    sd = c.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (c[:, -1] - c.mean(axis=1)) / sd
    return np.where(sd > 0, z, 0.0)


#: Closes whose standard deviation is at most this share of their largest are flat.
FLAT_TOLERANCE = 1e-9


def _zscore_flat(w: Mapping[str, np.ndarray]) -> np.ndarray:
    """Version 2 of ``zscore_24``: 0 when the closes are flat up to rounding.  Version 1
    tests ``sd > 0``, but the std of 24 equal closes is not always 0 (for ~15% of price
    levels it is ~1e-13), and then z is rounding noise divided by rounding noise: any
    value, e.g. -4.8, from a market whose price did not move.  Version 1 stays, so models
    trained on it reload with the values they were trained on."""
    c = w["close"]
    sd = c.std(axis=1, ddof=1)
    flat = sd <= FLAT_TOLERANCE * np.abs(c).max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (c[:, -1] - c.mean(axis=1)) / sd
    return np.where(flat, 0.0, z)


def _range(w: Mapping[str, np.ndarray]) -> np.ndarray:
    return (w["high"][:, -1] - w["low"][:, -1]) / w["close"][:, -1]


def _volume_ratio(w: Mapping[str, np.ndarray]) -> np.ndarray:
    v = w["volume"]
    mean = v.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = v[:, -1] / mean
    return np.where(mean > 0, ratio, 1.0)


def _hour_angle(fn: Callable[[np.ndarray], np.ndarray]) -> FeatureFn:
    def f(w: Mapping[str, np.ndarray]) -> np.ndarray:
        hours = (w["ts_ns"][:, -1].astype(np.int64) // 3_600_000_000_000) % 24
        return fn(2 * np.pi * hours / 24.0)
    return f


def builtin_features() -> list[Feature]:
    """The features this plugin ships (version 1 of each; ``zscore_24`` also version 2)."""
    return [
        Feature("ret_1", 1, 2, _log_return(1), "log return of the last bar"),
        Feature("ret_4", 1, 5, _log_return(4), "log return over the last 4 bars"),
        Feature("ret_24", 1, 25, _log_return(24), "log return over the last 24 bars"),
        Feature("vol_24", 1, 25, _realised_vol, "stdev of the last 24 bar log returns"),
        Feature("zscore_24", 1, 24, _zscore, "close vs mean of last 24 closes, in stdevs"),
        Feature("zscore_24", 2, 24, _zscore_flat,
                "close vs mean of last 24 closes, in stdevs; 0 when flat up to rounding"),
        Feature("range_1", 1, 1, _range, "(high - low) / close of the last bar"),
        Feature("volume_ratio_24", 1, 24, _volume_ratio, "last volume / mean of last 24"),
        Feature("hour_sin", 1, 1, _hour_angle(np.sin), "sin of the bar's UTC hour"),
        Feature("hour_cos", 1, 1, _hour_angle(np.cos), "cos of the bar's UTC hour"),
    ]


class FeatureRegistry:
    """Every known feature definition by ``name@version`` (the built-ins plus any
    registered); :meth:`select` builds a :class:`FeatureSet` from names."""

    def __init__(self, features: Iterable[Feature] = ()) -> None:
        self._by_key: dict[str, Feature] = {}
        for f in features:
            self.register(f)

    @classmethod
    def default(cls) -> FeatureRegistry:
        """A registry holding :func:`builtin_features`."""
        return cls(builtin_features())

    def register(self, feature: Feature) -> None:
        """Add a definition; the same ``name@version`` twice is an error."""
        if feature.key in self._by_key:
            raise DataError(f"feature {feature.key} is already registered; bump its version")
        self._by_key[feature.key] = feature

    def latest(self, name: str) -> Feature:
        """The highest version of ``name``."""
        found = [f for f in self._by_key.values() if f.name == name]
        if not found:
            raise DataError(f"no feature named {name!r}; known: {sorted(self.names())}")
        return max(found, key=lambda f: f.version)

    def get(self, key: str) -> Feature:
        """``name@version`` (or a bare name: its latest version)."""
        if "@" not in key:
            return self.latest(key)
        if key not in self._by_key:
            raise DataError(f"no feature {key}; known: {sorted(self._by_key)}")
        return self._by_key[key]

    def names(self) -> set[str]:
        """Every feature name."""
        return {f.name for f in self._by_key.values()}

    def all(self) -> list[Feature]:
        """Every definition, sorted by key."""
        return [self._by_key[k] for k in sorted(self._by_key)]

    def select(self, keys: Sequence[str] | None = None) -> FeatureSet:
        """A feature set of ``keys`` (default: the latest version of every name, sorted)."""
        if keys is None:
            return FeatureSet(self.latest(n) for n in sorted(self.names()))
        return FeatureSet(self.get(k) for k in keys)
