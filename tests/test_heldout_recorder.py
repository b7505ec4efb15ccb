"""Held-out audit of ``argus record``'s writing side and the round trip: what it found.

1. The output file was opened (emptied) before the venue listed its instruments: a venue
   that did not answer left an earlier recording at that path empty.
2. A second ``argus record`` to the file a first one was writing emptied it under the
   first: the two interleaved, and the first's later writes past the new end left tens
   of thousands of NUL bytes; the replay refused the file.  The second is now refused.
3. An event stamped before an earlier one was written as it came, and the replay refuses
   a whole recording for one time that goes backwards ("event time goes backwards"):
   a Kraken trade (stamped with its own time) after the book frame before it made every
   book + trade recording unreplayable, found only at backtest time.  Such an event is
   now written at the latest time seen (a live run's clock never goes backwards either)
   and counted in a warning.
4. SIGTERM (``docker stop``, systemd) ended a recording at once (exit -15, nothing said,
   the venue never closed); it now stops it as Ctrl-C does (exit 130, "interrupted").

Lines were always whole on SIGINT, SIGTERM and SIGKILL (each is written and flushed in
one piece), and every event type, at extreme but legal values, reads back equal.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import argus_core.runtime
from argus_core.builtins.replay_venue import read_ndjson
from argus_core.config import load_config
from argus_core.interfaces import FeeSchedule, Venue
from argus_core.models import (
    Bar,
    BookDelta,
    BookStatus,
    Event,
    Instrument,
    MarketEvent,
    OrderBook,
    Outcome,
    Settlement,
    Side,
    Signal,
    Trade,
)
from argus_core.recorder import read_header, record

HERE = Path(__file__).resolve().parent
SPOT = Instrument("fake", "BTC/USD", "spot", "0.1", "0.00000001")
IID = SPOT.id
T = 1_700_000_000 * 10**9


class FakeVenue(Venue):
    """A venue streaming ``events`` (``delay_s`` apart; then idle), 25/40 bps fees."""

    name = "fake"

    def __init__(self, events: Iterable[Any] = (), instruments: Iterable[Instrument] = (SPOT,),
                 delay_s: float = 0.0, down: bool = False) -> None:
        self.events, self.listed, self.delay_s, self.down = events, instruments, delay_s, down
        self.closed = False

    async def instruments(self) -> list[Instrument]:
        if self.down:
            raise ConnectionRefusedError(111, "Connection refused")
        return list(self.listed)

    async def stream(self) -> AsyncIterator[MarketEvent]:
        for event in self.events:
            await asyncio.sleep(self.delay_s)
            yield event
        await asyncio.sleep(3600)

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        return FeeSchedule(Decimal(25), Decimal(40))

    async def close(self) -> None:
        self.closed = True


def ticking(n: int = 10**9) -> Iterator[MarketEvent]:
    """``n`` trades one nanosecond apart (made as they are streamed)."""
    return (Trade(IID, T + i, "100.5", "0.25") for i in range(n))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config the recorder can load (its venue is replaced by the test's)."""
    seed = tmp_path / "seed.ndjson"
    seed.write_text("")
    path = tmp_path / "argus.toml"
    path.write_text(f'[run]\nvenue = "replay"\n[plugins.replay]\nndjson = "{seed}"\n')
    return path


def use(monkeypatch: pytest.MonkeyPatch, venue: Venue) -> None:
    """Make the recorder record ``venue``."""
    monkeypatch.setattr(argus_core.runtime, "build", lambda *a, **k: venue)


def recorded(config: Path, out: Path, venue: Venue, monkeypatch: pytest.MonkeyPatch,
             duration_s: float = 0.5, max_events: int | None = None) -> int:
    use(monkeypatch, venue)
    return asyncio.run(record(load_config(config), out, duration_s=duration_s,
                              max_events=max_events))


