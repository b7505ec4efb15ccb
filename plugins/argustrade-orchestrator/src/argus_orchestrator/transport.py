"""A recorded HTTP transport for the Anthropic SDK: tests and the offline example never
touch the network, yet drive the real ``anthropic`` client end to end (request building,
retries after 429/529 with ``retry-after``, error mapping, response parsing).

The installed SDK is built on ``httpx2`` (it refuses plain ``httpx`` clients), so the
transport subclasses ``httpx2.BaseTransport`` and is passed as
``anthropic.Anthropic(http_client=httpx2.Client(transport=RecordedTransport(...)))``.

A cassette is JSON::

    {"interactions": [
        {"request": {"method": "POST", "path": "/v1/messages", "model": "claude-..."},
         "response": {"status": 200, "headers": {...}, "json": {<Messages API body>}}},
        ...]}

Interactions are served in order; each request must match the next one's method, path
and (when given) model.  A response ``{"timeout": true}`` stands for an answer that came
after the client's timeout: the interaction is used up (the server did the work and
billed it) and the request raises ``httpx2.ReadTimeout``, as a live one does.  A mismatch
or an exhausted cassette answers a 400
``invalid_request_error`` with ``x-should-retry: false`` and is listed in
:attr:`RecordedTransport.mismatches`, so a test fails loudly instead of hanging.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2

from argus_core import ConfigError


class RecordedTransport(httpx2.BaseTransport):
    """Serves recorded Messages API responses, in order, and records what was asked."""

    def __init__(self, cassette: Path | str | dict[str, Any]) -> None:
        if isinstance(cassette, dict):
            data, where = cassette, "<cassette>"
        else:
            where = str(cassette)
            try:
                data = json.loads(Path(cassette).read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(f"recorded transport: cannot read cassette {where}: "
                                  f"{exc}") from None
        interactions = data.get("interactions") if isinstance(data, dict) else None
        if not isinstance(interactions, list):
            raise ConfigError(f"recorded transport: {where} has no 'interactions' list")
        for i, item in enumerate(interactions):
            if not isinstance(item, dict) or "response" not in item:
                raise ConfigError(f"recorded transport: {where}: interaction {i} has no "
                                  f"'response'")
        self.where = where
        self.interactions: list[dict[str, Any]] = interactions
        self.position = 0
        self.requests: list[dict[str, Any]] = []
        self.mismatches: list[str] = []

    @property
    def remaining(self) -> int:
        """Interactions not yet served."""
        return len(self.interactions) - self.position

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """Answer ``request`` with the next recorded response."""
        try:
            body = json.loads(request.content or b"{}")
        except json.JSONDecodeError:
            body = None
        self.requests.append({"method": request.method, "path": request.url.path,
                              "headers": {k.lower(): v for k, v in request.headers.items()},
                              "json": body})
        if self.position >= len(self.interactions):
            return self._refuse(request, f"cassette {self.where} is exhausted after "
                                         f"{len(self.interactions)} interactions")
        item = self.interactions[self.position]
        want = item.get("request", {})
        problems = []
        if want.get("method", "POST") != request.method:
            problems.append(f"method {request.method} != {want.get('method')}")
        if want.get("path", "/v1/messages") != request.url.path:
            problems.append(f"path {request.url.path} != {want.get('path')}")
        if "model" in want and (not isinstance(body, dict) or body.get("model") != want["model"]):
            got = body.get("model") if isinstance(body, dict) else None
            problems.append(f"model {got!r} != {want['model']!r}")
        if problems:
            return self._refuse(request, f"request {self.position} does not match cassette "
                                         f"{self.where}: " + "; ".join(problems))
        self.position += 1
        response = item["response"]
        if response.get("timeout"):
            raise httpx2.ReadTimeout(f"recorded timeout (interaction {self.position - 1})",
                                     request=request)
        headers = {"content-type": "application/json", **response.get("headers", {})}
        content = json.dumps(response.get("json", {})).encode()
        return httpx2.Response(int(response.get("status", 200)), headers=headers,
                               content=content, request=request)

    def _refuse(self, request: httpx2.Request, message: str) -> httpx2.Response:
        self.mismatches.append(message)
        body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
        return httpx2.Response(400, headers={"content-type": "application/json",
                                             "x-should-retry": "false"},
                               content=json.dumps(body).encode(), request=request)
