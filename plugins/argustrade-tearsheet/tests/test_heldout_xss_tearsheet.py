"""Held-out red team of the tearsheet's HTML: text from the ledger that strangers wrote
(instrument ids from venues, order reasons from strategies, scanners' findings) in a run
written with the core's own ``Ledger`` API, rendered and read back with the standard
library's HTML parser.  What was found:

* every table cell was escaped (the guard below passed before), but a long text was put
  on the page whole: a 1 MB order reason was 1 MB of the trades table, twice (entry and
  open position), and 500 such trades would be a 500 MB page;
* the charts' JSON in ``<script>`` escaped only ``</``: a label ``<!--<script>`` puts the
  HTML tokenizer in its "script data double escaped" state, where the element's own
  ``</script>`` no longer ends it and the rest of the page is swallowed as script.
"""

from __future__ import annotations

import html
import json
import re
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

from argus_tearsheet import render
from argus_tearsheet.plugin import tearsheet_sections
from argus_tearsheet.render import plot_div

from argus_core import Fill, Ledger, Liquidity, Order, OrderStatus, Side

HOUR_NS = 3_600 * 10**9
T0 = 1_640_995_200 * 10**9
HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(2)>',
           "</script><script>alert(3)</script>", "javascript:alert(4)", "{{7*7}}",
           "a\u2028b\u2029c", "</style><script>alert(5)</script>",
           "x:expression(alert(6))", "' onmouseover='alert(7)' x='", "<!--<script>",
           "</textarea><svg onload=alert(8)>"]


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text of every script element."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._script: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.scripts.append("".join(self._script))
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script.append(data)


def _parse(page: str) -> _Elements:
    parser = _Elements()
    parser.feed(page)
    parser.close()
    return parser


def _hostile_run(run_dir: Path, texts: list[str], reason: str | None = None) -> Path:
    """Per text: a strategy, an instrument and reasons of that text trading a round trip
    and opening a position again, and an opportunity (scanner, kind, id, lane) of it."""
    with Ledger.in_dir(run_dir) as ledger:
        ledger.start_run("hostile", "replay", 0,
                         json.dumps({"run": {"starting_cash": "10000"}}))
        hour = 0
        with ledger.transaction():
            for i, text in enumerate(texts):
                for k, side in enumerate((Side.BUY, Side.SELL, Side.BUY)):
                    hour += 1
                    coid = f"{text}-{i}-{k}"
                    ledger.insert_order(Order(
                        client_order_id=coid, venue="replay", instrument_id=f"{text}#{i}",
                        side=side, quantity=Decimal(1), strategy=text, ts_ns=T0 + hour * HOUR_NS,
                        status=OrderStatus.FILLED, reason=reason or f"{text} {k}",
                        basket_id=f"{text}-opp" if k == 2 else None), "hostile")
                    ledger.insert_fill(Fill(
                        fill_id=f"{coid}-f", client_order_id=coid, venue="replay",
                        instrument_id=f"{text}#{i}", side=side, price=Decimal(100 + k),
                        quantity=Decimal(1), fee=Decimal("0.01"), liquidity=Liquidity.TAKER,
                        ts_ns=T0 + hour * HOUR_NS))
                ledger.insert_opportunity(f"{text}-opp", text, T0 + hour * HOUR_NS, text,
                                          Decimal("1.5"), True, json.dumps({"lane": text}))
            ledger.append_equity([(T0 + h * HOUR_NS, "10000", str(10000 + h % 5), "100")
                                  for h in range(hour + 2)])
        ledger.finish_run("hostile")
    return run_dir


def test_hostile_ledger_text_never_becomes_markup(tmp_path: Path) -> None:
    """A guard (it passed before): no payload is an element, an attribute or a script;
    the only scripts are plotly.js and the charts' ``Plotly.newPlot`` calls."""
    page = "".join(tearsheet_sections(_hostile_run(tmp_path / "run", HOSTILE)).values())
    parsed = _parse(page)
    assert {tag for tag, _ in parsed.tags} & {"img", "svg", "textarea", "iframe"} == set()
    assert not [a for _, attrs in parsed.tags for a in attrs
                if a.startswith("on") or a in ("src", "x")]
    assert len(parsed.scripts) >= 2
    assert all(s.startswith("Plotly.newPlot(") for s in parsed.scripts[1:])
    assert not any("alert(" in s for s in parsed.scripts)
    text = html.unescape(re.sub(r"<[^>]*>", "", page))  # each payload shows, as text
    assert all(h in text for h in HOSTILE)


def test_a_one_megabyte_reason_is_cut_and_can_be_opened(tmp_path: Path) -> None:
    """Before: the 1 MB reason was on the page whole, in the trades and the open
    positions (2 MB of a table cell); now each shows its start, and opens (a
    ``<details>``) on up to ``MAX_TEXT_SHOWN`` characters and says where the rest is."""
    reason = ("momentum up, bought more; " * 40_000)[:1_000_000]
    sections = tearsheet_sections(_hostile_run(tmp_path / "run", ["BTC"], reason=reason))
    trades = sections["Trader's report: trades"]
    most = getattr(render, "MAX_TEXT_SHOWN", 10_000)
    assert len(trades) < 3 * most
    assert "<details" in trades and "1,000,000 characters" in trades
    assert "argus export" in trades
    assert len(sections["Trader's report: open positions"]) < 3 * most


def test_chart_json_cannot_open_or_close_its_script(tmp_path: Path) -> None:
    """Before: ``<!--<script>`` went into the script as it is (only ``</`` was escaped);
    now no ``<``, ``>``, ``&`` or raw U+2028/U+2029 is in it, and JSON reads it back."""
    label = "<!--<script>a&b\u2028</script>"
    chart = plot_div([{"type": "scatter", "name": label, "x": [1], "y": [2]}], {}, 100)
    script = _parse(chart + "<p>after</p>").scripts
    assert len(script) == 1
    body = script[0]
    assert not set(body) & {"<", ">", "&", "\u2028", "\u2029"}
    args = body.removeprefix("Plotly.newPlot(").removesuffix(");").split(", ", 1)[1]
    decoded = json.JSONDecoder().raw_decode(args)[0]
    assert decoded[0]["name"] == label
