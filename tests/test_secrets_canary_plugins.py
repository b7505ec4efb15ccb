"""Canary sweep of the Telegram bot, the dashboard, intel and the monitor (kit and
encodings: ``test_secrets_canary.py``).

* Telegram: ``argus -vvv run`` (text and ``--log-json``) of a replay with the bot on a
  127.0.0.1 Bot API stand-in that knows the canary token (read through ``$file:``); a
  person sends ``/status``, ``/kill`` with credentials pasted into the reason, ``/report``
  and ``/thoughts``; the stand-in fails calls with 401, 5xx and dropped connections.
  Scanned: stdout/stderr, the run folder (every ledger table, report), and every message
  and document the bot sent to the chat.  Then a start-up with a token the API refuses.
* Dashboard: ``--token`` references holding the regex, nested and spaced canaries;
  pages, JSON, error pages (403/404/400) and logs, with tokens sent in headers, forms and
  ``?token=``; the ledger after controls.
* Intel: a key created, used, refused (wrong secret, revoked), listed; the keys file and
  its WAL, every answer and log line.
* Monitor: ``/metrics`` and ``/health`` of a run whose plugins revealed every canary.
"""

from __future__ import annotations

import json
import logging
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argus_telegram.testing import BotApiStandIn
from argus_test_helpers import BUNDLED_BARS
from argus_testkit import extra_plugins
from click.testing import CliRunner
from test_secrets_canary import (
    CANARIES,
    Canary,
    canary,
    collect,
    file_ref,
    leaks,
    plant,
)

from argus_core import hookimpl
from argus_core.cli import cli
from argus_core.secrets import forget_all

CHAT = 4242


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    forget_all()
    yield
    forget_all()


def run_cli(args: list[str], plugins: dict[str, object] | None = None
            ) -> tuple[int, str, str]:
    """``argus <args>`` in-process; (exit code, stdout, stderr)."""
    with extra_plugins(plugins or {}):
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
    logging.getLogger().handlers.clear()  # the CLI's handler holds CliRunner's streams
    return result.exit_code, result.stdout, result.stderr


def report_leaks(found: list[Any]) -> str:
    return "secrets leaked:\n" + "\n".join(map(str, found))


# == Telegram =================================================================================
def telegram_toml(root: Path, api: BotApiStandIn) -> Path:
    """A two-month replay with the bot; the token is ``$file:`` (the canary, newline-ended)."""
    path = root / "telegram.toml"
    path.write_text(f"""
[argus]
plugins = ["telegram"]
[run]
venue = "replay"
strategies = ["ma_cross"]
sizer = "fixed_fraction"
checkpoint_every_events = 1
[plugins.replay]
bars_csv = "{BUNDLED_BARS}"
start = "2022-01-01"
end = "2022-03-01"
[plugins.example]
fast = 5
slow = 20
[plugins.telegram]
token = "{file_ref(root, 'telegram')}"
chat_ids = [{CHAT}]
base_url = "{api.base_url}"
base_file_url = "{api.base_file_url}"
batch_interval_s = 0.2
poll_timeout_s = 1
ledger_poll_s = 0.1
shutdown_flush_s = 5.0
startup_timeout_s = 5.0
min_message_interval_s = 0.02
""")
    return path


def person(api: BotApiStandIn) -> types.SimpleNamespace:
    """An observer that, at the 3rd fill, has a person use every command (with
    credentials pasted into a reason: the bot's own token, revealed, and key-shaped ones
    this process never read; a value of no known shape that was never revealed cannot be
    told from text, so it is not pasted) while the Bot API fails some calls."""
    seen = {"fills": 0}
    pasted = " ".join(canary(n) for n in ("telegram", "pm_private_key", "anthropic"))

    def on_fill(fill: Any, ctx: Any) -> None:
        seen["fills"] += 1
        if seen["fills"] != 3:
            return
        api.fail_next("sendMessage", "5xx", status=502)
        api.fail_next("sendMessage", "drop")
        api.fail_next("getUpdates", "drop")
        for text in ("/status", "/positions", "/pnl", "/thoughts", f"/kill oops {pasted}",
                     "/help", "/report"):
            api.send_command(CHAT, text)
        api.wait_for(lambda: any(s.method == "sendDocument" for s in api.sent), 30)
        api.fail_next("sendMessage", "401")

    return types.SimpleNamespace(on_fill=hookimpl(on_fill))


