"""Recordings keep their instruments and fee schedules, so a replay costs what the run did.

The Polymarket example end to end: the paper run against the local replay server,
``argus record`` of the same stream, then a replay of the recording through the core
loop: same fills, same fees, same P&L to the cent.  Then what a recording's header may
and may not make Argus load.
"""

from __future__ import annotations

import asyncio
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from argus_test_helpers import ROOT

from argus_core.builtins.replay_venue import ReplaySettings, ReplayVenue, read_ndjson
from argus_core.config import apply_overrides, load_config
from argus_core.errors import DataError
from argus_core.interfaces import FeeSchedule, Venue
from argus_core.ledger import Ledger
from argus_core.market_state import MarketState
from argus_core.models import Bar, Instrument
from argus_core.recorder import (
    FEES_KEY,
    FORMAT_VERSION,
    HEADER_TYPE,
    allowed_fee_packages,
    dump_header,
    fee_entry,
    load_fee_schedule,
    parse_header,
    read_header,
)
from argus_core.runner import Runner
from argus_core.serde import dump_event

EXAMPLE = ROOT / "examples" / "polymarket"


def _fills(run_dir: Path) -> list[tuple[str, str, Decimal, Decimal, Decimal, str]]:
    with Ledger.in_dir(run_dir) as ledger:
        rows = ledger.fills()
    return sorted((f["instrument_id"], f["side"], Decimal(f["price"]), Decimal(f["quantity"]),
                   Decimal(f["fee"]), f["liquidity"]) for f in rows)


async def test_a_recorded_polymarket_run_replays_to_the_cent(tmp_path: Path) -> None:
    pytest.importorskip("argus_venue_polymarket")
    pytest.importorskip("argus_scanner_negrisk")
    from argus_venue_polymarket.replay_server import SnapshotServer

    from argus_core.recorder import record

    def served(srv: Any) -> Any:
        return apply_overrides(load_config(EXAMPLE / "paper.toml"), {
            "plugins.polymarket.gamma_url": srv.url, "plugins.polymarket.clob_url": srv.url,
            "plugins.polymarket.ws_url": srv.ws_url})

    snapshot = EXAMPLE / "snapshot"
    with SnapshotServer.from_dir(snapshot, ws_port=0, resolve_after_books=True) as srv:
        paper = await asyncio.wait_for(Runner(served(srv), tmp_path / "paper").run(), 60)
    recording = tmp_path / "recording.ndjson"
    with SnapshotServer.from_dir(snapshot, ws_port=0, resolve_after_books=True) as srv:
        n_events = await record(served(srv), recording, duration_s=60)
    assert n_events == paper.events

    header = read_header(recording)
    assert header is not None and header.venue == "polymarket"
    assert all(i.kind == "binary" and i.lot_size == Decimal("0.01")
               for i in header.instruments)
    assert Decimal("0.001") in {i.tick_size for i in header.instruments}  # the Fed event's
    assert {type(s).__name__ for s in header.fee_schedules.values()} == \
        {"PolymarketFeeSchedule"}
    assert len(list(read_ndjson(recording))) == n_events  # the header is not an event

    replay_config = apply_overrides(load_config(EXAMPLE / "replay.toml"),
                                    {"plugins.replay.ndjson": str(recording)})
    replay = await Runner(replay_config, tmp_path / "replay").run()
    pnl = replay.final_equity - replay.starting_equity
    assert pnl == paper.final_equity - paper.starting_equity == Decimal("0.70448")
    assert replay.fees == paper.fees == Decimal("3.49552")
    assert _fills(tmp_path / "replay") == _fills(tmp_path / "paper")
    assert len(_fills(tmp_path / "paper")) == 10  # five legs, five settlements

    # Without its header the same events replay under the configured defaults (BTC-like
    # instrument rules, 40 bps taker): a different P&L -- what the header prevents.
    bare = tmp_path / "bare.ndjson"
    bare.write_text("".join(recording.read_text().splitlines(keepends=True)[1:]))
    old = await Runner(apply_overrides(replay_config, {"plugins.replay.ndjson": str(bare)}),
                       tmp_path / "bare").run()
    assert old.final_equity - old.starting_equity != pnl


@attrs.frozen
class TieredFees(FeeSchedule):
    """A FeeSchedule subclass of this test module (not an installed plugin)."""

    surcharge: Decimal = Decimal("0.5")

    def fee(self, price: Decimal, quantity: Decimal, *, maker: bool) -> Decimal:
        return super().fee(price, quantity, maker=maker) + self.surcharge


class _Recorded(Venue):
    name = "rec"

    def __init__(self, schedule: FeeSchedule) -> None:
        self.schedule = schedule

    async def instruments(self) -> list[Instrument]:
        return [Instrument("rec", "BTC/USD", tick_size="0.00001", lot_size="0.00000001")]

    def stream(self) -> Any:
        raise NotImplementedError

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        return self.schedule


def _header(schedule: FeeSchedule) -> dict[str, Any]:
    venue = _Recorded(schedule)
    return json.loads(json.dumps(dump_header(venue, asyncio.run(venue.instruments()))))


def test_a_plain_fee_schedule_round_trips_and_is_served(tmp_path: Path) -> None:
    data = _header(FeeSchedule(maker_bps=Decimal("16"), taker_bps=Decimal("26")))
    assert data["type"] == HEADER_TYPE and data["version"] == FORMAT_VERSION
    header = parse_header(data, where="h")
    assert header.fee_schedules == {"rec:BTC/USD": FeeSchedule(Decimal("16"), Decimal("26"))}
    recording = tmp_path / "rec.ndjson"
    bar = Bar("rec:BTC/USD", 3_600 * 10**9, 162.9811, 163.0, 162.5, 162.9, 1.0)
    recording.write_text(json.dumps(data) + "\n" + json.dumps(dump_event(bar)) + "\n")
    venue = ReplayVenue(ReplaySettings(ndjson=recording))
    (inst,) = asyncio.run(venue.instruments())
    assert inst.id == "rec:BTC/USD" and inst.tick_size == Decimal("0.00001")
    assert venue.fee_schedule("rec:BTC/USD").taker_bps == Decimal("26")
    assert venue.fee_schedule("other:X") == FeeSchedule(Decimal("25"), Decimal("40"))
    assert list(venue.events()) == [bar]


