"""Red-team round: Kalshi's historical tier and clock, against the local exchange.

* a fill older than ``GET /historical/cutoff``'s ``trades_created_ts`` is listed only by
  ``GET /historical/fills``: an old order found after a restart has it booked, once;
* ``GET /historical/cutoff`` is read once for a burst of look-ups, not once a miss, and
  read again once the cached answer could be stale;
* look-up windows (``min_ts``) and the cutoff comparisons are on Kalshi's clock (its
  ``Date`` header): a venue clock far behind ours does not hide a placed order, so it is
  neither re-sent after a 429 nor declared never placed;
* ``argus kalshi-settlements`` reads the account's settlements from the run's first
  fill on (``min_ts``), not the whole list, and says how far a long read has got.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from argus_venue_kalshi import execution as kx
from argus_venue_kalshi.commands import kalshi_settlements
from argus_venue_kalshi.execution import wire_client_id
from argus_venue_kalshi.testing import Fault
from argus_venue_kalshi.testing.engine import _iso
from argus_venue_kalshi.venue import KalshiVenue
from click.testing import CliRunner

from argus_core import (
    Fill,
    KnownOrder,
    Ledger,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    VenueResume,
)

TICKER = "KXHIGHNY-24JAN01-T60"
YES = f"kalshi:{TICKER}/YES"
DAY_S = 86_400


def buy(coid: str, limit: str = "0.45", qty: int = 2, tif: TimeInForce = TimeInForce.IOC,
        ts_ns: int = 0) -> Order:
    return Order(coid, "kalshi", YES, Side.BUY, D(qty), D(limit), OrderType.LIMIT, tif, "t",
                 ts_ns=ts_ns)


def backdate(exchange: Any, order_id: str, ts_s: float) -> None:
    """Stamp a local order and its fills ``ts_s`` (as Kalshi stamped them, months ago)."""
    order = exchange.engine.orders[order_id]
    order.update(created_time=_iso(int(ts_s * 1e9)), last_update_time=_iso(int(ts_s * 1e9)))
    for fill in exchange.engine.fills:
        if fill["order_id"] == order_id:
            fill.update(ts=int(ts_s), created_time=_iso(int(ts_s * 1e9)))


def asked(exchange: Any, suffix: str) -> list[Any]:
    return [r for r in exchange.rest.requests if r.path.endswith(suffix)]


# -- 2. /historical/fills --------------------------------------------------------------
async def test_an_old_orders_fill_past_the_trades_cutoff_is_read_from_historical_fills(
        exchange, local_settings) -> None:
    """An order placed 100 days ago filled then; the process that placed it died before
    booking the fill.  By the restart Kalshi has moved the order and its fill to the
    historical tier.  The restarted venue finds the order (``/historical/orders``) and
    must book its fill from ``/historical/fills`` (before: never read, the fill missed)."""
    born_s = time.time() - 100 * DAY_S
    sender = KalshiVenue(local_settings(ws_fills=False))
    try:
        await sender.submit(buy("old-f", ts_ns=int(born_s * 1e9)))
    finally:
        await sender.close()
    (placed,) = exchange.engine.by_client_id("old-f")
    assert placed["status"] == "executed"
    backdate(exchange, placed["order_id"], born_s)
    exchange.rest.orders_cutoff_s = time.time() - 90 * DAY_S
    exchange.rest.trades_cutoff_s = time.time() - 90 * DAY_S
    venue = KalshiVenue(local_settings(ws_fills=False, order_give_up_s=2.0))
    try:
        order = buy("old-f", ts_ns=int(born_s * 1e9))
        venue.execution.resume(VenueResume(orders=(KnownOrder(order),)))
        found = await venue.lookup(order)
        assert found is not None and found.venue_order_id == placed["order_id"]
        items = await venue.execution._poll()
        items += await venue.execution._poll()  # a second poll books nothing again
    finally:
        await venue.close()
    fills = [i for i in items if isinstance(i, Fill)]
    assert [(f.client_order_id, f.quantity) for f in fills] == [("old-f", D(2))], \
        "the order's fill, older than trades_created_ts, was never read"
    assert asked(exchange, "/historical/fills")
    assert all(r.query.get("ticker") == TICKER for r in asked(exchange, "/historical/fills"))


async def test_historical_fills_are_not_read_for_orders_newer_than_the_cutoff(
        exchange, local_settings) -> None:
    """A run whose orders are all newer than the trades cutoff never asks for
    ``/historical/fills`` (it would read the market's archived fills for nothing)."""
    exchange.rest.trades_cutoff_s = time.time() - 90 * DAY_S
    venue = KalshiVenue(local_settings(ws_fills=False))
    try:
        await venue.submit(buy("new-1", ts_ns=time.time_ns()))
        fills = [i for i in await venue.execution._poll() if isinstance(i, Fill)]
        await venue.execution._poll()
    finally:
        await venue.close()
    assert [f.quantity for f in fills] == [D(2)]
    assert not asked(exchange, "/historical/fills")


# -- 3. the cutoff is cached -----------------------------------------------------------
async def test_historical_cutoff_is_read_once_for_a_burst_of_misses(exchange,
                                                                    local_settings) -> None:
    """Five ambiguous sends whose orders Kalshi never placed: each look-up misses the live
    list and must compare the window with the orders cutoff.  One ``GET
    /historical/cutoff`` serves them all (before: one a look-up, and one a poll for each
    order still awaited)."""
    venue = KalshiVenue(local_settings(ws_fills=False, order_give_up_s=5.0))
    try:
        for n in range(5):
            exchange.rest.inject("POST /portfolio/orders", Fault("refuse", status=503))
            with pytest.raises(Exception, match="not sent again"):
                await venue.submit(buy(f"miss-{n}", ts_ns=time.time_ns() - 30 * DAY_S * 10**9))
        await venue.execution._poll()
        await venue.execution._poll()
    finally:
        await venue.close()
    assert len(asked(exchange, "/historical/cutoff")) == 1


async def test_a_cached_cutoff_is_asked_again_when_it_could_be_stale(
        exchange, local_settings, monkeypatch) -> None:
    """The cutoff advances.  A cached cutoff is trusted to say "the window starts after
    it" only while fresh and with a margin; past the expiry it is read again, and an order
    the cutoff has since passed is found in ``/historical/orders``."""
    venue = KalshiVenue(local_settings(ws_fills=False, order_give_up_s=5.0))
    ex = venue.execution
    try:
        exchange.rest.orders_cutoff_s = time.time() - 200 * DAY_S
        await ex._cutoffs()
        exchange.rest.orders_cutoff_s = time.time() + 60
        await venue.submit(buy("late-arch", ts_ns=time.time_ns() - 100 * DAY_S * 10**9))
        (placed,) = exchange.engine.by_client_id(wire_client_id("late-arch"))
        backdate(exchange, placed["order_id"], time.time() - 100 * DAY_S)
        monkeypatch.setattr(kx, "CUTOFF_TTL_S", 0.0)
        assert await ex._find(wire_client_id("late-arch")) is not None
    finally:
        await venue.close()
    assert len(asked(exchange, "/historical/cutoff")) == 2


# -- 4. Kalshi's clock far behind ours -------------------------------------------------
@pytest.mark.parametrize("skew_s", [-900.0, -4 * 3600.0])
async def test_a_venue_clock_far_behind_does_not_hide_a_placed_order(
        exchange, local_settings, skew_s: float) -> None:
    """Kalshi's clock is ``skew_s`` behind ours (more than ``LOOKUP_SLACK_S``).  An IOC
    is filled and its answer lost (a gateway's 503 after the engine acted): the look-up's
    ``min_ts`` (our time less 300 s) would start after the order's ``created_time`` on
    Kalshi's clock, the list would lack it, and it would be given up as never placed
    while it filled.  With the window on Kalshi's clock (its ``Date``), it is found."""
    exchange.engine.clock_offset_s = skew_s
    venue = KalshiVenue(local_settings(ws_fills=False, order_give_up_s=0.3))
    try:
        await venue.execution.rest.get("/markets", {"tickers": TICKER})  # a Date seen
        exchange.rest.inject("POST /portfolio/orders", Fault("after", status=503))
        assert await venue.submit(buy("skew-1", ts_ns=time.time_ns())) == []
    finally:
        await venue.close()
    (placed,) = exchange.engine.by_client_id(wire_client_id("skew-1"))
    assert venue.execution.venue_ids.get("skew-1") == placed["order_id"], \
        "a filled order was not found (it would be given up as never placed)"
    assert "skew-1" not in venue.execution.awaiting


async def test_a_date_far_ahead_never_narrows_the_lookup(exchange, local_settings) -> None:
    """A ``Date`` header far ahead of Kalshi's own times (a proxy's page stamped 9999, a
    cache gone wrong) moved the window's ``min_ts`` past the order's ``created_time``: a
    placed order would be given up as never placed, and its fill taken for another
    client's.  A measured offset only ever widens the window (Kalshi behind us); ahead,
    our own clock is the later bound and is kept."""
    venue = KalshiVenue(local_settings(ws_fills=False, order_give_up_s=0.3))
    try:
        await venue.execution.rest.get("/markets", {"tickers": TICKER})  # a true Date
        venue.execution.rest.clock_offset_s = 8e10  # year ~4500
        venue.execution.rest._note_clock = lambda *a: None  # type: ignore[method-assign]
        exchange.rest.inject("POST /portfolio/orders", Fault("after", status=503))
        assert await venue.submit(buy("ahead-1", ts_ns=time.time_ns())) == []
        window = venue.execution._window(["ahead-1"])
        assert window.get("min_ts", 0) <= time.time() - kx.LOOKUP_SLACK_S + 1
    finally:
        await venue.close()
    (placed,) = exchange.engine.by_client_id(wire_client_id("ahead-1"))
    assert venue.execution.venue_ids.get("ahead-1") == placed["order_id"]


async def test_without_a_known_venue_clock_the_lookup_reads_the_markets_whole_list(
        exchange, local_settings) -> None:
    """No answer has carried a ``Date`` yet: the offset is unknown, so no ``min_ts`` is
    trusted (the market's whole live list is read), never our clock taken for Kalshi's."""
    venue = KalshiVenue(local_settings(ws_fills=False))
    try:
        venue.execution.remember(buy("nodate", ts_ns=time.time_ns()))
        assert venue.execution.rest.clock_offset_s is None
        assert "min_ts" not in venue.execution._window(["nodate"])
        venue.execution.rest.clock_offset_s = -1000.0
        window = venue.execution._window(["nodate"])
        assert window["min_ts"] <= time.time() - 1000 - kx.LOOKUP_SLACK_S + 1
    finally:
        await venue.close()


# -- 1. kalshi-settlements reads from the run's first fill ----------------------------
def _settlement(ticker: str, settled_s: float) -> dict[str, Any]:
    return {"ticker": ticker, "event_ticker": "", "market_result": "yes", "yes_count": 1,
            "yes_count_fp": "1.00", "no_count": 0, "no_count_fp": "0.00",
            "yes_total_cost_dollars": "0.5000", "no_total_cost_dollars": "0.0000",
            "revenue": 100, "value": 100, "fee_cost": "0.0000",
            "settled_time": _iso(int(settled_s * 1e9))}


async def test_kalshi_settlements_reads_from_the_runs_first_fill(
        exchange, key_files, tmp_path: Path) -> None:
    """The account settled 300 markets over the last year before this run; the run
    traded one market, settled today.  The command reads ``GET /portfolio/settlements``
    from the run's first fill on (a day's slack), not the whole list (before: every
    page, every time), and still reports the run's market."""
    exchange.rest.page_size = 10
    old = time.time() - 365 * DAY_S
    exchange.engine.settlements.extend(_settlement(f"KXOLD-{n}", old + n * 3600)
                                       for n in range(300))
    exchange.engine.settlements.append(_settlement("KXRUN-A", time.time()))
    run_dir = tmp_path / "run"
    first_ns = time.time_ns() - 3600 * 10**9
    with Ledger.in_dir(run_dir) as ledger:
        iid = "kalshi:KXRUN-A/YES"
        ledger.insert_order(Order("r-1", "kalshi", iid, Side.BUY, D(1), None,
                                  OrderType.MARKET, TimeInForce.IOC, "t", first_ns,
                                  OrderStatus.FILLED), "run-1")
        ledger.insert_fill(Fill("r-1-f", "r-1", "kalshi", iid, Side.BUY, D("0.5"), D(1),
                                D(0), Liquidity.TAKER, first_ns))
    config = tmp_path / "kalshi.toml"
    config.write_text(f"""
[argus]
plugins = ["kalshi"]

[plugins.kalshi]
rest_url = "{exchange.rest.url}"
markets = ["{TICKER}"]
api_key_id = "$env:KALSHI_TEST_KEY_ID"
private_key = "$file:{key_files}"
""")
    import os
    os.environ.setdefault("KALSHI_TEST_KEY_ID", "a952bcbe-ec3b-4b5b-b8f9-11dae589608c")
    result = await asyncio.to_thread(
        CliRunner().invoke, kalshi_settlements,
        ["--config", str(config), "--run-dir", str(run_dir)])
    assert result.exit_code == 1, (result.output, result.exception)
    assert result.stdout.splitlines()[:1] == [
        "KXRUN-A: missing: kalshi YES 1 NO 0 paid $1.00; ledger none"], result.output
    reads = asked(exchange, "/portfolio/settlements")
    assert len(reads) <= 2, f"{len(reads)} pages read: the whole settlement list"
    assert all(int(r.query["min_ts"]) <= first_ns // 10**9 - DAY_S + 1 for r in reads)


async def test_a_long_settlement_read_says_how_far_it_has_got(exchange, local_settings,
                                                              capsys) -> None:
    """A read of many pages reports its progress (pages and items so far)."""
    exchange.rest.page_size = 5
    exchange.engine.settlements.extend(_settlement(f"KXP-{n}", time.time() - n)
                                       for n in range(60))
    seen: list[tuple[int, int]] = []
    venue = KalshiVenue(local_settings())
    try:
        got = await venue.execution.settlements(progress=lambda p, n: seen.append((p, n)))
    finally:
        await venue.close()
    assert len(got) == 60
    assert seen and seen[-1] == (12, 60)


# -- a poll that fails part-way loses nothing ------------------------------------------
async def test_a_poll_whose_fills_read_fails_keeps_what_was_queued(exchange,
                                                                   local_settings) -> None:
    """News queued for the poll (a socket fill, an acknowledgement) was taken off the
    queue before the fills read; that read failing (5xx after the retries) lost it with
    the poll (a socket fill, already marked booked, was then never booked).  Now nothing
    is taken off the queue until every read of the poll has answered."""
    venue = KalshiVenue(local_settings(ws_fills=False, max_retries=1))
    ex = venue.execution
    try:
        news = OrderUpdate("q-1", OrderStatus.OPEN, time.time_ns(), "v-1")
        ex._queue.put_nowait(news)
        for _ in range(2):
            exchange.rest.inject("GET /portfolio/fills", Fault("refuse", status=500))
        with pytest.raises(Exception, match="500"):
            await ex._poll()
        assert news in await ex._poll()
    finally:
        await venue.close()
