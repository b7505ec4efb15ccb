"""Canary sweep of Polymarket's REST order path (kit: ``tests/test_secrets_canary.py``; the
user channel: ``tests/test_secrets_canary_venues2.py``).

The L2 credentials (API key, secret, passphrase) and the signing key are planted as
canaries (``$env:``).  A stand-in CLOB refuses every call the ways an auth layer, a WAF or
a proxy does, echoing the request's L2 headers (``POLY_API_KEY``, ``POLY_PASSPHRASE``,
``POLY_SIGNATURE``...) back: in a JSON ``error`` (401), as plain text (403), in a 429 page
and in an HTML 502, ``pad`` characters in (where a cut of the quote falls).  Driven: an
order post, a cancel, a look-up.  Scanned: the error as the CLI prints it, every log line
at DEBUG as the CLI writes it, and every reason the venue hands the core (the ledger
stores them).  The order-signing refusals (a key that is not a key) are swept too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_secrets_canary import CANARIES, canary, leaks, plant

from argus_core import Instrument, Order, OrderType, Secret, Side, TimeInForce
from argus_core.logs import RedactingFormatter
from argus_core.secrets import forget_all, redact

pm_config = pytest.importorskip("argus_venue_polymarket.config")
pm_execution = pytest.importorskip("argus_venue_polymarket.execution")

TOKEN = "1234"
PM = ("pm_api_key", "pm_api_secret", "pm_passphrase", "pm_private_key")


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    forget_all()
    yield
    forget_all()


class Lines(logging.Handler):
    """Log lines as the CLI writes them (redacting formatter)."""

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
    return {"error": redact(f"error: {exc}"),
            "traceback": redact("".join(traceback.format_exception(exc)))}


def echo(kind: str, pad: int, seen: list[dict[str, str]]) -> httpx.MockTransport:
    """A CLOB that refuses every call quoting the request's L2 headers back."""

    def answer(request: httpx.Request) -> httpx.Response:
        head = {k: v for k, v in request.headers.items() if k.lower().startswith("poly")}
        seen.append(head)
        bare = " ".join(head.values())
        quote = f"{'.' * pad} invalid L2 auth {bare} {json.dumps(head)}"
        if kind == "json401":
            return httpx.Response(401, json={"error": quote})
        if kind == "text403":
            return httpx.Response(403, text=quote)
        if kind == "html429":
            return httpx.Response(429, text=f"<html><title>Error 1015</title>{quote}</html>",
                                  headers={"Retry-After": "0"})
        return httpx.Response(502, text=f"<html>bad gateway {quote}</html>")

    return httpx.MockTransport(answer)


def execution(root: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    refs = plant(root, monkeypatch)
    settings = pm_config.PolymarketSettings(
        clob_url="http://clob.invalid", private_key=Secret(refs["pm_private_key"]),
        api_key=Secret(refs["pm_api_key"]), api_secret=Secret(refs["pm_api_secret"]),
        api_passphrase=Secret(refs["pm_passphrase"]), user_channel=False,
        request_timeout_s=0.5, order_settle_s=0.05, order_lookup_interval_s=0.01,
        order_max_attempts=1)
    meta = {"neg_risk": True, "fee_rate": "0.05", "fee_exponent": "1", "fee_taker_only": True}
    inst = Instrument("polymarket", TOKEN, kind="binary", tick_size="0.01", lot_size="0.01",
                      min_size="5", meta=meta)
    return pm_execution.PolymarketExecution(settings, {f"polymarket:{TOKEN}": inst}.get)


def order(cid: str) -> Order:
    return Order(cid, "polymarket", f"polymarket:{TOKEN}", Side.BUY, Decimal(10),
                 Decimal("0.50"), OrderType.LIMIT, TimeInForce.GTC)


def sweep(root: Path, monkeypatch: pytest.MonkeyPatch, kind: str, pad: int
          ) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Post, cancel and look up against the echoing CLOB; what the CLI and ledger get."""
    ex = execution(root, monkeypatch)
    seen: list[dict[str, str]] = []
    ex.client.http = httpx.Client(transport=echo(kind, pad, seen))
    out: dict[str, str] = {}

    async def main() -> None:
        for what, call in (("post", lambda: ex.submit(order("c1"))),
                           ("cancel", lambda: (ex.venue_ids.__setitem__("c2", "0xabc"),
                                               ex.cancel("c2"))[1]),
                           ("lookup", lambda: ex.lookup(order("c3")))):
            try:
                await call()
            except Exception as exc:  # every refusal as the CLI prints it
                for k, v in printed(exc).items():
                    out[f"{what} {k}"] = v
        out["reasons"] = "\n".join(str(getattr(r, "reason", "")) for r in ex._reports)

    asyncio.run(main())
    return out, seen


@pytest.mark.parametrize("kind", ["json401", "text403", "html429", "502"])
@pytest.mark.parametrize("pad", [0, 150, 180])
def test_clob_refusals_echoing_the_l2_headers_leak_no_credential(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: Lines, kind: str,
        pad: int) -> None:
    out, seen = sweep(tmp_path, monkeypatch, kind, pad)
    assert seen and seen[0].get("poly_api_key") == canary("pm_api_key")  # it signed with them
    signatures = {h["poly_signature"] for h in seen if "poly_signature" in h}
    assert signatures
    artifacts = {**out, "log": "\n".join(lines.lines)}
    found = leaks(artifacts, [CANARIES[n] for n in PM])
    assert not found, "secrets leaked:\n" + "\n".join(map(str, found))
    # The request's own HMAC is no key, but it is the venue's proof of our secret for one
    # request: never quoted back into logs or reasons either.
    echoed = [(k, s) for s in signatures for k, v in artifacts.items() if s in v]
    assert not echoed, f"a request signature quoted in {echoed[0][0]}"


def test_an_unusable_signing_key_is_refused_without_quoting_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: Lines) -> None:
    """The signing key is no hex key (a pasted passphrase, a truncated key): the refusal
    must name the reference, never the value."""
    refs = plant(tmp_path, monkeypatch)
    monkeypatch.setenv("ARGUS_CANARY_PM_PRIVATE_KEY", canary("pm_passphrase") + "zz")
    settings = pm_config.PolymarketSettings(
        clob_url="http://clob.invalid", private_key=Secret(refs["pm_private_key"]),
        api_key=Secret(refs["pm_api_key"]), api_secret=Secret(refs["pm_api_secret"]),
        api_passphrase=Secret(refs["pm_passphrase"]), user_channel=False)
    meta = {"neg_risk": True, "fee_rate": "0.05", "fee_exponent": "1", "fee_taker_only": True}
    inst = Instrument("polymarket", TOKEN, kind="binary", tick_size="0.01", lot_size="0.01",
                      min_size="5", meta=meta)
    ex = pm_execution.PolymarketExecution(settings, {f"polymarket:{TOKEN}": inst}.get)
    with pytest.raises(Exception) as caught:
        asyncio.run(ex.submit(order("bad-key")))
    found = leaks({**printed(caught.value), "log": "\n".join(lines.lines)},
                  [CANARIES["pm_passphrase"]])
    assert not found, "secrets leaked:\n" + "\n".join(map(str, found))
