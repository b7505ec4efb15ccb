"""The report reads a run once and hands it to the plugins: the equity series as the
plain row-by-row read gives it (bit for bit), the metrics and plays as
``compute_metrics`` and ``plays`` give them, ``report`` only to sections that name it,
and a plugin's equity chart in place of the core's plots (never both)."""

from __future__ import annotations

import json
import sys
import types
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from argus_core import hookimpl, plugins
from argus_core import report as report_module
from argus_core.config import Config, load_config, parse_config
from argus_core.ledger import Ledger
from argus_core.metrics import (
    _equity_columns,
    basket_map,
    compute_metrics,
    equity_exposure_series,
    plays,
    round_trips,
)
from argus_core.report import (
    EQUITY_SECTION,
    ReportData,
    plugin_sections,
    read_report_data,
    write_report,
    write_report_data,
)
from argus_core.runner import Runner

ROOT = Path(__file__).resolve().parent.parent
HOUR_NS = 3_600 * 10**9
T0 = 1_600_000_000 * 10**9
NO_PLUGINS = {"argus": {"plugins": []}, "run": {"starting_cash": "100000"}}


def _plain(ledger: Ledger) -> tuple[list[int], list[float], list[bool]]:
    """The reference read: row by row, ``float()`` of each exact decimal text."""
    rows = ledger.query("select ts_ns, equity, gross_exposure from equity order by ts_ns")
    return ([r["ts_ns"] for r in rows], [float(r["equity"]) for r in rows],
            [float(r["gross_exposure"]) > 0 for r in rows])


def _old_read(ledger: Ledger) -> tuple[np.ndarray, np.ndarray]:
    """The read as it was (an aggregate ORDER BY, which sorts every row again)."""
    ts_text, eq_text = (str(v or "") for v in ledger.conn.execute(
        "select group_concat(ts_ns, ',' order by ts_ns), "
        "group_concat(equity, ',' order by ts_ns) from equity").fetchall()[0])
    return (np.fromstring(ts_text, dtype=np.int64, sep=","),
            np.fromstring(eq_text, dtype=np.float64, sep=","))


