"""Third held-out red team of the dashboard: a resume that stops a flatten, ledgers whose
contents or file the pages cannot read, a control posted to a file that is no ledger, and
a browser's Referer from another site.  What was found (each test failed before its fix):

* a resume that stopped a flatten under way said nothing of the positions it leaves open
  (``argus resume`` and the Telegram bot's ``/resume`` name them);
* a latch that is JSON but not an object, or whose state is no text, made every page, the
  JSON API and the list of runs a bare 500 and froze the live stream; a time stamp that is
  no integer made the page a 500;
* an equity text that is no finite number (``NaN``, ``1e400``, ``abc``) made the JSON API a
  500, the page a 500 (``abc``) or a page whose data block JSON.parse refuses (``NaN``),
  and the stream never sent anything again;
* a ledger damaged while served made every read a bare 500, the list of all runs included;
* a control on a zero-byte or foreign ``argus.db`` made it a ledger (``argus kill`` refuses
  it), and a damaged one answered 503 "try again", as if it were only busy;
* a POST with no ``Origin`` but a ``Referer`` from another site was carried out;
* an ``Origin`` that is no URL (``http://[::1``) was a 500;
* a form of 30 ASCII fields was refused as "not UTF-8".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import apsw
import pytest
from argus_dashboard import RunDir, Tokens, create_app
from argus_dashboard.live import LiveCursor
from dashboard_helpers import TOKEN, control_value
from starlette.testclient import TestClient

from argus_core import Ledger

ALICE = {"X-Argus-Token": TOKEN}


def client(run_dirs: list[Path], tokens: Tokens | None = None) -> TestClient:
    """A test client that answers a server error as a 500 (not a raised exception)."""
    runs = [RunDir(str(i), p.name, p) for i, p in enumerate(run_dirs)]
    return TestClient(create_app(runs, tokens), raise_server_exceptions=False)


def write(run_dir: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    """One write to the run's ledger, as another process would make it."""
    with Ledger.in_dir(run_dir) as ledger, ledger.immediate():
        ledger.conn.execute(sql, params)


def test_a_resume_that_stops_a_flatten_names_the_positions_it_leaves_open(
        finished_run: Path, tokens: Tokens) -> None:
    """Before: the answer was "resume done" with nothing on the two open positions."""
    write(finished_run, "insert or replace into positions (instrument_id, quantity, "
                        "avg_price, realized_pnl, ts_ns) values ('replay:ETH/USD', '2', '100',"
                        " '0', 1), ('replay:<b>SOL</b>', '-1', '5', '0', 1)")
    c = client([finished_run], tokens)
    assert c.post("/api/runs/0/kill_flatten", headers=ALICE,
                  json={"reason": "flatten"}).json()["changed"] is True
    answer = c.post("/api/runs/0/resume", headers=ALICE, json={"reason": "go"}).json()
    assert answer["changed"] is True
    assert answer["left_open"] == ["replay:<b>SOL</b>", "replay:ETH/USD"]  # BTC is flat
    assert ("the flatten under way stops: 2 position(s) stay open (replay:<b>SOL</b>, "
            "replay:ETH/USD); kill and flatten closes them") in answer["message"]
    # A resume that stops no flatten says nothing of positions.
    assert c.post("/api/runs/0/kill", headers=ALICE).json()["changed"] is True
    plain = c.post("/api/runs/0/resume", headers=ALICE).json()
    assert plain["left_open"] == [] and "stay open" not in plain.get("message", "")
    # The trail keeps it (a form posted without the script never sees the answer).
    details = [json.loads(a["detail_json"]) for a in c.get("/api/runs/0").json()["audit"]
               if a["action"] == "resume"]
    assert [d.get("left_open") for d in details] == [None, ["replay:<b>SOL</b>",
                                                            "replay:ETH/USD"]]


@pytest.mark.parametrize("value", ["5", "[]", '"halted"', '{"state": {"a": 1}}',
                                   '{"state": "stopped"}'])
