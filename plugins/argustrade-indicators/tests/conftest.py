"""The bundled bars as numpy columns: Kraken XBT/USD hourly (examples/data, always there)
and SPY daily (../shared/data, next to the checkout; the tests on it skip without it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from argus_core import Bar

ROOT = Path(__file__).resolve().parents[3]
XBT_CSV = ROOT / "examples" / "data" / "kraken_XBTUSD_60.csv"
SPY_CSV = ROOT.parent / "shared" / "data" / "equity" / "lean_spy_daily.csv"
Columns = dict[str, np.ndarray]


def _xbt() -> Columns:
    raw = np.loadtxt(XBT_CSV, delimiter=",")
    # Kraken stamps bars at their open; a Bar's ts_ns is its close (as the replay venue does).
    ts = (raw[:, 0].astype(np.int64) + 3600) * 10**9
    return {"ts_ns": ts, **dict(zip(("open", "high", "low", "close", "volume"),
                                    raw[:, 1:6].T.copy(), strict=True))}


def _spy() -> Columns:
    if not SPY_CSV.exists():
        pytest.skip(f"{SPY_CSV} is not next to this checkout")
    day = np.loadtxt(SPY_CSV, delimiter=",", usecols=0, dtype=str)
    raw = np.loadtxt(SPY_CSV, delimiter=",", usecols=(1, 2, 3, 4, 5))
    dates = np.array([f"{d[:4]}-{d[4:6]}-{d[6:8]}" for d in day], dtype="datetime64[ns]")
    ts = dates.astype(np.int64) + 86_400 * 10**9  # a daily bar closes at the day's end
    prices = raw[:, :4] / 10_000  # Lean stores deci-cents
    return {"ts_ns": ts, **dict(zip(("open", "high", "low", "close"), prices.T.copy(),
                                    strict=True)), "volume": raw[:, 4].copy()}


_CACHE: dict[str, Columns] = {}


@pytest.fixture(params=["xbt_hourly", "spy_daily"])
def bars(request: pytest.FixtureRequest) -> Columns:
    """Each bundled bar series as columns (cached: read once per test process)."""
    if request.param not in _CACHE:
        _CACHE[request.param] = _xbt() if request.param == "xbt_hourly" else _spy()
    return _CACHE[request.param]


@pytest.fixture
def xbt() -> Columns:
    """The Kraken XBT/USD hourly bars as columns."""
    if "xbt_hourly" not in _CACHE:
        _CACHE["xbt_hourly"] = _xbt()
    return _CACHE["xbt_hourly"]


def as_bars(cols: Columns) -> list[Bar]:
    """The columns as :class:`argus_core.Bar` objects, what a strategy's events carry."""
    return [Bar("XBT/USD", int(t), float(o), float(h), float(lo), float(c), float(v))
            for t, o, h, lo, c, v in zip(cols["ts_ns"], cols["open"], cols["high"],
                                         cols["low"], cols["close"], cols["volume"],
                                         strict=True)]


@pytest.fixture
def bar_objects() -> Callable[[Columns], list[Bar]]:
    """``as_bars`` for the tests (importlib mode: tests cannot import conftest)."""
    return as_bars
