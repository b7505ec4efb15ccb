"""The report draws long series min/max-decimated to its pixel width, and only the plots
change: every column keeps its extremes (so peaks, troughs, one-bar spikes and the max
drawdown stay visible), short series are drawn as they are, and the page's numbers are
the same with or without decimation.  The plots are inline SVG: the tests read the drawn
points back from it (``points`` parsed to numbers, mapped to values through the chart's
own tick labels) and compare them with the envelope."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from argus_core import report
from argus_core.config import load_config
from argus_core.downsample import envelope_indices
from argus_core.ledger import Ledger
from argus_core.metrics import drawdown, equity_series
from argus_core.runner import Runner

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = 1_100  # the report's charts are 1,100 px wide: one column per pixel
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


SVG = "{http://www.w3.org/2000/svg}"
#: How far a drawn coordinate may be from the exact one: both it and the tick gridlines
#: it is read through are written to 0.1 px.
PX = 0.15


def _charts(page: str) -> dict[str, ET.Element]:
    """Each inline SVG chart of a page, parsed as XML (well-formed or this raises), by
    its ``aria-label``."""
    charts = [ET.fromstring(svg) for svg in re.findall(r"<svg .*?</svg>", page, re.S)]
    return {chart.attrib["aria-label"]: chart for chart in charts}


def _points(chart: ET.Element) -> np.ndarray:
    """The drawn shape's points, ``(n, 2)`` pixels (x right, y down)."""
    shape = chart.find(f"{SVG}polyline")
    if shape is None:
        shape = chart.find(f"{SVG}polygon")
    assert shape is not None
    return np.array([[float(v) for v in xy.split(",")] for xy in shape.attrib["points"].split()])


def _y_of(chart: ET.Element) -> tuple[float, float]:
    """``(offset, slope)`` with pixel y = offset + slope * value, fitted through the
    chart's value ticks (each horizontal gridline and its label, in order)."""
    rows, values = _value_ticks(chart)
    assert len(rows) >= 3
    slope, offset = np.polyfit(values, rows, 1)
    return float(offset), float(slope)


def _value_ticks(chart: ET.Element) -> tuple[list[float], list[float]]:
    """The chart's horizontal gridlines' y and the values their labels say, in order."""
    rows = [float(line.attrib["y1"]) for line in chart.iter(f"{SVG}line")
            if line.attrib["y1"] == line.attrib["y2"]]
    labels = chart.find(f"{SVG}g[@text-anchor='end']")
    assert labels is not None
    values = [float((label.text or "").replace(",", "")) for label in labels]
    assert len(rows) == len(values)
    return rows, values


