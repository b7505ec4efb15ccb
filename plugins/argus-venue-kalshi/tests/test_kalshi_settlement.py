"""Settlement of a market that resolves while the venue streams, against the local
exchange: the websocket ``market_lifecycle_v2`` channel and the ``GET /markets`` poll,
each market settled once, a malformed result refused, and a held position closed at the
payout through the core's runner (paper)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from decimal import Decimal as D
from pathlib import Path
from typing import Any, ClassVar

import pytest
from argus_testkit import run_and_collect
from argus_testkit.processes import query
from argus_venue_kalshi.venue import KalshiVenue

from argus_core import (
    BookStatus,
    CancelIntent,
    DataError,
    Intent,
    MarketEvent,
    OrderBook,
    Settlement,
    Side,
    Strategy,
    StrategyContext,
)

TICKER = "KXHIGHNY-24JAN01-T60"
YES = f"kalshi:{TICKER}/YES"
NO = f"kalshi:{TICKER}/NO"


async def collect(venue: KalshiVenue, until: Callable[[list[Any]], bool],
                  timeout_s: float = 10.0) -> list[Any]:
    """Stream items until ``until(items)`` or the stream ends."""
    items: list[Any] = []

    async def run() -> None:
        async for item in venue.stream():
            items.append(item)
            if until(items):
                return
    await asyncio.wait_for(run(), timeout_s)
    return items


def settlements(items: list[Any]) -> list[Settlement]:
    return [i for i in items if isinstance(i, Settlement)]


async def wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"still waiting for {what}")


def has_books(items: list[Any]) -> bool:
    return any(isinstance(i, OrderBook) for i in items)


async def settle_after_books(exchange: Any, venue: KalshiVenue, result: str,
                             until: Callable[[list[Any]], bool], **settle: Any) -> list[Any]:
    """Stream; once the books are in, resolve the market on the exchange."""
    items: list[Any] = []

    async def resolve() -> None:
        await wait_for(lambda: has_books(items), "the first books")
        exchange.engine.settle(TICKER, result, **settle)

    async def run() -> None:
        async for item in venue.stream():
            items.append(item)
            if until(items):
                return
    resolver = asyncio.get_running_loop().create_task(resolve())
    try:
        await asyncio.wait_for(run(), 10)
    finally:
        resolver.cancel()
        await asyncio.gather(resolver, return_exceptions=True)
    return items


async def test_a_market_settling_mid_stream_settles_over_the_websocket(exchange, local_settings
                                                                      ) -> None:
    venue = KalshiVenue(local_settings(settlement_poll_s=0, end_when_resolved=True))
    try:
        items = await settle_after_books(exchange, venue, "yes", lambda items: False)
    finally:
        await venue.close()
    got = settlements(items)
    assert [(s.instrument_id, s.price) for s in got] == [(YES, 1), (NO, 0)]
    assert "websocket" in got[0].reason and items.index(got[0]) > 0
    reads = [r for r in exchange.rest.requests[2:]
             if r.path.endswith("/markets") and r.query.get("tickers")]
    assert len(reads) == 1  # no poll: the socket alone (one read when the channel listened)


async def test_a_market_settled_before_the_lifecycle_channel_listens_is_settled(
        exchange, local_settings) -> None:
    """The market settles after the venue read it and before the stream's lifecycle
    channel listens (its ``settled`` frame went to nobody): the read made once the
    channel is subscribed settles it; before, with the poll off the stream never ended."""
    venue = KalshiVenue(local_settings(settlement_poll_s=0, end_when_resolved=True))
    try:
        await venue.instruments()
        exchange.engine.settle(TICKER, "yes")
        got = settlements(await collect(venue, lambda items: False, timeout_s=5))
    finally:
        await venue.close()
    assert [(s.instrument_id, s.price) for s in got] == [(YES, 1), (NO, 0)]


async def test_a_market_settled_while_the_socket_is_down_is_settled_on_reconnect(
        exchange, local_settings) -> None:
    """The socket drops, the market settles while no connection is accepted (the frame
    is lost), the venue reconnects: the settlement comes from the read made once the new
    connection's lifecycle channel listens, the poll off."""
    venue = KalshiVenue(local_settings(settlement_poll_s=0, end_when_resolved=True,
                                       reconnect_base_s=0.05, reconnect_max_s=0.05))
    items: list[Any] = []

    async def outage() -> None:
        await wait_for(lambda: has_books(items), "the first books")
        exchange.ws.accepting = False
        exchange.ws.drop()
        await wait_for(lambda: any(isinstance(i, BookStatus) and not i.live for i in items),
                       "the books marked stale")
        exchange.engine.settle(TICKER, "no")
        exchange.ws.accepting = True

    async def run() -> None:
        async for item in venue.stream():
            items.append(item)
    task = asyncio.get_running_loop().create_task(outage())
    try:
        await asyncio.wait_for(run(), 10)
        await task
    finally:
        task.cancel()
        await venue.close()
    assert [(s.instrument_id, s.price) for s in settlements(items)] == [(YES, 0), (NO, 1)]


