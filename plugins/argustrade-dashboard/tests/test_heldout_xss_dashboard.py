"""Held-out red team of the dashboard's HTML: hostile text in every ledger field the page
shows (instrument ids, strategies, risk checks and their reasons, signals, the latch's
reason and author), written with the core's ``Ledger`` API into a real replay run, read
back with the standard library's HTML parser and in headless Chromium.  What was found:

* every value was escaped, in the page and by the script (the guard below passed
  before), but the answers carried no ``Content-Security-Policy``: one escaping slip
  would run a script with the controls' token field on the page;
* a long text was put on the page whole, twice (the cell and its ``data-value``), in a
  ``nowrap`` cell: two 1 MB risk reasons made a 4 MB page one line 1 MB wide, and the
  200 rows a page holds could be 400 MB; rows arriving over the stream were the same.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import time
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from argus_dashboard import RunDir, create_app
from dashboard_helpers import NEEDS_CHROMIUM, attr, wait_for
from starlette.testclient import TestClient

from argus_core import Ledger, Order, OrderStatus, Position, Side

HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(2)>',
           "</script><script>alert(3)</script>", "javascript:alert(4)", "{{7*7}}",
           "a\u2028b\u2029c", "</style><script>alert(5)</script>",
           "x:expression(alert(6))", "' onmouseover='alert(7)' x='", "<!--<script>",
           "</textarea><svg onload=alert(8)>"]
LONG = ("the spread blew out, vetoed; " * 40_000)[:1_000_000]


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text of every script element."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: tuple[dict[str, str | None], list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = (dict(attrs), [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script[0], "".join(self._script[1])))
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script[1].append(data)


def _parse(page: str) -> _Elements:
    parser = _Elements()
    parser.feed(page)
    parser.close()
    return parser


def _add_hostile_rows(run_dir: Path, texts: list[str], reason: str | None = None) -> None:
    """Per text: a risk event, a signal, a working order and a position of it; the latch
    set by it."""
    with Ledger.in_dir(run_dir) as ledger, ledger.transaction():
        run_id = ledger.query("select run_id from runs")[0]["run_id"]
        for i, text in enumerate(texts):
            ts = time.time_ns() + i
            ledger.record_risk_event(ts, text, text, reason or text, f"{text}#{i}", text,
                                     json.dumps({"why": text}))
            ledger.record_signal(text, f"{text}#{i}", ts, 1.0)
            ledger.insert_order(Order(client_order_id=f"{text}-{i}", venue="replay",
                                      instrument_id=f"{text}#{i}", side=Side.BUY,
                                      quantity=Decimal(1), limit_price=Decimal(1),
                                      strategy=text, ts_ns=ts, status=OrderStatus.OPEN,
                                      reason=text), run_id)
            ledger.upsert_position(Position(instrument_id=f"{text}#{i}",
                                            quantity=Decimal(1)), ts)
        ledger.set_control("trading_state", json.dumps(
            {"state": "halted", "reason": texts[0], "by": texts[-1]}), time.time_ns())


def _client(run_dir: Path) -> TestClient:
    return TestClient(create_app([RunDir("0", run_dir.name, run_dir)]))


def test_hostile_ledger_text_never_becomes_markup(finished_run: Path) -> None:
    """A guard (it passed before): no payload is an element, an attribute or a script,
    and the page's JSON blocks hold no ``<``; every payload is on the page as text."""
    _add_hostile_rows(finished_run, HOSTILE)
    with _client(finished_run) as client:
        page = client.get("/runs/0").text
        assert client.get("/api/runs/0").headers["content-type"] == "application/json"
    parsed = _parse(page)
    assert {tag for tag, _ in parsed.tags} & {"img", "svg", "textarea", "iframe"} == {"svg"}
    assert not [a for _, attrs in parsed.tags for a in attrs
                if a.startswith("on") or a in ("src", "x")]
    assert not [a for _, attrs in parsed.tags for a, v in attrs.items()
                if a in ("href", "action", "formaction") and "javascript" in (v or "")]
    data_blocks = [body for attrs, body in parsed.scripts
                   if attrs.get("type") == "application/json"]
    assert len(data_blocks) == len(parsed.scripts) - 1 == 4
    assert not any(set(body) & {"<", "\u2028", "\u2029"} for body in data_blocks)
    assert not any("alert(" in body for _, body in parsed.scripts)
    text = html.unescape(re.sub(r"<[^>]*>", "", page))
    assert all(h in text for h in HOSTILE)


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_every_answer_has_a_content_security_policy_that_admits_only_its_own_script(
        finished_run: Path) -> None:
    """Before: no ``Content-Security-Policy`` header at all.  Now the page's one script
    and style are allowed by their hashes, nothing else runs or loads, and no one may
    frame the page."""
    with _client(finished_run) as client:
        answers = [client.get(u) for u in ("/", "/runs/0", "/api/runs/0", "/healthz")]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff"
        policy = answer.headers.get("content-security-policy", "")
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
        assert directives.get("default-src") == "'none'"
        assert directives.get("frame-ancestors") == "'none'"
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    page = answers[1]
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    parsed = _parse(page.text)
    code = [body for attrs, body in parsed.scripts if attrs.get("type") != "application/json"]
    assert len(code) == 1
    policy = page.headers["content-security-policy"]
    assert f"script-src {_hash(code[0])}" in policy
    style = re.search(r"<style>(.*?)</style>", page.text, re.S)
    assert style is not None and _hash(style.group(1)) in policy
    assert not any("style" in attrs for _, attrs in parsed.tags)  # no inline style attributes