def test_the_series_and_exposure_equal_the_plain_read_bit_for_bit(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    # Long decimals, as Decimal arithmetic leaves them (SQLite's own text->real cast
    # rounds some to the wrong double), stored out of time order.
    values = [f"{int(a)}.{int(b):016d}" for a, b in zip(
        rng.integers(10**4, 10**6, 20_000), rng.integers(0, 10**16, 20_000), strict=True)]
    order = rng.permutation(20_000)
    with Ledger.in_dir(tmp_path) as ledger:
        empty = equity_exposure_series(ledger)
        assert [len(a) for a in empty] == [0, 0, 0]
        with ledger.transaction():
            ledger.append_equity([(T0 + int(i) * HOUR_NS, "0", values[i],
                                   "0" if i % 3 else "5.5") for i in order])
        ts, eq, exposed = equity_exposure_series(ledger)
        plain_ts, plain_eq, plain_exposed = _plain(ledger)
        old_ts, old_eq = _old_read(ledger)
    assert ts.dtype == np.int64 and eq.dtype == np.float64 and exposed.dtype == bool
    assert ts.tolist() == plain_ts and np.array_equal(ts, old_ts)
    assert eq.tolist() == plain_eq and np.array_equal(eq, old_eq)  # not approximately
    assert exposed.tolist() == plain_exposed and exposed.sum() == 6_667  # i % 3 == 0


def test_columns_out_of_order_are_sorted_together() -> None:
    """Should SQLite ever hand the joined columns over in another order than the
    subquery's, the three columns (one scan, so aligned) are sorted by stamp together."""

    class Answer:
        def fetchall(self) -> list[tuple[Any, ...]]:
            return [(3, b"30,10,20", b"3.5,1.5,2.5", b"100")]  # the query casts to blob

    class Conn:
        def execute(self, sql: str) -> Answer:
            return Answer()

    fake: Any = types.SimpleNamespace(conn=Conn(), path=Path("x"))
    ts, eq, exposed = _equity_columns(fake, exposure=True)
    assert ts.tolist() == [10, 20, 30]
    assert eq.tolist() == [1.5, 2.5, 3.5]
    assert exposed.tolist() == [False, False, True]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled demo: 17,668 hourly equity rows and ~200 fills."""
    run_dir = tmp_path_factory.mktemp("demo") / "run"
    Runner(load_config(ROOT / "examples" / "demo.toml"), run_dir).run_sync()
    return run_dir


def test_report_data_is_what_the_plain_functions_give(demo_run: Path) -> None:
    with Ledger.in_dir(demo_run) as ledger:
        data = read_report_data(ledger)
        start = Decimal(str(json.loads(data.run["config_json"])["run"]["starting_cash"]))
        reference = compute_metrics(ledger, start)  # reads everything itself
        fills = ledger.fills()
        trips = plays(round_trips(fills, basket_map(ledger)))
        plain_ts, plain_eq, plain_exposed = _plain(ledger)
        (last,) = ledger.query("select equity from equity order by ts_ns desc limit 1")
    assert data.starting_cash == start
    assert data.metrics == reference  # every figure, exactly
    assert data.fills == fills and data.plays == trips and len(trips) > 50
    assert data.ts_ns.tolist() == plain_ts and data.equity.tolist() == plain_eq
    assert data.exposed.tolist() == plain_exposed and 0 < data.exposed.sum() < len(plain_ts)
    assert data.final_equity == Decimal(last["equity"])
    assert data.stamps.dtype == np.dtype("datetime64[ns]")
    assert data.stamps[0] == np.datetime64(int(data.ts_ns[0]), "ns")
    for array in (data.ts_ns, data.equity, data.exposed):  # shared: nobody may change them
        with pytest.raises(ValueError, match="read-only"):
            array[0] = array[1]


def _sections_plugin(monkeypatch: pytest.MonkeyPatch, **hooks: Any) -> None:
    """Load a plugin named ``sections`` with these hook implementations, as a builtin."""
    module = types.ModuleType("argus_test_report_sections")
    for name, fn in hooks.items():
        setattr(module, name, hookimpl(specname=name)(fn))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(plugins, "BUILTINS", (*plugins.BUILTINS, ("sections", module.__name__)))


def test_each_section_gets_the_arguments_it_names(
        demo_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, tuple[Any, ...]] = {}

    def old_style(config: Config, run_dir: Path) -> dict[str, str]:
        seen["old"] = (config, run_dir)
        return {"old": "o"}

    _sections_plugin(monkeypatch, report_sections=old_style)
    config = parse_config(NO_PLUGINS, None)
    with Ledger.in_dir(demo_run) as ledger:
        data = read_report_data(ledger)
    assert plugin_sections(config, demo_run, data) == {"old": "o"}
    assert seen["old"] == (config, demo_run)

    def report_only(report: ReportData) -> dict[str, str]:
        seen["new"] = (report,)
        return {"rows": str(len(report.equity))}

    monkeypatch.setattr(plugins, "BUILTINS", plugins.BUILTINS[:-1])
    _sections_plugin(monkeypatch, report_sections=report_only)
    assert plugin_sections(config, demo_run, data) == {"rows": str(len(data.equity))}
    assert seen["new"][0] is data


def test_a_plugin_equity_chart_takes_the_place_of_the_core_plots(
        demo_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[Any] = []
    chart = report_module._chart
    monkeypatch.setattr(report_module, "_chart",
                        lambda *args, **kw: drawn.append(args[0]) or chart(*args, **kw))
    config = parse_config(NO_PLUGINS, None)
    page = write_report(demo_run, config).read_text()  # builtins only: the core draws
    assert drawn == ["equity curve", "drawdown"] and page.count('<svg class="plot"') == 2
    assert page.index(f"<h2>{EQUITY_SECTION}</h2>") < page.index("<h2>Metrics</h2>")

    def interactive(run_dir: Path, report: ReportData) -> dict[str, str]:
        return {"Before": "b", EQUITY_SECTION: f"<div id=chart>{len(report.equity)}</div>",
                "After": "a"}

    _sections_plugin(monkeypatch, report_sections=interactive)
    drawn.clear()
    page = write_report(demo_run, config).read_text()
    assert drawn == [] and "<svg" not in page  # nothing drawn twice
    assert page.count(f"<h2>{EQUITY_SECTION}</h2>") == 1
    top = page.index(f"<h2>{EQUITY_SECTION}</h2><div id=chart>")
    assert top < page.index("<h2>Metrics</h2>") < page.index("<h2>Before</h2>")
    assert page.index("<h2>Before</h2>") < page.index("<h2>After</h2>")


def test_write_report_data_gives_the_metrics_a_caller_prints(demo_run: Path) -> None:
    path, data = write_report_data(demo_run, parse_config(NO_PLUGINS, None))
    assert path == demo_run / "report.html" and path.is_file()
    config = load_config(ROOT / "examples" / "demo.toml")
    with Ledger.in_dir(demo_run) as ledger:
        assert data.metrics == compute_metrics(ledger, config.run.starting_cash)


def _return_stats_as_it_was(returns: np.ndarray, ts_ns: np.ndarray) -> dict[str, float]:
    """``metrics.return_stats`` before it was split into ratios and moments (a copy)."""
    from argus_core.metrics import annualise, observations_per_year

    per_year = observations_per_year(ts_ns)
    if len(returns) < 2 or float(np.std(returns)) == 0.0:
        return {"sharpe": 0.0, "sharpe_per_obs": 0.0, "sortino": 0.0, "volatility": 0.0,
                "skew": 0.0, "kurtosis": 3.0, "n_obs": float(len(returns)),
                "obs_per_year": per_year}
    mu, sd = float(np.mean(returns)), float(np.std(returns, ddof=1))
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
    z = (returns - mu) / float(np.std(returns))
    return {"sharpe_per_obs": mu / sd, "sharpe": annualise(mu / sd, per_year),
            "sortino": annualise(mu / downside, per_year) if downside > 0 else 0.0,
            "volatility": annualise(sd, per_year),
            "skew": float(np.mean(z**3)), "kurtosis": float(np.mean(z**4)),
            "n_obs": float(len(returns)), "obs_per_year": per_year}


@pytest.mark.parametrize("n", [0, 1, 2, 5_000])
def test_split_return_stats_equal_the_old_ones_exactly_in_order(n: int) -> None:
    from argus_core.metrics import moment_stats, ratio_stats, return_stats

    rng = np.random.default_rng(n)
    ts = T0 + np.cumsum(rng.integers(1, 5, n + 1)) * HOUR_NS
    for returns in (rng.normal(0, 1e-3, n), np.zeros(n)):  # flat: the early return
        old = _return_stats_as_it_was(returns, ts)
        new = return_stats(returns, ts)
        assert list(new.items()) == list(old.items())  # same keys, order, bits
        ratios = ratio_stats(returns, ts)
        assert ratios == {k: v for k, v in old.items() if k not in ("skew", "kurtosis")}
        assert {**ratios, **moment_stats(returns)} == old


def test_the_report_reads_beside_a_writer_holding_its_write_lock(demo_run: Path) -> None:
    """The report opened the ledger read-write, whose migrations take the write lock:
    beside a running paper run's open transaction it waited 5 s and failed ("database is
    locked").  It reads read-only now, as of the writer's last commit."""
    import apsw

    writer = apsw.Connection(str(demo_run / "argus.db"))
    writer.execute("begin immediate")  # a writer in the middle of its transaction
    try:
        _, data = write_report_data(demo_run, parse_config(NO_PLUGINS, None))
    finally:
        writer.execute("rollback")
        writer.close()
    assert len(data.equity) > 0


def test_the_report_of_a_file_that_is_no_ledger_leaves_it_alone(tmp_path: Path) -> None:
    """A zero-byte argus.db was made into an empty ledger by the report's open."""
    from argus_core.errors import LedgerError

    (tmp_path / "argus.db").write_bytes(b"")
    with pytest.raises(LedgerError, match="not an Argus ledger"):
        write_report_data(tmp_path, parse_config(NO_PLUGINS, None))
    assert (tmp_path / "argus.db").stat().st_size == 0


def test_a_ledger_older_than_the_core_is_opened_to_be_migrated(tmp_path: Path) -> None:
    """A read-only open of a ledger that lacks a core migration opens it for writing
    instead (migrated as any open does; its readers' columns would be missing)."""
    import apsw

    from argus_core.ledger import _behind

    with Ledger.in_dir(tmp_path) as ledger:
        ledger.start_run("r", "paper", 1, "{}")
    assert not _behind(tmp_path / "argus.db")
    with Ledger.in_dir(tmp_path, read_only=True) as ledger, \
            pytest.raises(apsw.ReadOnlyError):
        ledger.conn.execute("delete from runs")
    conn = apsw.Connection(str(tmp_path / "argus.db"))
    conn.execute("delete from _argus_migrations where migration_set = 'core' and name = "
                 "(select max(name) from _argus_migrations where migration_set = 'core')")
    conn.close()
    assert _behind(tmp_path / "argus.db")