def test_a_latch_the_page_cannot_read_is_shown_as_unreadable_not_a_500(
        value: str, finished_run: Path, tokens: Tokens) -> None:
    """Before: ``AttributeError``/apsw ``TypeError``: the page, the API and the list of
    runs were 500s and every poll of the stream failed."""
    write(finished_run, "update control set value = ?, ts_ns = 'soon' "
                        "where key = 'trading_state'", (value,))
    c = client([finished_run], tokens)
    for path in ("/", "/api/runs/0", "/api/runs"):
        assert c.get(path).status_code == 200, path
    state = c.get("/api/runs/0").json()["trading_state"]
    assert state["state"] == "unknown" and "unreadable" in state["reason"]
    assert any(n == "state" for n, _ in LiveCursor(finished_run).poll())
    # and a kill replaces it, as the core's rule says
    assert c.post("/api/runs/0/kill", headers=ALICE).json()["changed"] is True
    assert (control_value(finished_run) or {})["state"] == "halted"


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-inf", "1e400", "abc", ""])
def test_an_equity_text_that_is_no_finite_number_leaves_the_rest_readable(
        text: str, finished_run: Path) -> None:
    """Before: the API a 500 (NaN is no JSON), the page a 500 (``abc``) or carrying NaN in
    its data block (the browser's JSON.parse refuses it), the stream failing each poll."""
    write(finished_run, "insert into equity (ts_ns, cash, equity, gross_exposure) "
                        "values (?, ?, ?, ?)", (2 ** 62, text, text, text))
    c = client([finished_run])
    api = c.get("/api/runs/0")
    assert api.status_code == 200 and api.json()["summary"]["equity"] == text  # as stored
    json.loads(api.text, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    page = c.get("/")
    assert page.status_code == 200
    block = page.text.split('<script id="equity-data" type="application/json">')[1]
    json.loads(block.split("</script>")[0],
               parse_constant=lambda name: pytest.fail(f"{name} in the page's data"))
    cursor = LiveCursor(finished_run, fills=0, equity=0, risk_events=0)
    for name, data in cursor.poll():
        json.loads(json.dumps(data, allow_nan=False))  # what the stream sends is JSON
        assert name != "equity" or all(p[1] is not None for p in data["points"])


def test_a_ledger_damaged_while_served_is_a_clear_error_and_the_others_stay_listed(
        finished_run: Path, tmp_path: Path, tokens: Tokens) -> None:
    """Before: every read of the damaged run, and the list of all runs, a bare 500."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "argus.db").write_bytes(b"\0" * 4096)  # its header gone
    c = client([finished_run, other], tokens)
    for path in ("/runs/1", "/api/runs/1"):
        answer = c.get(path)
        assert answer.status_code == 503, path
        assert "cannot be read" in answer.text and "argus.db" in answer.text
    listing = c.get("/api/runs")
    assert listing.status_code == 200
    first, second = listing.json()
    assert first["fills"] > 0 and "cannot be read" in second["error"]
    assert c.get("/").status_code == 200


@pytest.mark.parametrize("content", [b"", b"SQLite format 3\0" + b"\0" * 4080, None],
                         ids=["zero-bytes", "damaged", "foreign"])
def test_a_control_on_a_file_that_is_no_ledger_is_refused_and_makes_none(
        content: bytes | None, tmp_path: Path, tokens: Tokens) -> None:
    """Before: a zero-byte argus.db was made a ledger with a HALTED latch in it (``argus
    kill`` refuses it); a damaged one answered 503 "try again" as if only busy."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    path = run_dir / "argus.db"
    if content is None:  # a foreign SQLite database
        conn = apsw.Connection(str(path))
        conn.execute("create table notes (x)")
        conn.close()
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    answer = client([run_dir], tokens).post("/api/runs/0/kill", headers=ALICE)
    assert answer.status_code == 409, answer.text
    assert "argus.db" in answer.json()["error"] and "cannot be used" in answer.json()["error"]
    assert path.read_bytes() == before


def test_a_post_whose_referer_is_another_site_is_refused(finished_run: Path,
                                                         tokens: Tokens) -> None:
    """Before: with no ``Origin`` (an older browser, a privacy extension stripping it), a
    ``Referer`` naming another site was carried out."""
    c = client([finished_run], tokens)
    before = control_value(finished_run)
    for referer in ("http://evil.example/page", "http://testserver.evil.example/"):
        answer = c.post("/api/runs/0/kill", headers={**ALICE, "Referer": referer})
        assert answer.status_code == 403 and "Referer" in answer.json()["error"]
    assert control_value(finished_run) == before
    own = c.post("/api/runs/0/kill", headers={**ALICE, "Referer": "http://testserver/"})
    assert own.status_code == 200


@pytest.mark.parametrize("header", ["Origin", "Referer"])
def test_an_origin_that_is_no_url_is_refused_not_a_500(header: str, finished_run: Path,
                                                       tokens: Tokens) -> None:
    """Before: ``urlsplit`` raised ValueError on ``http://[::1``: a 500 (the Origin), or
    the kill was carried out (the Referer, not looked at)."""
    before = control_value(finished_run)
    answer = client([finished_run], tokens).post(
        "/api/runs/0/kill", headers={**ALICE, header: "http://[::1"})
    assert answer.status_code == 403 and "cross-origin" in answer.json()["error"]
    assert control_value(finished_run) == before


def test_a_form_with_too_many_fields_says_so(finished_run: Path, tokens: Tokens) -> None:
    """Before: 400 "the form is not UTF-8 urlencoded fields" for 30 ASCII fields."""
    answer = client([finished_run], tokens).post(
        "/api/runs/0/kill", content="&".join(["a=1"] * 30),
        headers={**ALICE, "Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 400 and "over 20 fields" in answer.json()["error"]
    assert "UTF-8" not in answer.json()["error"]
