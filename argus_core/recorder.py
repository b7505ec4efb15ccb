"""``argus record``: write any venue's normalised live stream to NDJSON for replay.

A recording is self-contained: its first line is a header (``"type": "recording"``)
with the venue's instruments (tick, lot, minimum size, ``meta``) and the fee schedule
of each, so the replay venue trades the recorded instruments under the recorded fees
instead of its configured defaults.  Every other line is one market event
(:func:`argus_core.serde.dump_event`); an instrument the venue listed mid-stream is a
line of its own carrying its fee schedule (``"fee_schedule"``, loaded as the header's).

Fee schedules round-trip as ``{"class": "module:Name", "fields": {...}}`` through the
one cattrs converter, with a few fees computed at record time (``"checks"``).  Loading
is deliberately narrow (:func:`load_fee_schedule`): the class must live in
``argus_core`` or in the package of an installed, unblocked ``argus`` entry point, be
an attrs subclass of :class:`~argus_core.interfaces.FeeSchedule`, take exactly the
recorded fields, and reproduce the recorded fees -- a file can never make Argus
import arbitrary code, and a plugin whose fee formula changed since the recording is
refused rather than replayed with different costs.
"""

from __future__ import annotations

import asyncio
import fcntl
import importlib
import importlib.metadata as md
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import cattrs

from argus_core.config import Config
from argus_core.errors import ArgusError, DataError
from argus_core.interfaces import FeeSchedule, Venue
from argus_core.models import Bar, Instrument, OrderBook, Settlement, Signal, to_decimal
from argus_core.serde import (
    converter,
    dump_event,
    loads_frame,
    recording_converter,
    structure_error,
    unique_keys,
)

#: ``type`` of the header line.
HEADER_TYPE = "recording"
#: The key of an instrument line's fee schedule (an instrument listed mid-recording).
FEES_KEY = "fee_schedule"
#: The most a recorded fee schedule's fields may say: basis points (``*_bps``) up to the
#: whole notional, any other amount (a fee per fill, per unit, a rate) up to 1e9.
MAX_BPS, MAX_FEE_FIELD = Decimal(10_000), Decimal(10**9)
#: Header format version (bump on incompatible changes).
FORMAT_VERSION = 1

#: Sample fills each recorded fee schedule is checked on: (price, quantity, maker).
_BINARY_SAMPLES = (("0.003", "150", False), ("0.31", "7.5", False), ("0.64", "150", True),
                   ("0.97", "1234.56", False))
_SPOT_SAMPLES = (("1", "1", False), ("162.9811", "0.5", False), ("30000.5", "0.01234567", True))


@attrs.frozen
class RecordingHeader:
    """What a recording carries besides its events: the venue's instruments and fees."""

    venue: str
    instruments: list[Instrument]
    fee_schedules: dict[str, FeeSchedule]  # instrument id -> its schedule
    version: int = FORMAT_VERSION


def class_path(cls: type) -> str:
    """``module:QualName`` of a class, as recorded."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _fee_checks(schedule: FeeSchedule, instrument: Instrument) -> list[list[Any]]:
    checks = []
    for price, qty, maker in _BINARY_SAMPLES if instrument.kind == "binary" else _SPOT_SAMPLES:
        try:
            fee = schedule.fee(Decimal(price), Decimal(qty), maker=maker)
        except ArithmeticError:  # a formula undefined at this price: nothing to check there
            continue
        checks.append([price, qty, maker, str(fee)])
    return checks


def fee_entry(venue: Venue, instrument: Instrument) -> dict[str, Any]:
    """The recorded form of ``venue``'s fee schedule for ``instrument`` (JSON-ready)."""
    schedule = venue.fee_schedule(instrument.id)
    return {"class": class_path(type(schedule)), "fields": converter.unstructure(schedule),
            "checks": _fee_checks(schedule, instrument)}


