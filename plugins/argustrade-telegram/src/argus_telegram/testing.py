"""A local stand-in of the Telegram Bot API on 127.0.0.1, for tests.

A real HTTP server (``http.server`` in a thread) answering ``/bot<token>/<method>`` the way
the Bot API documents it (https://core.telegram.org/bots/api, "Making requests"): every
answer is JSON ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N,
"description": ..., "parameters": {...}}``; parameters come as a query string,
``application/x-www-form-urlencoded``, ``application/json`` or ``multipart/form-data``
(files).  Methods: ``getMe``, ``getUpdates`` (``offset`` confirms earlier updates, a
negative one forgets all but the last ``-offset``, ``timeout`` long-polls),
``sendMessage``, ``sendDocument``, ``close``/``logOut``.

Tests point ``[plugins.telegram] base_url`` at :attr:`BotApiStandIn.base_url`, inject what
a person types (:meth:`BotApiStandIn.send_command`), read what the bot sent
(:attr:`BotApiStandIn.sent`) and script faults (:meth:`BotApiStandIn.fail_next`): a 429
with ``retry_after``, a 5xx, a dropped connection, a 401.  A token other than the
configured one is answered 401 like the real API.
"""

from __future__ import annotations

import collections
import email.parser
import email.policy
import itertools
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

BOT_ID = 7000000001
#: The key of an answer's body that is sent as it is, not as JSON (a ``garbled`` fault).
GARBLED = "__raw__"
BOT_USERNAME = "argus_standin_bot"


@attrs.define
class Fault:
    """A scripted failure of the next call of one method."""

    kind: str  # "429" | "5xx" | "drop" | "401" | "409" | "garbled"
    retry_after: int = 1
    status: int = 502


@attrs.define
class Sent:
    """A message or document the bot sent, as the stand-in received it."""

    method: str
    chat_id: int
    text: str | None
    parse_mode: str | None
    at: float  # time.monotonic() when it arrived
    document: bytes | None = None
    filename: str | None = None
    caption: str | None = None
    thread_id: int | None = None  # message_thread_id: the forum topic it went to


