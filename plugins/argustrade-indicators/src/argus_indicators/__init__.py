"""Technical indicators for Argus strategies, in two shapes that agree bar for bar.

* Batch functions on numpy arrays (:mod:`argus_indicators.batch`), for research and
  vectorised backtests: :func:`ema`, :func:`rsi`, :func:`macd`, :func:`bollinger`,
  :func:`true_range`, :func:`atr`, :func:`vwap`, :func:`rolling_volatility`.
* Streaming classes (:mod:`argus_indicators.streaming`) for a strategy's ``on_event``:
  :class:`EMA`, :class:`RSI`, :class:`MACD`, :class:`BollingerBands`, :class:`ATR`,
  :class:`VWAP`, :class:`RollingVolatility`; ``update(bar)`` returns the value at that
  bar (None while warming up) and ``get_state()``/``set_state()`` carry them through
  checkpoints and hot-swaps.

A plain library: the core has no hook for indicators, so strategies import it.  The
exact definitions (seeding, warm-up, std flavour, true range, VWAP sessions) are in the
README.
"""

from argus_indicators.batch import (
    DAY_NS,
    BollingerResult,
    MACDResult,
    atr,
    bollinger,
    ema,
    macd,
    rolling_volatility,
    rsi,
    true_range,
    vwap,
)
from argus_indicators.streaming import (
    ATR,
    EMA,
    MACD,
    RSI,
    VWAP,
    BarLike,
    BollingerBands,
    BollingerValue,
    MACDValue,
    RollingVolatility,
)

__all__ = [
    "ATR",
    "DAY_NS",
    "EMA",
    "MACD",
    "RSI",
    "VWAP",
    "BarLike",
    "BollingerBands",
    "BollingerResult",
    "BollingerValue",
    "MACDResult",
    "MACDValue",
    "RollingVolatility",
    "atr",
    "bollinger",
    "ema",
    "macd",
    "rolling_volatility",
    "rsi",
    "true_range",
    "vwap",
]
