"""``MultiVenue``: several registered venues as the one venue of a run.

The core runs one venue per run (``[run] venue``).  The composite owns the venues named
in ``[plugins.multivenue] venues``, each built by its own plugin with the core's
``build_venue`` from its usual ``[plugins.<plugin>]`` table, and presents them as one:

* instruments: every inner venue's, kept under their own ids (ids already carry their
  venue, ``replay:BTC/USD``, ``vrp_options:SPY-...``); an id two venues both serve is
  refused at start, naming both;
* stream: in ``replay`` mode a k-way merge by ``ts_ns`` (:func:`merge_by_time`): lazy, one
  pending event per venue, ties broken by the order of ``venues`` then by each venue's
  own order; in paper and live modes events are passed on as they arrive;
* fee schedule, orders, look-ups and cancels: the venue owning the instrument;
* ``default_stale_after_s``: the strictest inner default; ``expected_events``: the sum
  when every inner venue knows its own; ``close()`` closes them all.

Where the inner tables come from: a venue factory receives only its own plugin's
settings, so ``[plugins.multivenue] config`` names the config file (normally the run's
own) and the composite builds each inner venue from it with
``build_venue(apply_overrides(config, {"run.venue": name}))`` — the inner venue sees
exactly the config a single-venue run of it would.  The plugin's ``on_startup`` hook then
checks that the run's config (with any ``--set`` overrides) gives the inner venues' plugins
the same tables, and stops the run before it trades when it does not.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import attrs

from argus_core import (
    Config,
    ConfigError,
    DataError,
    FeeSchedule,
    Fill,
    FillCorrection,
    Instrument,
    KnownOrder,
    MarketEvent,
    Order,
    OrderStatus,
    OrderUpdate,
    Venue,
    VenueError,
    VenueResume,
    apply_overrides,
    build_venue,
    load_config,
)
from argus_multivenue.config import MultiVenueSettings

log = logging.getLogger(__name__)

_END = object()  # an arrival-order source ended
_WORKING = (OrderStatus.PENDING, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)
_Item = TypeVar("_Item")


def booked_as(item: _Item, venue: str) -> _Item:
    """``item`` as the composite hands it to the core: a ``Fill`` under the run's venue
    name (``venue``: the name the composite was registered under, as its orders carry
    it), everything else as it is.

    The ledger books a fill under ``Fill.venue`` and orders under the run's venue, and a
    restart's ``VenueResume`` reads both by the run's venue: a fill booked under its inner
    venue's name (``kalshi``, ``polymarket``) would be missing from it, so the inner venue
    would not know it was booked (Polymarket reports a taker fill again under its trade
    id: booked twice) and its backfill would start at its first order.  Paper fills
    already carry the run's venue."""
    if isinstance(item, Fill) and item.venue != venue:
        return attrs.evolve(item, venue=venue)
    return item


