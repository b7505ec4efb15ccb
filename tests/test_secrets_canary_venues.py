"""Canary sweep of a venue client's failure paths (kit: ``test_secrets_canary.py``).

Kraken's REST client holds canary credentials (``$env:`` key, ``$file:`` base64 secret)
and talks to an exchange stand-in (``httpx.MockTransport``, in process) that refuses every
private call and echoes the request back in its answer, the way a proxy's or WAF's error
page does: headers (``API-Key``, ``API-Sign``), URL and body, as is and URL-encoded; as an
HTML 401 (not JSON), a JSON refusal, a 403, a 502, and a transport error whose message
quotes the request.  Scanned: each error as the CLI prints it (``redact``, message and
traceback) and every log line at DEBUG as the CLI's formatter writes it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_secrets_canary import CANARIES, file_ref, leaks, plant

from argus_core import Secret
from argus_core.logs import RedactingFormatter
from argus_core.secrets import forget_all, redact

kraken_rest = pytest.importorskip("argus_venue_kraken.rest")
kraken_config = pytest.importorskip("argus_venue_kraken.config")


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


def echo(request: httpx.Request, *, url_encoded: bool) -> str:
    """The request as an error page quotes it."""
    head = {k: v for k, v in request.headers.items()}
    text = f"{request.method} {request.url} {head} {request.content.decode()}"
    if url_encoded:
        text += " " + urllib.parse.urlencode(head)
    return text


def echoing_exchange(kind: str, *, url_encoded: bool) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        body = echo(request, url_encoded=url_encoded)
        if kind == "html401":
            return httpx.Response(401, text=f"<html><body>401 Unauthorized: {body}</body></html>")
        if kind == "json":
            return httpx.Response(200, json={"error": ["EAPI:Invalid key"], "echo": body})
        if kind == "html403":
            return httpx.Response(403, text=body[-100:])
        if kind == "502":
            return httpx.Response(502, text=body)
        raise httpx.ConnectError(f"connection reset while sending {body}", request=request)

    return httpx.MockTransport(answer)


def kraken_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, url_encoded: bool
                    ) -> dict[str, str]:
    refs = plant(tmp_path, monkeypatch)
    settings = kraken_config.KrakenSettings(
        rest_url="http://127.0.0.1:9", api_key=Secret(refs["kraken_key"]),
        api_secret=Secret(file_ref(tmp_path, "kraken_secret")),
        nonce_path=tmp_path / "nonce", max_retries=1)
    lines, root = Lines(), logging.getLogger()
    root.addHandler(lines)
    old = root.level
    root.setLevel(logging.DEBUG)
    artifacts: dict[str, str] = {}
    try:
        for kind in ("html401", "json", "html403", "502", "reset"):
            client = kraken_rest.KrakenRestClient(
                settings, transport=echoing_exchange(kind, url_encoded=url_encoded),
                sleep=lambda s: asyncio.sleep(0))

            async def call(c: Any = client) -> None:
                try:
                    await c.private("Balance")
                finally:
                    await c.close()

            with pytest.raises(Exception) as caught:
                asyncio.run(call())
            artifacts[f"{kind} error"] = redact(f"error: {caught.value}")
            artifacts[f"{kind} traceback"] = redact("".join(
                traceback.format_exception(caught.value)))
    finally:
        root.removeHandler(lines)
        root.setLevel(old)
    artifacts["log"] = "\n".join(lines.lines)
    return artifacts


def test_kraken_refusals_echoing_the_request_leak_no_credential(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    artifacts = kraken_failures(tmp_path, monkeypatch, url_encoded=False)
    assert "Balance" in json.dumps(artifacts)
    found = leaks(artifacts, [CANARIES["kraken_key"], CANARIES["kraken_secret"]])
    assert not found, "secrets leaked:\n" + "\n".join(map(str, found))


def test_kraken_refusals_echoing_the_request_url_encoded_leak_no_credential(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The echo also carries the headers URL-encoded (api-key=...%2B...): held by the
    # name-shaped patterns (an unquoted value after a credential's name).
    artifacts = kraken_failures(tmp_path, monkeypatch, url_encoded=True)
    found = leaks(artifacts, [CANARIES["kraken_key"], CANARIES["kraken_secret"]])
    assert not found, "secrets leaked:\n" + "\n".join(map(str, found))