def sent_artifacts(api: BotApiStandIn) -> dict[str, str]:
    """What reached the chat: every message's text and every document."""
    out = {}
    for i, s in enumerate(api.sent):
        out[f"chat {i} {s.method}"] = "\n".join(
            x for x in (s.text, s.caption, s.filename,
                        s.document.decode("latin-1") if s.document else None) if x)
    return out


@pytest.mark.slow
def test_telegram_bot_run_leaks_no_canary(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    plant(tmp_path, monkeypatch)
    artifacts: dict[str, str] = {}
    for flags in (["-vvv", "--traceback"], ["-vvv", "--log-json"]):
        with BotApiStandIn(canary("telegram")) as api:
            run_dir = tmp_path / f"run{len(artifacts)}"
            code, out, err = run_cli([*flags, "run", "--config", str(telegram_toml(tmp_path, api)),
                                      "--run-dir", str(run_dir), "--no-progress"],
                                     {"person": person(api)})
            assert code == 6, err[-3000:]  # the /kill halted it
            sent = sent_artifacts(api)
            assert any("sendDocument" in k for k in sent)  # /report reached the chat
            assert any("Done" in v for v in sent.values())  # /kill was obeyed
        artifacts |= {f"{flags[1]} stdout": out, f"{flags[1]} stderr": err}
        artifacts |= {f"{flags[1]} {k}": v for k, v in sent.items()}
        artifacts |= {f"{run_dir.name}/{k}": v for k, v in collect(run_dir).items()}
        forget_all()
    assert "HTTP Request" in str(artifacts)  # httpx's DEBUG/INFO lines were on
    found = leaks(artifacts)
    assert not found, report_leaks(found)


def test_telegram_refused_token_leaks_no_canary(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    plant(tmp_path, monkeypatch)
    with BotApiStandIn("1234567890:AAnotTheTokenTheUserHoldsAtAllxxxxx") as api:
        code, out, err = run_cli(["-vvv", "--traceback", "run", "--config",
                                  str(telegram_toml(tmp_path, api)), "--run-dir",
                                  str(tmp_path / "run"), "--no-progress"])
    assert code != 0 and "refused it" in err, err[-2000:]
    found = leaks({"stdout": out, "stderr": err} | collect(tmp_path / "run"))
    assert not found, report_leaks(found)


def only(*names: str) -> list[Canary]:
    """The canaries ``names``."""
    return [CANARIES[n] for n in names]


def _json(text: str) -> Any:
    return json.loads(text)


# == the dashboard ============================================================================
def replay_run(run_dir: Path) -> Path:
    """A finished two-month replay of the bundled bars (a ledger to serve)."""
    from argus_testkit import run_and_collect

    run_and_collect({"argus": {"plugins": []},
                     "run": {"venue": "replay", "strategies": ["ma_cross"],
                             "sizer": "fixed_fraction"},
                     "plugins": {"replay": {"bars_csv": str(BARS_CSV), "start": "2022-01-01",
                                            "end": "2022-03-01"},
                                 "example": {"fast": 5, "slow": 20}}}, run_dir)
    return run_dir


BARS_CSV = BUNDLED_BARS
#: Dashboard holders and the canaries their tokens are: one inside another, regex
#: characters, spaces, a newline (from a file, as an editor leaves it).
HOLDERS = {"alice": "password_regex", "bob": "spaces", "carol": "inner", "dave": "outer",
           "eve": "newline"}


class Captured(logging.Handler):
    """Log lines as the CLI's handler writes them (``argus_core.logs`` formatter)."""

    def __init__(self) -> None:
        from argus_core.logs import RedactingFormatter

        super().__init__(logging.DEBUG)
        self.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler, root = Captured(), logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def answer_text(resp: Any) -> str:
    """An HTTP answer as text: status, headers (but the read cookie a valid ``?token=``
    sets on purpose, to the one who presented it) and body."""
    headers = "\n".join(f"{k}: {v}" for k, v in resp.headers.items()
                        if k.lower() != "set-cookie")
    return f"{resp.status_code}\n{headers}\n\n{resp.text}"


def test_dashboard_pages_errors_logs_and_ledger_hold_no_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, captured: Captured) -> None:
    from argus_dashboard.app import create_app, run_dirs
    from argus_dashboard.controls import Tokens
    from starlette.testclient import TestClient

    refs = plant(tmp_path, monkeypatch)
    run_dir = replay_run(tmp_path / "run")
    specs = [f"{h}={refs[n]}" if h not in ("bob", "eve") else f"{h}={file_ref(tmp_path, n)}"
             for h, n in HOLDERS.items()]
    tokens = Tokens(specs)
    app = create_app(run_dirs([run_dir]), tokens, reads_need_token=True)
    tok = {h: canary(n) for h, n in HOLDERS.items()}
    answers: dict[str, str] = {}
    with TestClient(app, base_url="http://127.0.0.1") as client:
        def keep(name: str, resp: Any) -> Any:
            answers[name] = answer_text(resp)
            return resp

        assert keep("login", client.get("/", params={"token": tok["dave"]},
                                         follow_redirects=False)).status_code == 303
        keep("login wrong", client.get("/runs/0", params={"token": tok["carol"] + "x"},
                                       follow_redirects=False))
        client.cookies.clear()
        keep("read refused", client.get("/api/runs/0"))
        keep("read header", client.get("/api/runs/0", headers={"X-Argus-Token": tok["bob"]}))
        keep("page", client.get("/runs/0", headers={"Authorization": f"Bearer {tok['dave']}"}))
        keep("404", client.get("/api/runs/9", headers={"X-Argus-Token": tok["dave"]}))
        # Controls: a reason holding tokens (a person pasted one), a near miss, bad bodies.
        pasted = f"rotating {tok['dave']} and {tok['alice']} / {tok['eve']!r}"
        assert keep("kill", client.post("/api/runs/0/kill", json={
            "token": tok["carol"], "reason": pasted})).status_code == 200
        keep("kill near miss", client.post("/api/runs/0/kill", json={
            "token": tok["dave"][:-1], "reason": "x"}))
        keep("bad json", client.post("/api/runs/0/resume", content=f'{{"token": "{tok["alice"]}',
                                     headers={"content-type": "application/json"}))
        keep("bad field", client.post("/api/runs/0/resume",
                                      json={"token": tok["alice"], "reason": [tok["bob"]]}))
        keep("form", client.post("/api/runs/0/resume",
                                 data={"token": tok["alice"], "reason": "back " + tok["eve"]},
                                 headers={"accept": "text/html"}, follow_redirects=False))
        keep("cross origin", client.post("/api/runs/0/kill", json={"token": tok["bob"]},
                                         headers={"origin": "http://evil.example"}))
        keep("api after", client.get("/api/runs/0", headers={"X-Argus-Token": tok["eve"]}))
    assert "rotating" in answers["api after"]  # the reason is shown (redacted), not lost
    artifacts = {f"answer {k}": v for k, v in answers.items()}
    artifacts |= {"log": "\n".join(captured.lines)} | collect(run_dir)
    found = leaks(artifacts, only(*HOLDERS.values()))
    assert not found, report_leaks(found)


def test_dashboard_an_inline_token_with_an_equals_sign_is_not_echoed(
        tmp_path: Path) -> None:
    # "HOLDER=REF": an inline secret holding '=' was split there and its first part,
    # not a valid holder's name, was printed: "--token <most of the secret>=...".
    run_dir = replay_run(tmp_path / "run")
    for name in ("password_regex", "spaces", "kraken_key"):
        inline = canary(name) + "=tail"
        code, out, err = run_cli(["serve", str(run_dir), "--port", "0", "--token", inline])
        assert code == 2, err
        found = leaks({"stdout": out, "stderr": err}, only(name))
        assert not found, report_leaks(found)


# == intel ====================================================================================
def intel_canary(key: str) -> Canary:
    """An intel API key as a canary (its random secret part is the core)."""
    return Canary("intel_key", key, key.split("_", 2)[2])  # argi_<id>_<secret>


def test_intel_answers_logs_and_keys_file_hold_no_key(
        tmp_path: Path, captured: Captured) -> None:
    from argus_intel.app import QueryHidden, create_app
    from argus_intel.keys import KeyStore
    from fastapi.testclient import TestClient

    run_dir = replay_run(tmp_path / "run")
    store = KeyStore(tmp_path / "keys.db")
    _, key = store.add("alice")
    _, revoked = store.add("bob")
    store.revoke("bob")
    wrong = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
    logging.getLogger("uvicorn.access").addFilter(QueryHidden())
    answers: dict[str, str] = {}
    with TestClient(create_app([run_dir], store)) as client:
        for name, url, headers in (
                ("ok", "/v1/runs", {"Authorization": f"Bearer {key}"}),
                ("x-api-key", "/v1/runs/0", {"X-API-Key": key}),
                ("wrong", "/v1/runs", {"Authorization": f"Bearer {wrong}"}),
                ("revoked", "/v1/runs", {"X-API-Key": revoked}),
                ("in url", f"/v1/runs?api_key={key}", {}),
                ("in url too", f"/v1/runs?token={key}", {"X-API-Key": key}),
                ("404", "/v1/nothing", {"X-API-Key": key}),
                ("422", "/v1/runs?limit=abc", {"X-API-Key": key})):
            answers[name] = answer_text(client.get(url, headers=headers))
        answers["post bad"] = answer_text(client.post(
            "/v1/regimes", headers={"X-API-Key": key}, content=f'{{"k": "{key}"',
            params={}))
    store.close()
    assert answers["ok"].startswith("200") and answers["revoked"].startswith("403")
    artifacts = {f"answer {k}": v for k, v in answers.items()} | {
        "log": "\n".join(captured.lines)} | collect(tmp_path)
    found = leaks(artifacts, [intel_canary(key), intel_canary(revoked)])
    assert not found, report_leaks(found)


def test_intel_keys_commands_print_a_key_only_when_it_is_made(tmp_path: Path) -> None:
    keys = str(tmp_path / "keys.db")
    code, out, err = run_cli(["intel", "keys", "add", "alice", "--keys", keys])
    assert code == 0
    key = out.strip()
    c = intel_canary(key)
    code, out2, err2 = run_cli(["intel", "keys", "list", "--keys", keys])
    # Revoking by pasting the key itself (not its id) is what a person who leaked it
    # does: it was printed back in the error ("no live key with id or name 'argi_..'").
    wrong_id = key.replace(key.split("_")[1], "0" * 12)
    code3, out3, err3 = run_cli(["intel", "keys", "revoke", wrong_id, "--keys", keys])
    assert code3 != 0
    code4, out4, err4 = run_cli(["intel", "keys", "revoke", key, "--keys", keys])
    assert code4 == 0 and "revoked" in out4, err4  # the full key names its id
    found = leaks({"list": out2 + err2, "revoke wrong": out3 + err3,
                   "revoke": out4 + err4, "add stderr": err} | collect(tmp_path), [c])
    assert not found, report_leaks(found)