class BotApiStandIn:
    """The stand-in server; a context manager (``with BotApiStandIn("123:abc") as api``)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.sent: list[Sent] = []
        self.calls: list[tuple[str, float, dict[str, Any]]] = []  # (method, at, params)
        self.refusals: list[tuple[str, int]] = []  # (method, error code) answered
        self._updates: list[dict[str, Any]] = []
        self._chats: dict[int, dict[str, Any]] = {}  # chats seen in injected updates
        self._update_ids = itertools.count(100)
        self._message_ids = itertools.count(1)
        self._faults: dict[str, collections.deque[Fault]] = collections.defaultdict(
            collections.deque)
        self._cond = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- life cycle ---------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """What ``[plugins.telegram] base_url`` should be."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """What ``[plugins.telegram] base_file_url`` should be."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    def start(self) -> BotApiStandIn:
        """Serve in a daemon thread."""
        # shutdown() waits for the serve loop's next poll (0.5 s at the default)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        name="bot-api-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; wake every long poll."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> BotApiStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what a test does ------------------------------------------------------------
    def send_command(self, chat_id: int, text: str, *, username: str = "alice",
                     user_id: int | None = None, chat_type: str = "private") -> int:
        """A person types ``text`` in chat ``chat_id``: queue the update; its id."""
        return self.push_update({"message": self.make_message(
            chat_id, text, username=username, user_id=user_id, chat_type=chat_type)})[0]

    def make_message(self, chat_id: int, text: str, *, username: str = "alice",
                     user_id: int | None = None, chat_type: str = "private",
                     **fields: Any) -> dict[str, Any]:
        """A Message object as the Bot API sends it (``fields`` added: a
        ``forward_origin``, ``sender_chat``...), for :meth:`push_update`."""
        command = text.split(" ", 1)[0]
        user = {"id": user_id or abs(chat_id), "is_bot": False, "first_name": username.title(),
                "username": username, "language_code": "en"}
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat.update(first_name=user["first_name"], username=username)
        else:
            chat["title"] = "Argus desk"
        self._chats[chat_id] = chat
        message = {"message_id": next(self._message_ids), "from": user, "chat": chat,
                   "date": int(time.time()), "text": text, **fields}
        if text.startswith("/"):
            message["entities"] = [{"offset": 0, "length": len(command),
                                    "type": "bot_command"}]
        return message

    def push_update(self, *updates: dict[str, Any]) -> list[int]:
        """Queue raw Updates at once (an ``edited_message``, a ``channel_post``, a
        ``callback_query``, or one whose ``update_id`` was sent before, as a replay);
        each without an ``update_id`` gets the next.  Returns their ids."""
        queued = [dict(u) for u in updates]
        for update in queued:
            if "update_id" not in update:
                update["update_id"] = self.next_update_id()
        with self._cond:
            self._updates.extend(queued)
            self._cond.notify_all()
        return [int(u["update_id"]) for u in queued]

    def next_update_id(self) -> int:
        """A fresh update id (to push one update twice under it)."""
        return next(self._update_ids)

    def fail_next(self, method: str, kind: str, *, retry_after: int = 1, status: int = 502,
                  times: int = 1) -> None:
        """The next ``times`` calls of ``method`` fail: ``"429"`` (flood control with
        ``retry_after``), ``"5xx"`` (``status``), ``"drop"`` (connection closed without an
        answer), ``"401"`` (Unauthorized), ``"409"`` (Conflict: another ``getUpdates``
        consumer of this token) or ``"garbled"`` (HTTP ``status``, 200 too, with a body
        that is not JSON: a proxy's error page, which quotes the request's path and so
        the token)."""
        for _ in range(times):
            self._faults[method].append(Fault(kind, retry_after, status))

    def messages(self, chat_id: int | None = None) -> list[Sent]:
        """``sendMessage`` calls received (to ``chat_id``, or all)."""
        with self._cond:
            return [s for s in self.sent if s.method == "sendMessage"
                    and (chat_id is None or s.chat_id == chat_id)]

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
        """Wait until ``predicate()`` holds (checked on every call and every 50 ms)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def pending_updates(self) -> int:
        """Updates not yet confirmed by an ``offset``."""
        with self._cond:
            return len(self._updates)

    # -- the API ---------------------------------------------------------------------
    def _call(self, token: str, method: str, params: dict[str, Any],
              files: dict[str, tuple[str | None, bytes]]) -> tuple[int, dict[str, Any]] | None:
        """``(http status, JSON body)``; None drops the connection."""
        now = time.monotonic()
        with self._cond:
            self.calls.append((method, now, params))
            self._cond.notify_all()
            fault = self._faults[method].popleft() if self._faults[method] else None
        if token != self.token or (fault and fault.kind == "401"):
            return self._error(method, 401, "Unauthorized")
        if fault is not None:
            if fault.kind == "drop":
                return None
            if fault.kind == "409":
                return self._error(method, 409, "Conflict: terminated by other getUpdates "
                                                "request; make sure that only one bot "
                                                "instance is running")
            if fault.kind == "garbled":
                return fault.status, {GARBLED: f"<html><body>Error at /bot{token}/{method}"
                                                f"</body></html>"}
            if fault.kind == "429":
                return self._error(method, 429, f"Too Many Requests: retry after "
                                   f"{fault.retry_after}",
                                   {"retry_after": fault.retry_after})
            return self._error(method, fault.status, "Bad Gateway")
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._error(method, 404, "Not Found")
        result: tuple[int, dict[str, Any]] = handler(params, files)
        return result

    def _error(self, method: str, code: int, description: str,
               parameters: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        with self._cond:
            self.refusals.append((method, code))
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return code, body

    @staticmethod
    def _ok(result: Any) -> tuple[int, dict[str, Any]]:
        return 200, {"ok": True, "result": result}

    def _m_getMe(self, params: dict[str, Any], files: Any) -> tuple[int, dict[str, Any]]:
        return self._ok({"id": BOT_ID, "is_bot": True, "first_name": "Argus",
                         "username": BOT_USERNAME, "can_join_groups": True,
                         "can_read_all_group_messages": False,
                         "supports_inline_queries": False})

    def _m_getUpdates(self, params: dict[str, Any], files: Any
                      ) -> tuple[int, dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        timeout_s = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + timeout_s
        with self._cond:
            # An offset confirms every update before it: they are never sent again; a
            # negative one keeps only the last -offset updates and forgets the rest.
            self._updates = self._updates[offset:] if offset < 0 else \
                [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self._ok(self._updates[:limit])

    def _message(self, chat_id: int, **fields: Any) -> dict[str, Any]:
        return {"message_id": next(self._message_ids), "date": int(time.time()),
                "chat": self._chats.get(chat_id) or {
                    "id": chat_id, "type": "private" if chat_id > 0 else "group"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Argus",
                         "username": BOT_USERNAME}, **fields}

    def _m_sendMessage(self, params: dict[str, Any], files: Any
                       ) -> tuple[int, dict[str, Any]]:
        text = params.get("text")
        if not text:
            return self._error("sendMessage", 400, "Bad Request: message text is empty")
        try:
            chat_id = int(params["chat_id"])
        except (KeyError, ValueError):  # "4242.0": the Bot API knows no such chat
            return self._error("sendMessage", 400, "Bad Request: chat not found")
        html = params.get("parse_mode") == "HTML"
        if html and (problem := html_problem(str(text))):
            return self._error("sendMessage", 400, f"Bad Request: can't parse entities: "
                                                   f"{problem}")
        # 4096 characters after entities parsing, counted in UTF-16 code units.
        if utf16_len(html_text(str(text)) if html else str(text)) > 4096:
            return self._error("sendMessage", 400, "Bad Request: message is too long")
        with self._cond:
            thread = params.get("message_thread_id")
            self.sent.append(Sent("sendMessage", chat_id, str(text),
                                  params.get("parse_mode"), time.monotonic(),
                                  thread_id=None if thread is None else int(thread)))
            self._cond.notify_all()
        return self._ok(self._message(chat_id, text=str(text)))

    def _m_sendDocument(self, params: dict[str, Any], files: dict[str, tuple[str | None, bytes]]
                        ) -> tuple[int, dict[str, Any]]:
        chat_id = int(params["chat_id"])
        document = params.get("document")
        name, data = (None, b"")
        if isinstance(document, str) and document.startswith("attach://"):
            name, data = files.get(document.removeprefix("attach://"), (None, b""))
        elif "document" in files:
            name, data = files["document"]
        if not data:
            return self._error("sendDocument", 400, "Bad Request: there is no document in "
                                                    "the request")
        with self._cond:
            self.sent.append(Sent("sendDocument", chat_id, None, params.get("parse_mode"),
                                  time.monotonic(), document=data, filename=name,
                                  caption=params.get("caption")))
            self._cond.notify_all()
        return self._ok(self._message(chat_id, caption=params.get("caption"), document={
            "file_id": f"BQACAgIAAxk{len(self.sent)}", "file_unique_id": f"AgAD{len(self.sent)}",
            "file_name": name, "mime_type": "text/html", "file_size": len(data)}))

    def _m_close(self, params: dict[str, Any], files: Any) -> tuple[int, dict[str, Any]]:
        return self._ok(True)

    def _m_logOut(self, params: dict[str, Any], files: Any) -> tuple[int, dict[str, Any]]:
        return self._ok(True)

    # -- HTTP ----------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the URL holds the token: never print it

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                parts = url.path.strip("/").split("/")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if len(parts) != 2 or not parts[0].startswith("bot"):
                    self._answer(404, {"ok": False, "error_code": 404,
                                       "description": "Not Found"})
                    return
                params: dict[str, Any] = dict(urllib.parse.parse_qsl(url.query))
                files: dict[str, tuple[str | None, bytes]] = {}
                parse_body(self.headers.get("Content-Type", ""), body, params, files)
                answer = api._call(parts[0][3:], parts[1], params, files)
                if answer is None:  # a dropped connection: no answer at all
                    self.close_connection = True
                    return
                self._answer(*answer)

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                payload = str(body[GARBLED]).encode() if GARBLED in body else \
                    json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                try:
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (a cancelled poll)

        return Handler


#: Tags the Bot API's HTML parse mode accepts ("Formatting options", HTML style).
HTML_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span",
                       "tg-spoiler", "a", "code", "pre", "blockquote", "tg-emoji"})
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")


def html_problem(text: str) -> str | None:
    """Why Telegram would refuse ``text`` with ``parse_mode=HTML`` (None: it parses): an
    unsupported or unbalanced tag, a bare ``<`` or ``&``, an unknown named entity."""
    stack: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "&":
            if not _ENTITY.match(text, i):
                return f"Unsupported character entity at byte offset {i}"
        elif char == "<":
            end = text.find(">", i)
            if end < 0:
                return f"unclosed start tag at byte offset {i}"
            tag = text[i + 1:end].strip()
            closing = tag.startswith("/")
            name = tag.lstrip("/").split(" ", 1)[0].lower()
            if name not in HTML_TAGS:
                return f'Unsupported start tag "{name}" at byte offset {i}'
            if closing:
                if not stack or stack.pop() != name:
                    return f'unexpected end tag "{name}" at byte offset {i}'
            else:
                stack.append(name)
            i = end
        i += 1
    return f'can\'t find end tag corresponding to start tag "{stack[-1]}"' if stack else None


def utf16_len(text: str) -> int:
    """``text``'s length as the Bot API counts it: UTF-16 code units (kept apart from the
    bot's own count, which this stand-in checks)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def html_text(html: str) -> str:
    """What a reader sees of HTML that parses: its tags gone, its entities read."""
    return unescape(re.sub(r"<[^>]*>", "", html))


def parse_body(content_type: str, body: bytes, params: dict[str, Any],
               files: dict[str, tuple[str | None, bytes]]) -> None:
    """Merge a request body's parameters into ``params`` and its files into ``files``."""
    if not body:
        return
    if content_type.startswith("application/json"):
        params.update(json.loads(body))
    elif content_type.startswith("application/x-www-form-urlencoded"):
        params.update(urllib.parse.parse_qsl(body.decode()))
    elif content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            if part.get_filename() is not None:
                files[str(name)] = (part.get_filename(), data)
            else:
                params[str(name)] = data.decode()