def dump_header(venue: Venue, instruments: Sequence[Instrument]) -> dict[str, Any]:
    """The header line of a recording of ``venue`` (JSON-ready)."""
    schedules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    seen: dict[str, int] = {}
    for inst in instruments:
        entry = fee_entry(venue, inst)
        key = json.dumps(entry, sort_keys=True)  # instruments sharing a schedule share a row
        if key not in seen:
            seen[key] = len(schedules)
            schedules.append(entry)
        index[inst.id] = seen[key]
    return {"type": HEADER_TYPE, "version": FORMAT_VERSION, "venue": venue.name,
            "recorded_at_ns": time.time_ns(),
            "instruments": [converter.unstructure(i) for i in instruments],
            "fee_schedules": schedules, "fee_schedule_of": index}


def allowed_fee_packages() -> set[str]:
    """Top-level packages a recorded fee schedule class may come from: ``argus_core`` and
    those of installed ``argus`` entry points not blocked by ``ARGUS_BLOCK_PLUGINS``."""
    from argus_core.plugins import ENTRY_POINT_GROUP, blocked_plugins

    blocked = blocked_plugins()
    packages = {"argus_core"}
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in blocked:
            packages.add(ep.value.split(":")[0].split(".")[0])
    return packages


def load_fee_schedule(entry: dict[str, Any], *, where: str,
                      allowed: Callable[[], set[str]] = allowed_fee_packages) -> FeeSchedule:
    """Rebuild one recorded fee schedule (see the module docstring for what is refused)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("class"), str):
        raise DataError(f"{where}: a fee schedule needs a 'class' and 'fields'")
    path = entry["class"]
    module, _, name = path.partition(":")
    if not (name.isidentifier() and module and all(map(str.isidentifier, module.split(".")))):
        raise DataError(f"{where}: {path!r} is not a module:Class path")
    if module.split(".")[0] not in allowed():
        raise DataError(f"{where}: fee schedule class {path!r} is not from argus_core or an "
                        f"installed Argus plugin; refusing to import it (install the plugin "
                        f"that recorded it, or re-record)")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise DataError(f"{where}: cannot load fee schedule class {path!r}: {exc}") from None
    if not (isinstance(cls, type) and attrs.has(cls) and issubclass(cls, FeeSchedule)):
        raise DataError(f"{where}: {path!r} is not an attrs FeeSchedule subclass")
    fields = _typed(entry.get("fields", {}), dict, where,
                    f"the 'fields' of {path!r} must be an object of field names and values")
    try:
        schedule: FeeSchedule = recording_converter.structure(fields, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, ArithmeticError,
            DataError) as exc:
        raise DataError(f"{where}: fields of {path!r} do not fit the installed class: "
                        f"{structure_error(exc)}") from None
    for field in attrs.fields(type(schedule)):
        value = getattr(schedule, field.name)
        if isinstance(value, Decimal) and not (value.is_finite() and value >= 0):
            # As the config refuses them: a recording cannot make a fill pay the trader.
            raise DataError(f"{where}: {path} field {field.name} = {value} is negative "
                            f"(fees and rebates below zero are refused, as in the config)")
        top = MAX_BPS if field.name.endswith("_bps") else MAX_FEE_FIELD
        if isinstance(value, Decimal) and value > top:  # 1e21 a fill overflowed its rounding
            raise DataError(f"{where}: {path} field {field.name} = {value} is above {top:,} "
                            f"(basis points: the whole notional; an amount: 1e9)")
    checks = _typed(entry.get("checks", []), list, where,
                    "'checks' must be a list of [price, quantity, maker, fee]")
    for n, check in enumerate(checks):
        if not (isinstance(check, list) and len(check) == 4 and type(check[2]) is bool
                and all(isinstance(v, str | int | float) and not isinstance(v, bool)
                        for v in (check[0], check[1], check[3]))):
            raise DataError(f"{where}: checks[{n}] must be [price, quantity, maker "
                            f"(true/false), fee], got {_short(check)}")
        try:
            price, qty, fee = (to_decimal(v, field=f"checks[{n}]")
                               for v in (check[0], check[1], check[3]))
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None
        maker = check[2]
        if fee < 0:
            raise DataError(f"{where}: checks[{n}] records a negative fee {fee} (fees "
                            f"below zero are refused, as in the config)")
        try:
            got = schedule.fee(price, qty, maker=maker)
        except ArithmeticError as exc:
            raise DataError(f"{where}: checks[{n}]: the installed {path} cannot price "
                            f"{qty} @ {price}: {type(exc).__name__}") from None
        if got != fee:
            raise DataError(f"{where}: the installed {path} charges {got} for "
                            f"{qty} @ {price} ({'maker' if maker else 'taker'}) where the "
                            f"recording's venue charged {fee}; its fee formula changed, so a "
                            f"replay would not reproduce the recorded costs")
    return schedule


def _typed(value: Any, kind: type, where: str, what: str) -> Any:
    """``value`` when it is a ``kind``; else ``DataError`` saying ``what`` it must be."""
    if not isinstance(value, kind):
        raise DataError(f"{where}: {what}, got {type(value).__name__}")
    return value


def _short(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, list | dict | str | int | float | None) \
        else type(value).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def parse_header(data: dict[str, Any], *, where: str) -> RecordingHeader:
    """A :class:`RecordingHeader` from a header line's JSON; ``DataError`` says what is wrong."""
    version = data.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise DataError(f"{where}: recording format version {_short(version)} is not "
                        f"supported (this Argus reads version {FORMAT_VERSION}); re-record it")
    listed = _typed(data.get("instruments", []), list, where,
                    "'instruments' must be a list of instruments")
    instruments, ids = [], set()
    for n, item in enumerate(listed):
        _typed(item, dict, where, f"instruments[{n}] must be an object")
        try:
            instruments.append(recording_converter.structure(item, Instrument))
        except (cattrs.BaseValidationError, TypeError, ValueError, ArithmeticError,
                DataError) as exc:
            raise DataError(f"{where}: invalid instruments[{n}] in the header: "
                            f"{structure_error(exc)}") from None
        if (iid := instruments[-1].id) in ids:
            raise DataError(f"{where}: instruments[{n}] lists {iid} again (which one's "
                            f"tick, lot and fees would the replay use?)")
        ids.add(iid)
    entries = _typed(data.get("fee_schedules", []), list, where,
                     "'fee_schedules' must be a list")
    schedules = [load_fee_schedule(e, where=f"{where}: fee_schedules[{n}]")
                 for n, e in enumerate(entries)]
    index = _typed(data.get("fee_schedule_of", {}), dict, where,
                   "'fee_schedule_of' must be an object of instrument id -> schedule number")
    fee_of: dict[str, FeeSchedule] = {}
    for iid, n in index.items():
        if type(n) is not int or not 0 <= n < len(schedules):
            raise DataError(f"{where}: fee_schedule_of[{iid!r}] = {_short(n)} names no "
                            f"schedule")
        fee_of[iid] = schedules[n]
    venue = _typed(data.get("venue", ""), str, where, "'venue' must be a text")
    return RecordingHeader(venue, instruments, fee_of, FORMAT_VERSION)


