"""Streaming indicators: one bar in, the value at that bar out (``None`` while warming up).

Each class does, bar by bar, exactly the arithmetic of the batch function of the same
name, so ``[s.update(b) for b in bars]`` equals the batch array (``None`` where it has
NaN).  A bar with a non-finite input is ignored (``None``, state unchanged), as the batch
functions skip such rows.

``get_state()`` returns a JSON-able dict (floats survive ``json`` exactly); an indicator
built with the same parameters and given it by ``set_state()`` continues as if never
interrupted, so a strategy that keeps indicators can put their states in its own
``get_state()`` and survive checkpoints and hot-swaps::

    def get_state(self):
        return {"rsi": self.rsi.get_state()}

    def set_state(self, state):
        self.rsi.set_state(state["rsi"])
"""

from __future__ import annotations

import math
import operator
from collections import deque
from typing import Any, NamedTuple, Protocol

from argus_core import ConfigError, DataError
from argus_indicators import _kernels
from argus_indicators.batch import DAY_NS, as_float, check_number, check_offset, check_period


class BarLike(Protocol):
    """What the streaming classes read from a bar; :class:`argus_core.Bar` is one."""

    @property
    def ts_ns(self) -> int: ...
    @property
    def high(self) -> float: ...
    @property
    def low(self) -> float: ...
    @property
    def close(self) -> float: ...
    @property
    def volume(self) -> float: ...


class MACDValue(NamedTuple):
    """One bar's MACD line, signal and histogram."""

    macd: float
    signal: float
    histogram: float


class BollingerValue(NamedTuple):
    """One bar's middle, upper and lower Bollinger band."""

    middle: float
    upper: float
    lower: float


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _whole_ns(ts_ns: Any) -> int:
    """A bar's ``ts_ns`` as a Python int (numpy integers included; JSON-able state)."""
    try:
        return operator.index(ts_ns)
    except TypeError:
        raise DataError(f"vwap: ts_ns must be whole nanoseconds, got {ts_ns!r}") from None


class _State:
    """Reads one saved state's fields, each checked for type and range, so that a damaged
    state is a :class:`DataError` naming the indicator and the field (not a KeyError or
    TypeError from deep inside, nor a state taken that never warms up)."""

    def __init__(self, kind: str, state: dict[str, Any]) -> None:
        self.kind, self.state = kind, state

    def _get(self, key: str) -> Any:
        if key not in self.state:
            raise DataError(f"{self.kind}: state has no {key!r}; pass the dict that "
                            f"get_state() returned")
        return self.state[key]

    def bad(self, key: str, wanted: str) -> DataError:
        return DataError(f"{self.kind}: state field {key!r} must be {wanted}, got "
                         f"{self.state.get(key)!r}")

    def whole(self, key: str, low: int | None, high: int | None = None, *,
              optional: bool = False) -> int | None:
        value = self._get(key)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) \
                or (low is not None and value < low) or (high is not None and value > high):
            span = f" from {low} to {high}" if low is not None and high is not None else ""
            raise self.bad(key, f"an integer{span}" + (" or null" if optional else ""))
        return value

    def count(self, key: str, high: int) -> int:
        value = self.whole(key, 0, high)
        assert value is not None  # not optional
        return value

    def real(self, key: str, *, low: float | None = None, above: bool = False) -> float:
        value = self.maybe_real(key, low=low, above=above, optional=False)
        assert value is not None  # not optional
        return value

    def maybe_real(self, key: str, *, low: float | None = None, above: bool = False,
                   optional: bool = True) -> float | None:
        value = self._get(key)
        if value is None and optional:
            return None
        if not _is_real(value) or (low is not None and (value <= low if above
                                                        else value < low)):
            bound = "" if low is None else f" {'>' if above else '>='} {low}"
            raise self.bad(key, f"a finite number{bound}" + (" or null" if optional else ""))
        return float(value)

    def reals(self, key: str, most: int, *, positive: bool = False) -> list[float]:
        value = self._get(key)
        if not isinstance(value, list) or len(value) > most \
                or not all(_is_real(v) and (v > 0 or not positive) for v in value):
            raise self.bad(key, f"a list of at most {most} finite numbers")
        return [float(v) for v in value]

    def sub(self, key: str) -> dict[str, Any]:
        value = self._get(key)
        if not isinstance(value, dict):
            raise self.bad(key, "a dict (an EMA's state)")
        return value


