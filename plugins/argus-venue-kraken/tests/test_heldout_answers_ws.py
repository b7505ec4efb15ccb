"""Held-out red team of Kraken's answers, the private socket: one malformed ``executions``
item (a list for ``side`` or ``exec_type``, a number for ``fees``, a fee of 1e999999999)
raised past ``on_frame`` and ended the ``kraken-executions`` task silently (``executions()``
waited for ever: no fill was booked again); absurd fills (1e26 of quantity, a price of
1e300, a fee past the notional) and fills of a pair that is not configured (a list, the
REST name, none) were handed to the core.  Now each such item is dropped with a log line
and counted, and the good fill after it is delivered."""
from __future__ import annotations

import asyncio
import contextlib

import pytest
from argus_venue_kraken.testing import AwaitSubscribe, LocalKrakenRest, LocalKrakenWs, Send
from argus_venue_kraken.venue import KrakenVenue

from argus_core.models import Fill

TOKEN = "local-ws-token"
CORE = "core-1"


def item(**patch):
    base = {"exec_type": "trade", "exec_id": "E-good", "order_id": "O1", "cl_ord_id": CORE,
            "symbol": "BTC/USD", "side": "buy", "last_qty": "0.1", "last_price": "37500.0",
            "fees": [{"asset": "USD", "qty": "0.5"}], "liquidity_ind": "t",
            "timestamp": "2023-10-06T17:35:55.440295Z", "order_status": "filled"}
    base.update(patch)
    return base


def frame(*items):
    return {"channel": "executions", "type": "update", "data": list(items)}


@pytest.fixture
def exchange(rest_server: LocalKrakenRest) -> LocalKrakenRest:
    return rest_server


async def _run(exchange, make_settings, bad_item, n=1, timeout=3.0):
    """Send one bad item (id E-bad), then a good fill E-good; collect what executions() yields."""
    session = [AwaitSubscribe("executions"), Send(frame(bad_item)), Send(frame(item()))]
    got: list = []
    async with LocalKrakenWs([session], token=TOKEN) as ws:
        venue = KrakenVenue(make_settings(rest_url=exchange.url, ws_auth_url=ws.url,
                                          credentials=True))
        venue.adopt_client_order_ids([CORE])
        try:
            async with contextlib.aclosing(venue.executions()) as it:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        while len(got) < n:
                            got.append(await anext(it))
            task = venue._private_task
            dead = (task is not None and task.done() and not task.cancelled()
                    and task.exception())
        finally:
            await venue.close()
    return got, dead


BAD = {
    "side-as-list": item(exec_id="E-bad", side=["buy"]),
    "exec_type-as-list": item(exec_id="E-bad", exec_type=["trade"]),
    "exec_type-as-object": item(exec_id="E-bad", exec_type={}),
    "fees-as-number": item(exec_id="E-bad", fees=5),
    "fee-1e999999999-in-quote": item(exec_id="E-bad",
                                     fees=[{"asset": "USD", "qty": "1e999999999"}]),
}


@pytest.mark.parametrize("bad", list(BAD.values()), ids=list(BAD))
async def test_one_malformed_item_must_not_end_the_executions_stream(exchange, make_settings,
                                                                      bad):
    got, dead = await _run(exchange, make_settings, bad)
    # Expected: the bad item dropped with a log line, the good fill after it delivered.
    assert not dead, f"kraken-executions task died silently: {dead!r}"
    assert [f.fill_id for f in got if isinstance(f, Fill)] == ["E-good"]


ABSURD = {
    "fee-1e999999999-usd-equiv": item(exec_id="E-bad", fees=[],
                                      fee_usd_equiv="1e999999999"),
    "fee-huge-in-base": item(exec_id="E-bad", fees=[{"asset": "BTC", "qty": "1e999990"}]),
    "qty-1e26": item(exec_id="E-bad", last_qty="1e26"),
    "qty-5000-digits": item(exec_id="E-bad", last_qty="9" * 5000),
    "price-1e300": item(exec_id="E-bad", last_price="1e300"),
    "symbol-as-list": item(exec_id="E-bad", symbol=["BTC/USD"]),
    "symbol-rest-name": item(exec_id="E-bad", symbol="XBTUSD"),
    "symbol-missing": {k: v for k, v in item(exec_id="E-bad").items() if k != "symbol"},
    "exec_id-as-list": item(exec_id=["E-bad"]),
}


@pytest.mark.parametrize("bad", list(ABSURD.values()), ids=list(ABSURD))
async def test_an_absurd_fill_is_not_handed_to_the_core(exchange, make_settings, bad):
    got, _dead = await _run(exchange, make_settings, bad, n=2, timeout=2.0)
    fills = [f for f in got if isinstance(f, Fill)]
    booked = [(f.fill_id, f.instrument_id, f.quantity, f.price, f.fee) for f in fills
              if f.fill_id != "E-good"]
    assert not booked, f"absurd fill handed to the core: {str(booked)[:300]}"
