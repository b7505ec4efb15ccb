"""The core's report.html with hostile ledger text (a red team of the pages Argus renders).

Found: ``risk_events.action`` went into the page unescaped (``<td>{r['action']}</td>``):
an action ``"><img src=x onerror=alert(1)>`` ran in the browser (seen in headless
Chromium), and ``<!--<script>`` commented out the rest of the page (every section after
the risk table was gone from the DOM).  The risk table's example reason was shown whole:
eleven 1 MB reasons made an 11 MB page.
"""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from argus_core import Ledger
from argus_core.report import write_report

HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(2)>',
           "</textarea><svg onload=alert(3)>", "<!--<script>"]
T0 = 1_640_995_200 * 10**9


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def _run(run_dir: Path, reason: str | None = None) -> Path:
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("r", "replay", 0, json.dumps({"argus": {"plugins": []}}))
        with ledger.transaction():
            for i, text in enumerate(HOSTILE):
                ledger.record_risk_event(T0 + i, text, text, reason or text)
            ledger.append_equity([(T0 + h * 3_600 * 10**9, "10000", "10000", "0")
                                  for h in range(3)])
        ledger.finish_run("r")
    return run_dir


def test_a_risk_events_action_is_text(tmp_path: Path) -> None:
    page = write_report(_run(tmp_path / "run")).read_text()
    parsed = _Tags()
    parsed.feed(page)
    assert {t for t, _ in parsed.tags} & {"img", "textarea", "script"} == set()
    assert not [a for _, attrs in parsed.tags for a in attrs if a.startswith("on")]
    assert parsed.comments == []
    assert "<h2>Plays" in page and parsed.tags[-1][0] in ("table", "tr", "th")


def test_a_one_megabyte_risk_reason_is_cut(tmp_path: Path) -> None:
    reason = ("the spread blew out; " * 50_000)[:1_000_000]
    page = write_report(_run(tmp_path / "run", reason)).read_text()
    assert len(page) < 100_000
    assert re.search(r"1,000,000 characters", page)
