"""A person follows a real paper run live in the browser and halts it there, every part
a process of its own speaking real protocols:

* the local Kraken exchange (``argus_venue_kraken.testing.paper_market``): Kraken's REST
  ``AssetPairs`` and its WS v2 ``book`` / ``ohlc`` channels on 127.0.0.1, a bar every 0.2 s;
* ``argus run`` (the CLI, ``mode = "paper"``): the Kraken venue plugin on that exchange,
  ``ma_cross`` trading through the paper broker on the served book;
* ``argus serve`` on a free port, with a token for ``alice``;
* headless Chromium (Selenium, Debian's chromedriver).

The page shows the run ACTIVE with its fill count growing; a wrong token is refused and
changes nothing; Kill (or Kill and flatten) clicked with the token halts it: the run's
ledger shows the control row naming who and why, the loop's own record that it adopted
it, and every later entry vetoed; the page shows HALTED, not adopted while the market
is held (no event, no commit), then adopted; the process keeps running,
halted, until SIGINT, when it exits 130 ("interrupted", the CLI's documented code).
The ledger is read with apsw, read-only, independently of the dashboard.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argus_testkit.processes import (
    EXIT_INTERRUPTED,
    ArgusRun,
    ArgusServe,
    control,
    count,
    query,
    seq,
    wait_for,
)
from argus_venue_kraken.testing.paper import INSTRUMENT, KrakenMarket, paper_config
from dashboard_helpers import NEEDS_CHROMIUM, TOKEN, TOKEN_ENV, attr

pytestmark = [pytest.mark.slow, NEEDS_CHROMIUM]


class PaperSession:
    """The exchange, the paper run on it and the dashboard over it; stopped at the end
    (whatever is still running)."""

    def __init__(self, tmp: Path) -> None:
        self.children: list[Any] = []
        self.market = self._own(KrakenMarket(tmp))
        config = paper_config(tmp / "paper.toml", self.market, plugins=["dashboard"])
        self.run_dir = tmp / "paper-run"
        self.run = self._own(ArgusRun(config, self.run_dir))
        self.run.wait_for_fills(2)
        self.serve = self._own(ArgusServe(self.run_dir, "--token", f"alice=$env:{TOKEN_ENV}",
                                          "--poll", "0.25", env={TOKEN_ENV: TOKEN}))

    def _own(self, child: Any) -> Any:
        self.children.append(child)
        return child

    def close(self) -> None:
        for child in reversed(self.children):
            child.stop()


@pytest.fixture
def paper(tmp_path: Path) -> Iterator[PaperSession]:
    """A running paper session (see :class:`PaperSession`)."""
    session = PaperSession(tmp_path)
    try:
        yield session
    finally:
        session.close()


def long_quantity(run_dir: Path) -> Decimal:
    """The run's BTC position, from the ledger."""
    rows = query(run_dir, "select quantity from positions where instrument_id = ?",
                 (INSTRUMENT,))
    return Decimal(rows[0]["quantity"]) if rows else Decimal(0)


def click(browser: Any, button: str, token: str, reason: str) -> tuple[str, str]:
    """Fill in the token and the reason, click ``button``; the page's answer (status,
    text) once it is back."""
    for ident, value in (("token", token), ("reason", reason)):
        field = browser.find_element("id", ident)
        field.clear()
        field.send_keys(value)
    browser.find_element("id", button).click()
    wait_for(lambda: attr(browser, "control-result", "data-status") in ("ok", "error"), 15,
             f"the answer to {button}")
    return (attr(browser, "control-result", "data-status"),
            browser.find_element("id", "control-result").text)


def page_state(browser: Any) -> str:
    """The trading state the page shows."""
    return str(browser.find_element("id", "trading-state").text)


