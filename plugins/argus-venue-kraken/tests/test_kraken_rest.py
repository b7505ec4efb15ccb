"""The real REST client against a local Kraken-protocol HTTP server."""

from __future__ import annotations

import urllib.parse
from decimal import Decimal

import pytest
from argus_venue_kraken.instruments import normalise_asset, rest_altname, ws_symbol
from argus_venue_kraken.ratelimit import RestRateLimiter
from argus_venue_kraken.rest import NONCE_RETRIES, KrakenRestClient, TransientVenueError
from argus_venue_kraken.schemas import KrakenApiError, KrakenNonceError, KrakenRateLimitError

from argus_core.errors import ConfigError, VenueError


@pytest.fixture
async def client(rest_server, make_settings, fake_time):
    settings = make_settings(rest_url=rest_server.url, credentials=True)
    c = KrakenRestClient(settings, clock=fake_time.clock, sleep=fake_time.sleep)
    try:
        yield c
    finally:
        await c.close()


def test_pair_name_mapping():
    assert normalise_asset("XXBT") == "BTC" and normalise_asset("ZUSD") == "USD"
    assert normalise_asset("XXDG") == "DOGE" and normalise_asset("XETH") == "ETH"
    assert normalise_asset("SOL") == "SOL" and normalise_asset("USDT") == "USDT"
    assert ws_symbol("XBT/USD") == "BTC/USD" and ws_symbol("ETH/XBT") == "ETH/BTC"
    assert rest_altname("BTC/USD") == "XBTUSD" and rest_altname("DOGE/EUR") == "XDGEUR"


async def test_asset_pairs_become_instruments(client, rest_server):
    pairs = await client.asset_pairs(["BTC/USD"])
    btc = pairs["BTC/USD"]
    assert (btc.rest_key, btc.altname, btc.price_decimals, btc.lot_decimals) == (
        "XXBTZUSD", "XBTUSD", 1, 8)
    inst = btc.instrument()
    assert inst.id == "kraken:BTC/USD"
    assert inst.tick_size == Decimal("0.1") and inst.lot_size == Decimal("0.00000001")
    assert inst.min_size == Decimal("0.0001") and (inst.base, inst.quote) == ("BTC", "USD")
    assert inst.meta["fees_maker_pct"][0] == ["0", "0.16"]
    assert pairs["ETH/BTC"].instrument().tick_size == Decimal("0.00001")
    assert rest_server.calls("AssetPairs")[0].params == {"pair": "XBTUSD"}


async def test_unknown_pair_is_a_clear_error(client):
    with pytest.raises(VenueError, match="no pair DOGE/USD"):
        await client.asset_pairs(["DOGE/USD"])


async def test_depth_ohlc_ticker_trades(client, load):
    book = await client.depth("BTC/USD", 2)
    assert book.instrument_id == "kraken:BTC/USD"
    assert book.best_bid == 3538.9 and book.best_ask == 3539.9
    assert book.ts_ns == 1548119951 * 10**9  # newest level timestamp
    rows, last = await client.ohlc("BTC/USD", 60)
    assert last == 1548111600 and rows[0].close == Decimal("3539.4")
    assert rows[0].close_ns == (1548115200 + 3600) * 10**9
    ticker = await client.ticker("BTC/USD")
    assert (ticker.bid, ticker.ask, ticker.last) == (Decimal("3537.4"), Decimal("3537.5"),
                                                     Decimal("3537.5"))
    trades, cursor = await client.trades("BTC/USD")
    raw = load("kraken_rest_trades_XBTUSDT_slice.json")["result"]["XBTUSDT"]
    assert len(trades) == len(raw) and cursor
    assert trades[0].price == Decimal(raw[0][0]) and trades[0].aggressor.value == (
        "buy" if raw[0][3] == "b" else "sell")


async def test_ohlc_history_follows_the_cursor(client, rest_server):
    bars, report = await client.ohlc_history("BTC/USD", 60, since_s=0)
    # The recorded page repeats one row and its last row is the in-progress bar.
    assert report.duplicates >= 1 and bars == []
    calls = rest_server.calls("OHLC")
    assert calls[0].params["since"] == "0" and calls[1].params["since"] == "1548111600"