def _is_real(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) \
        and math.isfinite(value)


class _Indicator:
    """State plumbing shared by the streaming classes: ``kind`` and ``params`` travel in
    the state so a state is never loaded into an indicator it does not belong to."""

    kind = ""

    def _params(self) -> dict[str, Any]:
        raise NotImplementedError

    def _values(self) -> dict[str, Any]:
        raise NotImplementedError

    def _load(self, values: _State) -> None:
        """Check every field, then (only then) replace this indicator's state."""
        raise NotImplementedError

    def get_state(self) -> dict[str, Any]:
        """JSON-able state: hand it to :meth:`set_state` of an indicator with the same
        parameters to continue where this one is."""
        return {"kind": self.kind, "params": self._params(), **self._values()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`get_state` result (after a JSON round trip or not).
        A state that is damaged (a field missing, of the wrong type or out of range) is
        a :class:`DataError` naming the field, and this indicator is left as it was."""
        if not isinstance(state, dict):
            raise DataError(f"{self.kind}: a state is a dict from get_state(), got "
                            f"{type(state).__name__} {state!r:.80}")
        if state.get("kind") != self.kind or state.get("params") != self._params():
            raise DataError(f"{self.kind}: state is for {state.get('kind')} "
                            f"{state.get('params')}, not {self.kind} {self._params()}; "
                            f"build the indicator with the parameters it was saved with")
        self._load(_State(self.kind, state))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


class EMA(_Indicator):
    """Exponential moving average of closes; see :func:`argus_indicators.ema`."""

    kind = "ema"

    def __init__(self, period: int) -> None:
        self.period = check_period("period", period)
        self.alpha = 2.0 / (self.period + 1.0)
        self.count = 0
        self.seed_sum = 0.0
        self.value: float | None = None

    def update(self, bar: BarLike) -> float | None:
        """Feed one bar; its close's EMA, or None while warming up."""
        return self.update_value(bar.close)

    def update_value(self, x: float) -> float | None:
        """Feed one number (a close, or any series such as the MACD line)."""
        x = as_float(x, self.kind, "close")  # a numpy float32 would stay float32
        if not math.isfinite(x):
            return None
        if self.value is not None:
            self.value += self.alpha * (x - self.value)
            return self.value
        self.count += 1
        self.seed_sum += x
        if self.count == self.period:
            self.value = self.seed_sum / self.period
        return self.value

    def _params(self) -> dict[str, Any]:
        return {"period": self.period}

    def _values(self) -> dict[str, Any]:
        return {"count": self.count, "seed_sum": self.seed_sum, "value": self.value}

    def _load(self, values: _State) -> None:
        count, seed_sum = values.count("count", self.period), values.real("seed_sum")
        value = values.maybe_real("value")
        if (value is None) != (count < self.period):
            raise values.bad("value", f"null while count < {self.period} and a number "
                                      f"after (count is {count})")
        self.count, self.seed_sum, self.value = count, seed_sum, value


class RSI(_Indicator):
    """Wilder's RSI of closes; see :func:`argus_indicators.rsi`."""

    kind = "rsi"

    def __init__(self, period: int = 14) -> None:
        self.period = check_period("period", period)
        self.prev_close: float | None = None
        self.count = 0  # changes seen while warming up
        self.avg_gain = 0.0  # the sums while warming up, then Wilder's averages
        self.avg_loss = 0.0

    def update(self, bar: BarLike) -> float | None:
        """Feed one bar; RSI at its close, or None while warming up."""
        return self.update_value(bar.close)

    def update_value(self, x: float) -> float | None:
        """Feed one close."""
        x = as_float(x, self.kind, "close")  # numpy scalars: float64, JSON-able state
        if not math.isfinite(x):
            return None
        prev, self.prev_close = self.prev_close, x
        if prev is None:
            return None
        change = x - prev
        gain = change if change > 0.0 else 0.0
        loss = -change if change < 0.0 else 0.0
        n = self.period
        if self.count < n:
            self.count += 1
            self.avg_gain += gain
            self.avg_loss += loss
            if self.count < n:
                return None
            self.avg_gain /= n
            self.avg_loss /= n
        else:
            self.avg_gain = (self.avg_gain * (n - 1) + gain) / n
            self.avg_loss = (self.avg_loss * (n - 1) + loss) / n
        total = self.avg_gain + self.avg_loss
        return 50.0 if total == 0.0 else 100.0 * self.avg_gain / total

    def _params(self) -> dict[str, Any]:
        return {"period": self.period}

    def _values(self) -> dict[str, Any]:
        return {"prev_close": self.prev_close, "count": self.count,
                "avg_gain": self.avg_gain, "avg_loss": self.avg_loss}

    def _load(self, values: _State) -> None:
        prev, count = values.maybe_real("prev_close"), values.count("count", self.period)
        if prev is None and count:
            raise values.bad("prev_close", f"a number once changes were counted ({count})")
        gain, loss = values.real("avg_gain", low=0.0), values.real("avg_loss", low=0.0)
        self.prev_close, self.count, self.avg_gain, self.avg_loss = prev, count, gain, loss


class MACD(_Indicator):
    """MACD of closes; see :func:`argus_indicators.macd`.  ``update`` returns None until
    the signal line is defined (bar ``slow + signal - 1``), even though the MACD line
    itself is defined from bar ``slow``."""

    kind = "macd"

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        self.fast, self.slow = EMA(fast), EMA(slow)
        self.signal = EMA(signal)
        if self.fast.period >= self.slow.period:
            raise ConfigError(f"MACD fast period ({fast}) must be shorter than slow ({slow})")

    def update(self, bar: BarLike) -> MACDValue | None:
        """Feed one bar; (line, signal, histogram), or None while warming up."""
        return self.update_value(bar.close)

    def update_value(self, x: float) -> MACDValue | None:
        """Feed one close."""
        fast, slow = self.fast.update_value(x), self.slow.update_value(x)
        if fast is None or slow is None:
            return None
        line = fast - slow
        signal = self.signal.update_value(line)
        return None if signal is None else MACDValue(line, signal, line - signal)

    def _params(self) -> dict[str, Any]:
        return {"fast": self.fast.period, "slow": self.slow.period,
                "signal": self.signal.period}

    def _values(self) -> dict[str, Any]:
        return {"fast_ema": self.fast.get_state(), "slow_ema": self.slow.get_state(),
                "signal_ema": self.signal.get_state()}

    def _load(self, values: _State) -> None:
        # load into new EMAs first, so a damaged signal state leaves fast and slow alone
        loaded = []
        for key, ema in (("fast_ema", self.fast), ("slow_ema", self.slow),
                         ("signal_ema", self.signal)):
            fresh = EMA(ema.period)
            try:
                fresh.set_state(values.sub(key))
            except DataError as exc:
                raise DataError(f"macd: state field {key!r}: {exc}") from None
            loaded.append(fresh)
        self.fast, self.slow, self.signal = loaded


class BollingerBands(_Indicator):
    """Bollinger bands of closes; see :func:`argus_indicators.bollinger`."""

    kind = "bollinger"

    def __init__(self, period: int = 20, num_std: float = 2.0) -> None:
        self.period = check_period("period", period)
        self.num_std = check_number("num_std", num_std)
        self.window: deque[float] = deque(maxlen=self.period)

    def update(self, bar: BarLike) -> BollingerValue | None:
        """Feed one bar; (middle, upper, lower), or None while warming up."""
        return self.update_value(bar.close)

    def update_value(self, x: float) -> BollingerValue | None:
        """Feed one close."""
        x = as_float(x, self.kind, "close")  # numpy scalars: float64, JSON-able state
        if not math.isfinite(x):
            return None
        self.window.append(x)
        if len(self.window) < self.period:
            return None
        mean, std = _mean_std(self.window, 0)
        return BollingerValue(mean, mean + self.num_std * std, mean - self.num_std * std)

    def _params(self) -> dict[str, Any]:
        return {"period": self.period, "num_std": self.num_std}

    def _values(self) -> dict[str, Any]:
        return {"window": list(self.window)}

    def _load(self, values: _State) -> None:
        self.window = deque(values.reals("window", self.period), maxlen=self.period)


class ATR(_Indicator):
    """Wilder's average true range; see :func:`argus_indicators.atr`."""

    kind = "atr"

    def __init__(self, period: int = 14) -> None:
        self.period = check_period("period", period)
        self.prev_close: float | None = None
        self.count = 0
        self.value = 0.0  # the sum of true ranges while warming up, then the ATR

    def update(self, bar: BarLike) -> float | None:
        """Feed one bar; the ATR at its close, or None while warming up."""
        high, low, close = (as_float(bar.high, self.kind, "high"),
                            as_float(bar.low, self.kind, "low"),
                            as_float(bar.close, self.kind, "close"))
        if not _finite(high, low, close):
            return None
        if high < low:  # a negative range would drag the average down (as batch refuses)
            raise DataError(f"atr: high {high!r} < low {low!r} at {bar.ts_ns}")
        tr = high - low
        if self.prev_close is not None:
            tr = max(tr, abs(high - self.prev_close), abs(low - self.prev_close))
        self.prev_close = close
        n = self.period
        if self.count < n:
            self.count += 1
            self.value += tr
            if self.count < n:
                return None
            self.value /= n
        else:
            self.value = (self.value * (n - 1) + tr) / n
        return self.value

    def _params(self) -> dict[str, Any]:
        return {"period": self.period}

    def _values(self) -> dict[str, Any]:
        return {"prev_close": self.prev_close, "count": self.count, "value": self.value}

    def _load(self, values: _State) -> None:
        prev, count = values.maybe_real("prev_close"), values.count("count", self.period)
        if (prev is None) != (count == 0):
            raise values.bad("prev_close", f"null before the first bar and a number "
                                           f"after (count is {count})")
        value = values.real("value", low=0.0)
        self.prev_close, self.count, self.value = prev, count, value


class VWAP(_Indicator):
    """Session VWAP of the typical price; see :func:`argus_indicators.vwap` for the
    session rule.  None while the session has had no volume."""

    kind = "vwap"

    def __init__(self, session_offset_ns: int = 0, session_ns: int = DAY_NS) -> None:
        self.session_ns = check_period("session_ns", session_ns)
        self.session_offset_ns = check_offset("session_offset_ns", session_offset_ns)
        self.session: int | None = None
        self.last_ts_ns: int | None = None
        self.price_volume = 0.0
        self.volume = 0.0

    def update(self, bar: BarLike) -> float | None:
        """Feed one bar (``ts_ns`` is its close time); the session VWAP so far."""
        high, low, close = (as_float(bar.high, self.kind, "high"),
                            as_float(bar.low, self.kind, "low"),
                            as_float(bar.close, self.kind, "close"))
        volume = as_float(bar.volume, self.kind, "volume")
        if not _finite(high, low, close, volume):
            return None
        ts_ns = _whole_ns(bar.ts_ns)
        if volume < 0:
            raise DataError(f"vwap: negative volume at {ts_ns}")
        if self.last_ts_ns is not None and ts_ns < self.last_ts_ns:
            raise DataError(f"vwap: bar at {ts_ns} is older than the last one "
                            f"({self.last_ts_ns}); feed bars in time order")
        self.last_ts_ns = ts_ns
        session = (ts_ns - 1 - self.session_offset_ns) // self.session_ns
        if session != self.session:
            self.session, self.price_volume, self.volume = session, 0.0, 0.0
        self.price_volume += (high + low + close) / 3.0 * volume
        self.volume += volume
        return self.price_volume / self.volume if self.volume > 0.0 else None

    def _params(self) -> dict[str, Any]:
        return {"session_offset_ns": self.session_offset_ns, "session_ns": self.session_ns}

    def _values(self) -> dict[str, Any]:
        return {"session": self.session, "last_ts_ns": self.last_ts_ns,
                "price_volume": self.price_volume, "volume": self.volume}

    def _load(self, values: _State) -> None:
        session = values.whole("session", None, optional=True)
        last_ts_ns = values.whole("last_ts_ns", None, optional=True)
        if (session is None) != (last_ts_ns is None):
            raise values.bad("last_ts_ns", "null exactly when session is null")
        if session is not None and last_ts_ns is not None and session != \
                (last_ts_ns - 1 - self.session_offset_ns) // self.session_ns:
            raise values.bad("session", f"the session of last_ts_ns ({last_ts_ns})")
        price_volume, volume = values.real("price_volume"), values.real("volume", low=0.0)
        self.session, self.last_ts_ns = session, last_ts_ns
        self.price_volume, self.volume = price_volume, volume


class RollingVolatility(_Indicator):
    """Rolling volatility of log returns; see :func:`argus_indicators.rolling_volatility`."""

    kind = "rolling_volatility"

    def __init__(self, period: int = 20, periods_per_year: float = 1.0) -> None:
        self.period = check_period("period", period, minimum=2)
        self.periods_per_year = check_number("periods_per_year", periods_per_year,
                                             positive=True)
        self.scale = math.sqrt(self.periods_per_year)
        self.prev_close: float | None = None
        self.returns: deque[float] = deque(maxlen=self.period)

    def update(self, bar: BarLike) -> float | None:
        """Feed one bar; the volatility at its close, or None while warming up."""
        return self.update_value(bar.close)

    def update_value(self, x: float) -> float | None:
        """Feed one close (> 0)."""
        x = as_float(x, self.kind, "close")  # numpy scalars: float64, JSON-able state
        if not math.isfinite(x):
            return None
        if x <= 0:
            raise DataError(f"rolling_volatility: prices must be > 0, got {x!r}")
        prev, self.prev_close = self.prev_close, x
        if prev is None:
            return None
        self.returns.append(_log_return(prev, x))
        if len(self.returns) < self.period:
            return None
        return _mean_std(self.returns, 1)[1] * self.scale

    def _params(self) -> dict[str, Any]:
        return {"period": self.period, "periods_per_year": self.periods_per_year}

    def _values(self) -> dict[str, Any]:
        return {"prev_close": self.prev_close, "returns": list(self.returns)}

    def _load(self, values: _State) -> None:
        prev = values.maybe_real("prev_close", low=0.0, above=True)
        returns = values.reals("returns", self.period)
        if prev is None and returns:
            raise values.bad("prev_close", "a number > 0 once returns were kept")
        self.prev_close = prev
        self.returns = deque(returns, maxlen=self.period)


def _mean_std(window: deque[float], ddof: int) -> tuple[float, float]:
    """Corrected two-pass mean and std, summed in order and rescaled by a power of two at
    extreme magnitudes, as ``_kernels.window_mean_std`` does (same operations, same
    order)."""
    largest = max(abs(v) for v in window)
    shift = 0
    if largest > _kernels.SCALE_ABOVE or 0.0 < largest < _kernels.SCALE_BELOW:
        shift = math.frexp(largest)[1]
    total = 0.0
    for v in window:
        total += math.ldexp(v, -shift)
    mean = total / len(window)
    residue = 0.0
    for v in window:
        residue += math.ldexp(v, -shift) - mean
    mean += residue / len(window)
    squares = 0.0
    for v in window:
        d = math.ldexp(v, -shift) - mean
        squares += d * d
    return (math.ldexp(mean, shift),
            math.ldexp(math.sqrt(squares / (len(window) - ddof)), shift))


def _log_return(prev: float, x: float) -> float:
    """``_kernels.log_return`` in Python: ``ln(x / prev)``, or the difference of logs
    where the ratio leaves the normal float range."""
    ratio = x / prev
    if ratio < _kernels.MIN_NORMAL or math.isinf(ratio):
        return math.log(x) - math.log(prev)
    return math.log(ratio)