def not_utf8(exc: UnicodeDecodeError) -> str:
    """What a data file that is not UTF-8 is told (with its file and line)."""
    return f"not UTF-8 text ({exc.reason}; a UTF-16 export? save the file as UTF-8)"


def open_data(path: Path, what: str, **kwargs: Any) -> Any:
    """``open(path, **kwargs)`` for reading market data (``what``: "bars", "recording"), a
    :class:`DataError` naming the file when it cannot be opened or is not a regular file
    (``/dev/zero`` never ends a line: the reader grew until it ran out of memory)."""
    try:
        fh = open(path, **kwargs)  # noqa: SIM115  (the caller closes it)
    except OSError as exc:
        raise DataError(f"{path}: cannot read {what}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
        fh.close()
        raise DataError(f"{path}: cannot read {what}: not a regular file (a device, a pipe "
                        f"or a socket; a replay reads its file more than once)")
    return fh


def read_header(path: Path) -> RecordingHeader | None:
    """The header of the recording at ``path``; None for a recording without one (older
    recordings: the replay venue then uses its configured instrument and fees)."""
    try:
        with open_data(path, "recording", encoding="utf-8-sig") as fh:
            first = next((line for line in fh if line.strip()), "")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}:1: {not_utf8(exc)}") from None
    try:
        data = loads_frame(first, object_pairs_hook=unique_keys)
    except json.JSONDecodeError:  # an empty file too ("")
        return None  # read_ndjson reports the bad line with its number
    return parse_header(data, where=f"{path}:header") \
        if isinstance(data, dict) and data.get("type") == HEADER_TYPE else None