def test_only_fee_schedules_of_installed_plugins_load() -> None:
    data = _header(TieredFees(taker_bps=Decimal("10")))
    (entry,) = data["fee_schedules"]
    assert entry["class"] == f"{__name__}:TieredFees"
    # This test module is no installed plugin: refused, even though it is a FeeSchedule.
    with pytest.raises(DataError, match="refusing to import"):
        load_fee_schedule(entry, where="h")
    # Were it one, it would round-trip exactly (what the Polymarket schedule does).
    top = __name__.split(".")[0]
    schedule = load_fee_schedule(entry, where="h", allowed=lambda: {top})
    assert schedule == TieredFees(taker_bps=Decimal("10"))
    assert "argus_core" in allowed_fee_packages()

    never_imported = "argus_test_never_imported_module"
    for path in (f"{never_imported}:Fee", "os:system", "subprocess:Popen",
                 "builtins:eval", "os.path:join"):
        with pytest.raises(DataError, match="refusing to import"):
            load_fee_schedule({**entry, "class": path}, where="h")
    assert never_imported not in sys.modules
    for path in ("argus_core.models:Instrument", "argus_core.recorder:record"):
        with pytest.raises(DataError, match="not an attrs FeeSchedule subclass"):
            load_fee_schedule({**entry, "class": path}, where="h")
    for path in ("argus_core.interfaces:FeeSchedule.fee", "argus_core/../x:Y", ":X", "a:"):
        with pytest.raises(DataError, match="not a module:Class path"):
            load_fee_schedule({**entry, "class": path}, where="h")


def test_tampered_or_changed_fee_schedules_are_refused() -> None:
    data = _header(FeeSchedule(taker_bps=Decimal("26")))
    (entry,) = data["fee_schedules"]
    with pytest.raises(DataError, match="do not fit the installed class"):
        load_fee_schedule({**entry, "fields": {**entry["fields"], "rebate": "1"}}, where="h")
    # The recorded fees no longer match the formula: the installed code changed.
    changed = {**entry, "fields": {**entry["fields"], "taker_bps": "40"}}
    with pytest.raises(DataError, match="fee formula changed"):
        load_fee_schedule(changed, where="h")
    with pytest.raises(DataError, match="version"):
        parse_header({**data, "version": 99}, where="h")
    with pytest.raises(DataError, match="names no schedule"):
        parse_header({**data, "fee_schedule_of": {"rec:BTC/USD": 3}}, where="h")


def test_an_instrument_listed_mid_recording_replays_with_its_fees(tmp_path: Path) -> None:
    """A venue may list an instrument mid-stream (an ``Instrument`` event: a market listed
    after the start).  Its line carries its fee schedule (``fee_entry``, what ``record``
    writes), the replay yields it to the market state before its first bar, and charges
    its recorded fees, not the configured defaults."""
    venue = _Recorded(FeeSchedule(maker_bps=Decimal("16"), taker_bps=Decimal("26")))
    header = _header(venue.schedule)
    later = Instrument("rec", "ETH/USD", tick_size="0.01", lot_size="0.0001",
                       meta={"listed": "mid-run"})
    listed = dump_event(later)
    listed[FEES_KEY] = fee_entry(_Recorded(FeeSchedule(Decimal("2"), Decimal("7"))), later)
    bars = [Bar("rec:BTC/USD", 3_600 * 10**9, 162.9811, 163.0, 162.5, 162.9, 1.0),
            Bar("rec:ETH/USD", 7_200 * 10**9, 10.0, 10.5, 9.5, 10.25, 3.0)]
    recording = tmp_path / "rec.ndjson"
    recording.write_text("\n".join(json.dumps(x) for x in (
        header, dump_event(bars[0]), listed, dump_event(bars[1]))) + "\n")
    replay = ReplayVenue(ReplaySettings(ndjson=recording))
    assert replay.fee_schedule("rec:ETH/USD") == FeeSchedule(Decimal("25"), Decimal("40"))
    events = list(replay.events())
    assert events == [bars[0], later, bars[1]] and events[1].meta == {"listed": "mid-run"}
    assert replay.fee_schedule("rec:ETH/USD") == FeeSchedule(Decimal("2"), Decimal("7"))
    assert replay.fee_schedule("rec:BTC/USD").taker_bps == Decimal("26")

    state = MarketState()
    for event in events[:2]:
        state.apply(event)
    version = state.instruments_version
    assert state.instruments["rec:ETH/USD"].tick_size == Decimal("0.01")
    state.apply(attrs.evolve(later, tick_size=Decimal("0.05")))  # new rules, same id
    assert state.instruments["rec:ETH/USD"].tick_size == Decimal("0.05")
    assert state.instruments_version == version + 1

    # a tampered schedule on the line is refused with where it is
    listed[FEES_KEY] = {**listed[FEES_KEY], "fields": {"maker_bps": "2", "taker_bps": "70"}}
    recording.write_text("\n".join(json.dumps(x) for x in (header, listed)) + "\n")
    with pytest.raises(DataError, match=r"rec\.ndjson:2: .*fee formula changed"):
        list(ReplayVenue(ReplaySettings(ndjson=recording)).events())
