"""A 127.0.0.1 HTTP proxy in front of a local exchange that applies a :class:`FaultPlan`'s
draw to every request: the exchange acts or not, then the answer arrives, is lost, late,
cut, or replaced by a 5xx / 429 / reset.

Venue-agnostic: it forwards the request's bytes unchanged (signatures over the path and
body still verify) on a fresh upstream connection, and answers each client connection
once (``Connection: close``), so a fault never leaks into the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import socket
import struct
import time
from collections.abc import Callable

from argus_testkit.faults import AnyHttpFault, FaultPlan, HeldOutFault, HttpFault

#: A hook called with the request's key just before it is forwarded (e.g. the exchange
#: fills an order the moment its cancel arrives).
BeforeForward = Callable[[str], None]

_REASONS = {200: "OK", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable"}
_GATEWAY_HTML = b"<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"
#: A CDN's rate-limit page (Cloudflare's error 1015 answers 429 with HTML like this).
_RATE_HTML = (b"<!DOCTYPE html><html><head><title>Access denied | Error 1015</title></head>"
              b"<body><h1>Error 1015</h1><p>You are being rate limited</p>"
              b"<p>Cloudflare Ray ID: 7f00000000000000</p></body></html>")

#: The body of a venue that answers a rate limit with HTTP 200 and an error (Kraken): the
#: draw's index ``n`` picks among the venue's wordings.
RateLimitBody = Callable[[int], bytes]


def http_date(epoch_s: float) -> str:
    """An RFC 9110 HTTP-date (``Sun, 06 Nov 1994 08:49:37 GMT``)."""
    return email.utils.formatdate(epoch_s, usegmt=True)


def _response(status: int, body: bytes, content_type: str = "application/json",
              extra: tuple[tuple[str, str], ...] = (), length: int | None = None,
              skew_s: float = 0.0) -> bytes:
    announced = len(body) if length is None else length
    dated = extra if any(k == "Date" for k, _ in extra) else \
        (("Date", http_date(time.time() + skew_s)), *extra)
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
            f"Content-Type: {content_type}", f"Content-Length: {announced}",
            "Connection: close", *(f"{k}: {v}" for k, v in dated)]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _refusal(fault: AnyHttpFault) -> bytes:
    """The answer of a fault that does not reach the exchange (the narrow class)."""
    if fault is HttpFault.S500_JSON:
        return _response(500, json.dumps({"error": "internal server error"}).encode())
    if fault is HttpFault.S503_JSON:
        return _response(503, json.dumps({"error": "service unavailable"}).encode())
    if fault is HttpFault.S502_HTML:
        return _response(502, _GATEWAY_HTML, "text/html")
    if fault is HttpFault.S429_RETRY:
        return _response(429, json.dumps({"error": "too many requests"}).encode(),
                         extra=(("Retry-After", "0"),))
    return _response(429, json.dumps({"error": "too many requests"}).encode())


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, str] | None:
    """One request's bytes (head and body, by ``Content-Length``) and its key."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target = lines[0].split(" ")[:2]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return head + body, f"{method} {target.split('?', 1)[0]}"