async def record(config: Config, out_path: Path, *, duration_s: float,
                 max_events: int | None = None) -> int:
    """Record ``config.run.venue``'s stream for ``duration_s`` seconds; returns the count.

    The venue lists its instruments before the file is touched (one that does not answer
    leaves an earlier recording as it was), and the file is locked before it is emptied:
    a second recorder to it is refused.  The header (instruments, fee schedules) comes
    first; lines are flushed as they arrive, so a recording cut short is still valid up
    to its last complete line.  An event stamped before an earlier one is written at the
    latest time seen (the replay refuses a time that goes backwards, and a live run's
    clock never goes backwards either), and counted in a warning at the end.
    """
    from argus_core.runtime import build, load_host, validate_settings

    host = load_host(config)
    venue = build(host, validate_settings(config, host), "venue", config.run.venue)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    deadline, count = time.monotonic() + duration_s, 0
    lines: _Lines | None = None
    try:
        async with asyncio.timeout(duration_s):
            instruments = await venue.instruments()  # as a run asks first
            header, lines = dump_header(venue, instruments), _Lines(venue, instruments)
            with open(out_path, "a") as fh:  # "a": nothing is emptied before the lock is held
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise ArgusError(f"{out_path}: another `argus record` is writing it") from None
                # An earlier recording there is emptied only when the first event comes: a
                # venue that streams nothing (or a Ctrl-C before it does) leaves it whole.
                begun = os.fstat(fh.fileno()).st_size == 0 and _begin(fh, header)
                async for event in venue.stream():
                    if (text := lines.of(event)) is None:
                        continue
                    begun = begun or _begin(fh, header)
                    fh.write(text + "\n")
                    fh.flush()
                    if (count := count + 1) == max_events or time.monotonic() >= deadline:
                        break
    except TimeoutError:
        pass
    finally:
        await venue.close()
        if lines is not None and (lines.restamped or lines.left_out):
            logging.getLogger(__name__).warning(
                "%s: %d events stamped before an earlier one were written at the latest time "
                "seen (a venue's channels keep their own clocks); %d the replay would refuse "
                "were left out", out_path, lines.restamped, lines.left_out)
    return count


def _begin(fh: Any, header: dict[str, Any]) -> bool:
    """Empty the (locked) recording ``fh`` (a regular file; not /dev/null) and write its
    header line."""
    if stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
        fh.truncate(0)
    fh.write(json.dumps(header, separators=(",", ":")) + "\n")
    fh.flush()
    return True


