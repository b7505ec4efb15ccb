"""Canary sweep of Kalshi's and Polymarket's credential paths (kit:
``test_secrets_canary.py``; Kraken's REST client: ``test_secrets_canary_venues.py``).

* Kalshi: a canary key id (``$env:``) and a PEM RSA key canary (``$file:``).  The REST
  client signs against an exchange stand-in that refuses and echoes the request the ways
  a proxy, WAF or the exchange itself does: the headers as a JSON error's message (401),
  the headers as plain text (403; an HTML page has no JSON ``message``, so the client
  quotes the body), a 502 and a transport error quoting the request.  The fill websocket
  authenticates against a 127.0.0.1 server that refuses the handshake (401) or accepts it
  and answers an ``error`` frame echoing the auth headers.  A broken PEM's refusal.
  Scanned: each error as the CLI prints it (``redact``; message and traceback) and every
  log line at DEBUG as the CLI's formatter writes it.
* Polymarket: the L2 credentials (``$env:``) on the user channel against a 127.0.0.1
  server that echoes the auth frame back in a frame the client cannot read, and closes
  refusing the credentials with the frame in its reason.

  Scanned: the plugin's log lines, and (a core finding) the websockets library's own
  DEBUG frame dumps, which ``-vvv`` turns on.

What held is asserted plainly; what leaks through a venue plugin or the core (not this
file's owner's to edit) is a strict xfail naming the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_secrets_canary import (
    CANARIES,
    Canary,
    canary,
    kalshi_pem,
    leaks,
    pem_canary,
    plant,
)

from argus_core import Secret
from argus_core.logs import RedactingFormatter
from argus_core.secrets import forget_all, redact

kalshi_rest = pytest.importorskip("argus_venue_kalshi.rest")
kalshi_config = pytest.importorskip("argus_venue_kalshi.config")
websockets = pytest.importorskip("websockets")


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    forget_all()
    yield
    forget_all()


class Lines(logging.Handler):
    """Log lines as the CLI writes them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler, root = Lines(), logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def printed(exc: BaseException) -> dict[str, str]:
    """An error as the CLI prints it: its message and its traceback, redacted."""
    return {"error": redact(f"error: {exc}"),
            "traceback": redact("".join(traceback.format_exception(exc)))}


# == Kalshi ===================================================================================
def kalshi_canaries(pem: str) -> list[Canary]:
    return [CANARIES["kalshi_key_id"], pem_canary(pem)]


def kalshi_settings(root: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Any:
    refs = plant(root, monkeypatch)
    (root / "secrets" / "kalshi.pem").write_text(kalshi_pem())
    return kalshi_config.KalshiSettings(
        api_key_id=Secret(refs["kalshi_key_id"]),
        private_key=Secret(f"$file:{root / 'secrets' / 'kalshi.pem'}"), max_retries=0, **kw)


def kalshi_echo(kind: str, pad: int) -> httpx.MockTransport:
    """An exchange that refuses every call and quotes the request back (``pad`` filler
    characters first: where a cut of the quote falls)."""

    def answer(request: httpx.Request) -> httpx.Response:
        head = dict(request.headers.items())
        key_id = head.get("kalshi-access-key", "")
        quote = f"{'.' * pad} unknown key id {key_id} {head!r} {request.url}"
        if kind == "json401":
            return httpx.Response(401, json={"error": {"code": "unauthorized",
                                                       "message": quote}})
        if kind == "text403":
            return httpx.Response(403, text=quote)
        if kind == "502":
            return httpx.Response(502, text=f"<html>bad gateway {quote}</html>")
        raise httpx.ConnectError(f"connection reset while sending {quote}", request=request)

    return httpx.MockTransport(answer)


def kalshi_failures(settings: Any, kind: str, pad: int) -> BaseException:
    rest = kalshi_rest.KalshiRest(settings)

    async def call() -> None:
        await rest._client.aclose()
        rest._client = httpx.AsyncClient(base_url=settings.rest_url,
                                         transport=kalshi_echo(kind, pad))
        try:
            await rest.get("/portfolio/balance", signed=True)
        finally:
            await rest.close()

    with pytest.raises(Exception) as caught:
        asyncio.run(call())
    return caught.value


@pytest.mark.parametrize("kind", ["json401", "502", "reset"])
def test_kalshi_refusals_echoing_the_signed_request_leak_no_credential(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: Lines, kind: str) -> None:
    settings = kalshi_settings(tmp_path, monkeypatch)
    artifacts: dict[str, str] = {}
    # A JSON message is quoted whole: the key id anywhere in it (the cut below is the
    # client's quote of a body that is not JSON: pad 0 keeps it inside the 200).
    for pad in ((0, 150, 175, 190) if kind == "json401" else (0,)):
        exc = kalshi_failures(settings, kind, pad)
        artifacts |= {f"{kind} pad {pad} {k}": v for k, v in printed(exc).items()}
    artifacts["log"] = "\n".join(lines.lines)
    assert "portfolio/balance" in json.dumps(artifacts) or kind != "reset"
    found = leaks(artifacts, kalshi_canaries(kalshi_pem()))
    assert not found, "secrets leaked:\n" + "\n".join(map(str, found))


def test_kalshi_a_refusal_quoted_whole_leaks_no_credential(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: Lines) -> None:
    # A 403 without JSON: the client quotes the body (its first 200 characters); the
    # key id there whole is redacted (it was revealed to sign).
    settings = kalshi_settings(tmp_path, monkeypatch)
    exc = kalshi_failures(settings, "text403", 0)
    assert "HTTP 403" in str(exc)
    found = leaks(printed(exc) | {"log": "\n".join(lines.lines)},
                  kalshi_canaries(kalshi_pem()))
    assert not found, "secrets leaked:\n" + "\n".join(map(str, found))


def test_kalshi_a_refusal_cut_across_the_key_id_leaks_no_prefix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = kalshi_settings(tmp_path, monkeypatch)
    artifacts = {}
    # "<pad> unknown key id <36-char id>": the cut at 200 falls inside the id.
    for kind in ("text403", "502"):
        for pad in (150, 160, 166):
            exc = kalshi_failures(settings, kind, pad)
            artifacts |= {f"{kind} pad {pad} {k}": v for k, v in printed(exc).items()}
    found = leaks(artifacts, [CANARIES["kalshi_key_id"]])
    assert not found, "secrets leaked:\n" + "\n".join(map(str, found))


def test_kalshi_a_broken_pem_is_refused_without_quoting_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: Lines) -> None:
    from argus_venue_kalshi import signing

    pem = kalshi_pem()
    body = pem.splitlines()
    for broken in ("\n".join(body[:-3]), "\n".join(body[1:]), pem.replace("A", "!", 3),
                   pem.replace("PRIVATE KEY", "PUBLIC KEY")):
        (tmp_path / "broken.pem").write_text(broken)
        value = Secret(f"$file:{tmp_path / 'broken.pem'}").reveal()
        with pytest.raises(Exception) as caught:
            signing.load_private_key(value)
        found = leaks(printed(caught.value) | {"log": "\n".join(lines.lines)},
                      [pem_canary(pem)])
        assert not found, "secrets leaked:\n" + "\n".join(map(str, found))