async def test_a_market_settling_mid_stream_settles_from_the_poll(exchange, local_settings
                                                                 ) -> None:
    venue = KalshiVenue(local_settings(settlement_poll_s=0.05, end_when_resolved=True))
    try:
        # The lifecycle channel says nothing: the poll of GET /markets alone settles it.
        items = await settle_after_books(exchange, venue, "no", lambda items: False,
                                         publish=False)
    finally:
        await venue.close()
    got = settlements(items)
    assert [(s.instrument_id, s.price) for s in got] == [(YES, 0), (NO, 1)]
    market = exchange.engine.markets[TICKER]
    assert market["status"] == "finalized"
    from argus_venue_kalshi.instruments import parse_time_ns
    assert got[0].ts_ns == parse_time_ns(market["settlement_ts"])  # Kalshi's time, stable


async def test_a_settlement_seen_on_the_poll_and_the_socket_is_emitted_once(
        exchange, local_settings) -> None:
    venue = KalshiVenue(local_settings(settlement_poll_s=0.03))
    items: list[Any] = []

    async def run() -> None:
        async for item in venue.stream():
            items.append(item)

    task = asyncio.get_running_loop().create_task(run())
    try:
        await wait_for(lambda: has_books(items), "the first books")
        exchange.engine.settle(TICKER, "yes", publish=False)
        await wait_for(lambda: len(settlements(items)) == 2, "the poll's settlement")
        # then the lifecycle channel reports the same settlement (late, as after a gap)
        n_items = len(items)
        exchange.ws.send_lifecycle({"market_ticker": TICKER, "event_type": "settled",
                                    "result": "yes", "settled_ts": 1_704_171_540})
        exchange.engine.set_level(TICKER, "yes", 37, 5)  # a delta after it: it was read
        await wait_for(lambda: any(not isinstance(i, Settlement) for i in items[n_items:]),
                       "the frames after the lifecycle event")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await venue.close()
    got = settlements(items)
    assert [(s.instrument_id, s.price) for s in got] == [(YES, 1), (NO, 0)]
    assert all("websocket" not in s.reason for s in got)  # the poll's, first
    assert venue.settled == {YES: D(1), NO: D(0)}


async def test_a_restarted_stream_settles_an_already_settled_market_at_kalshis_time(
        exchange, local_settings) -> None:
    exchange.engine.settle(TICKER, "yes")
    first, second = (KalshiVenue(local_settings(end_when_resolved=True)) for _ in range(2))
    try:
        a = settlements(await collect(first, lambda items: False))
        b = settlements(await collect(second, lambda items: False))
    finally:
        await first.close()
        await second.close()
    # the same events (same ts) on every restart: the core books a settlement once
    assert a == b and [(s.instrument_id, s.price) for s in a] == [(YES, 1), (NO, 0)]


@pytest.mark.parametrize("path", ["websocket", "poll"])
async def test_a_malformed_result_is_a_data_error_naming_market_and_field(
        exchange, local_settings, path: str) -> None:
    poll = 0 if path == "websocket" else 0.03
    venue = KalshiVenue(local_settings(settlement_poll_s=poll))
    try:
        with pytest.raises(DataError) as err:
            await settle_after_books(exchange, venue, "maybe", lambda items: False,
                                     publish=path == "websocket")
    finally:
        await venue.close()
    message = str(err.value)
    assert TICKER in message and "'maybe'" in message
    assert ("market_lifecycle_v2 result" if path == "websocket" else "result") in message


async def test_a_settled_event_without_its_result_uses_the_determined_one(
        exchange, local_settings) -> None:
    venue = KalshiVenue(local_settings(settlement_poll_s=0, end_when_resolved=True))
    try:
        items = await settle_after_books(exchange, venue, "no", lambda items: False,
                                         result_in_settled=False)
    finally:
        await venue.close()
    assert [(s.instrument_id, s.price) for s in settlements(items)] == [(YES, 0), (NO, 1)]


