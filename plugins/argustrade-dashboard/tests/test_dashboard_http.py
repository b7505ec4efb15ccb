"""Every endpoint over HTTP (Starlette's TestClient): the numbers equal the ledger's, the
controls are refused without a token and, with one, write the control row with who and
why plus an audit row; reads need a token only where the app says so."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from argus_dashboard import RunDir, Tokens, create_app
from argus_dashboard.controls import apply_control
from argus_dashboard.live import LiveCursor
from argus_testkit import run_and_collect
from click.testing import CliRunner
from dashboard_helpers import (
    TOKEN,
    TOKEN_ENV,
    add_fill,
    control_value,
    query,
    replay_config,
)
from starlette.testclient import TestClient

from argus_core import ConfigError, Ledger
from argus_core.cli import cli as core_cli


class Page(HTMLParser):
    """Elements by id (attributes and text) and table rows (``data-field`` ->
    ``data-value`` and shown text) of a rendered page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, Any]] = {}
        self.tables: dict[str, list[dict[str, tuple[str, str]]]] = {}
        self._open: list[tuple[str, dict[str, Any]]] = []
        self._table: str | None = None
        self._cell: tuple[str, str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self._table = a.get("id")
            self.tables[self._table or ""] = []
        elif tag == "tr" and self._table and "data-key" in a:
            self.tables[self._table].append({})
        elif tag == "td" and self._table and self.tables[self._table]:
            self._cell = (a.get("data-field", ""), a.get("data-value", ""))
            self.tables[self._table][-1][self._cell[0]] = (self._cell[1], "")
        if "id" in a and tag not in ("input", "meta", "br", "polyline"):
            entry = {"tag": tag, "attrs": a, "text": ""}
            self.by_id[a["id"]] = entry
            self._open.append((tag, entry))

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            self._open.pop()
        if tag == "table":
            self._table = None
        if tag == "td":
            self._cell = None

    def handle_data(self, data: str) -> None:
        for _, entry in self._open:
            entry["text"] += data
        if self._cell and self._table:
            field, value = self._cell
            self.tables[self._table][-1][field] = (value, self.tables[self._table][-1][field][1]
                                                   + data)

    def value(self, ident: str) -> str:
        """An element's ``data-value``."""
        return str(self.by_id[ident]["attrs"].get("data-value"))

    def text(self, ident: str) -> str:
        """An element's text."""
        return str(self.by_id[ident]["text"]).strip()


def client(run_dirs: list[Path], tokens: Tokens | None, **kwargs: Any) -> TestClient:
    """A test client of the dashboard over ``run_dirs``."""
    runs = [RunDir(str(i), p.name, p) for i, p in enumerate(run_dirs)]
    return TestClient(create_app(runs, tokens, **kwargs))


def alice() -> dict[str, str]:
    """Alice's token header."""
    return {"X-Argus-Token": TOKEN}


def test_the_run_page_shows_the_ledgers_numbers(finished_run: Path, tokens: Tokens) -> None:
    answer = client([finished_run], tokens).get("/")
    assert answer.status_code == 200 and "text/html" in answer.headers["content-type"]
    page = Page(answer.text)
    last = query(finished_run, "select * from equity order by ts_ns desc limit 1")[0]
    assert page.value("equity") == page.text("equity") == last["equity"]
    assert page.value("cash") == last["cash"]
    assert page.value("gross-exposure") == last["gross_exposure"]
    fills = query(finished_run, "select * from fills order by rowid desc")
    assert page.value("fill-count") == str(len(fills))
    assert page.value("order-count") == str(len(query(finished_run, "select 1 from orders")))
    assert page.value("risk-event-count") == str(len(query(finished_run,
                                                          "select 1 from risk_events")))
    state = control_value(finished_run)
    assert state is not None
    assert page.by_id["trading-state"]["attrs"]["data-state"] == state["state"] == "reducing"
    assert page.text("trading-state") == "REDUCING"
    assert page.value("state-reason") == state["reason"]
    # every fill, newest first, with the ledger's exact text
    shown = page.tables["fills"]
    assert [r["fill_id"][0] for r in shown] == [f["fill_id"] for f in fills]
    for row, fill in zip(shown, fills, strict=True):
        for field in ("price", "quantity", "fee", "side", "instrument_id"):
            assert row[field] == (fill[field], fill[field])
    positions = query(finished_run, "select * from positions order by instrument_id")
    assert [{f: r[f][0] for f in ("instrument_id", "quantity", "avg_price", "realized_pnl")}
            for r in page.tables["positions"]] == [
        {f: p[f] for f in ("instrument_id", "quantity", "avg_price", "realized_pnl")}
        for p in positions]
    assert page.tables["working-orders"] == []  # a finished run has none
    assert len(page.tables["risk-events"]) == min(200, len(query(
        finished_run, "select 1 from risk_events")))
    # drawdown, computed here independently from the equity rows
    peak, worst = Decimal(0), Decimal(0)
    for r in query(finished_run, "select equity from equity order by ts_ns"):
        peak = max(peak, Decimal(r["equity"]))
        worst = max(worst, (peak - Decimal(r["equity"])) / peak)
    assert float(page.value("max-drawdown")) == pytest.approx(float(worst), rel=1e-9)
    assert page.text("max-drawdown") == f"{float(worst) * 100:.2f}%"
    assert float(page.value("peak-equity")) == pytest.approx(float(peak))
    # the orchestrator's and the lab's sections are absent without their tables
    for absent in ("strategy-versions", "thoughts-panel", "lab-verdicts", "promote-button"):
        assert absent not in page.by_id
    assert {"kill-button", "kill-flatten-button", "resume-button", "token", "reason",
            "control-result", "equity-chart", "live-status"} <= {
        *page.by_id, "token", "reason"}


def test_the_json_api_equals_the_ledger(finished_run: Path, tokens: Tokens) -> None:
    c = client([finished_run], tokens)
    data = c.get("/api/runs/0").json()
    run = query(finished_run, "select * from runs")[0]
    assert data["run"]["run_id"] == run["run_id"] and data["run"]["status"] == "finished"
    assert data["summary"]["fills"] == len(query(finished_run, "select 1 from fills"))
    assert data["summary"]["equity"] == query(
        finished_run, "select equity from equity order by ts_ns desc limit 1")[0]["equity"]
    assert data["positions"] == query(finished_run, "select instrument_id, quantity, avg_price,"
                                      " realized_pnl, ts_ns from positions")
    assert [f["fill_id"] for f in data["fills"]] == [
        f["fill_id"] for f in query(finished_run, "select fill_id from fills order by rowid desc")]
    assert data["trading_state"]["state"] == "reducing"
    assert data["controls"] == {"enabled": True, "promote": False,
                                "actions": ["kill", "kill_flatten", "resume"]}
    assert data["equity_curve"][-1][1] == pytest.approx(float(data["summary"]["equity"]))
    assert len(data["equity_curve"]) == 1000  # thinned from the ledger's 1416 rows
    listing = c.get("/api/runs").json()
    assert listing == [{"key": "0", "name": "replay-run", "run_dir": str(finished_run),
                        "trading_state": "reducing", "equity": data["summary"]["equity"],
                        "fills": data["summary"]["fills"]}]
    assert c.get("/healthz").json() == {"ok": True, "runs": 1}
    assert c.get("/api/runs/7").status_code == 404


def test_several_runs_get_an_index_and_a_page_each(finished_run: Path, tokens: Tokens,
                                                   tmp_path: Path) -> None:
    waiting = tmp_path / "not-started"
    waiting.mkdir()
    c = client([finished_run, waiting], tokens)
    index = Page(c.get("/").text)
    assert [r["trading_state"][0] for r in index.tables["runs"]] == ["reducing", ""]
    assert Page(c.get("/runs/0").text).value("fill-count") == "16"
    page = c.get("/runs/1")
    assert page.status_code == 200 and 'id="no-ledger"' in page.text
    assert c.get("/api/runs/1").json() == {
        "ledger": False, "run_dir": str(waiting),
        "controls": {"enabled": True, "promote": False,
                     "actions": ["kill", "kill_flatten", "resume"]}}
    assert c.post("/api/runs/1/kill", headers=alice()).status_code == 409
    assert c.get("/runs/9").status_code == 404


def test_controls_are_refused_without_a_valid_token(finished_run: Path, tokens: Tokens) -> None:
    before = control_value(finished_run)
    c = client([finished_run], tokens)
    for headers in ({}, {"X-Argus-Token": "wrong-token-123"}, {"X-Argus-Token": ""},
                    {"Authorization": "Bearer nope-nope-nope"}):
        for action in ("kill", "kill_flatten", "resume", "promote", "rollback"):
            answer = c.post(f"/api/runs/0/{action}", headers=headers,
                            json={"reason": "no token"})
            assert answer.status_code == 403, (headers, action)
            assert "token" in answer.json()["error"]
    # a cookie never authorises a control (another site could make a browser send one)
    c.cookies.set("argus_token", TOKEN)
    assert c.post("/api/runs/0/kill", json={"reason": "cookie"}).status_code == 403
    assert c.get("/api/runs/0/kill").status_code == 405  # never a GET
    unlocked = client([finished_run], None).post("/api/runs/0/kill", headers=alice())
    assert unlocked.status_code == 403 and "without --token" in unlocked.json()["error"]
    assert control_value(finished_run) == before
    assert "dashboard_audit" not in {r["name"] for r in query(
        finished_run, "select name from sqlite_master")}


def test_kill_flatten_and_resume_write_the_control_row_with_who_and_why_and_an_audit_row(
        finished_run: Path, tokens: Tokens) -> None:
    c = client([finished_run], tokens)
    answer = c.post("/api/runs/0/kill", headers=alice(), json={"reason": "spread blew out"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["by"] == "alice"
    assert control_value(finished_run) == {"state": "halted", "reason": "spread blew out",
                                           "flatten": False, "by": "alice",
                                           "via": "dashboard"}
    answer = c.post("/api/runs/0/kill_flatten", headers={"Authorization": f"Bearer {TOKEN}"},
                    json={"reason": "flatten it all"})
    assert answer.status_code == 200, answer.text
    assert control_value(finished_run) == {"state": "halted", "reason": "flatten it all",
                                           "flatten": True, "by": "alice",
                                           "via": "dashboard"}
    # a plain form post (no script): token as a field, back to the page
    answer = c.post("/api/runs/0/resume", data={"token": TOKEN, "reason": "all clear"},
                    headers={"Accept": "text/html"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/runs/0"
    assert control_value(finished_run) == {"state": "active", "reason": "all clear",
                                           "by": "alice", "via": "dashboard"}
    audit = query(finished_run, "select * from dashboard_audit order by id")
    assert [(a["action"], a["actor"], a["reason"], a["outcome"]) for a in audit] == [
        ("kill", "alice", "spread blew out", "done"),
        ("kill_flatten", "alice", "flatten it all", "done"),
        ("resume", "alice", "all clear", "done")]
    assert json.loads(audit[1]["detail_json"])["trading_state"]["flatten"] is True
    assert all(a["ts_ns"] > 0 for a in audit)
    page = Page(c.get("/").text)
    assert [r["action"][0] for r in page.tables["audit"]] == ["resume", "kill_flatten", "kill"]
    assert page.value("state-by") == "alice" and page.by_id["trading-state"]["attrs"][
        "data-state"] == "active"
    # an empty reason is recorded as what happened, never blank
    c.post("/api/runs/0/kill", headers=alice(), json={})
    state = control_value(finished_run)
    assert state is not None and state["reason"] == "kill from the dashboard"
    assert c.post("/api/runs/0/launch", headers=alice()).status_code == 404


def orchestrated_run(run_dir: Path) -> tuple[str, str]:
    """A ledger with the orchestrator's tables and a parent/child version pair."""
    from argus_orchestrator.plugin import register_migrations
    from argus_orchestrator.versions import VersionStore

    from argus_core import Migrations

    migrations = Migrations()
    register_migrations(migrations)
    with Ledger.in_dir(run_dir, migrations) as ledger:
        store = VersionStore(ledger, clock=lambda: 1)
        parent = store.add(slot="main", source="# v1", parent_id=None, status="full",
                           reason="seed")
        child = store.add(slot="main", source="# v2", parent_id=parent, status="shadow",
                          reason="proposed")
        store.set_replaced(child, parent)  # as a loop swapping it in records
        with ledger.transaction():
            ledger.insert("thoughts", {
                "thought_id": "t1", "cycle_id": "c1", "seq": 1, "purpose": "generate",
                "model": "claude-test", "system_prompt": "s", "prompt": "write <v2>",
                "prompt_hash": "h", "response_text": "class V2: ...", "status": "ok",
                "ts_ns": 7})
    return parent, child


def test_a_ledger_from_before_replaced_ids_shows_its_versions(
        finished_run: Path, tokens: Tokens) -> None:
    parent, child = orchestrated_run(finished_run)
    with Ledger.in_dir(finished_run) as ledger:  # as an orchestrator before m002 left it
        ledger.conn.execute("alter table strategy_versions drop column replaced_id")
    page = Page(client([finished_run], tokens).get("/").text)
    rows = page.tables["strategy-versions"]
    assert [(r["version_id"][0], r["replaced_id"][0]) for r in rows] == [(parent, ""),
                                                                        (child, "")]


def test_promote_and_roll_back_go_through_the_orchestrators_store_naming_the_holder(
        finished_run: Path, tokens: Tokens) -> None:
    parent, child = orchestrated_run(finished_run)
    c = client([finished_run], tokens)
    page = Page(c.get("/").text)
    assert {"promote-button", "rollback-button", "strategy-versions"} <= set(page.by_id)
    assert [r["version_id"][0] for r in page.tables["strategy-versions"]] == [parent, child]
    assert [r["replaced_id"][0] for r in page.tables["strategy-versions"]] == ["", parent]
    thoughts = page.text("thoughts")
    assert "claude-test" in thoughts and "write <v2>" in thoughts and "class V2" in thoughts
    assert c.get("/api/runs/0").json()["controls"]["actions"] == [
        "kill", "kill_flatten", "resume", "promote", "rollback"]
    answer = c.post("/api/runs/0/promote", headers=alice(),
                    json={"version_id": child, "to": "canary", "reason": "looks good"})
    assert answer.status_code == 200, answer.text
    version = query(finished_run, "select status from strategy_versions where version_id = ?",
                    (child,))[0]
    assert version["status"] == "requested:canary"
    event = query(finished_run, "select * from strategy_events order by id desc limit 1")[0]
    assert (event["actor"], event["reason"], event["to_status"]) == (
        "alice", "looks good", "requested:canary")
    assert c.post("/api/runs/0/promote", headers=alice(),
                  json={"version_id": child, "to": "moon"}).status_code == 400
    unknown = c.post("/api/runs/0/promote", headers=alice(),
                     json={"version_id": "nope", "to": "full"})
    assert unknown.status_code == 409 and parent in unknown.json()["error"]
    # make the child live, then roll it back from the page
    with Ledger.in_dir(finished_run) as ledger:
        ledger.conn.execute("update strategy_versions set status = 'canary' "
                            "where version_id = ?", (child,))
    answer = c.post("/api/runs/0/rollback", headers=alice(),
                    json={"slot": "main", "reason": "drawdown"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["rolled_back"] == child and answer.json()["reinstated"] == parent
    statuses = {r["version_id"]: r["status"] for r in query(
        finished_run, "select version_id, status from strategy_versions")}
    assert statuses == {parent: "full", child: "rolled_back"}
    audit = query(finished_run, "select action, actor, reason, detail_json from "
                                "dashboard_audit order by id")
    assert [(a["action"], a["actor"], a["reason"]) for a in audit] == [
        ("promote", "alice", "looks good"), ("rollback", "alice", "drawdown")]
    assert json.loads(audit[0]["detail_json"]) == {"version_id": child, "to": "canary"}


def test_promote_is_refused_where_there_is_no_orchestrator(finished_run: Path) -> None:
    with pytest.raises(Exception, match="no orchestrator here") as caught:
        apply_control(finished_run, "promote", "alice", "x", version_id="v", to_status="full")
    assert getattr(caught.value, "status", None) == 409


def test_reads_need_the_token_when_the_app_says_so(finished_run: Path, tokens: Tokens) -> None:
    c = client([finished_run], tokens, reads_need_token=True)
    for path in ("/", "/api/runs", "/api/runs/0", "/api/runs/0/stream"):
        assert c.get(path).status_code == 401, path
    assert c.get("/api/runs/0", headers=alice()).status_code == 200
    # ?token= once: a cookie for the pages, and the token leaves the address bar
    answer = c.get(f"/?token={TOKEN}", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    assert c.get("/").status_code == 200
    assert c.post("/api/runs/0/kill", json={}).status_code == 403  # the cookie reads only


def test_tokens_are_references_resolved_once_and_never_shown(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    secret_file = tmp_path / "bob.token"
    secret_file.write_text("bob-file-token-99\n")
    tokens = Tokens([f"$env:{TOKEN_ENV}", f"bob=$file:{secret_file}"])
    assert tokens.holders == ["operator", "bob"]
    assert tokens.holder_of(TOKEN) == "operator"
    assert tokens.holder_of("bob-file-token-99") == "bob"
    assert tokens.holder_of("bob-file-token-9") is None and tokens.holder_of(None) is None
    assert TOKEN not in repr(tokens) and "bob-file" not in repr(tokens._tokens)
    with pytest.raises(ConfigError, match=r"\$env:ARGUS_NOT_SET_ANYWHERE.*not set"):
        Tokens(["$env:ARGUS_NOT_SET_ANYWHERE"])
    with pytest.raises(ConfigError, match="inline secret values are refused") as caught:
        Tokens(["plain-text-token"])
    assert "plain-text-token" not in str(caught.value)
    with pytest.raises(ConfigError, match="cannot read"):
        Tokens([f"$file:{tmp_path / 'missing'}"])
    with pytest.raises(ConfigError, match="two tokens for holder 'bob'"):
        Tokens([f"bob=$env:{TOKEN_ENV}", f"bob=$file:{secret_file}"])
    monkeypatch.setenv("ARGUS_SHORT", "abcdefg")
    with pytest.raises(ConfigError, match="shorter than 8"):
        Tokens(["$env:ARGUS_SHORT"])


def test_the_live_cursor_sends_only_what_changed(finished_run: Path) -> None:
    cursor = LiveCursor(finished_run)
    first = dict(cursor.poll())
    # the first look: every whole section, no deltas (the page already has them)
    assert {"orders", "positions", "signals", "state", "summary"} <= set(first)
    assert "fills" not in first and "equity" not in first
    assert cursor.poll() == []  # nothing changed
    fill_id = add_fill(finished_run, 1)
    changes = dict(cursor.poll())
    assert [f["fill_id"] for f in changes["fills"]["rows"]] == [fill_id]
    assert changes["equity"]["points"] == [[2 * 10**18 + 1, 50000.5]]
    assert changes["summary"]["summary"]["fills"] == 17
    # the drawdown carries on from the whole curve
    assert changes["summary"]["drawdown"]["current"] == pytest.approx(
        1 - 50000.5 / changes["summary"]["drawdown"]["peak"])
    apply_control(finished_run, "kill", "alice", "stop")
    changes = dict(cursor.poll())
    assert changes["state"]["trading_state"]["state"] == "halted"
    assert changes["state"]["trading_state"]["by"] == "alice"
    assert changes["audit"]["rows"][0]["action"] == "kill"
    # a client that already has some fills gets the rest from its mark
    behind = LiveCursor(finished_run, fills=0)
    assert len(dict(behind.poll())["fills"]["rows"]) == 17


def test_the_page_says_whether_the_loop_has_adopted_the_latch(finished_run: Path,
                                                              tokens: Tokens) -> None:
    def shown() -> tuple[str, str, Any]:
        page = Page(client([finished_run], tokens).get("/").text)
        api = client([finished_run], tokens).get("/api/runs/0").json()["trading_state"]
        return page.value("trading-state"), page.value("state-adopted"), api["adopted"]

    # The replay's own check escalated it: the loop wrote the latch, so it holds.
    assert control_value(finished_run)["by"] == "argus"
    assert shown() == ("reducing", "yes", True)
    cursor = LiveCursor(finished_run)
    assert dict(cursor.poll())["state"]["trading_state"]["adopted"] is True
    # A kill the loop has not taken up (this run has ended): said so, on the page too.
    apply_control(finished_run, "kill", "alice", "stop")
    assert shown() == ("halted", "no", False)
    assert "not yet" in Page(client([finished_run], tokens).get("/").text).text(
        "state-adopted")
    assert dict(cursor.poll())["state"]["trading_state"]["adopted"] is False
    assert cursor.poll() == []
    # The loop adopts it (its record, as the runner writes it at its next commit): the
    # stream sends the state again though the latch itself has not changed.
    with Ledger.in_dir(finished_run) as ledger, ledger.transaction():
        ledger.record_control_adopted("trading_state", "halted", "alice: stop")
    (state,) = [d for name, d in cursor.poll() if name == "state"]
    assert state["trading_state"]["adopted"] is True
    assert shown() == ("halted", "yes", True)
    # A resume is a new latch, not adopted until the loop records it too.
    apply_control(finished_run, "resume", "alice", "go on")
    assert shown() == ("active", "no", False)
    assert dict(cursor.poll())["state"]["trading_state"]["adopted"] is False
    # A kill adopted between two polls: the first poll that sees it sees it adopted.
    apply_control(finished_run, "kill", "alice", "again")
    with Ledger.in_dir(finished_run) as ledger, ledger.transaction():
        ledger.record_control_adopted("trading_state", "halted", "alice: again")
    assert dict(cursor.poll())["state"]["trading_state"]["adopted"] is True


def test_a_run_with_the_plugin_loaded_has_the_audit_table_from_the_start(
        tmp_path: Path) -> None:
    result = run_and_collect(replay_config(["dashboard"]), tmp_path / "run")
    assert result.fills
    names = {r["name"] for r in query(tmp_path / "run", "select name from sqlite_master")}
    assert "dashboard_audit" in names
    assert query(tmp_path / "run", "select * from _argus_migrations where migration_set = "
                                   "'dashboard'") == [{"migration_set": "dashboard",
                                                       "name": "m001_dashboard_audit"}]


def test_lab_verdicts_show_from_a_lab_ledger_and_runs_answer_by_folder_name(
        finished_run: Path, tokens: Tokens, tmp_path: Path) -> None:
    from argus_lab.trials import open_lab_ledger

    lab_db = tmp_path / "lab" / "lab.db"
    with open_lab_ledger(lab_db) as ledger, ledger.transaction():
        ledger.insert("lab_gate_verdicts", {
            "family": "ma_cross", "ts_ns": 5, "verdict": "reject",
            "reasons_json": json.dumps(["deflated Sharpe 0.41 < 0.95"]),
            "details_json": "{}", "config_hash": "abc"})
    app = create_app([RunDir("0", "replay-run", finished_run, lab_db)], tokens)
    page = Page(TestClient(app).get("/runs/replay-run").text)
    (verdict,) = page.tables["lab-verdicts"]
    assert verdict["verdict"][0] == "reject" and verdict["family"][0] == "ma_cross"
    assert "deflated Sharpe 0.41" in verdict["reasons_json"][0]
    assert "lab-verdicts" not in Page(client([finished_run], tokens).get("/").text).tables


def test_a_ledger_still_being_created_reads_as_no_ledger_yet(tmp_path: Path,
                                                             tokens: Tokens) -> None:
    import apsw

    run_dir = tmp_path / "starting"
    run_dir.mkdir()
    conn = apsw.Connection(str(run_dir / "argus.db"))  # a file without the core's tables
    conn.execute("pragma journal_mode=wal; create table _argus_migrations (x)")
    conn.close()
    c = client([run_dir], tokens)
    assert c.get("/api/runs/0").json()["ledger"] is False
    assert 'id="no-ledger"' in c.get("/").text
    assert c.get("/api/runs").json()[0]["trading_state"] is None
    assert LiveCursor(run_dir).poll() == []


def test_the_audit_panel_shows_kills_and_resumes_made_elsewhere_once_each(
        finished_run: Path, tokens: Tokens) -> None:
    """`argus resume` and a Telegram /flatten write the latch without the dashboard: the core
    keeps every write (control_log) and the panel lists them with the dashboard's own,
    newest first, the dashboard's own once (its richer row), the loop's own never."""
    c = client([finished_run], tokens)
    assert c.post("/api/runs/0/kill", headers=alice(), json={"reason": "from the page"}
                  ).status_code == 200
    cursor = LiveCursor(finished_run)
    cursor.poll()
    # (a second kill would change nothing, and write nothing: the shell resumes)
    cli = CliRunner().invoke(core_cli, ["resume", "--run-dir", str(finished_run)])
    assert cli.exit_code == 0, cli.output
    with Ledger.in_dir(finished_run) as ledger:
        ledger.set_control("trading_state", json.dumps(
            {"state": "halted", "reason": "from the phone", "flatten": True,
             "by": "telegram:@bob"}), time.time_ns())
        ledger.set_control("trading_state", json.dumps(
            {"state": "reducing", "reason": "a check escalated", "by": "argus"}),
            time.time_ns())
    page = Page(c.get("/").text)
    shown = [(r["action"][0], r["actor"][0], r["reason"][0]) for r in page.tables["audit"]]
    assert shown[0] == ("kill_flatten", "telegram:@bob", "from the phone")
    assert shown[1][0] == "resume" and shown[1][1].startswith("cli")
    assert shown[1][2] == "cleared by a person with `argus resume`"
    assert shown[2] == ("kill", "alice", "from the page")
    assert len(shown) == 3  # the dashboard's kill once; the loop's escalation not at all
    pushed = dict(cursor.poll())["audit"]  # the open pages get them at once too
    assert [r["actor"] for r in pushed["rows"]][:1] == ["telegram:@bob"]