def test_a_one_megabyte_reason_is_cut_on_the_page(finished_run: Path) -> None:
    """Before: the two 1 MB reasons were in the page whole, each twice: a 4 MB page.  Now
    the cell and its ``data-value`` hold the start, ``data-length`` the whole length, and
    the cell links to the JSON API, which has the whole text."""
    with _client(finished_run) as client:
        before = client.get("/runs/0").text
        _add_hostile_rows(finished_run, ["r1", "r2"], reason=LONG)
        page = client.get("/runs/0").text
        whole = client.get("/api/runs/0").json()
    assert len(page) - len(before) < 10_000  # two cut reasons, and the other new rows
    cells = re.findall(r'<td data-field="reason"[^>]*>', page)
    long_cells = [c for c in cells if 'data-length="1000000"' in c]
    assert len(long_cells) == 2
    links = re.findall(r'data-length="1000000">[^<]*… <a class="cut" href="([^"]*)">', page)
    assert links == ["/api/runs/0", "/api/runs/0"]
    assert [e["reason"] for e in whole["risk_events"][:2]] == [LONG, LONG]


@pytest.mark.slow
@NEEDS_CHROMIUM
def test_the_script_runs_under_the_policy_and_cuts_streamed_rows(
        finished_run: Path, serve: Any, browser: Any) -> None:
    """In Chromium: the page's script runs with the policy on (the stream goes live);
    a hostile risk event and a 1 MB one arriving over the stream show as text, the long
    one cut as the server cuts it.  Before: the streamed 1 MB reason was a 1 MB cell."""
    server = serve(finished_run)
    browser.get(server.url + "/runs/0")
    wait_for(lambda: attr(browser, "live-status", "data-status") == "live", 10, "the stream")
    _add_hostile_rows(finished_run, [HOSTILE[1]])
    _add_hostile_rows(finished_run, ["long"], reason=LONG)
    wait_for(lambda: browser.find_element("css selector", "#risk-events tbody tr")
             .get_attribute("data-key") is not None and browser.find_element(
                 "css selector", '#risk-events tbody tr td[data-field="check_name"]'
             ).text == "long", 10, "the streamed risk events")
    rows = browser.find_elements("css selector", "#risk-events tbody tr")
    cell = rows[0].find_element("css selector", 'td[data-field="reason"]')
    assert cell.get_attribute("data-length") == str(len(LONG))
    assert len(cell.get_attribute("data-value")) < 2_000 and len(cell.text) < 2_000
    hostile = rows[1].find_element("css selector", 'td[data-field="reason"]')
    assert hostile.text == HOSTILE[1]
    assert browser.find_elements("css selector", "img") == []
    logs = [e["message"] for e in browser.get_log("browser")]
    assert not [m for m in logs if "Content Security Policy" in m], logs
