""":class:`LocalKalshi`: the local engine with its REST and websocket servers."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from argus_venue_kalshi.testing.engine import LocalEngine
from argus_venue_kalshi.testing.rest import LocalRest
from argus_venue_kalshi.testing.ws import LocalWs


class LocalKalshi:
    """A local Kalshi exchange: ``async with LocalKalshi(key_id, public_key) as ex``;
    ``ex.rest.url`` / ``ex.ws.url`` for the venue's settings, ``ex.engine`` for markets,
    books and orders, ``ex.rest.inject`` / ``ex.ws.skip_seq`` ... for faults."""

    def __init__(self, key_id: str = "local-key",
                 public_key: rsa.RSAPublicKey | None = None) -> None:
        self.engine = LocalEngine()
        self.rest = LocalRest(self.engine, key_id, public_key)
        self.ws = LocalWs(self.engine, key_id, public_key)

    async def __aenter__(self) -> LocalKalshi:
        await self.rest.start()
        await self.ws.start()
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None
                        ) -> None:
        await self.ws.stop()
        await self.rest.stop()

    def add_market(self, market: dict[str, Any], event: dict[str, Any] | None = None,
                   yes_bids: dict[int, int] | None = None,
                   no_bids: dict[int, int] | None = None) -> None:
        """Serve ``market`` with outside bids (cents -> contracts) on each side."""
        self.engine.add_market(market, event)
        for cents, qty in (yes_bids or {}).items():
            self.engine.set_level(market["ticker"], "yes", cents, qty)
        for cents, qty in (no_bids or {}).items():
            self.engine.set_level(market["ticker"], "no", cents, qty)

    def list_market(self, market: dict[str, Any], yes_bids: dict[int, int] | None = None,
                    no_bids: dict[int, int] | None = None, *,
                    announce: str | None = "created") -> None:
        """List ``market`` while the exchange runs (a new strike added to an open event):
        served from now on by ``GET /markets`` (``?event_ticker=`` included) and
        ``GET /markets/{ticker}``, and its book by the websocket; ``announce`` ("created",
        "activated"; None: silent) pushes that ``market_lifecycle_v2`` event to every
        lifecycle subscriber."""
        self.add_market(market, yes_bids=yes_bids, no_bids=no_bids)
        if announce is not None:
            self.engine.announce_market(market["ticker"], announce)
