"""End to end in headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven
by Selenium): the page renders with the ledger's numbers, follows the ledger live, and
a Kill clicked on the page (token entered) halts a running paper run.

The paper run trades on a live local data feed: a venue whose stream yields a fresh bar
every 50 ms in real time (wall-clock stamps) until the test stops it, with simulated
fills from the paper broker.  Skipped, with the reason, where Chromium or its driver is
not installed (``apt-get install -y chromium chromium-driver``).
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dashboard_helpers import (
    IID,
    NEEDS_CHROMIUM,
    TOKEN,
    add_fill,
    attr,
    control_value,
    paper_run,
    query,
    wait_for,
)

pytestmark = [pytest.mark.slow, NEEDS_CHROMIUM]


def test_the_page_renders_the_ledgers_numbers_and_follows_it_live(
        finished_run: Path, serve: Any, browser: Any) -> None:
    server = serve(finished_run)
    browser.get(server.url + "/")
    assert "Argus" in browser.title
    last = query(finished_run, "select * from equity order by ts_ns desc limit 1")[0]
    assert browser.find_element("id", "equity").text == last["equity"]
    assert attr(browser, "cash") == last["cash"]
    fills = query(finished_run, "select * from fills order by rowid desc")
    assert attr(browser, "fill-count") == str(len(fills))
    assert browser.find_element("id", "trading-state").text == "REDUCING"
    rows = browser.find_elements("css selector", "#fills tbody tr")
    assert [r.get_attribute("data-key") for r in rows] == [f["fill_id"] for f in fills]
    newest = rows[0]
    for field in ("price", "quantity", "fee"):
        cell = newest.find_element("css selector", f'td[data-field="{field}"]')
        assert cell.text == fills[0][field]
    positions = query(finished_run, "select * from positions")
    shown = {r.get_attribute("data-key"): r.find_element(
        "css selector", 'td[data-field="realized_pnl"]').text
        for r in browser.find_elements("css selector", "#positions tbody tr")}
    assert shown == {p["instrument_id"]: p["realized_pnl"] for p in positions}
    points = browser.find_element("id", "equity-line").get_attribute("points")
    assert len(points.split()) == 1000  # the chart is drawn from the (thinned) curve
    wait_for(lambda: attr(browser, "live-status", "data-status") == "live", what="the stream")
    # the ledger moves: the page follows without a reload
    fill_id = add_fill(finished_run, 1, price="41000.25")
    wait_for(lambda: attr(browser, "fill-count") == str(len(fills) + 1), 5, "a live fill")
    first = browser.find_element("css selector", "#fills tbody tr")
    assert first.get_attribute("data-key") == fill_id
    assert first.find_element("css selector", 'td[data-field="price"]').text == "41000.25"
    assert browser.find_element("id", "equity").text == "50000.5"


def test_clicking_kill_on_the_page_halts_a_running_paper_run(
        tmp_path: Path, serve: Any, browser: Any) -> None:
    run_dir = tmp_path / "paper-run"
    with paper_run(run_dir) as run:
        wait_for(lambda: (run_dir / "argus.db").exists() and len(query(
            run_dir, "select 1 from fills")) >= 2, 20, "the paper run to trade")
        server = serve(run_dir, poll_s=0.25)
        browser.get(server.url + "/")
        assert browser.find_element("id", "trading-state").text == "ACTIVE"
        assert attr(browser, "run-mode") == "paper"
        wait_for(lambda: attr(browser, "live-status", "data-status") == "live", 10,
                 "the stream")
        # the page follows the running loop: its fill count grows without a reload
        shown = int(attr(browser, "fill-count"))
        wait_for(lambda: int(attr(browser, "fill-count")) > shown, 10,
                 "the fill count to grow live")
        assert run.runner.trading_state.value == "active"
        browser.find_element("id", "token").send_keys(TOKEN)
        browser.find_element("id", "reason").send_keys("halt from the page")
        browser.find_element("id", "kill-button").click()
        wait_for(lambda: attr(browser, "control-result", "data-status") == "ok", 10,
                 "the kill to be accepted")
        assert "done by alice" in browser.find_element("id", "control-result").text
        # the running loop adopts it at its next commit
        wait_for(lambda: run.runner.trading_state.value == "halted", 10, "the loop to halt")
        wait_for(lambda: browser.find_element("id", "trading-state").text == "HALTED",
                 5, "the page to show HALTED")
        assert attr(browser, "state-by") == "alice"
        halted_ns = time.time_ns()
        time.sleep(1.5)  # ~30 more bars of a live market: every buy is now vetoed
    summary = run.summary
    assert summary.trading_state == "halted" and summary.fills >= 2
    assert control_value(run_dir) == {"state": "halted", "reason": "halt from the page",
                                      "flatten": False, "by": "alice", "via": "dashboard"}
    audit = query(run_dir, "select action, actor, reason from dashboard_audit")
    assert audit == [{"action": "kill", "actor": "alice", "reason": "halt from the page"}]
    # nothing but a reduce-only exit after the halt; the buys it wanted were vetoed
    late = query(run_dir, "select side, reduce_only from orders where ts_ns > ?", (halted_ns,))
    assert all(o["side"] == "sell" and o["reduce_only"] == 1 for o in late)
    vetoes = query(run_dir, "select reason from risk_events where check_name = "
                            "'trading_state' and action = 'veto'")
    assert vetoes and all("HALTED" in v["reason"] for v in vetoes)
    position = query(run_dir, "select quantity from positions where instrument_id = ?",
                     (IID,))
    assert Decimal(position[0]["quantity"]) in (Decimal(0), Decimal(1))