async def close_source(name: str, source: Any, who: str = "multivenue") -> None:
    """``aclose()`` an inner stream the composite stops reading (when it has one): its
    connection and tasks end now, before its venue's ``close()``, not whenever the
    garbage collector finalises it.  A failure to close is logged, naming the venue."""
    aclose = getattr(source, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception as exc:
        log.warning("%s: closing venue %r's stream: %s: %s", who, name,
                    type(exc).__name__, exc)


async def merge_by_time(sources: Sequence[tuple[str, AsyncIterator[MarketEvent]]]
                        ) -> AsyncIterator[MarketEvent]:
    """Events of every ``(name, stream)`` in ``ts_ns`` order, ties in ``sources`` order
    (then each stream's own order).

    Lazy: it holds one pending event per stream, so an endless stream still interleaves
    with the others.  An event without a time (an ``Event`` listing) keeps its stream's
    latest time.  A stream whose times go backwards raises ``DataError``: the merge could
    not be in order.
    """
    heap: list[tuple[int, int, MarketEvent]] = []
    last = [0] * len(sources)

    async def pull(i: int) -> None:
        name, stream = sources[i]
        try:
            event = await anext(stream)
        except StopAsyncIteration:
            return
        ts = getattr(event, "ts_ns", None)
        ts = last[i] if ts is None else ts
        if ts < last[i]:
            raise DataError(f"multivenue: venue {name!r}'s stream goes back in time "
                            f"({ts} after {last[i]}); a time-ordered merge needs each "
                            f"inner stream in time order")
        last[i] = ts
        # (ts, source index) is unique among pending entries: one per source
        heapq.heappush(heap, (ts, i, event))

    try:
        for i in range(len(sources)):
            await pull(i)
        while heap:
            _ts, i, event = heapq.heappop(heap)
            yield event
            await pull(i)
    finally:
        for name, stream in sources:
            await close_source(name, stream)


async def _pump(name: str, source: AsyncIterator[Any], queue: asyncio.Queue[Any],
                who: str, end_after_items_fails: bool = False) -> None:
    """Copy ``source`` into ``queue``; its end and its error go through the queue too
    (with ``end_after_items_fails``, an end after at least one item is an error)."""
    seen = False
    try:
        async for item in source:
            seen = True
            queue.put_nowait(item)
        if seen and end_after_items_fails:
            queue.put_nowait(VenueError(f"{who}: venue '{name}'s stream ended after it "
                                        f"worked; what it says next would be lost"))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        queue.put_nowait(exc if isinstance(exc, VenueError) else VenueError(
            f"{who}: venue {name!r} failed: {exc}"))
    finally:
        # (``async for`` leaves the source open when the merge stops reading it)
        await close_source(name, source, who)
        queue.put_nowait(_END)


async def merge_by_arrival(sources: Sequence[tuple[str, AsyncIterator[Any]]],
                           who: str = "multivenue", *, end_after_items_fails: bool = False
                           ) -> AsyncIterator[Any]:
    """Items of every source as they arrive (live feeds, executions); ends when every
    source has ended and raises the first error any of them raises (a ``VenueError``
    naming ``who`` and the source).  Other composites (crossvenue) use it too.

    ``end_after_items_fails``: a source that ends after yielding something is an error
    (``VenueError``), as the core treats a venue's own executions stream: merged, the
    others would go on and that venue's later fills would never be booked."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(_pump(name, src, queue, who, end_after_items_fails))
             for name, src in sources]
    running = len(tasks)
    try:
        while running:
            item = await queue.get()
            if item is _END:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def backfill_start(orders: Sequence[KnownOrder], fills: Mapping[str, str],
                   newest_fill_ts_ns: int | None, *, only_venue_with_fills: bool) -> int | None:
    """Where one inner venue's history backfill must start after a restart.

    The ledger gives the composite one ``newest_fill_ts_ns``, the newest fill of *any*
    inner venue; handed to every venue, one whose own last booked fill is older would
    start its backfill after fills it missed while the run was down.  The rows carry no
    fill times, so: the composite's figure when this venue holds every booked fill; else
    the newest send time of its orders with a booked fill (a fill follows its order, so
    that is no later than its own newest fill; repeats are booked once by fill id);
    before any fill, its first order's time (the core's rule); None with no orders.
    """
    if not orders:
        return None
    if not fills:
        return min(k.order.ts_ns for k in orders)
    if only_venue_with_fills:
        return newest_fill_ts_ns
    filled = set(fills.values())
    start = max(k.order.ts_ns for k in orders if k.order.client_order_id in filled)
    return start if newest_fill_ts_ns is None else min(start, newest_fill_ts_ns)


def split_resume(known: VenueResume, names: Sequence[str], owner: Callable[[str], str]
                 ) -> dict[str, VenueResume]:
    """What each inner venue (``names``) is handed on a restart: its own orders (``owner``
    maps an instrument id to a venue name), their booked fills and fees, and where its own
    history backfill starts (:func:`backfill_start`).  Composites (crossvenue) use it too.

    Each order is handed on with its ``venue`` set to the inner venue's name, as a
    single-venue run of that venue persisted it (Kraken skips orders of another venue).
    An order no inner venue owns any more (its venue left the config between runs) is
    dropped when final, and a ``ConfigError`` while it may still work: nobody would
    follow its fills."""
    mine: dict[str, list[KnownOrder]] = {name: [] for name in names}
    for k in known.orders:
        name = _owner_or_none(owner, k.order.instrument_id)
        if name in mine:
            mine[name].append(attrs.evolve(k, order=attrs.evolve(k.order, venue=name)))
        else:
            _orphan(k, names)
    fills_of = {name: {f: c for f, c in known.fill_ids.items()
                       if c in {k.order.client_order_id for k in orders}}
                for name, orders in mine.items()}
    with_fills = [name for name, fills in fills_of.items() if fills]
    return {name: VenueResume(tuple(orders), fills_of[name],
                              backfill_start(orders, fills_of[name], known.newest_fill_ts_ns,
                                             only_venue_with_fills=with_fills == [name]),
                              {f: fee for f, fee in known.fill_fees.items()
                               if f in fills_of[name]})
            for name, orders in mine.items()}


def _owner_or_none(owner: Callable[[str], str], instrument_id: str) -> str | None:
    try:
        return owner(instrument_id)
    except VenueError:
        return None


def _orphan(k: KnownOrder, names: Sequence[str]) -> None:
    """An order of the run that none of ``names`` serves: a final one is history (logged);
    a working one would go unfollowed, so the run must not start."""
    order = k.order
    if order.status in _WORKING:
        raise ConfigError(f"resume: order {order.client_order_id} on {order.instrument_id} "
                          f"is {order.status.value} but none of the venues "
                          f"{', '.join(names)} serves that instrument (a venue removed "
                          f"from the config?); put its venue back until the order is final")
    log.warning("resume: final order %s on %s belongs to none of the venues %s; skipped",
                order.client_order_id, order.instrument_id, ", ".join(names))


def build_inner(config: Config, names: Sequence[str]) -> dict[str, Venue]:
    """Each named venue built by its plugin from ``config``, as a run of ``config`` with
    ``[run] venue = NAME`` would build it."""
    return {name: build_venue(apply_overrides(config, {"run.venue": name})) for name in names}


class MultiVenue(Venue):
    """Several venues as one (module docstring).  ``config`` replaces reading
    ``settings.config`` and ``inner`` replaces the built venues (tests use both)."""

    name: ClassVar[str] = "multivenue"
    # Orders are routed per instrument; a live run is refused at build time unless every
    # inner venue has live order entry (see __init__), so the class may claim it.
    supports_live_orders: ClassVar[bool] = True

    def __init__(self, settings: MultiVenueSettings | None = None, *,
                 config: Config | None = None,
                 inner: Mapping[str, Venue] | None = None) -> None:
        self.settings = settings or MultiVenueSettings()
        self.config = config
        if self.config is None and inner is None:
            if self.settings.config is None:
                raise ConfigError("[plugins.multivenue] config: name the config file that "
                                  "holds the inner venues' [plugins.*] tables (normally this "
                                  "file itself, e.g. config = \"all_three.toml\")")
            self.config = load_config(self.settings.config)
        if inner is None:
            assert self.config is not None
            if not self.settings.venues:
                raise ConfigError("[plugins.multivenue] venues: name the registered venues "
                                  "to run together, e.g. [\"replay\", \"vrp_options\"]")
            inner = build_inner(self.config, self.settings.venues)
        if not inner:
            raise ConfigError("multivenue: no inner venues")
        self.inner: dict[str, Venue] = dict(inner)
        self.mode = self.config.argus.mode if self.config is not None else "replay"
        if self.mode == "live":
            lacking = [n for n, v in self.inner.items() if not v.supports_live_orders]
            if lacking:
                raise ConfigError(f"multivenue: mode 'live' needs live order entry on every "
                                  f"inner venue; {', '.join(lacking)} has none (run it in "
                                  f"replay or paper mode)")
        # ClassVars of the contract that depend on the inner venues: set per instance.
        vars(self)["default_stale_after_s"] = min(
            v.default_stale_after_s for v in self.inner.values())
        vars(self)["time_in_force"] = tuple(
            t for t in Venue.time_in_force
            if all(t in v.time_in_force for v in self.inner.values()))
        vars(self)["supports_post_only"] = all(
            v.supports_post_only for v in self.inner.values())
        self._owner: dict[str, str] = {}  # instrument id -> inner venue name
        self._order_owner: dict[str, str] = {}  # client order id -> inner venue name
        # The run's venue name as the core persists orders (the name this class was
        # registered under, learnt from the orders it is handed): fills go out under it.
        self.run_venue: str = self.name

    # -- routing ---------------------------------------------------------------------
    def _learn(self, name: str, instruments: Sequence[Instrument]) -> None:
        for inst in instruments:
            other = self._owner.get(inst.id)
            if other is not None and other != name:
                raise ConfigError(f"multivenue: instrument id {inst.id!r} is served by both "
                                  f"venue {other!r} and venue {name!r}; ids must be unique "
                                  f"across [plugins.multivenue] venues (configure one of "
                                  f"them under another venue prefix)")
            self._owner[inst.id] = name

    def guards_reduce_only_on(self, instrument_id: str) -> bool:
        """The inner venue's answer for ``instrument_id`` (Kalshi's exits are sized to
        its position; another venue's refused flatten goes without the flag)."""
        try:
            return self.inner[self.owner_name(instrument_id)].guards_reduce_only_on(
                instrument_id)
        except VenueError:
            return False

    def owner_name(self, instrument_id: str) -> str:
        """Name of the inner venue serving ``instrument_id``; ``VenueError`` if none."""
        name = self._owner.get(instrument_id)
        if name is None:
            # Before instruments() is known: a prefix equal to an inner venue's name.
            prefix = instrument_id.partition(":")[0]
            if prefix in self.inner:
                return prefix
            raise VenueError(f"multivenue: instrument {instrument_id!r} is served by none of "
                             f"{', '.join(self.inner)}")
        return name

    def owner(self, instrument_id: str) -> Venue:
        """The inner venue serving ``instrument_id``."""
        return self.inner[self.owner_name(instrument_id)]

    # -- market data -----------------------------------------------------------------
    async def instruments(self) -> Sequence[Instrument]:
        """Every inner venue's instruments; an id two venues serve is refused."""
        lists = await asyncio.gather(*(v.instruments() for v in self.inner.values()))
        # Asked again (a restart of the feed), what the streams listed since is kept:
        # those markets still trade on their venue, though its list may not name them.
        learnt, self._owner = self._owner, {}
        for name, found in zip(self.inner, lists, strict=True):
            self._learn(name, found)
        for iid, name in learnt.items():
            self._owner.setdefault(iid, name)
        return [inst for found in lists for inst in found]

    async def snapshot(self) -> list[MarketEvent]:
        """Every inner venue's snapshot, in ``venues`` order."""
        parts = await asyncio.gather(*(v.snapshot() for v in self.inner.values()))
        return [event for part in parts for event in part]

    async def stream(self) -> AsyncIterator[MarketEvent]:
        """Time-ordered merge in replay mode, arrival order otherwise (module docstring)."""
        sources = [(n, aiter(self._listing(n, v.stream()))) for n, v in self.inner.items()]
        merged = (merge_by_time(sources) if self.mode == "replay"
                  else merge_by_arrival(sources))
        # closed as soon as this stream is: the merge then closes every inner stream
        try:
            async for event in merged:
                yield event
        finally:
            await close_source("merge", merged)

    async def _listing(self, name: str, events: AsyncIterator[MarketEvent]
                       ) -> AsyncIterator[MarketEvent]:
        """``events`` of inner venue ``name``, each ``Instrument`` it lists mid-stream (a
        market listed after the start) routed to it from then on.  One whose id another
        inner venue serves is dropped, said in the log: it would take over that venue's
        instrument rules, and this venue's orders on it would go to the other.  Closing
        this closes ``events``."""
        try:
            async for event in self._listed(name, events):
                yield event
        finally:
            await close_source(name, events)

    async def _listed(self, name: str, events: AsyncIterator[MarketEvent]
                      ) -> AsyncIterator[MarketEvent]:
        async for event in events:
            if isinstance(event, Instrument):
                other = self._owner.get(event.id)
                if other is not None and other != name:
                    log.error("multivenue: venue %r listed instrument %r, which venue %r "
                              "serves; ignored (ids must be unique across venues)", name,
                              event.id, other)
                    continue
                self._owner[event.id] = name
            yield event

    def expected_events(self) -> int | None:
        """The inner venues' counts summed, when each knows its own."""
        total = 0
        for venue in self.inner.values():
            n = venue.expected_events()
            if n is None:
                return None
            total += n
        return total

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        """The owning venue's schedule for ``instrument_id``."""
        return self.owner(instrument_id).fee_schedule(instrument_id)

    def live_problems(self) -> list[str]:
        """Every inner venue's problems, each named by its venue."""
        return [f"{name}: {p}" for name, v in self.inner.items() for p in v.live_problems()]

    # -- orders (live mode) ----------------------------------------------------------
    def resume(self, known: VenueResume) -> None:
        """Hand each inner venue its own orders, their booked fills and where its own
        history backfill must start (:func:`split_resume`)."""
        if known.orders:
            self.run_venue = known.orders[0].order.venue
        for name, part in split_resume(known, list(self.inner), self.owner_name).items():
            for k in part.orders:
                self._order_owner[k.order.client_order_id] = name
            self.inner[name].resume(part)

    async def submit(self, order: Order) -> list[Fill]:
        """Send ``order`` through the venue serving its instrument."""
        name = self.owner_name(order.instrument_id)
        self._order_owner[order.client_order_id] = name
        self.run_venue = order.venue
        return [booked_as(f, self.run_venue) for f in await self.inner[name].submit(order)]

    async def lookup(self, order: Order) -> OrderUpdate | None:
        """The owning venue's answer."""
        name = self.owner_name(order.instrument_id)
        self._order_owner[order.client_order_id] = name
        self.run_venue = order.venue
        return await self.inner[name].lookup(order)

    async def cancel(self, client_order_id: str) -> None:
        """Cancel through the venue the order went to."""
        name = self._order_owner.get(client_order_id)
        if name is None:
            raise VenueError(f"multivenue: order {client_order_id} is not one this venue "
                             f"sent or was told about (resume)")
        await self.inner[name].cancel(client_order_id)

    async def open_orders(self) -> list[Order]:
        """Every inner venue's open orders."""
        parts = await asyncio.gather(*(v.open_orders() for v in self.inner.values()))
        return [o for part in parts for o in part]

    async def executions(self) -> AsyncIterator[Fill | OrderUpdate | FillCorrection]:
        """Every inner venue's fills, order updates and fill corrections as they arrive.
        An inner stream that ends after it worked is a ``VenueError`` naming the venue,
        as the core treats a venue's own (the others going on would hide it)."""
        merged = merge_by_arrival([(n, aiter(v.executions())) for n, v in self.inner.items()],
                                  end_after_items_fails=True)
        try:
            async for item in merged:
                yield booked_as(item, self.run_venue)
        finally:
            await close_source("merge", merged)

    async def close(self) -> None:
        """Close every inner venue (the others still close when one fails)."""
        errors = []
        for name, venue in self.inner.items():
            try:
                await venue.close()
            except Exception as exc:
                errors.append(f"{name}: {exc}")
        if errors:
            log.warning("multivenue: closing: %s", "; ".join(errors))

    # -- config checks ---------------------------------------------------------------
    def check_run_config(self, run_config: Config, plugin_of: Mapping[str, str]) -> None:
        """``ConfigError`` when the run's config gives an inner venue's plugin other
        settings than the file the composite read (e.g. a ``--set`` override):
        the inner venue would silently ignore them.  ``plugin_of``: venue -> plugin."""
        if self.config is None:
            return
        for venue_name in self.inner:
            plugin = plugin_of.get(venue_name)
            if plugin is None:
                continue
            mine = self.config.plugins.get(plugin, {})
            theirs = run_config.plugins.get(plugin, {})
            if mine != theirs:
                raise ConfigError(
                    f"multivenue: the run's [plugins.{plugin}] differs from the one in "
                    f"{self.config.path} that built venue {venue_name!r} (a --set override "
                    f"or another file?); the inner venues read [plugins.multivenue] config "
                    f"— change that file instead")