class EventRules:
    """What a replay accepts of a recording's events, in order: the one rule the replay
    reads by (:func:`~argus_core.builtins.replay_venue.read_ndjson` raises its refusal with
    the line) and ``argus record`` writes by (it leaves a refused event out: written, one
    made the whole recording unreplayable)."""

    def __init__(self, kinds: dict[str, str] | None = None) -> None:
        #: instrument id -> kind: the header's, then those listed since
        self.kinds: dict[str, str] = dict(kinds or {})
        self.listed_only = kinds is not None  # a headerless recording lists nothing
        self.last_ts = 0
        self.last_bar: dict[str, int] = {}  # each instrument's bars: strictly increasing

    def refusal(self, event: Any, ts: int | None, what: str) -> str | None:
        """Why the replay refuses ``event`` (a ``what`` line, at time ``ts``) after those
        accepted so far; None when it reads it."""
        iid = getattr(event, "instrument_id", None)
        if self.listed_only and not isinstance(event, Instrument | Signal) and \
                iid is not None and iid not in self.kinds:
            # It would trade with no tick, lot or fees: a replay knows the header's
            # instruments and those listed since, no other.
            return (f"a {what} of {iid}, an instrument neither the header nor an instrument "
                    f"line before it lists")
        if isinstance(event, Instrument) and self.kinds.get(event.id, event.kind) != event.kind:
            # Its settlement and fills are judged by the kind: a binary listed again as a
            # spot could settle at 5.  (A new tick, lot or fee schedule is a venue's right.)
            return f"instrument {event.id} listed as a {event.kind}, was a {self.kinds[event.id]}"
        if iid is not None and self.kinds.get(iid) == "binary" and \
                (price := _highest_price(event)) is not None and price > 1:
            if type(event) is Settlement:
                return (f"settlement price {price} of {iid}, a binary contract: it settles "
                        f"at 0 or 1 (at most 1)")
            # It pays at most 1: no one pays more (a feed in cents would say 45)
            return (f"{what} price {price} of {iid}, a binary contract: its prices lie in "
                    f"0 .. 1 (it pays at most 1)")
        if ts is not None and ts < self.last_ts:  # an Event (metadata) has no time
            return f"event time goes backwards ({ts} < {self.last_ts})"
        if ts is not None and type(event) is Bar and \
                self.last_bar.get(event.instrument_id, -1) >= ts:
            return (f"a second bar of {iid} at {ts}: each instrument's bars must be in "
                    f"strictly increasing time order")
        return None

    def accept(self, event: Any, ts: int | None) -> None:
        """Count ``event`` (at ``ts``) as read."""
        if isinstance(event, Instrument):
            self.kinds[event.id] = event.kind
        elif ts is not None:
            self.last_ts = ts
            if type(event) is Bar:
                self.last_bar[event.instrument_id] = ts


def _highest_price(event: Any) -> Any:
    """The highest price ``event`` carries (a bar's high, a book's top level on either
    side, a trade's, a delta's, a settlement's); None for an event without one."""
    if type(event) is Bar:
        return event.high
    if type(event) is OrderBook:  # bids best (highest) first, asks best (lowest) first
        return max([side[i, 0] for side, i in ((event.bids, 0), (event.asks, -1))
                    if len(side)], default=None)
    return getattr(event, "price", None)


class _Lines:
    """A recording's lines as the replay reads them back (:class:`EventRules`).  An event
    stamped before an earlier one is written at the latest time seen (a live run's clock
    never goes back either); one the replay refuses (no integer time, a bar no newer than
    its instrument's last: a candle sent again after a reconnect; an instrument never
    listed, or listed again as another kind; a binary's price above 1; NaN) is left out."""

    def __init__(self, venue: Venue, instruments: Sequence[Instrument]) -> None:
        self.venue, self.rules = venue, EventRules({i.id: i.kind for i in instruments})
        self.restamped, self.left_out = 0, 0

    def of(self, event: Any) -> str | None:
        """``event``'s line, or None when it is left out."""
        data = dump_event(event)
        ts = at = data.get("ts_ns")
        if isinstance(event, Instrument):  # listed mid-run: its fees travel with it
            data[FEES_KEY] = fee_entry(self.venue, event)
        elif "ts_ns" in data:
            if type(ts) is not int or not 0 <= ts < 2**63:
                self.left_out += 1
                return None
            at = data["ts_ns"] = max(ts, self.rules.last_ts)
        if self.rules.refusal(event, at, data["type"]) is not None:
            self.left_out += 1
            return None
        try:
            text = json.dumps(data, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError):  # NaN (a signal's value), a meta JSON cannot hold
            self.left_out += 1
            return None
        self.rules.accept(event, at)
        self.restamped += at != ts
        return text