def follow_live(paper: PaperSession, browser: Any) -> None:
    """Open the page: the run is ACTIVE, in paper mode, and its fill count grows without
    a reload."""
    browser.get(paper.serve.url + "/")
    assert page_state(browser) == "ACTIVE"
    assert attr(browser, "run-mode") == "paper"
    wait_for(lambda: attr(browser, "live-status", "data-status") == "live", 15,
             "the live stream")
    shown = int(attr(browser, "fill-count"))
    assert shown >= 2
    wait_for(lambda: int(attr(browser, "fill-count")) >= shown + 2, 30,
             "new fills to appear on the page while the run trades")
    newest = browser.find_element("css selector", "#fills tbody tr").get_attribute("data-key")
    assert query(paper.run_dir, "select 1 from fills where fill_id = ?", (newest,))


def adopted(run_dir: Path, reason: str) -> dict[str, Any]:
    """The loop's record that it adopted a person's HALTED (a ``control`` risk event)."""
    return dict(wait_for(lambda: next(iter(query(
        run_dir, "select id, action from risk_events where check_name = 'control' and "
                 "reason = ?", (reason,))), None), 20, f"the loop to adopt {reason!r}"))


def test_a_wrong_token_is_refused_and_kill_on_the_page_halts_the_running_paper_run(
        paper: PaperSession, browser: Any) -> None:
    run_dir = paper.run_dir
    follow_live(paper, browser)

    # The market holds still: the page catches up with the ledger, figure for figure.
    paper.market.settle(run_dir)

    def figures_match() -> bool:
        last = query(run_dir, "select equity, cash from equity order by ts_ns desc limit 1")
        return [attr(browser, "fill-count"), attr(browser, "equity"), attr(browser, "cash")
                ] == [str(count(run_dir, "fills")), last[0]["equity"], last[0]["cash"]]

    wait_for(figures_match, 10, "the page's fills, equity and cash to equal the ledger's")

    # A wrong token: refused, and nothing changes.
    status, text = click(browser, "kill-button", "not-the-token-1", "should not stop")
    assert status == "error" and "valid token is required" in text
    assert control(run_dir) is None
    assert query(run_dir, "select * from dashboard_audit") == []
    assert page_state(browser) == "ACTIVE" and paper.run.alive()

    # The token: HALTED, named and explained.
    status, text = click(browser, "kill-button", TOKEN, "halt from the browser")
    assert (status, text) == ("ok", "kill done by alice")
    assert control(run_dir) == {"state": "halted", "reason": "halt from the browser",
                                "flatten": False, "by": "alice", "via": "dashboard"}
    wait_for(lambda: page_state(browser) == "HALTED", 10, "the page to show HALTED")
    assert attr(browser, "state-by") == "alice"
    assert attr(browser, "state-reason") == "halt from the browser"
    # The held market brings no event, yet the loop adopts the kill at its next idle tick
    # (a quiet market gives one every second; it waited for the next event before).
    orders_before = count(run_dir, "orders")
    adoption = adopted(run_dir, "alice: halt from the browser")
    assert adoption["action"] == "halted"
    wait_for(lambda: attr(browser, "state-adopted") == "yes", 10,
             "the page to show the loop adopted the kill")

    # The market goes on: entries are vetoed.
    paper.market.release()
    adopted_at = seq(run_dir)
    wait_for(lambda: count(run_dir, "risk_events", "check_name = 'trading_state' and "
                                                   "action = 'veto' and id > ?",
                           (adoption["id"],)), 20, "a vetoed entry after the halt")
    vetoes = query(run_dir, "select reason from risk_events where check_name = "
                            "'trading_state' and id > ?", (adoption["id"],))
    assert all("HALTED" in v["reason"] for v in vetoes)
    # Halted, not crashed: it goes on reading the market.
    wait_for(lambda: seq(run_dir) >= adopted_at + 10, 20, "ten more events after the halt")
    assert paper.run.alive(), paper.run.output[-3000:]
    later = query(run_dir, "select side, reduce_only from orders where rowid > ?",
                  (orders_before,))
    assert all(o["reduce_only"] == 1 for o in later), later  # no new exposure
    assert query(run_dir, "select action, actor, reason from dashboard_audit") == [
        {"action": "kill", "actor": "alice", "reason": "halt from the browser"}]

    # The page follows the loop's vetoes too (held market: a settled ledger).
    paper.market.settle(run_dir)
    wait_for(lambda: attr(browser, "risk-event-count") == str(count(run_dir, "risk_events")),
             10, "the page's risk events to catch up")
    assert page_state(browser) == "HALTED"

    code = paper.run.interrupt()
    assert code == EXIT_INTERRUPTED, paper.run.output[-3000:]
    assert "interrupted" in paper.run.output
    assert control(run_dir) == {"state": "halted", "reason": "halt from the browser",
                                "flatten": False, "by": "alice", "via": "dashboard"}
    assert query(run_dir, "select status from runs") == [{"status": "stopped"}]  # Ctrl-C