async def test_cancel_all_and_query_orders(client, rest_server):
    added = await client.add_order({"ordertype": "limit", "type": "sell", "volume": "0.5",
                                    "pair": "XBTUSD", "price": "50000"})
    (txid,) = added["txid"]
    assert set(await client.query_orders([txid])) == {txid}
    assert await client.cancel_all() == 1 and rest_server.orders == {}
    assert await client.trades_history() == {}
    assert len(rest_server.calls("TradesHistory")) == 1
    assert client.rest_limiter.cost("TradesHistory") == 2


async def test_error_array_raises_venue_error_with_remedy(client, rest_server):
    rest_server.inject("Ticker", ("error", ["EQuery:Unknown asset pair"]))
    with pytest.raises(KrakenApiError) as info:
        await client.ticker("BTC/USD")
    assert "EQuery:Unknown asset pair" in str(info.value) and "AssetPairs" in str(info.value)
    assert isinstance(info.value, VenueError)


async def test_public_5xx_is_retried(client, rest_server, fake_time):
    rest_server.inject("Ticker", ("status", 502), ("status", 503))
    ticker = await client.ticker("BTC/USD")
    assert ticker.last == Decimal("3537.5")
    assert len(rest_server.calls("Ticker")) == 3 and len(fake_time.sleeps) == 2


async def test_non_json_answer_is_reported(client, rest_server):
    rest_server.inject("Depth", ("raw", "<html>bad gateway</html>"))
    with pytest.raises(VenueError, match="not JSON"):
        await client.depth("BTC/USD")


async def test_private_call_is_signed_and_accepted(client, rest_server):
    balance = await client.balance()
    assert balance["ZUSD"] == "10000.0000"
    (call,) = rest_server.calls("Balance")
    assert call.headers["API-Key"] == "local-test-api-key"
    assert call.body.startswith("nonce=")


async def test_add_order_body_matches_kraken_encoding(client, rest_server):
    result = await client.add_order({"ordertype": "limit", "type": "buy", "volume": "1.25",
                                     "pair": "XBTUSD", "price": "37500",
                                     "cl_ord_id": "6d1b345e-2821-40e2-ad83-4ecb18a06876"})
    assert result["txid"]
    body = urllib.parse.parse_qs(rest_server.calls("AddOrder")[0].body)
    assert body["cl_ord_id"] == ["6d1b345e-2821-40e2-ad83-4ecb18a06876"]
    assert body["volume"] == ["1.25"] and body["price"] == ["37500"]


async def test_invalid_nonce_is_retried_with_a_fresh_nonce(client, rest_server):
    rest_server.inject("Balance", ("error", ["EAPI:Invalid nonce"]))
    await client.balance()
    first, second = rest_server.calls("Balance")
    n1 = int(urllib.parse.parse_qs(first.body)["nonce"][0])
    n2 = int(urllib.parse.parse_qs(second.body)["nonce"][0])
    assert n2 > n1


async def test_nonce_errors_give_up_after_their_own_retries(client, rest_server):
    refusals = client.settings.max_retries + NONCE_RETRIES
    rest_server.inject("Balance", *[("error", ["EAPI:Invalid nonce"])] * (refusals + 1))
    with pytest.raises(KrakenNonceError, match="nonce_path"):
        await client.balance()
    assert len(rest_server.calls("Balance")) == refusals + 1


async def test_refused_nonces_after_spent_retries_are_drawn_again(client, rest_server):
    """Kraken fault campaign seeds 43 and 1030 (a busy machine): a read whose retries went
    on 5xx and rate limits, then refused for its nonce (another call of the process got
    there first), raised and ended the executions feed; a refused nonce did nothing at
    Kraken and is drawn afresh, not counted against max_retries."""
    spent = [("status", 502)] * client.settings.max_retries
    rest_server.inject("Balance", *spent, *[("error", ["EAPI:Invalid nonce"])] * 3)
    assert await client.balance() is not None
    assert len(rest_server.calls("Balance")) == client.settings.max_retries + 4