class EchoServer:
    """A 127.0.0.1 websocket server: ``refuse`` answers the handshake 401 with the
    request's headers in the body; else it accepts, answers every frame with an
    ``error`` frame quoting the handshake's headers and the frame, then closes with them
    in the close reason (cut to the 123 bytes a close frame holds)."""

    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse
        self.seen: list[dict[str, str]] = []
        self.port = 0

    async def __aenter__(self) -> EchoServer:
        from websockets.asyncio.server import serve
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        def process_request(conn: Any, request: Any) -> Any:
            head = dict(request.headers.raw_items())
            self.seen.append(head)
            if self.refuse:
                body = f"401 Unauthorized: {head!r}".encode()
                return Response(401, "Unauthorized", Headers([("Content-Length",
                                                               str(len(body)))]), body)
            return None

        async def handler(ws: Any) -> None:
            head = self.seen[-1] if self.seen else {}
            with contextlib.suppress(Exception):
                async for frame in ws:
                    await ws.send(json.dumps({"type": "error", "msg": {
                        "code": 9, "msg": f"authentication failed for {head!r}",
                        "echo": str(frame)}}))
                    await ws.send(f"not json: {head!r} {frame}")
                    await ws.close(4001, f"auth {json.dumps(head)}"[:120])

        self._server = await serve(handler, "127.0.0.1", 0, process_request=process_request)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()


@pytest.mark.parametrize("refuse", [True, False])
def test_kalshi_fill_websocket_auth_failures_leak_no_credential(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: Lines, refuse: bool) -> None:
    from argus_venue_kalshi.fills import FillStream

    async def main() -> list[dict[str, str]]:
        async with EchoServer(refuse) as server:
            settings = kalshi_settings(tmp_path, monkeypatch,
                                       ws_url=f"ws://127.0.0.1:{server.port}/trade-api/ws/v2",
                                       reconnect_base_s=0.01, reconnect_max_s=0.02)
            rest = kalshi_rest.KalshiRest(settings)
            socket = FillStream(settings, rest, lambda fill: None)
            task = asyncio.create_task(socket.run())
            for _ in range(200):
                await asyncio.sleep(0.01)
                if len(server.seen) >= 3:
                    break
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await rest.close()
            return server.seen

    seen = asyncio.run(main())
    assert seen and seen[0]["KALSHI-ACCESS-KEY"] == canary("kalshi_key_id")  # it signed
    log = "\n".join(lines.lines)
    assert "kalshi fill websocket" in log
    assert ("HTTP 401" in log) if refuse else ("authentication failed" in log), log[-800:]
    found = leaks({"log": log}, kalshi_canaries(kalshi_pem()))
    assert not found, "secrets leaked:\n" + "\n".join(map(str, found))


