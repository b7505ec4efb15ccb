"""The CLOB's authenticated websocket user channel: this account's trades and orders as
they happen (fills without the trades poll's delay).

Protocol (https://docs.polymarket.com/market-data/websocket/user-channel and the
channel's AsyncAPI document ``asyncapi-user.json``): connect to
``wss://ws-subscriptions-clob.polymarket.com/ws/user`` and send, first,
``{"auth": {"apiKey", "secret", "passphrase"}, "markets": [condition ids], "type": "user"}``
(an empty ``markets`` list: every market of the account).  The venue then pushes

* ``trade`` events (``event_type: "trade"``, ``type: "TRADE"``): the ``GET /data/trades``
  fields (``id``, ``taker_order_id``, ``asset_id``, ``side``, ``size``, ``price``,
  ``status``, ``match_time`` (``matchtime`` in older pages), ``trader_side``,
  ``maker_orders[]``), once when matched and again for every status change (MINED,
  CONFIRMED, RETRYING, FAILED);
* ``order`` events (``event_type: "order"``, ``type`` PLACEMENT / UPDATE /
  CANCELLATION, with ``id``, ``size_matched``, ``original_size``, ``status``...).

The text ``PING`` keeps it alive (answered ``PONG``).  The venue sends no acknowledgement
and no error for refused credentials: it closes the socket; a close that names auth (or
code 1008, policy violation) is reported as refused credentials.

:class:`UserChannel` owns one connection: subscribe, keep-alive, reconnect with jittered
exponential backoff, and hand each event to the feed; a frame that is not JSON or not an
object is logged (redacted) and skipped, the socket kept.  :func:`ws_trade` reads a
``trade`` event into the same :class:`~argus_venue_polymarket.schemas.ClobTrade` the
trades poll reads, so both paths make the same fills under the same ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Container
from decimal import Decimal
from typing import Any

from py_clob_client_v2.clob_types import ApiCreds
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from argus_core import DataError, redact, to_decimal
from argus_venue_polymarket.config import PolymarketSettings
from argus_venue_polymarket.data import backoff_delay, frame_items
from argus_venue_polymarket.schemas import ClobTrade

log = logging.getLogger(__name__)

#: Close codes that mean "not allowed" (policy violation, and the 4000s applications use).
_REFUSED_CODES = frozenset({1008, 4001, 4003})


def subscription(creds: ApiCreds, markets: list[str]) -> dict[str, Any]:
    """The documented first message: credentials, markets (condition ids), ``type``."""
    return {"auth": {"apiKey": creds.api_key, "secret": creds.api_secret,
                     "passphrase": creds.api_passphrase},
            "markets": markets, "type": "user"}


def ws_trade(raw: dict[str, Any], *, our_key: str, ours: Container[str]) -> ClobTrade:
    """A user-channel ``trade`` event as a :class:`ClobTrade` (``DataError`` if malformed).

    The channel's payload is the trades endpoint's with two gaps the documentation's
    example leaves: ``matchtime`` for ``match_time``, and no ``trader_side`` or maker
    ``side``.  Without ``trader_side`` we were the maker when one of the ``maker_orders``
    is ours (by API key or venue order id) and the taker order is not; a maker order's
    missing side is the taker's opposite on the same token, the taker's own on the other
    token (a complementary match, which mints or merges)."""
    if not isinstance(raw, dict):
        raise DataError(f"user channel trade: expected an object, got {type(raw).__name__}")
    data = dict(raw)
    if data.get("match_time") in (None, "") and data.get("matchtime") not in (None, ""):
        data["match_time"] = data["matchtime"]
    makers = data.get("maker_orders") or []
    if not isinstance(makers, list):
        raise DataError("user channel trade: maker_orders is not a list")
    taker_side = str(data.get("side") or "").upper()
    fixed = []
    for m in makers:
        if isinstance(m, dict) and not m.get("side") and taker_side in ("BUY", "SELL"):
            same = str(m.get("asset_id")) == str(data.get("asset_id"))
            flip = {"BUY": "SELL", "SELL": "BUY"}[taker_side]
            m = dict(m, side=flip if same else taker_side)
        fixed.append(m)
    data["maker_orders"] = fixed
    if not data.get("trader_side"):
        mine = any(isinstance(m, dict) and ((our_key and m.get("owner") == our_key)
                                            or str(m.get("order_id")) in ours)
                   for m in fixed)
        data["trader_side"] = "MAKER" if mine and str(data.get("taker_order_id")) not in ours \
            else "TAKER"
    return ClobTrade.parse(data, where="user channel trade")


def ws_order(raw: dict[str, Any]) -> tuple[str, str, Decimal | None]:
    """(venue order id, event ``type`` upper-cased, ``size_matched`` or None) of an
    ``order`` event; ``DataError`` if it names no order."""
    vid = raw.get("id")
    if not isinstance(vid, str) or not vid:
        raise DataError(f"user channel order: no order id in {str(raw)[:80]!r}")
    matched = raw.get("size_matched")
    # to_decimal: NaN / Infinity are refused here (a NaN compared later raised
    # InvalidOperation, which is no DataError: the channel's session died on it).
    size = to_decimal(matched, field=f"user channel order {vid}: size_matched") \
        if matched not in (None, "") else None
    if size is not None and size < 0:
        raise DataError(f"user channel order {vid}: size_matched {matched!r} is negative")
    return vid, str(raw.get("type") or "").upper(), size


class UserChannel:
    """One connection to the user channel, kept up until :meth:`close`.

    ``creds`` returns the L2 credentials (derived on first use when none are set);
    ``markets`` the condition ids to ask for (empty: all); each event object goes to
    ``on_event`` (a ``DataError`` / ``KeyError`` / ``ValueError`` / ``TypeError`` from it
    counts the frame malformed); ``on_connected`` runs after every subscribe (the feed's
    reconciling poll); ``on_malformed`` after a frame it could not read (the feed polls:
    the frame may have carried a fill).  ``up`` is true while subscribed."""

    def __init__(self, settings: PolymarketSettings, url: str,
                 creds: Callable[[], Awaitable[ApiCreds]],
                 on_event: Callable[[dict[str, Any]], Awaitable[None]], *,
                 markets: Callable[[], list[str]] = list,
                 on_connected: Callable[[], None] = lambda: None,
                 on_malformed: Callable[[], None] = lambda: None,
                 seed: int | None = None) -> None:
        self.settings, self.url = settings, url
        self._creds, self._markets, self._on_event = creds, markets, on_event
        self._on_connected, self._on_malformed = on_connected, on_malformed
        self._rng = random.Random(seed)
        self.up = False
        #: Counters for monitoring and tests.
        self.stats = {"connects": 0, "disconnects": 0, "events": 0, "malformed": 0,
                      "refused": 0, "errors": 0}
        self._refusal_said = False

    async def run(self) -> None:
        """Connect, subscribe, read events; reconnect after anything ends the connection
        (jittered exponential backoff from ``reconnect_min_s`` to ``reconnect_max_s``;
        refused credentials wait ``reconnect_max_s``).  Runs until cancelled."""
        s = self.settings
        attempt = 0
        while True:
            refused = False
            try:
                await self._session()
                reason = "closed"
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                reason = f"silent for {s.ws_stale_after_s:g}s"
            except ConnectionClosed as exc:
                refused = _refused(exc)
                reason = f"closed by the venue ({_close_text(exc)})"
            except (OSError, InvalidHandshake, InvalidURI) as exc:
                reason = f"cannot connect ({type(exc).__name__}: {redact(str(exc))[:160]})"
            except Exception as exc:  # the poll carries on whatever broke here
                self.stats["errors"] += 1
                log.exception("polymarket: user channel failed")
                reason = f"failed ({type(exc).__name__})"
            finally:
                self.up = False
            self.stats["disconnects"] += 1
            if refused:
                self.stats["refused"] += 1
                attempt = 30  # as slow as the backoff goes: retrying will not fix the key
                if not self._refusal_said:
                    self._refusal_said = True
                    log.error("polymarket: the user channel refused our API credentials "
                              "(%s): check api_key / api_secret / api_passphrase; fills "
                              "keep coming from GET /data/trades every %gs", reason,
                              s.trades_poll_s)
            else:
                log.warning("polymarket: user channel %s; reconnecting (fills from GET "
                            "/data/trades every %gs meanwhile)", reason, s.trades_poll_s)
            await asyncio.sleep(backoff_delay(attempt, s.reconnect_min_s, s.reconnect_max_s,
                                              self._rng))
            attempt += 1

    async def _session(self) -> None:
        """One connection: subscribe, then read until it ends (raises what ended it)."""
        s = self.settings
        creds = await self._creds()
        async with ws_connect(self.url, ping_interval=None, max_size=2 ** 22,
                              open_timeout=s.request_timeout_s) as ws:
            self.stats["connects"] += 1
            await ws.send(json.dumps(subscription(creds, self._markets())))
            self.up = True
            self._on_connected()
            pinger = asyncio.get_running_loop().create_task(self._ping(ws))
            try:
                while True:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for loses a cancel that
                    # lands as a frame arrives, and the channel then runs for ever.
                    async with asyncio.timeout(s.ws_stale_after_s):
                        raw = await ws.recv()
                    await self._on_frame(raw)
                    if self._refusal_said:
                        self._refusal_said = False  # a working session: say the next one
            finally:
                pinger.cancel()

    async def _ping(self, ws: Any) -> None:
        with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
            while True:
                await asyncio.sleep(self.settings.ws_ping_interval_s)
                await ws.send("PING")

    async def _on_frame(self, raw: str | bytes) -> None:
        """Hand each event of one frame (an object or a list of them) to ``on_event``."""
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        try:
            for event in frame_items(raw):
                self.stats["events"] += 1
                await self._on_event(event)
        except (DataError, ValueError, KeyError, TypeError) as exc:
            self.stats["malformed"] += 1
            log.warning("polymarket: skipping a malformed user channel frame (%s): %s",
                        redact(str(exc))[:200], redact(repr(raw))[:200])
            self._on_malformed()


def _refused(exc: ConnectionClosed) -> bool:
    """Whether the venue's close says our credentials were refused."""
    frame = exc.rcvd
    return frame is not None and (frame.code in _REFUSED_CODES or "auth" in frame.reason.lower())


def _close_text(exc: ConnectionClosed) -> str:
    frame = exc.rcvd
    if frame is None:
        return "no close frame"
    return f"code {frame.code}" + (f" {redact(frame.reason)[:80]!r}" if frame.reason else "")
