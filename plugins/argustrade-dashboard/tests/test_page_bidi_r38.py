"""Red team r38: bidi overrides and control characters in ledger text on the page.

Found (failed before its fix): an instrument, a strategy id or a reason holding U+202E
(RIGHT-TO-LEFT OVERRIDE) was put in its cell as it was: escaped, so no markup, but
obeyed by the browser, which showed the rest of the cell reversed (``BTC\\u202eDSU-``
read as ``BTC-USD``; a reason's figures backwards).  Now the page and its script write
such characters out (``\\u202e``); ``data-value`` and the JSON API keep the exact text.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest
from argus_dashboard import RunDir, create_app
from argus_dashboard.page import _SCRIPT
from starlette.testclient import TestClient

from argus_core import Ledger, Position

HIDDEN = ["\u202e", "\u2066", "\u200f", "\x1b", "\x00"]
NAME = "BTC\u202e-USD\u2066x\u200f\x1b[31m\x00"


def _cells(page: str, field: str) -> list[tuple[str, str]]:
    """(``data-value``, shown text) of every table cell of ``field``."""
    found = re.findall(rf'<td data-field="{field}" data-value="([^"]*)"[^>]*>(.*?)</td>',
                       page)
    return [(html.unescape(v), html.unescape(re.sub(r"<[^>]*>", "", t))) for v, t in found]


def test_hidden_controls_in_ledger_text_are_shown_written_out(finished_run: Path) -> None:
    with Ledger.in_dir(finished_run) as ledger:
        ledger.upsert_position(Position(instrument_id=NAME, quantity=Decimal(1)),
                               time.time_ns())
        ledger.set_control("trading_state", json.dumps(
            {"state": "halted", "reason": f"spread {NAME} 100", "by": NAME}), time.time_ns())
    with TestClient(create_app([RunDir("0", finished_run.name, finished_run)])) as client:
        page = client.get("/runs/0").text
        api = client.get("/api/runs/0").json()
    text = html.unescape(re.sub(r"<[^>]*>", "", page))
    leaked = sorted({ascii(c) for c in HIDDEN if c in text})
    assert not leaked, f"the page shows hidden characters as they are: {leaked}"
    ours = [(v, t) for v, t in _cells(page, "instrument_id") if "-USD" in v]
    assert ours, "no positions cell holds the instrument"
    assert all(v == NAME for v, _ in ours), [ascii(v) for v, _ in ours]
    assert all(t.startswith("BTC\\u202e-USD\\u2066x\\u200f\\u001b[31m") for _, t in ours), ours
    assert "by" in text and "BTC\\u202e-USD" in text  # the latch's author, a figure
    assert NAME in [p["instrument_id"] for p in api["positions"]]  # the API: exact text


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the script")
def test_the_pages_script_writes_hidden_controls_out_too() -> None:
    """The stream's rows are built by the script: its ``show`` must match the server's."""
    start = _SCRIPT.index("  const iso = ")
    end = _SCRIPT.index("  function setFigure")
    program = (_SCRIPT[start:end] + "\nprocess.stdout.write(JSON.stringify(["
               "show('instrument_id', " + json.dumps(NAME) + "), show('qty', '1.5')]));")
    done = subprocess.run(["node", "-e", program], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    shown, plain = json.loads(done.stdout)
    assert shown == "BTC\\u202e-USD\\u2066x\\u200f\\u001b[31m\\u0000" and plain == "1.5"
