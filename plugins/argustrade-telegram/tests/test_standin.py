"""The Bot API stand-in speaks the documented protocol: python-telegram-bot parses every
recorded example payload, the stand-in's answers carry the same keys, getUpdates'
offset confirms and its timeout long-polls, sendDocument takes multipart uploads, faults
come back as the documented error objects."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from argus_telegram.testing import BotApiStandIn, html_problem
from telegram import Message, Update, User

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    """A recorded example payload (see fixtures/SOURCES.md)."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def call(api: BotApiStandIn, method: str, token: str | None = None, **params: Any
         ) -> tuple[int, dict[str, Any]]:
    """POST ``method`` as a form, the way python-telegram-bot sends parameters."""
    answer = httpx.post(f"{api.base_url}{token or api.token}/{method}",
                        data={k: v if isinstance(v, str) else json.dumps(v)
                              for k, v in params.items()}, timeout=30)
    return answer.status_code, answer.json()


def keys(value: Any) -> Any:
    """The nested key structure of a JSON value."""
    if isinstance(value, dict):
        return {k: keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [keys(value[0])] if value else []
    return None


def test_python_telegram_bot_parses_every_example_payload() -> None:
    assert User.de_json(fixture("getMe")["result"], None).username == "argus_standin_bot"
    for name in ("getUpdates_command", "getUpdates_group_command"):
        update = Update.de_json(fixture(name)["result"][0], None)
        assert update.effective_message is not None
        assert (update.effective_message.text or "").startswith("/")
    sent = Message.de_json(fixture("sendMessage")["result"], None)
    assert sent.chat.id == 4242 and sent.parse_entities()
    doc = Message.de_json(fixture("sendDocument")["result"], None)
    assert doc.document is not None and doc.document.mime_type == "text/html"
    assert fixture("error_429")["parameters"]["retry_after"] == 5


def test_the_stand_ins_answers_have_the_documented_shapes(api: BotApiStandIn) -> None:
    assert call(api, "getMe") == (200, fixture("getMe"))
    api.send_command(4242, "/kill spreads blew out")
    code, body = call(api, "getUpdates", timeout=0)
    assert code == 200 and keys(body) == keys(fixture("getUpdates_command"))
    code, body = call(api, "sendMessage", chat_id=4242, text="Done: trading <b>HALTED</b>",
                      parse_mode="HTML")
    expected = keys(fixture("sendMessage"))
    expected["result"].pop("entities")  # the stand-in does not compute entities
    assert code == 200 and keys(body) == expected
    code, body = call(api, "getMe", token="123:wrong")
    assert (code, body) == (401, fixture("error_401"))
    api.fail_next("sendMessage", "429", retry_after=5)
    code, body = call(api, "sendMessage", chat_id=4242, text="x")
    assert (code, body) == (429, fixture("error_429"))
    code, body = call(api, "sendMessage", chat_id=4242, text="<foo>x</foo>", parse_mode="HTML")
    assert (code, body) == (400, fixture("error_400_parse"))


def test_get_updates_offset_confirms_and_timeout_long_polls(api: BotApiStandIn) -> None:
    first = api.send_command(4242, "/status")
    second = api.send_command(4242, "/pnl")
    _, body = call(api, "getUpdates")
    assert [u["update_id"] for u in body["result"]] == [first, second]
    _, body = call(api, "getUpdates", offset=second)  # confirms the first
    assert [u["update_id"] for u in body["result"]] == [second]
    t0 = time.monotonic()
    _, body = call(api, "getUpdates", offset=second + 1, timeout=1)
    assert body["result"] == [] and time.monotonic() - t0 >= 0.9  # waited for news
    assert api.pending_updates() == 0


def test_send_document_takes_a_multipart_upload(api: BotApiStandIn) -> None:
    api.send_command(4242, "/report")
    answer = httpx.post(f"{api.base_url}{api.token}/sendDocument",
                        data={"chat_id": "4242", "caption": "Report"},
                        files={"document": ("report.html", b"<html></html>", "text/html")},
                        timeout=10)
    body = answer.json()
    assert answer.status_code == 200 and keys(body) == keys(fixture("sendDocument"))
    assert api.sent[-1].document == b"<html></html>" and api.sent[-1].filename == "report.html"


def test_a_dropped_connection_gets_no_answer(api: BotApiStandIn) -> None:
    api.fail_next("getMe", "drop")
    with pytest.raises(httpx.TransportError):
        call(api, "getMe")
    assert call(api, "getMe")[0] == 200


@pytest.mark.parametrize(("text", "ok"), [
    ("<b>HALTED</b> (a &amp; b &lt; c)", True),
    ("<code>run</code> <i>x</i>", True),
    ("a < b", False),
    ("a & b", False),
    ("<b>open", False),
    ("<script>x</script>", False),
])
def test_html_the_way_telegram_parses_it(text: str, ok: bool) -> None:
    assert (html_problem(text) is None) is ok
