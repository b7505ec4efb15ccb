"""The report draws long series min/max-decimated to its pixel width, and only the plots
change: every column keeps its extremes (so peaks, troughs, one-bar spikes and the max
drawdown stay visible), short series are drawn as they are, and the page's numbers are
the same with or without decimation."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from argus_core import report
from argus_core.config import load_config
from argus_core.downsample import envelope_indices
from argus_core.ledger import Ledger
from argus_core.metrics import drawdown, equity_series
from argus_core.runner import Runner

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = 1_100  # the report's 10-inch figures at 110 dpi
MINUTE_NS = 60 * 10**9


def _walk(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random walk of equity over minute stamps with a few long gaps."""
    rng = np.random.default_rng(seed)
    steps = np.where(rng.random(n) < 0.001, 3_000, 1) * MINUTE_NS  # weekends, outages
    ts = 1_600_000_000 * 10**9 + np.cumsum(steps)
    return ts, 100_000 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))


def _columns_of(ts: np.ndarray, columns: int) -> np.ndarray:
    """The pixel column of each stamp, computed the slow way as the reference."""
    span = float(ts[-1] - ts[0])
    return np.array([min(int(float(t - ts[0]) * columns / span), columns - 1) for t in ts])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_column_keeps_its_first_last_min_and_max(seed: int) -> None:
    ts, eq = _walk(seed, 60_000)
    keep = envelope_indices(ts, eq, COLUMNS)
    assert len(keep) <= 4 * COLUMNS and np.all(np.diff(keep) > 0)
    col = _columns_of(ts, COLUMNS)
    for c in np.unique(col):
        full = np.flatnonzero(col == c)
        kept = keep[col[keep] == c]
        assert kept[0] == full[0] and kept[-1] == full[-1]
        assert eq[kept].min() == eq[full].min() and eq[kept].max() == eq[full].max()
    assert {int(np.argmin(eq)), int(np.argmax(eq))} <= set(keep.tolist())


@pytest.mark.parametrize("seed", [4, 5, 6, 7])
def test_the_max_drawdown_peak_and_trough_are_kept(seed: int) -> None:
    ts, eq = _walk(seed, 200_000)
    dd = drawdown(eq)
    trough = int(np.argmax(dd))
    peak = int(np.argmax(eq[: trough + 1]))
    keep = envelope_indices(ts, eq, COLUMNS)
    assert peak in keep and trough in keep
    assert drawdown(eq[keep]).max() == dd.max()  # the equity plot alone shows it
    dd_keep = envelope_indices(ts, -100 * dd, COLUMNS)
    assert (-100 * dd)[dd_keep].min() == -100 * dd.max()  # and so does the drawdown plot


def test_a_one_bar_spike_survives_where_striding_drops_it() -> None:
    ts, eq = _walk(8, 100_000)
    spike = 54_321
    eq[spike] = eq.min() / 2  # one bad bar: the worst point of the run
    stride = len(eq) // COLUMNS
    assert spike % stride != 0 and eq[::stride].min() > eq[spike]  # striding loses it
    assert spike in envelope_indices(ts, eq, COLUMNS)
    dd = drawdown(eq)
    assert dd[envelope_indices(ts, dd, COLUMNS)].max() == dd.max() == dd[spike]


def test_short_series_are_drawn_unchanged() -> None:
    ts, eq = _walk(9, COLUMNS - 1)
    assert np.array_equal(envelope_indices(ts, eq, COLUMNS), np.arange(len(eq)))
    assert len(envelope_indices(ts[:1], eq[:1], COLUMNS)) == 1


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled demo: 17,668 hourly equity rows (decimated) and ~200 fills."""
    run_dir = tmp_path_factory.mktemp("demo") / "run"
    Runner(load_config(ROOT / "examples" / "demo.toml"), run_dir).run_sync()
    return run_dir


def _drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each figure's plotted y values (line, or the fill's polygon), as the report saves it."""
    drawn: list[Any] = []
    save = report._png

    def spy(fig: Any) -> str:
        ax = fig.axes[0]
        drawn.append(ax.lines[0].get_ydata() if ax.lines
                     else ax.collections[0].get_paths()[0].vertices[:, 1])
        return save(fig)

    monkeypatch.setattr(report, "_png", spy)
    return drawn


def _without_images(page: str) -> str:
    return re.sub(r"base64,[^\"]*\"", "IMG\"", page)


def test_report_numbers_are_the_same_with_and_without_decimation(
        demo_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = _drawn(monkeypatch)
    decimated = report.write_report(demo_run).read_text()
    with Ledger.in_dir(demo_run) as ledger:
        eq = equity_series(ledger)[1]
    line, fill = drawn
    assert len(eq) > 4 * COLUMNS and len(line) <= 4 * COLUMNS
    assert line.min() == eq.min() and line.max() == eq.max()
    assert fill.min() == -100 * drawdown(eq).max()

    def every_point(fig: Any, ts_ns: np.ndarray, values: np.ndarray) -> Any:
        return ts_ns.astype("datetime64[ns]"), values

    monkeypatch.setattr(report, "_envelope", every_point)
    full = report.write_report(demo_run).read_text()
    assert np.array_equal(drawn[2], eq)
    assert "max_drawdown" in full and "<td>replay:BTC/USD</td><td>2022-12-21 01:00</td>" in full
    assert _without_images(decimated) == _without_images(full)


def test_short_run_is_plotted_point_for_point(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ts, eq = _walk(10, 500)
    with Ledger.in_dir(tmp_path) as ledger:
        ledger.start_run("r", "replay", 1,  # builtins only: no plugin adds a plot
                         '{"argus": {"plugins": []}, "run": {"starting_cash": "100000"}}')
        with ledger.transaction():
            ledger.append_equity([(int(t), "0", repr(float(e)), "0")
                                  for t, e in zip(ts, eq, strict=True)])
    drawn = _drawn(monkeypatch)
    page = report.write_report(tmp_path).read_text()
    assert np.array_equal(drawn[0], eq) and page.count("data:image/png;base64") == 2


def test_play_stamps_read_as_before() -> None:
    ts_ns = 1_700_000_000 * 10**9 + 59 * MINUTE_NS + 999_999_999
    old = datetime.fromtimestamp(np.array([ts_ns])[0] / 1e9, UTC).strftime("%Y-%m-%d %H:%M")
    assert report._minute(ts_ns) == old == "2023-11-14 23:12"


def test_the_equity_series_is_the_ledgers_text_parsed_like_float_in_time_order(
        tmp_path: Path) -> None:
    """The series is read as two joined texts parsed by numpy: every value must equal
    float() of the stored decimal text, in time order whatever the insertion order."""
    from argus_core.metrics import equity_series

    rng = np.random.default_rng(7)
    stamps = rng.permutation(5_000) * 60_000_000_000 + 1_600_000_000_000_000_000
    texts = [f"{v:.8f}" for v in 100_000 * np.exp(np.cumsum(rng.normal(0, 1e-3, 5_000)))]
    texts[17] = "99999.999999999999999"  # more digits than a double: rounded like float()
    with Ledger.in_dir(tmp_path) as ledger:
        assert [len(a) for a in equity_series(ledger)] == [0, 0]  # an empty run
        with ledger.transaction():
            ledger.append_equity([(int(t), "0", e, "0") for t, e in zip(stamps, texts,
                                                                          strict=True)])
        ts, eq = equity_series(ledger)
    order = np.argsort(stamps)
    assert np.array_equal(ts, stamps[order])
    assert eq.tolist() == [float(texts[i]) for i in order]
