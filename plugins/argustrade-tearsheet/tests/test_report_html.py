"""The sections in the core's report page: plotly.js embedded once and nothing loaded
from the network, human labels, reasons shown or "—", user text escaped."""

from __future__ import annotations

import re
from pathlib import Path

from argus_tearsheet.plugin import report_sections, tearsheet_sections
from argus_tearsheet.render import EQUITY_SECTION, SECTIONS, TITLE
from tearsheet_ledger import build_ledger

from argus_core import Ledger
from argus_core.config import parse_config
from argus_core.report import write_report


def without_scripts(html: str) -> str:
    """The HTML a reader sees (script bodies, plotly.js included, removed)."""
    return re.sub(r"<script.*?</script>", "", html, flags=re.S)


def test_page_embeds_plotly_once_and_loads_nothing(constructed_run: Path) -> None:
    sections = tearsheet_sections(constructed_run)
    assert list(sections) == [EQUITY_SECTION, *(f"{TITLE}: {name}" for name in SECTIONS)]
    page = write_report(constructed_run).read_text()  # the recorded config loads every plugin
    assert page.count("plotly.js v") == 1  # the library's licence header
    # ...in the first section on the page, before any chart that needs it
    assert page.index("plotly.js v") < page.index("Plotly.newPlot(")
    assert page.count("Copyright 2012-") == 1
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)  # every script inline
    assert not re.search(r"""<link[^>]*href\s*=\s*["']?https?:""", page)
    assert page.count('class="plotly-graph-div"') == 2  # equity/drawdown, monthly heat map
    for title in sections:
        assert f"<h2>{title.replace(chr(39), '&#x27;')}</h2>" in page


def test_labels_are_for_people(constructed_run: Path) -> None:
    html = without_scripts(tearsheet_sections(constructed_run)[f"{TITLE}: performance"])
    labels = re.findall(r"<tr><td>(.*?)</td>", html)
    assert "Sharpe (annualised, 8,766 obs/yr measured from timestamps, risk-free 0)" in labels
    assert "Exposure (share of time with a position)" in labels
    assert not [label for label in labels if re.search(r"\b[a-z]+_[a-z_]+\b", label)]
    assert "<td class=n>80.00%</td>" in html  # exposure
    assert "<td class=n>66.67%</td>" in html  # win rate
    assert "<td class=n>3.44</td>" in html  # profit factor 17.999 / 5.235
    assert "<td class=n>4.25</td>" in html  # expectancy 12.764 / 3
    assert "<td class=n>4h</td>" in html  # longest drawdown: 10,015 at 6h regained at 10h
    assert "No buy-and-hold benchmark" in html


def test_reasons_shown_or_dashed(tmp_path: Path, constructed_run: Path) -> None:
    trades = without_scripts(tearsheet_sections(constructed_run)[f"{TITLE}: trades"])
    assert "<td>fast crossed above slow → fast crossed below slow</td>" in trades
    assert "<td>— → stop</td>" in trades  # an order without a reason
    old = build_ledger(tmp_path / "old", reason_column=False)
    trades = tearsheet_sections(old)[f"{TITLE}: trades"]
    assert "fast crossed" not in trades
    assert trades.count("<td>—</td>") == 3
    assert "orders carry no reason column" in trades


def test_user_text_is_escaped(constructed_run: Path) -> None:
    with Ledger.in_dir(constructed_run) as ledger:
        ledger.conn.execute("update orders set reason = '<img src=x onerror=alert(1)>', "
                            "strategy = 'a&b' where client_order_id = 'b1'")
    html = "".join(tearsheet_sections(constructed_run).values())
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<td>a&amp;b</td>" in html


def test_an_empty_run_renders(tmp_path: Path) -> None:
    with Ledger.in_dir(tmp_path / "run") as ledger:
        ledger.start_run("empty", "replay", 0, "{}")
    sections = tearsheet_sections(tmp_path / "run")
    assert "No fills: no strategy traded." in sections[f"{TITLE}: strategies"]
    assert "No closed trades." in sections[f"{TITLE}: trades"]
    assert "No equity rows to chart." in sections[EQUITY_SECTION]
    assert "Not enough equity rows" in sections[f"{TITLE}: monthly returns"]


def test_hook_skips_a_directory_without_ledger(tmp_path: Path) -> None:
    config = parse_config({}, tmp_path / "config.toml")
    assert report_sections(config, tmp_path, None) is None


def test_a_missing_bars_csv_leaves_a_note_not_an_error(constructed_run: Path,
                                                       tmp_path: Path) -> None:
    # `argus report` rebuilds the config from the ledger: a relative bars path may not
    # resolve from where it runs.  The report still comes, saying why there is no benchmark.
    config = parse_config({"run": {"venue": "replay"},
                           "plugins": {"replay": {"bars_csv": "gone.csv"}}},
                          tmp_path / "config.toml")
    html = without_scripts(tearsheet_sections(constructed_run, config)[f"{TITLE}: performance"])
    assert "No buy-and-hold benchmark: " in html
    assert "gone.csv: cannot read bars" in html


def _same_ids(sections: dict[str, str]) -> dict[str, str]:
    """Sections with each chart's random element id replaced by one placeholder."""
    return {k: re.sub(r"argus-tearsheet-[0-9a-f]{12}", "ID", v) for k, v in sections.items()}


def test_sections_from_the_core_read_equal_the_sections_reading_the_run(
        constructed_run: Path, tmp_path: Path) -> None:
    # The core's ReportData (what the core's report read) against the plugin's own read.
    from argus_core.report import read_report_data

    for run_dir in (constructed_run, build_ledger(tmp_path / "old", reason_column=False)):
        config = parse_config({}, tmp_path / "config.toml")
        with Ledger.in_dir(run_dir) as ledger:
            shared = read_report_data(ledger)
        given = report_sections(config, run_dir, shared)
        assert given is not None
        assert _same_ids(given) == _same_ids(tearsheet_sections(run_dir, config))
        assert _same_ids(given) == _same_ids(report_sections(config, run_dir, None) or {})


def test_the_interactive_chart_replaces_the_core_plots(constructed_run: Path) -> None:
    from argus_core.report import EQUITY_SECTION as CORE_TITLE

    assert EQUITY_SECTION == CORE_TITLE  # the core's title, spelled out here until public
    page = write_report(constructed_run).read_text()
    # drawn once: the core's own plots are left out
    assert 'aria-label="equity curve"' not in page and 'aria-label="drawdown"' not in page
    top = page.index(f"<h2>{EQUITY_SECTION}</h2>")
    assert top < page.index('class="plotly-graph-div"') < page.index("<h2>Metrics</h2>")
    assert page.count(f"<h2>{EQUITY_SECTION}</h2>") == 1
