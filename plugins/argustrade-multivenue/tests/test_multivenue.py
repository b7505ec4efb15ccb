"""The composite venue on fakes of the contract: the time-ordered merge (order, ties,
laziness), id collisions, per-instrument fees and routing, the venue-wide defaults,
closing, live refusal and the settings' errors."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest
from argus_multivenue import MultiVenue, MultiVenueSettings, merge_by_time

from argus_core import (
    Bar,
    Config,
    ConfigError,
    DataError,
    FeeSchedule,
    Fill,
    Instrument,
    MarketEvent,
    Order,
    Side,
    Venue,
    VenueError,
    load_config,
    structure,
)


def _bar(iid: str, ts: int, close: str = "100") -> Bar:
    c = float(close)
    return Bar(iid, ts, c, c, c, c, 1.0)


class FakeVenue(Venue):
    """A replay-like venue over given bars (or an endless stream) with a fixed schedule."""

    name: ClassVar[str] = "fake"
    supports_live_orders: ClassVar[bool] = True

    def __init__(self, venue: str, events: Iterable[MarketEvent] = (), *,
                 ids: Sequence[str] | None = None, fees: FeeSchedule | None = None,
                 expected: int | None = None) -> None:
        self.venue = venue
        self.events = events
        self.ids = list(ids) if ids is not None else [f"{venue}:X"]
        self.fees = fees or FeeSchedule()
        self.expected = expected
        self.closed = False
        self.submitted: list[Order] = []
        self.pulled = 0

    async def instruments(self) -> Sequence[Instrument]:
        return [Instrument(i.partition(":")[0], i.partition(":")[2], "spot") for i in self.ids]

    async def stream(self) -> AsyncIterator[MarketEvent]:
        for event in self.events:
            self.pulled += 1
            yield event

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        return self.fees

    def expected_events(self) -> int | None:
        return self.expected

    async def submit(self, order: Order) -> list[Fill]:
        self.submitted.append(order)
        return []

    async def close(self) -> None:
        self.closed = True


class StrictFake(FakeVenue):
    """A fake whose books go stale sooner and which has no live order entry."""

    supports_live_orders: ClassVar[bool] = False
    default_stale_after_s: ClassVar[float] = 5.0


class BrokenClose(FakeVenue):
    """A fake whose ``close`` fails."""

    async def close(self) -> None:
        raise RuntimeError("socket already gone")


def _collect(venue: Venue, limit: int | None = None) -> list[MarketEvent]:
    async def go() -> list[MarketEvent]:
        out: list[MarketEvent] = []
        async for event in venue.stream():
            out.append(event)
            if limit is not None and len(out) >= limit:
                break
        return out
    return asyncio.run(go())


def _key(event: MarketEvent) -> tuple[str, int, float]:
    assert isinstance(event, Bar)
    return (event.instrument_id, event.ts_ns, event.close)


def test_the_merge_is_in_time_order_and_ties_follow_the_venues_order() -> None:
    a = [_bar("a:X", 1), _bar("a:X", 3, "1"), _bar("a:X", 3, "2"), _bar("a:X", 5)]
    b = [_bar("b:X", 2), _bar("b:X", 3, "9"), _bar("b:X", 4)]
    got = [_key(e) for e in _collect(MultiVenue(inner={"a": FakeVenue("a", a),
                                                       "b": FakeVenue("b", b)}))]
    assert got == [("a:X", 1, 100.0), ("b:X", 2, 100.0),
                   ("a:X", 3, 1.0), ("a:X", 3, 2.0), ("b:X", 3, 9.0),
                   ("b:X", 4, 100.0), ("a:X", 5, 100.0)]
    # Listing b first puts b's events first on the tie, each venue's own order kept.
    swapped = [_key(e) for e in _collect(MultiVenue(inner={"b": FakeVenue("b", b),
                                                           "a": FakeVenue("a", a)}))]
    assert [k for k in swapped if k[1] == 3] == [("b:X", 3, 9.0),
                                                 ("a:X", 3, 1.0), ("a:X", 3, 2.0)]


def test_the_merge_is_lazy_an_endless_stream_still_interleaves() -> None:
    endless = FakeVenue("a", (_bar("a:X", 10 * n) for n in itertools.count()))
    finite = FakeVenue("b", [_bar("b:X", 5), _bar("b:X", 15), _bar("b:X", 25)])
    got = _collect(MultiVenue(inner={"a": endless, "b": finite}), limit=8)
    assert [(e.instrument_id, e.ts_ns) for e in got if isinstance(e, Bar)] == [
        ("a:X", 0), ("b:X", 5), ("a:X", 10), ("b:X", 15), ("a:X", 20), ("b:X", 25),
        ("a:X", 30), ("a:X", 40)]
    assert endless.pulled <= 9  # one pending event at most beyond what was yielded


def test_the_merge_ends_when_every_stream_has_and_a_backwards_stream_is_refused() -> None:
    async def gen(events: list[MarketEvent]) -> AsyncIterator[MarketEvent]:
        for e in events:
            yield e

    async def drain(sources: list[tuple[str, AsyncIterator[MarketEvent]]]) -> int:
        return len([e async for e in merge_by_time(sources)])

    assert asyncio.run(drain([("a", gen([])), ("b", gen([_bar("b:X", 1)]))])) == 1
    with pytest.raises(DataError, match=r"venue 'b'.*back in time"):
        asyncio.run(drain([("a", gen([_bar("a:X", 1)])),
                           ("b", gen([_bar("b:X", 5), _bar("b:X", 4)]))]))


def test_an_instrument_id_two_venues_serve_is_refused_naming_both() -> None:
    venue = MultiVenue(inner={"replay": FakeVenue("replay", ids=["replay:BTC/USD"]),
                              "other": FakeVenue("other", ids=["replay:BTC/USD"])})
    with pytest.raises(ConfigError, match=r"'replay:BTC/USD'.*'replay'.*'other'"):
        asyncio.run(venue.instruments())


def test_an_instrument_listed_mid_stream_is_routed_to_its_venue(
        caplog: pytest.LogCaptureFixture) -> None:
    """An inner venue may list an instrument while it streams (a Polymarket market listed
    after the start): its fees and orders go to that venue from then on, whatever the
    inner venue's name; one claiming another venue's id is dropped, said in the log."""
    late = Instrument("pm", "42", "binary")
    clash = Instrument("kraken", "BTC/USD", "spot", tick_size=Decimal("5"))
    crypto = FakeVenue("kraken", [_bar("kraken:BTC/USD", 1), _bar("kraken:BTC/USD", 3)],
                       ids=["kraken:BTC/USD"], fees=FeeSchedule(taker_bps=Decimal(40)))
    pm = FakeVenue("pm", [_bar("pm:7", 2), late, clash, _bar("pm:42", 4)], ids=["pm:7"],
                   fees=FeeSchedule(taker_bps=Decimal(100)))
    venue = MultiVenue(inner={"spot": crypto, "prediction": pm})
    asyncio.run(venue.instruments())
    with pytest.raises(VenueError, match="'pm:42' is served by none"):
        venue.owner_name("pm:42")
    with caplog.at_level("ERROR"):
        got = _collect(venue)
    assert late in got and clash not in got
    assert "'prediction' listed instrument 'kraken:BTC/USD', which venue 'spot'" in caplog.text
    assert venue.owner_name("pm:42") == "prediction"
    assert venue.owner_name("kraken:BTC/USD") == "spot"
    assert venue.fee_schedule("pm:42").taker_bps == Decimal(100)
    order = Order("c1", "s", "pm:42", Side.BUY, Decimal(1), Decimal("0.5"))
    asyncio.run(venue.submit(order))
    assert pm.submitted == [order] and crypto.submitted == []


def test_fees_and_orders_go_to_the_venue_serving_the_instrument() -> None:
    crypto = FakeVenue("kraken", ids=["kraken:BTC/USD"], fees=FeeSchedule(taker_bps=Decimal(40)))
    options = FakeVenue("opt", ids=["opt:SPY-2021-01-15-P-300"],
                        fees=FeeSchedule(per_unit=Decimal("0.65")))
    # the inner names need not match the ids' prefixes: instruments() decides
    venue = MultiVenue(inner={"replay": crypto, "vrp_options": options})
    insts = asyncio.run(venue.instruments())
    assert [i.id for i in insts] == ["kraken:BTC/USD", "opt:SPY-2021-01-15-P-300"]
    assert venue.fee_schedule("kraken:BTC/USD").fee(Decimal(100), Decimal(2),
                                                    maker=False) == Decimal("0.8")
    assert venue.fee_schedule("opt:SPY-2021-01-15-P-300").fee(
        Decimal(100), Decimal(2), maker=False) == Decimal("1.30")
    with pytest.raises(VenueError, match="'nowhere:X' is served by none"):
        venue.fee_schedule("nowhere:X")
    order = Order("c1", "s", "opt:SPY-2021-01-15-P-300", Side.BUY, Decimal(1), Decimal(5))
    asyncio.run(venue.submit(order))
    assert options.submitted == [order] and crypto.submitted == []


def test_defaults_strictest_stale_summed_counts_and_close_closes_all(
        caplog: pytest.LogCaptureFixture) -> None:
    a, b = FakeVenue("a", expected=10), StrictFake("b", expected=5)
    venue = MultiVenue(inner={"a": a, "b": b})
    assert venue.default_stale_after_s == 5.0
    assert MultiVenue.default_stale_after_s == 30.0  # the class itself is untouched
    assert venue.expected_events() == 15
    assert MultiVenue(inner={"a": a, "c": FakeVenue("c")}).expected_events() is None
    broken, after = BrokenClose("x"), FakeVenue("y")
    asyncio.run(MultiVenue(inner={"x": broken, "y": after}).close())
    assert after.closed and "socket already gone" in caplog.text


def _config(mode: str) -> Config:
    return structure({"argus": {"mode": mode}}, Config, "<test>")


def test_live_is_refused_unless_every_inner_venue_has_live_order_entry() -> None:
    with pytest.raises(ConfigError, match=r"mode 'live'.*b has none"):
        MultiVenue(config=_config("live"), inner={"a": FakeVenue("a"), "b": StrictFake("b")})
    assert MultiVenue(config=_config("live"), inner={"a": FakeVenue("a")}).inner


@pytest.mark.parametrize(("table", "error"), [
    ({"venues": ["replay", "replay"]}, "listed more than once"),
    ({"venues": ["replay", "multivenue"]}, "cannot contain itself"),
])
def test_bad_settings_are_refused_saying_what(table: dict[str, object], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        structure(table, MultiVenueSettings, "<test>", prefix="plugins.multivenue")


def test_a_multivenue_without_its_config_file_says_how_to_name_it() -> None:
    with pytest.raises(ConfigError, match=r"\[plugins.multivenue\] config"):
        MultiVenue(MultiVenueSettings(venues=["replay"]))
    with pytest.raises(ConfigError, match=r"venues: name the registered venues"):
        MultiVenue(MultiVenueSettings(), config=_config("replay"))


def test_the_factory_builds_each_inner_venue_from_its_usual_table(tmp_path: Path) -> None:
    bars = tmp_path / "bars.csv"
    bars.write_text("".join(f"{1_600_000_000 + 3600 * i},1,1,1,1,1,1\n" for i in range(5)))
    cfg = tmp_path / "run.toml"
    cfg.write_text('[argus]\nplugins = ["multivenue"]\n[run]\nvenue = "multivenue"\n'
                   '[plugins.multivenue]\nvenues = ["replay"]\nconfig = "run.toml"\n'
                   '[plugins.replay]\nbars_csv = "bars.csv"\nsymbol = "X/USD"\n'
                   'bar_seconds = 3600\ntaker_bps = "40"\n')
    from argus_core import build_venue

    venue = build_venue(load_config(cfg))
    assert isinstance(venue, MultiVenue) and list(venue.inner) == ["replay"]
    assert [i.id for i in asyncio.run(venue.instruments())] == ["replay:X/USD"]
    assert venue.expected_events() == 5 and len(_collect(venue)) == 5
    assert venue.fee_schedule("replay:X/USD").taker_bps == Decimal(40)


def test_resume_hands_each_inner_venue_its_own_orders_fills_and_fees() -> None:
    """After a restart each inner venue gets the orders it sent and their booked fills and
    fees (a venue that later learns a fill's final fee compares it with the booked one)."""
    from argus_core import KnownOrder, VenueResume

    seen: dict[str, VenueResume] = {}

    class Resumed(FakeVenue):
        def resume(self, known: VenueResume) -> None:
            seen[self.venue] = known

    venue = MultiVenue(inner={"a": Resumed("a"), "b": Resumed("b")})

    def known(coid: str, iid: str) -> KnownOrder:
        return KnownOrder(Order(coid, iid.partition(":")[0], iid, Side.BUY, Decimal(1)))

    venue.resume(VenueResume((known("oa", "a:X"), known("ob", "b:X")),
                             {"fa": "oa", "fb": "ob"}, 5,
                             {"fa": Decimal("0.1"), "fb": Decimal("0.2")}))
    assert (seen["a"].fill_ids, seen["a"].fill_fees) == ({"fa": "oa"}, {"fa": Decimal("0.1")})
    assert (seen["b"].fill_ids, seen["b"].fill_fees) == ({"fb": "ob"}, {"fb": Decimal("0.2")})


def test_reduce_only_guarding_is_the_inner_venue_that_trades_the_instrument() -> None:
    """A refused flatten keeps the reduce-only flag on an inner venue that sizes exits to
    its own position (Kalshi), and goes without it on another (a spot venue that refuses
    the flag): the composite answers per instrument, not for all of them."""
    class Guarding(FakeVenue):
        guards_reduce_only: ClassVar[bool] = True

    venue = MultiVenue(inner={"k": Guarding("k"), "s": FakeVenue("s")})
    assert venue.guards_reduce_only_on("k:X") is True
    assert venue.guards_reduce_only_on("s:X") is False
    assert venue.guards_reduce_only_on("other:X") is False  # no such venue: never guarded