def _expected(chart: ET.Element, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Where ``values`` over ``ts`` belong in ``chart``: x spread linearly from the first
    drawn point (the first stamp) to the last (the last stamp), y through the ticks."""
    drawn = _drawn_series(chart)
    x0, x1 = drawn[0, 0], drawn[-1, 0]
    x = x0 + (ts - ts[0]).astype(np.float64) * (x1 - x0) / float(ts[-1] - ts[0])
    offset, slope = _y_of(chart)
    return np.column_stack([x, offset + slope * values])


def _drawn_series(chart: ET.Element) -> np.ndarray:
    """The chart's drawn points, without the fill's two corners on the zero line."""
    drawn = _points(chart)
    return drawn[1:-1] if chart.find(f"{SVG}polygon") is not None else drawn


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_equity_line_is_the_envelope_point_for_point(seed: int) -> None:
    ts, eq = _walk(seed, 60_000)
    charts = _charts(report._plots(ts, eq))
    keep = envelope_indices(ts, eq, COLUMNS)
    line = _drawn_series(charts["equity curve"])
    assert len(line) == len(keep) <= 4 * COLUMNS
    assert np.abs(line - _expected(charts["equity curve"], ts, eq)[keep]).max() < PX
    # Read back as values, each pixel column's drawn points span the full series there.
    offset, slope = _y_of(charts["equity curve"])
    drawn_values = (line[:, 1] - offset) / slope
    col = _columns_of(ts, COLUMNS)
    tolerance = PX / abs(slope)
    for c in np.unique(col):
        full = eq[col == c]
        kept = drawn_values[col[keep] == c]
        assert abs(kept[0] - full[0]) < tolerance and abs(kept[-1] - full[-1]) < tolerance
        assert abs(kept.min() - full.min()) < tolerance
        assert abs(kept.max() - full.max()) < tolerance


@pytest.mark.parametrize("seed", [4, 5, 6, 7])
def test_the_max_drawdown_is_drawn_in_both_charts(seed: int) -> None:
    ts, eq = _walk(seed, 200_000)
    dd = drawdown(eq)
    trough = int(np.argmax(dd))
    peak = int(np.argmax(eq[: trough + 1]))
    charts = _charts(report._plots(ts, eq))
    expected = _expected(charts["equity curve"], ts, eq)
    line = _drawn_series(charts["equity curve"])
    for i in (peak, trough):  # the peak and the trough are drawn points
        assert np.abs(line - expected[i]).max(axis=1).min() < PX
    fill = _drawn_series(charts["drawdown"])
    deepest = fill[np.argmax(fill[:, 1])]  # lowest on screen: y grows downwards
    assert np.abs(deepest - _expected(charts["drawdown"], ts, -100 * dd)[trough]).max() < PX


def test_a_one_bar_crash_is_drawn_where_striding_drops_it() -> None:
    ts, eq = _walk(8, 100_000)
    spike = 54_321
    eq[spike] = eq.min() / 2  # one bad bar: the worst point of the run
    stride = len(eq) // COLUMNS
    assert spike % stride != 0 and eq[::stride].min() > eq[spike]  # striding loses it
    charts = _charts(report._plots(ts, eq))
    for label, values in (("equity curve", eq), ("drawdown", -100 * drawdown(eq))):
        drawn = _drawn_series(charts[label])
        lowest = drawn[np.argmax(drawn[:, 1])]
        assert np.abs(lowest - _expected(charts[label], ts, values)[spike]).max() < PX


def test_the_drawdown_hangs_below_its_zero_line() -> None:
    """The right way up: the fill's top edge is the zero tick's gridline, a new high sits
    on it, every point is below it (larger y) where its tick labels say, the deepest
    drawdown lowest."""
    ts, eq = _walk(11, 20_000)
    values = -100 * drawdown(eq)
    chart = _charts(report._plots(ts, eq))["drawdown"]
    slope = _y_of(chart)[1]
    assert slope < 0  # a deeper (more negative) drawdown is drawn lower: larger y
    zero = [y for y, value in zip(*_value_ticks(chart), strict=True) if value == 0]
    polygon = _points(chart)
    assert zero and polygon[0, 1] == polygon[-1, 1] == zero[0] == polygon[:, 1].min()
    keep = envelope_indices(ts, values, COLUMNS)
    drawn = polygon[1:-1]
    assert np.abs(drawn - _expected(chart, ts, values)[keep]).max() < PX
    assert np.all(drawn[values[keep] == 0, 1] == zero[0])  # new highs: on the zero line
    assert np.argmax(drawn[:, 1]) == np.argmin(values[keep])
    assert drawn[:, 1].max() > zero[0] + 50  # this walk's drawdown is deep


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled demo: 17,668 hourly equity rows (decimated) and ~200 fills."""
    run_dir = tmp_path_factory.mktemp("demo") / "run"
    Runner(load_config(ROOT / "examples" / "demo.toml"), run_dir).run_sync()
    return run_dir


def _without_plots(page: str) -> str:
    return re.sub(r"<svg .*?</svg>", "SVG", page, flags=re.S)


def test_report_numbers_are_the_same_with_and_without_decimation(
        demo_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decimated = report.write_report(demo_run).read_text()
    charts = _charts(decimated)
    assert list(charts) == ["equity curve", "drawdown"]  # both well-formed XML, in order
    with Ledger.in_dir(demo_run) as ledger:
        eq = equity_series(ledger)[1]
    line = _drawn_series(charts["equity curve"])
    assert len(eq) > 4 * COLUMNS and len(line) <= 4 * COLUMNS
    offset, slope = _y_of(charts["equity curve"])
    assert abs(line[:, 1].max() - (offset + slope * eq.min())) < PX
    assert abs(line[:, 1].min() - (offset + slope * eq.max())) < PX
    offset, slope = _y_of(charts["drawdown"])
    fill = _drawn_series(charts["drawdown"])
    assert abs(fill[:, 1].max() - (offset + slope * -100 * drawdown(eq).max())) < PX

    monkeypatch.setattr(report, "envelope_indices", lambda x, y, columns: np.arange(len(y)))
    full = report.write_report(demo_run).read_text()
    assert len(_drawn_series(_charts(full)["equity curve"])) == len(eq)
    assert "max_drawdown" in full and "<td>replay:BTC/USD</td><td>2022-12-21 01:00</td>" in full
    assert _without_plots(decimated) == _without_plots(full)


def test_short_run_is_plotted_point_for_point(tmp_path: Path) -> None:
    ts, eq = _walk(10, 500)
    with Ledger.in_dir(tmp_path) as ledger:
        ledger.start_run("r", "replay", 1,  # builtins only: no plugin adds a plot
                         '{"argus": {"plugins": []}, "run": {"starting_cash": "100000"}}')
        with ledger.transaction():
            ledger.append_equity([(int(t), "0", repr(float(e)), "0")
                                  for t, e in zip(ts, eq, strict=True)])
    charts = _charts(report.write_report(tmp_path).read_text())
    line = _drawn_series(charts["equity curve"])
    assert len(charts) == 2 and len(line) == len(eq)
    assert np.abs(line - _expected(charts["equity curve"], ts, eq)).max() < PX


def test_write_report_imports_no_matplotlib(demo_run: Path) -> None:
    """The core's report draws its plots itself: in a fresh process, writing the demo's
    report (builtins only) leaves matplotlib unimported."""
    code = ("import sys; from pathlib import Path; from argus_core.report import write_report;"
            f" page = write_report(Path({str(demo_run)!r})).read_text();"
            " print(page.count('<svg class=\"plot\"'),"
            " sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert ran.stdout.split() == ["2", "[]"], ran.stdout + ran.stderr


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


def _plain_envelope(x: np.ndarray, y: np.ndarray, columns: int) -> np.ndarray:
    """``envelope_indices`` as first written (whole-array temporaries; the shipped one
    computes the columns a slice at a time to bound the report's peak memory)."""
    n = len(y)
    if n <= 4 * columns:
        return np.arange(n)
    offset = (x - x[0]).astype(np.float64)
    scale = columns / offset[-1] if offset[-1] > 0 else 0.0
    column = np.minimum((offset * scale).astype(np.int64), columns - 1)
    starts = np.flatnonzero(np.diff(column, prepend=-1))
    sizes = np.diff(starts, append=n)
    keep = [starts, starts + sizes - 1]
    for reduce in (np.minimum, np.maximum):
        extreme = np.repeat(reduce.reduceat(y, starts), sizes)
        hits = np.flatnonzero(y == extreme)
        keep.append(hits[np.diff(column[hits], prepend=-1) != 0])
    return np.unique(np.concatenate(keep))


@pytest.mark.parametrize("seed", range(12))
def test_the_sliced_envelope_is_the_plain_one(seed: int) -> None:
    """Several slices of the column pass (up to ~3x its 65,536 points), irregular and
    repeated stamps, ties (values rounded), a zero span: the same indices."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 200_000))
    columns = int(rng.integers(1, 3_000))
    steps = rng.choice([0, 1, 60, 3_600], n) * rng.integers(1, 5, n) * 10**9
    x = 1_600_000_000 * 10**9 + np.cumsum(steps).astype(np.int64)
    if seed % 5 == 0:
        x = np.full(n, 1_600_000_000 * 10**9, dtype=np.int64)
    y = np.round(rng.normal(0, 1, n).cumsum(), int(rng.integers(0, 3)))
    assert np.array_equal(envelope_indices(x, y, columns), _plain_envelope(x, y, columns))


@pytest.mark.parametrize("seed", range(6))
def test_drawdown_in_place_is_the_plain_formula(seed: int) -> None:
    """``metrics.drawdown`` (computed in place) against ``np.where(peak > 0, (peak -
    equity) / peak, 0.0)``, with negative and zero equity (no peak above zero)."""
    rng = np.random.default_rng(seed)
    equity = rng.normal(0, 1, 5_000).cumsum() + [100.0, 0.0, -5.0][seed % 3]
    peak = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.where(peak > 0, (peak - equity) / peak, 0.0)
    assert np.array_equal(drawdown(equity), want)