def test_unsettled_void_and_unknown_results() -> None:
    from argus_venue_kalshi.instruments import settlements_of
    from argus_venue_kalshi.schemas import Market

    base = {"ticker": TICKER, "event_ticker": "E", "title": "t"}
    assert settlements_of(Market.parse(dict(base, status="determined", result="yes")), 1) == []
    # void settles at each holder's cost, which the market does not say: the venue asks
    assert settlements_of(Market.parse(dict(base, status="finalized", result="void")), 1) == []
    with pytest.raises(DataError, match=f"market {TICKER} settled with result ''"):
        settlements_of(Market.parse(dict(base, status="finalized", result="")), 1)
    scalar = Market.parse(dict(base, status="finalized", result="scalar",
                               settlement_value_dollars="0.3700", expiration_value="37"))
    assert [(s.price, s.reason) for s in settlements_of(scalar, 1)] == [
        (D("0.37"), f"kalshi market {TICKER} settled scalar 0.37"),
        (D("0.63"), f"kalshi market {TICKER} settled scalar 0.37")]
    from argus_venue_kalshi.instruments import outcome
    legacy = Market.parse(dict(base, status="finalized", result="scalar", settlement_value=37))
    assert outcome(legacy) == outcome(scalar) == "scalar 0.37"  # one value, two spellings
    for bad in ({}, {"settlement_value_dollars": "1.5"}):
        with pytest.raises(DataError, match=f"market {TICKER} settled scalar with "
                                            f"settlement_value_dollars"):
            settlements_of(Market.parse(dict(base, status="finalized", result="scalar",
                                             **bad)), 1)


@pytest.mark.parametrize("path", ["websocket", "poll"])
async def test_a_scalar_market_settles_at_its_settlement_value(exchange, local_settings,
                                                               path: str) -> None:
    poll = 0 if path == "websocket" else 0.03
    venue = KalshiVenue(local_settings(settlement_poll_s=poll, end_when_resolved=True))
    try:
        items = await settle_after_books(exchange, venue, "scalar", lambda items: False,
                                         value=D("0.37"), publish=path == "websocket")
    finally:
        await venue.close()
    assert [(s.instrument_id, s.price) for s in settlements(items)] == [
        (YES, D("0.37")), (NO, D("0.63"))]
    assert venue.resolved == {TICKER: "scalar 0.37"}


def buy_on_exchange(exchange: Any, side: str, cents: int, count: int) -> None:
    """This account buys ``count`` ``side`` contracts at up to ``cents`` on the exchange."""
    exchange.engine.create({"ticker": TICKER, "side": side, "action": "buy", "count": count,
                            f"{side}_price": cents, "client_order_id": f"own-{side}",
                            "time_in_force": "immediate_or_cancel"})


@pytest.mark.parametrize("path", ["websocket", "poll"])
async def test_a_voided_market_returns_the_accounts_positions_at_cost(
        exchange, local_settings, path: str) -> None:
    buy_on_exchange(exchange, "yes", 43, 25)  # 20 at 0.42 and 5 at 0.43: cost 10.55
    buy_on_exchange(exchange, "no", 60, 5)    # at 0.60: cost 3.00
    poll = 0 if path == "websocket" else 0.03
    venue = KalshiVenue(local_settings(settlement_poll_s=poll, end_when_resolved=True))
    try:
        items = await settle_after_books(exchange, venue, "void", lambda items: False,
                                         publish=path == "websocket")
    finally:
        await venue.close()
    got = settlements(items)
    assert [(s.instrument_id, s.price) for s in got] == [
        (YES, D("0.422")), (NO, D("0.60"))]
    assert "voided" in got[0].reason and "returned at cost" in got[0].reason
    asked = [r for r in exchange.rest.requests if r.path.endswith("/portfolio/settlements")]
    assert asked and all(r.query.get("ticker") == TICKER for r in asked)


async def test_a_voided_market_the_account_never_held_is_void_at_each_positions_cost(
        exchange, local_settings) -> None:
    """Kalshi returns each position at its own cost; for a side this account did not hold
    (a paper run's) only the ledger knows that cost: a void settlement (price None)."""
    venue = KalshiVenue(local_settings(settlement_poll_s=0, end_when_resolved=True))
    try:
        items = await settle_after_books(exchange, venue, "void", lambda items: False)
    finally:
        await venue.close()
    voids = settlements(items)
    assert {s.instrument_id for s in voids} == {YES, NO}
    assert all(s.void and "voided" in s.reason for s in voids)
    assert not [i for i in items if isinstance(i, BookStatus) and "voided" in i.reason]


