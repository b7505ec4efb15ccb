"""Canary sweep of Kalshi's market-data websocket (kit: ``tests/test_secrets_canary.py``;
the fill websocket and the REST client: ``tests/test_secrets_canary_venues2.py``).

The book stream signs its handshake (``KALSHI-ACCESS-KEY`` = the canary key id,
``KALSHI-ACCESS-SIGNATURE``) against a 127.0.0.1 server that refuses the handshake (401,
the request's headers in the body) or accepts it and answers an ``error`` frame, a frame
that is not JSON and a close reason, each quoting the auth headers.  Scanned: every log
line at DEBUG as the CLI writes it, and (the signature is no key, but it is the exchange's
proof of our key for that request) no signature quoted either.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from test_secrets_canary import canary, kalshi_pem, leaks
from test_secrets_canary_venues2 import (  # the kit's stand-ins, shared with the fill socket
    EchoServer,
    Lines,
    kalshi_canaries,
    kalshi_settings,
    lines,
)

__all__ = ["lines"]  # the fixture, used by name


@pytest.mark.parametrize("refuse", [True, False], ids=["handshake-401", "error-frames"])
def test_kalshi_book_websocket_auth_failures_leak_no_credential(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: Lines, refuse: bool) -> None:
    from argus_venue_kalshi import rest as kalshi_rest
    from argus_venue_kalshi.data import BookStream

    async def main() -> list[dict[str, str]]:
        async with EchoServer(refuse) as server:
            settings = kalshi_settings(tmp_path, monkeypatch,
                                       ws_url=f"ws://127.0.0.1:{server.port}/trade-api/ws/v2",
                                       reconnect_base_s=0.01, reconnect_max_s=0.02,
                                       markets=["KXHIGHNY-24JAN01-T60"])
            rest = kalshi_rest.KalshiRest(settings)
            stream = BookStream(settings, rest, ["KXHIGHNY-24JAN01-T60"])

            async def consume() -> None:
                async for _ in stream.events():
                    pass

            task = asyncio.create_task(consume())
            for _ in range(300):
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
    assert "kalshi websocket" in log, log[-800:]
    found = leaks({"log": log}, kalshi_canaries(kalshi_pem()))
    assert not found, "secrets leaked:\n" + "\n".join(map(str, found))
    signatures = {h.get("KALSHI-ACCESS-SIGNATURE", "") for h in seen} - {""}
    assert signatures and not [s for s in signatures if s in log], "a signature was logged"