async def test_server_side_nonce_check_rejects_replays(client, rest_server):
    await client.balance()
    rest_server.last_nonce = 10**20  # as if another process used a much larger nonce
    with pytest.raises(KrakenNonceError):
        await client.balance()


async def test_rate_limit_refusal_backs_off_then_succeeds(client, rest_server, fake_time):
    rest_server.inject("OpenOrders", ("error", ["EAPI:Rate limit exceeded"]))
    await client.open_orders()
    assert len(rest_server.calls("OpenOrders")) == 2
    # The local counter was saturated, so the wait covers at least one decay step.
    assert fake_time.sleeps and fake_time.sleeps[0] >= 1 / 0.33 - 1e-9


async def test_http_429_counts_as_rate_limit(client, rest_server, fake_time):
    rest_server.inject("Balance", ("status", 429))
    await client.balance()
    assert len(rest_server.calls("Balance")) == 2 and fake_time.sleeps


async def test_rate_limit_errors_surface_after_max_retries(client, rest_server):
    rest_server.inject("Balance", *[("error", ["EAPI:Rate limit exceeded"])] * 4)
    with pytest.raises(KrakenRateLimitError, match="rate_limit_tier"):
        await client.balance()


async def test_invalid_arguments_are_not_retried(client, rest_server):
    rest_server.inject("AddOrder", ("error", ["EGeneral:Invalid arguments"]))
    with pytest.raises(KrakenApiError, match="Invalid arguments"):
        await client.add_order({"ordertype": "limit", "type": "buy", "volume": "1",
                                "pair": "XBTUSD", "price": "1"})
    assert len(rest_server.calls("AddOrder")) == 1


async def test_add_order_5xx_is_not_blindly_retried(client, rest_server):
    rest_server.inject("AddOrder", ("status", 500))
    with pytest.raises(TransientVenueError):
        await client.add_order({"ordertype": "market", "type": "buy", "volume": "1",
                                "pair": "XBTUSD"})
    assert len(rest_server.calls("AddOrder")) == 1


async def test_add_order_rate_limit_is_raised_not_retried(client, rest_server):
    """The caller looks the order up before any retry (see test_kraken_exactly_once)."""
    rest_server.inject("AddOrder", ("error", ["EOrder:Rate limit exceeded"]))
    with pytest.raises(KrakenRateLimitError):
        await client.add_order({"ordertype": "market", "type": "buy", "volume": "1",
                                "pair": "XBTUSD"})
    assert len(rest_server.calls("AddOrder")) == 1
    assert client.rest_limiter.counter.value() >= client.rest_limiter.counter.maximum - 1


async def test_local_counter_slows_down_before_kraken_refuses(fake_time):
    limiter = RestRateLimiter("starter", fake_time.clock, fake_time.sleep)
    for _ in range(15):
        await limiter.acquire("Balance")
    assert fake_time.sleeps == []  # the burst fits the starter maximum of 15
    await limiter.acquire("Balance")
    assert fake_time.sleeps == [pytest.approx(1 / 0.33)]
    await limiter.acquire("TradesHistory")  # costs 2
    assert fake_time.sleeps[-1] == pytest.approx(2 / 0.33)
    await limiter.acquire("AddOrder")  # trading-engine limiter, not the REST counter
    assert len(fake_time.sleeps) == 2
    assert limiter.counter.value() <= limiter.counter.maximum


async def test_private_call_without_credentials_is_a_config_error(rest_server, make_settings):
    c = KrakenRestClient(make_settings(rest_url=rest_server.url))
    try:
        with pytest.raises(ConfigError, match="api_key"):
            await c.balance()
    finally:
        await c.close()


async def test_secrets_never_appear_in_reprs(client):
    assert "kQH5" not in repr(client) and "kQH5" not in repr(client.settings)


async def test_an_answer_with_a_5000_digit_number_is_malformed_not_a_crash(client, rest_server):
    # json.loads raises a plain ValueError (int()'s 4,300-digit limit), not JSONDecodeError
    rest_server.inject("Depth", ("raw", '{"error": [], "result": {"n": ' + "7" * 5000 + "}}"))
    with pytest.raises(VenueError, match="not JSON"):
        await client.depth("BTC/USD")