def test_kill_and_flatten_on_the_page_closes_the_running_paper_runs_position(
        paper: PaperSession, browser: Any) -> None:
    run_dir = paper.run_dir
    follow_live(paper, browser)

    # Hold the market while the run is long (ma_cross is long for a few bars at a time).
    held = Decimal(0)
    for _ in range(10):
        wait_for(lambda: long_quantity(run_dir) > 0, 30, "the run to hold a position")
        paper.market.settle(run_dir)
        held = long_quantity(run_dir)
        if held > 0:
            break
        paper.market.release()  # it sold before the market stopped: next time
    assert held > 0

    orders_before = count(run_dir, "orders")  # the held market sends the strategy nothing
    status, text = click(browser, "kill-flatten-button", TOKEN, "flatten from the browser")
    assert (status, text) == ("ok", "kill_flatten done by alice")
    assert control(run_dir) == {"state": "halted", "reason": "flatten from the browser",
                                "flatten": True, "by": "alice", "via": "dashboard"}
    wait_for(lambda: page_state(browser) == "HALTED", 10, "the page to show HALTED")
    assert attr(browser, "state-flatten") == "yes"

    # Adopted in the held market (its idle tick); the paper flatten fills on the next bar.
    adoption = adopted(run_dir, "alice: flatten from the browser (and flatten)")
    assert adoption["action"] == "halted"
    wait_for(lambda: attr(browser, "state-adopted") == "yes", 10,
             "the page to show the loop adopted the kill")
    paper.market.release()
    wait_for(lambda: long_quantity(run_dir) == 0, 20, "the position to be closed")
    later = query(run_dir, "select strategy, side, quantity, reduce_only, status, reason "
                           "from orders where rowid > ?", (orders_before,))
    flattening = [o for o in later if o["strategy"] == "flatten"]
    assert len(flattening) == 1, later
    (order,) = flattening
    assert (order["side"], order["reduce_only"], order["status"]) == ("sell", 1, "filled")
    assert Decimal(order["quantity"]) == held
    assert order["reason"] == "flatten: flatten from the browser"
    assert all(o["reduce_only"] == 1 for o in later), later
    # Halted and flat, and still running: entries are vetoed, nothing reopens.
    adopted_at = seq(run_dir)
    wait_for(lambda: count(run_dir, "risk_events", "check_name = 'trading_state' and "
                                                   "action = 'veto' and id > ?",
                           (adoption["id"],)), 20, "a vetoed entry after the halt")
    wait_for(lambda: seq(run_dir) >= adopted_at + 10, 20, "ten more events after the halt")
    assert paper.run.alive(), paper.run.output[-3000:]
    assert long_quantity(run_dir) == 0
    assert count(run_dir, "orders") == orders_before + len(later)

    # The page shows the flat position.
    paper.market.settle(run_dir)
    cell = f'#positions tbody tr[data-key="{INSTRUMENT}"] td[data-field="quantity"]'
    wait_for(lambda: Decimal(browser.find_element("css selector", cell).get_attribute(
        "data-value")) == long_quantity(run_dir) == 0, 10, "the page to show the flat position")
    assert page_state(browser) == "HALTED"

    code = paper.run.interrupt()
    assert code == EXIT_INTERRUPTED, paper.run.output[-3000:]
    assert long_quantity(run_dir) == 0
    assert query(run_dir, "select action, actor, reason from dashboard_audit") == [
        {"action": "kill_flatten", "actor": "alice", "reason": "flatten from the browser"}]