def _split(raw: bytes) -> tuple[int, bytes, bytes]:
    """(status, head without the blank line, body) of an upstream response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head, body


class FaultProxy:
    """Proxy ``upstream`` (``http://127.0.0.1:PORT``) applying ``plan``'s draws.

    ``late_s``: how long a LATE answer waits (longer than the client's timeout) unless the
    plan draws the delay (``late_factors`` times ``timeout_s``).
    ``before_forward``: see :data:`BeforeForward`. ``seen``: every request key, in order.
    ``rate_limit_body``: the venue's HTTP-200 rate-limit answer (:data:`RateLimitBody`);
    without one a ``200-rate`` draw answers a plain 429.  ``skew_s``: how far the venue's
    clock is ahead of ours (negative: behind): the ``Date`` header of every answer and a
    ``Retry-After`` given as an HTTP-date are on the venue's clock.
    """

    def __init__(self, upstream: str, plan: FaultPlan, *, late_s: float = 0.4,
                 before_forward: BeforeForward | None = None, timeout_s: float | None = None,
                 rate_limit_body: RateLimitBody | None = None, skew_s: float = 0.0) -> None:
        host_port = upstream.split("://", 1)[-1].rstrip("/")
        host, _, port = host_port.partition(":")
        self.upstream = (host, int(port or 80))
        self.plan = plan
        self.late_s = late_s
        self.before_forward = before_forward
        self.timeout_s = timeout_s if timeout_s is not None else late_s
        self.rate_limit_body = rate_limit_body
        self.skew_s = skew_s
        #: (key, monotonic time) of every request the proxy answered with a rate limit,
        #: to check that the client honoured the wait (no hammering).
        self.limited: list[tuple[str, float]] = []
        self.seen: list[str] = []
        #: (key, monotonic time) of every request as it arrived.
        self.arrived: list[tuple[str, float]] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the proxy."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._one(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass  # the client went away (after its timeout)
        finally:
            if task is not None:
                self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read_request(reader)
        if request is None:
            return
        raw, key = request
        self.seen.append(key)
        self.arrived.append((key, time.monotonic()))
        fault = self.plan.http(key)
        n = self.plan.last(key)
        if fault is HttpFault.RESET:
            _reset(writer)
            return
        if fault in (HttpFault.S429_RETRY, HttpFault.S429, HeldOutFault.S429_HTML,
                     HeldOutFault.S200_RATE):
            self.limited.append((key, time.monotonic()))
        if not fault.acts:
            writer.write(self._rate_limited(fault, key, n)
                         if fault is HttpFault.S429_RETRY or isinstance(fault, HeldOutFault)
                         else _refusal(fault))
            await writer.drain()
            return
        if fault is HeldOutFault.ACT_LATE:
            # Held on the way: the client times out and asks meanwhile; then the venue acts.
            await asyncio.sleep(self.plan.late_s(key, n, self.timeout_s, self.late_s))
        if self.before_forward is not None:
            self.before_forward(key)
        answer = await self._forward(raw)
        if fault is HttpFault.LOST:
            _reset(writer)
            return
        status, head, body = _split(answer)
        content_type = "application/json"
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-type":
                content_type = value.strip()
        if fault is HttpFault.AFTER_502:
            writer.write(_response(502, _GATEWAY_HTML, "text/html", skew_s=self.skew_s))
        elif fault is HttpFault.TRUNCATED:
            writer.write(_response(status, body[: len(body) // 2], content_type,
                                   length=len(body), skew_s=self.skew_s))
            await writer.drain()
            _reset(writer)
            return
        else:
            if fault is HttpFault.LATE:
                await asyncio.sleep(self.plan.late_s(key, n, self.timeout_s, self.late_s))
            writer.write(_response(status, body, content_type, skew_s=self.skew_s))
        await writer.drain()

    def _rate_limited(self, fault: AnyHttpFault, key: str, n: int) -> bytes:
        """A rate-limit answer as drawn: a 429 (JSON or a CDN's HTML) with the plan's
        ``Retry-After``, or the venue's HTTP-200 error body; dated on the venue's clock."""
        venue_now = time.time() + self.skew_s
        extra = [("Date", http_date(venue_now))]
        if fault is HeldOutFault.S200_RATE and self.rate_limit_body is not None:
            return _response(200, self.rate_limit_body(n), extra=tuple(extra))
        value = self.plan.retry_after(key, n)
        if value is not None and value.startswith("{date+"):
            value = http_date(venue_now + float(value[6:-1]))
        if value is not None:
            extra.append(("Retry-After", value))
        if fault is HeldOutFault.S429_HTML:
            return _response(429, _RATE_HTML, "text/html", extra=tuple(extra))
        return _response(429, json.dumps({"error": "too many requests"}).encode(),
                         extra=tuple(extra))

    async def _forward(self, raw: bytes) -> bytes:
        """Send ``raw`` upstream on a fresh connection; the whole answer (read to EOF, or by
        its ``Content-Length``)."""
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = [ln for ln in head.split(b"\r\n")
                 if not ln.lower().startswith((b"connection:", b"keep-alive:"))]
        request = b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body
        reader, writer = await asyncio.open_connection(*self.upstream)
        try:
            writer.write(request)
            await writer.drain()
            answer_head = await reader.readuntil(b"\r\n\r\n")
            length = None
            for line in answer_head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            answer_body = (await reader.readexactly(length) if length is not None
                           else await reader.read())
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        return answer_head + answer_body


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close the client's connection with a TCP reset (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