def test_every_event_type_round_trips_at_extreme_values(
        tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Passed before: the guard of what a recording promises (Decimal text, exact floats,
    odd ids and unicode, the largest time)."""
    odd = Instrument("fake", 'BTC/USD é☃ "x\\y 🏆', "spot", "1E-12", "1E-12", "0")
    long = Instrument("fake", "S" * 5000, "binary", "0.001", "0.01")
    iid = odd.id
    events: list[MarketEvent] = [
        Bar(iid, T, 1e-12, 1e18, 1e-12, 0.1 + 0.2, 1e300),
        Trade(iid, T + 1, "0.000000000001", "123456789012345678901234567.123456789", Side.SELL),
        OrderBook(iid, T + 2, [[0.30000000000000004, 1e300]], [[1e18, 5e-324]]),
        BookDelta(iid, T + 3, Side.BUY, "1E-12", "0"), BookDelta(iid, T + 3, Side.SELL, 0.1, 1e-7),
        BookStatus(iid, T + 4, False, "gap \x00 ☃"), Signal("z☃", iid, T + 5, -0.0),
        Signal("z", iid, T + 5, 5e-324),
        Event("fake", "e1", "Who? 🏆", (Outcome("A", "fake:A", "fake:NA", True),), True, False,
              True, 2**63 - 1),
        Instrument("fake", "X", "spot", "0.5", "1E+3", "1E+3", meta={"k": [1.5, None, {}]}),
        Settlement(long.id, T + 6, "1", "expiry"), Settlement(iid, T + 7, None, "void"),
        Settlement(iid, 2**63 - 1, "0", "")]
    out = tmp_path / "rec.ndjson"
    assert recorded(config, out, FakeVenue(events, [odd, long]), monkeypatch) == len(events)
    header = read_header(out)
    assert header is not None and header.instruments == [odd, long]
    back = list(read_ndjson(out))
    assert back == events
    assert [e.meta for e in back if isinstance(e, Instrument)] == [{"k": [1.5, None, {}]}]
    assert str(back[1].price) == "1E-12"  # type: ignore[union-attr]


def test_a_venue_that_does_not_answer_leaves_an_earlier_recording(
        tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: the file opened (emptied) first, then the venue asked for its instruments."""
    out = tmp_path / "rec.ndjson"
    out.write_text("an earlier recording\n")
    with pytest.raises(ConnectionRefusedError):
        recorded(config, out, FakeVenue(down=True), monkeypatch)
    assert out.read_text() == "an earlier recording\n"


def test_a_second_recorder_on_the_same_file_is_refused(
        tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: the second truncated the file under the first (NUL bytes, interleaved lines)."""
    out = tmp_path / "rec.ndjson"
    use(monkeypatch, FakeVenue(ticking(), delay_s=0.001))
    loaded = load_config(config)

    async def both() -> tuple[int, BaseException | None]:
        first = asyncio.create_task(record(loaded, out, duration_s=1.0))
        await asyncio.sleep(0.4)
        try:
            await record(loaded, out, duration_s=0.3)
        except Exception as exc:  # (what it raised is the point)
            return await first, exc
        return await first, None

    n, refused = asyncio.run(both())
    assert refused is not None and str(out) in str(refused), refused
    assert "another `argus record`" in str(refused)
    assert b"\0" not in out.read_bytes()
    assert len(list(read_ndjson(out))) == n > 50


def test_events_stamped_before_the_last_replay_at_the_latest_time(
        tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Was: "event time goes backwards" (a trade stamped before the book before it): the
    whole recording refused."""
    book = OrderBook(IID, T + 500, [[100.0, 1.0]], [[101.0, 1.0]])
    bar = Bar(IID, T + 400, 100.0, 101.0, 99.0, 100.5, 2.0)
    events = [bar, book, Trade(IID, T + 100, "100.5", "0.25"),
              BookDelta(IID, T + 499, Side.BUY, "100", "0"), Trade(IID, T + 600, "101", "1")]
    out = tmp_path / "rec.ndjson"
    with caplog.at_level(logging.WARNING):
        assert recorded(config, out, FakeVenue(events), monkeypatch) == 5
    assert list(read_ndjson(out)) == [
        bar, book, Trade(IID, T + 500, "100.5", "0.25"),
        BookDelta(IID, T + 500, Side.BUY, "100", "0"), Trade(IID, T + 600, "101", "1")]
    assert "2 events stamped before an earlier one were written at the latest time" \
        in caplog.text


def test_events_the_replay_would_refuse_are_left_out_and_counted(
        tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A candle sent again after a reconnect (a bar no newer than the last), a print of an
    instrument never listed, a NaN signal and a time that is no integer were written, and
    the replay refused the whole file at the first of them."""
    import attrs

    bar = Bar(IID, T + 400, 100.0, 101.0, 99.0, 100.5, 2.0)
    bad_time = attrs.evolve(Trade(IID, T + 450, "100.5", "1"), ts_ns=1.5e18)
    events = [bar, bar, Trade("fake:ELSE", T + 401, "1", "1"),
              Signal("z", IID, T + 402, float("nan")), bad_time,
              Trade(IID, T + 600, "101", "1")]
    out = tmp_path / "rec.ndjson"
    with caplog.at_level(logging.WARNING):
        assert recorded(config, out, FakeVenue(events), monkeypatch) == 2
    assert list(read_ndjson(out)) == [bar, Trade(IID, T + 600, "101", "1")]
    assert "4 the replay would refuse were left out" in caplog.text


def test_the_recorder_and_the_replay_refuse_by_one_rule(
        tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorder kept its own copy of the replay's refusals, and it had drifted: a
    binary contract's settlement above 1 was written, and the replay refused the whole
    recording at it.  Both now ask one ``EventRules``; so does an event of an instrument
    listed mid-run (kept) or of one never listed (left out)."""
    binary = Instrument("fake", "YES", "binary", "0.01", "1")
    later = Instrument("fake", "LATER", "spot", "0.1", "1")
    events = [Settlement(binary.id, T + 1, "2"), later, Trade(later.id, T + 2, "5", "1"),
              Settlement("fake:NEVER", T + 3, "0"), Settlement(binary.id, T + 4, "1")]
    out = tmp_path / "rec.ndjson"
    assert recorded(config, out, FakeVenue(events, (SPOT, binary)), monkeypatch) == 3
    assert list(read_ndjson(out)) == [later, Trade(later.id, T + 2, "5", "1"),
                                      Settlement(binary.id, T + 4, "1")]


def test_a_kraken_trade_stamped_before_its_book_replays(tmp_path: Path) -> None:
    """The Kraken plugin's local exchange: a book snapshot at .5 s, then a trade at .0 s
    (its own time), a disconnect (a stale mark) and a new snapshot.  Was: refused at
    line 3, "event time goes backwards"."""
    pytest.importorskip("argus_venue_kraken")
    from argus_venue_kraken.testing import (
        AwaitSubscribe,
        Disconnect,
        LocalKrakenRest,
        LocalKrakenWs,
        Send,
        book_frame,
    )

    fixtures = HERE.parent / "plugins" / "argus-venue-kraken" / "tests" / "fixtures"
    snap = json.loads((fixtures / "kraken_ws_v2_book_checksum_example.json").read_text())
    snap = {**snap["data"][0], "timestamp": "2023-11-14T22:13:21.500000Z"}
    trade = {"channel": "trade", "type": "update", "data": [{
        "symbol": "BTC/USD", "side": "buy", "price": 45285.2, "qty": 0.001, "ord_type": "limit",
        "trade_id": 1, "timestamp": "2023-11-14T22:13:21.000000Z"}]}
    start = [AwaitSubscribe("book"), AwaitSubscribe("trade"), Send(book_frame("snapshot", snap))]
    sessions = [[*start, Send(trade), Disconnect()], [*start, Send({"channel": "heartbeat"})]]
    pairs = json.loads((fixtures / "kraken_rest_assetpairs.json").read_text())
    out = tmp_path / "kraken.ndjson"

    async def go() -> int:
        rest = LocalKrakenRest({"AssetPairs": pairs}).start()
        try:
            async with LocalKrakenWs(sessions) as ws:
                cfg = tmp_path / "argus.toml"
                cfg.write_text(
                    f'[argus]\nplugins = ["kraken"]\n[run]\nvenue = "kraken"\n[plugins.kraken]\n'
                    f'rest_url = "{rest.url}"\nws_url = "{ws.url}"\nreconnect_base_s = 0.001\n'
                    f'channels = ["book", "trade"]\nnonce_path = "{tmp_path / "nonce"}"\n')
                return await record(load_config(cfg), out, duration_s=4, max_events=4)
        finally:
            rest.stop()

    assert asyncio.run(go()) == 4
    replayed = list(read_ndjson(out))
    assert [type(e).__name__ for e in replayed] == ["OrderBook", "Trade", "BookStatus",
                                                   "OrderBook"]
    assert {e.ts_ns for e in replayed} == {1_700_000_001_500_000_000}  # type: ignore[union-attr]
    assert replayed[1].price == Decimal("45285.2")  # type: ignore[union-attr]


CHILD = """
import sys
sys.path.insert(0, {here!r})
import argus_core.runtime
from test_heldout_recorder import FakeVenue, ticking
argus_core.runtime.build = lambda *a, **k: FakeVenue(ticking(), delay_s=0.001)
from argus_core.cli import main
sys.argv = ["argus", "record", "--config", {config!r}, "--out", {out!r}, "--duration", "60"]
main()
"""


def test_sigterm_stops_a_recording_as_ctrl_c_does(tmp_path: Path, config: Path) -> None:
    """Was: exit -15 at once, nothing said, the venue never closed."""
    out = tmp_path / "rec.ndjson"
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(here=str(HERE), config=str(config), out=str(out)))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 5000):
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    said, _ = child.communicate(timeout=20)
    assert child.returncode == 130 and "interrupted" in said, said
    assert len(list(read_ndjson(out))) > 10