# == Polymarket ===============================================================================
PM_L2 = ("pm_api_key", "pm_api_secret", "pm_passphrase")


class PmEchoServer:
    """A 127.0.0.1 user channel that reads the auth frame and answers it back: as a frame
    that is not JSON (the client logs what it could not read), ``pad`` characters in, with
    the three credentials quoted without their names (a proxy's "bad credentials ..."
    page), then closes refusing them with the auth frame in the close reason."""

    def __init__(self, pad: int) -> None:
        self.pad = pad
        self.frames: list[str] = []
        self.port = 0

    async def __aenter__(self) -> PmEchoServer:
        from websockets.asyncio.server import serve

        async def handler(ws: Any) -> None:
            with contextlib.suppress(Exception):
                first = str(await ws.recv())
                self.frames.append(first)
                auth = json.loads(first).get("auth", {})
                bare = " ".join(str(v) for v in auth.values())
                await ws.send(f"<html>{'.' * self.pad} bad credentials {bare} {first}</html>")
                key_and_secret = " ".join(str(v) for v in list(auth.values())[:2])
                await ws.close(4003, f"auth failed {key_and_secret}")  # whole: < 123 bytes

        self._server = await serve(handler, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()


def pm_user_channel_log(root: Path, monkeypatch: pytest.MonkeyPatch, lines: Lines,
                        pad: int) -> tuple[str, list[str]]:
    from argus_venue_polymarket.config import PolymarketSettings
    from argus_venue_polymarket.user_channel import UserChannel
    from py_clob_client_v2.clob_types import ApiCreds

    refs = plant(root, monkeypatch)
    settings = PolymarketSettings(
        api_key=Secret(refs["pm_api_key"]), api_secret=Secret(refs["pm_api_secret"]),
        api_passphrase=Secret(refs["pm_passphrase"]), reconnect_min_s=0.01,
        reconnect_max_s=0.02)

    async def creds() -> ApiCreds:
        assert settings.api_key and settings.api_secret and settings.api_passphrase
        return ApiCreds(settings.api_key.reveal(), settings.api_secret.reveal(),
                        settings.api_passphrase.reveal())

    async def on_event(event: dict[str, Any]) -> None:
        return None

    async def main() -> list[str]:
        async with PmEchoServer(pad) as server:
            channel = UserChannel(settings, f"ws://127.0.0.1:{server.port}/ws/user", creds,
                                  on_event, seed=1)
            task = asyncio.create_task(channel.run())
            for _ in range(300):
                await asyncio.sleep(0.01)
                if len(server.frames) >= 2 and channel.stats["disconnects"] >= 2:
                    break
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return server.frames

    frames = asyncio.run(main())
    # The stand-in's own log lines (websockets.server) are not the client's.
    return "\n".join(x for x in lines.lines if "websockets.server" not in x), frames


def test_polymarket_user_channel_echoing_the_auth_frame_leaks_no_credential(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: Lines) -> None:
    # The echo starts inside the 200 characters the client quotes of a frame it cannot
    # read, the close reason inside its 80: every credential there whole is redacted.
    log, frames = pm_user_channel_log(tmp_path, monkeypatch, lines, pad=0)
    assert frames and json.loads(frames[0])["auth"]["secret"] == canary("pm_api_secret")
    assert "malformed user channel frame" in log and "refused our API credentials" in log
    own = "\n".join(x for x in log.splitlines() if "websockets." not in x)  # see below
    found = leaks({"log": own}, [CANARIES[n] for n in PM_L2])
    assert not found, "secrets leaked:\n" + "\n".join(map(str, found))


def test_websockets_debug_frame_dumps_leak_no_credential_fragment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: Lines) -> None:
    from argus_core.logs import configure

    handler = configure(3, as_json=False)  # the CLI at -vvv: everyone's DEBUG
    try:
        log, _ = pm_user_channel_log(tmp_path, monkeypatch, lines, pad=0)
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger("websockets").setLevel(logging.NOTSET)
    assert "user channel refused our API credentials" in log  # the sweep reached it
    assert "DEBUG websockets" not in log  # frame dumps off, whatever the verbosity
    found = leaks({"log": log}, [CANARIES[n] for n in PM_L2])
    assert not found, "secrets leaked:\n" + "\n".join(map(str, found))


def test_polymarket_user_channel_echo_cut_across_a_credential_leaks_no_prefix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: Lines) -> None:
    # "<html><pad> bad credentials <key 36> <secret 44> <passphrase 64>": pads that put
    # the cut at 200 inside each of the three.
    logs = {}
    for pad in (160, 120, 70):
        forget_all()
        log, _ = pm_user_channel_log(tmp_path / str(pad), monkeypatch, lines, pad)
        logs[f"pad {pad}"] = "\n".join(x for x in log.splitlines() if "websockets." not in x)
    found = leaks(logs, [CANARIES[n] for n in PM_L2])
    assert not found, "secrets leaked:\n" + "\n".join(map(str, found))