@pytest.mark.parametrize("path", ["websocket", "poll"])
async def test_an_amended_result_is_reported_loudly_never_settled_again(
        exchange, local_settings, caplog, path: str) -> None:
    venue = KalshiVenue(local_settings(settlement_poll_s=0 if path == "websocket" else 0.03))
    items: list[Any] = []

    async def run() -> None:
        async for item in venue.stream():
            items.append(item)

    task = asyncio.get_running_loop().create_task(run())
    try:
        await wait_for(lambda: has_books(items), "the first books")
        exchange.engine.settle(TICKER, "yes", publish=path == "websocket")
        await wait_for(lambda: len(settlements(items)) == 2, "the settlement")
        with caplog.at_level("ERROR"):
            exchange.engine.settle(TICKER, "no", publish=path == "websocket")
            await wait_for(lambda: bool(venue.amended), "the amendment")
            await wait_for(lambda: any(isinstance(i, BookStatus) for i in items),
                           "the amendment's book statuses")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await venue.close()
    assert [(s.instrument_id, s.price) for s in settlements(items)] == [(YES, 1), (NO, 0)]
    assert venue.amended == {TICKER: ("yes", "no")}
    status = next(i for i in items if isinstance(i, BookStatus))
    assert not status.live and "amended" in status.reason and TICKER in status.reason
    assert any(TICKER in r.getMessage() and "amended" in r.getMessage() and
               r.levelname == "ERROR" for r in caplog.records)


# --- through the core: a held position closes at the payout ----------------------------


class BuyYesOnce(Strategy):
    """Buys ``quantity`` YES at market on the first YES book, once."""

    name: ClassVar[str] = "buy_yes_once"

    def __init__(self, quantity: int = 5) -> None:
        self.quantity = quantity
        self.bought = False

    def on_event(self, event: MarketEvent, ctx: StrategyContext
                 ) -> Sequence[Intent | CancelIntent]:
        if self.bought or not isinstance(event, OrderBook) or event.instrument_id != YES:
            return []
        self.bought = True
        return [Intent("buyer", YES, Side.BUY, D(self.quantity), reason="test buy")]

    def get_state(self) -> dict[str, Any]:
        return {"bought": self.bought}

    def set_state(self, state: dict[str, Any]) -> None:
        self.bought = bool(state.get("bought"))


def ledger_fills(run_dir: Path) -> list[dict[str, Any]]:
    return query(run_dir, "select * from fills order by ts_ns, fill_id")


def kalshi_config(exchange: Any, key_file: Path, **extra: Any) -> dict[str, Any]:
    kalshi = {"rest_url": exchange.rest.url, "ws_url": exchange.ws.url,
              "markets": [TICKER], "api_key_id": "$env:KALSHI_TEST_KEY_ID",
              "private_key": f"$file:{key_file}", "settlement_poll_s": 0.05,
              "end_when_resolved": True, "poll_interval_s": 0.05, **extra}
    return {"argus": {"plugins": ["kalshi"], "mode": "paper"},
            "run": {"venue": "kalshi", "strategies": ["buyer"],
                    "checkpoint_every_events": 1},
            "plugins": {"kalshi": kalshi}}


@pytest.mark.parametrize("result,value,pays", [("yes", None, D(1)),
                                               ("scalar", D("0.37"), D("0.37"))])
async def test_a_held_position_closes_at_the_payout_through_the_runner(
        exchange, key_files: Path, make_settings, tmp_path: Path, result: str,
        value: D | None, pays: D) -> None:
    # (``make_settings`` puts the test key id in $KALSHI_TEST_KEY_ID)
    run_dir = tmp_path / "run"
    config = kalshi_config(exchange, key_files)
    run = asyncio.get_running_loop().create_task(asyncio.to_thread(
        run_and_collect, config, run_dir, strategies={"buyer": BuyYesOnce()}))
    await wait_for(lambda: len(ledger_fills(run_dir)) == 1 or run.done(), "the paper fill",
                   timeout_s=30)
    exchange.engine.settle(TICKER, result, value=value)
    done = await asyncio.wait_for(run, 30)
    assert len(done.fills) == 2
    settle, = (f for f in done.fills if f.liquidity.value == "settlement")
    buy, = (f for f in done.fills if f is not settle)
    assert (buy.instrument_id, buy.side, buy.quantity, buy.price) == (YES, Side.BUY, 5,
                                                                      D("0.42"))
    assert (settle.instrument_id, settle.side, settle.quantity, settle.price,
            settle.liquidity.value) == (YES, Side.SELL, 5, pays, "settlement")
    assert done.positions[YES] == 0
    # A restart of the same run directory settles nothing twice.
    again = await asyncio.wait_for(asyncio.to_thread(
        run_and_collect, config, run_dir, strategies={"buyer": BuyYesOnce()}), 30)
    assert again.fills == done.fills and again.positions[YES] == 0
