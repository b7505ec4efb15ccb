"""``CrossVenue``: Kalshi and Polymarket as one core venue (the core runs one per run).

The composite owns the two inner venues, built with ``argus_core.build_venue`` from the
``[plugins.crossvenue] kalshi`` / ``polymarket`` tables.  Instrument ids are already
namespaced by venue (``kalshi:<TICKER>/YES``, ``polymarket:<token id>``), so they are
kept as the inner venues give them and every call is routed by the id's prefix:
instruments, snapshots, streams and executions are merged; fee schedules, orders,
look-ups and cancels go to the owning venue (which keeps its own exactly-once rules).

Where a cross-venue basket goes (live only; paper and replay fill through the core's
paper broker, which sends both legs at once against the books it holds):

1. the first leg (the scanner puts the thinner book first) is sent with its venue's
   ``submit`` and followed until it is final: filled in full, or its rest cancelled
   (IOC), as the venue's executions report it (``leg_timeout_s`` at most);
2. the second leg is sent for what the first filled (floored to its lot size), never for
   more than its own quantity (the one risk approved and the ledger committed); the
   unused rest of its quantity is reported CANCELLED;
3. the second leg filled less than the first (or was refused): ``BasketIncomplete``
   carrying both legs' fills, and the core's ExecutionEngine unwinds the excess with
   ordinary reduce-only orders and stops new risk until a person has looked;
4. a leg whose fate cannot be learnt (its venue raised ``OrderUnknown``, its adapter
   failed with anything but a refusal - ``VenueError`` - so the venue may have acted, or
   it was not final within ``leg_timeout_s``): ``OrderUnknown`` naming it; no further
   leg is sent, no status is made up for it,
   the fills already known come through ``executions()``, and the engine evens the
   basket out once the venue's executions settle the leg.

A basket whose legs are all on one venue goes to that venue's own ``submit_basket``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import Any, ClassVar

import attrs
from argus_multivenue.venue import booked_as, close_source, merge_by_arrival, split_resume

from argus_core import (
    BasketIncomplete,
    Config,
    FeeSchedule,
    Fill,
    FillCorrection,
    Instrument,
    MarketEvent,
    Order,
    OrderStatus,
    OrderUnknown,
    OrderUpdate,
    Venue,
    VenueError,
    VenueResume,
    build_venue,
    outcome_unknown,
    structure,
)
from argus_crossvenue.config import INNER_VENUES, CrossVenueSettings

log = logging.getLogger(__name__)

_FINAL = (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED)


def venue_of(instrument_id: str) -> str:
    """The venue an instrument id belongs to: the part before the first ':'."""
    return instrument_id.partition(":")[0]


def build_inner(settings: CrossVenueSettings) -> dict[str, Venue]:
    """The inner venues, each built by its own plugin from its table, as a config with
    ``[run] venue = NAME`` and ``[plugins.NAME] = table`` would build it."""
    inner: dict[str, Venue] = {}
    for name in INNER_VENUES:
        table: dict[str, Any] = getattr(settings, name)
        where = f"[plugins.crossvenue.{name}]"
        config: Config = structure({"argus": {"plugins": [name]}, "run": {"venue": name},
                                    "plugins": {name: table}}, Config, where)
        # A pseudo file in the config's folder: the inner plugin resolves relative paths
        # against it and names it in its errors.
        config = attrs.evolve(config, path=settings.base_dir / where)
        inner[name] = build_venue(config)
    return inner


async def merge(sources: Mapping[str, AsyncIterator[Any]]) -> AsyncIterator[Any]:
    """Items of every source as they arrive; ends when every source has ended, and
    raises the first error any of them raises (the others are cancelled): the generic
    composite's merge (``argus_multivenue``)."""
    merged = merge_by_arrival(list(sources.items()), who="crossvenue")
    try:
        async for item in merged:
            yield item
    finally:  # (closing it closes every source)
        await close_source("merge", merged, "crossvenue")


@attrs.define
class _Leg:
    """What the composite has seen of one order: its fills (by id) and final status."""

    fills: dict[str, Fill] = attrs.Factory(dict)
    final: OrderStatus | None = None

    @property
    def filled(self) -> Decimal:
        return sum((f.quantity for f in self.fills.values()), Decimal(0))


class CrossVenue(Venue):
    """Kalshi + Polymarket as one venue, with legged cross-venue baskets (module
    docstring).  ``inner`` replaces the built venues (tests use fakes of the contract)."""

    name: ClassVar[str] = "crossvenue"
    supports_live_orders: ClassVar[bool] = True
    supports_post_only: ClassVar[bool] = False
    supports_baskets: ClassVar[bool] = True
    time_in_force: ClassVar[tuple[str, ...]] = ("gtc", "ioc", "fok")
    #: The stricter inner default (Polymarket 30 s, Kalshi 60 s).
    default_stale_after_s: ClassVar[float] = 30.0

    def __init__(self, settings: CrossVenueSettings | None = None, *,
                 inner: Mapping[str, Venue] | None = None) -> None:
        self.settings = settings or CrossVenueSettings()
        self.inner: dict[str, Venue] = dict(inner) if inner is not None else build_inner(
            self.settings)
        self._instruments: dict[str, Instrument] = {}
        self._owner_of: dict[str, str] = {}  # client order id -> inner venue name
        #: what the executions said of each order not yet final, and of each leg of the
        #: basket being legged (``_legging``) until the basket is over
        self._legs: dict[str, _Leg] = {}
        self._legging: set[str] = set()
        # The run's venue name as its orders carry it: fills go out under it
        # (argus_multivenue's booked_as says why).
        self.run_venue: str = self.name
        self._executions: asyncio.Queue[Any] | None = None
        self._pumps: list[asyncio.Task[None]] = []
        self._news = asyncio.Event()

    # -- routing ---------------------------------------------------------------------
    def owner(self, instrument_id: str) -> Venue:
        """The inner venue trading ``instrument_id``; ``VenueError`` for any other id."""
        venue = self.inner.get(venue_of(instrument_id))
        if venue is None:
            raise VenueError(f"crossvenue: instrument {instrument_id!r} belongs to none of "
                             f"{', '.join(sorted(self.inner))} (ids are '<venue>:<symbol>')")
        return venue

    def guards_reduce_only_on(self, instrument_id: str) -> bool:
        """The inner venue's answer for ``instrument_id`` (Kalshi's exits are sized to
        its position)."""
        try:
            return self.owner(instrument_id).guards_reduce_only_on(instrument_id)
        except VenueError:
            return False

    def _order_owner(self, client_order_id: str) -> Venue:
        name = self._owner_of.get(client_order_id)
        if name is None:
            raise VenueError(f"crossvenue: order {client_order_id} is not one this venue "
                             f"sent or was told about (resume)")
        return self.inner[name]

    # -- market data -----------------------------------------------------------------
    async def instruments(self) -> Sequence[Instrument]:
        """Both venues' instruments."""
        lists = await asyncio.gather(*(v.instruments() for v in self.inner.values()))
        out = [inst for found in lists for inst in found]
        # asked again, the markets the streams listed since are kept (a second leg's lot)
        self._instruments.update({i.id: i for i in out})
        return out

    async def snapshot(self) -> list[MarketEvent]:
        """Both venues' snapshots (fetched concurrently), Kalshi's first."""
        parts = await asyncio.gather(*(v.snapshot() for v in self.inner.values()))
        return [event for part in parts for event in part]

    async def stream(self) -> AsyncIterator[MarketEvent]:
        """Both venues' streams merged as events arrive; ends when both have ended.  A
        market a venue lists mid-stream is learnt (its lot sizes a second leg); closing
        this stream closes both inner ones."""
        merged = merge({n: v.stream() for n, v in self.inner.items()})
        try:
            async for event in merged:
                if isinstance(event, Instrument):
                    self._instruments[event.id] = event
                yield event
        finally:
            await close_source("merge", merged, "crossvenue")

    def fee_schedule(self, instrument_id: str) -> FeeSchedule:
        """The owning venue's schedule for ``instrument_id`` (no fees for an unknown id)."""
        venue = self.inner.get(venue_of(instrument_id))
        return venue.fee_schedule(instrument_id) if venue is not None else FeeSchedule()

    def live_problems(self) -> list[str]:
        """Both venues' problems, each named by its venue."""
        return [f"{name}: {p}" for name, v in self.inner.items() for p in v.live_problems()]

    # -- orders ------------------------------------------------------------------------
    def resume(self, known: VenueResume) -> None:
        """Hand each venue its own orders, their booked fills and where its own history
        backfill starts (the generic composite's ``split_resume``)."""
        if known.orders:
            self.run_venue = known.orders[0].order.venue
        for name, part in split_resume(known, list(self.inner), venue_of).items():
            for k in part.orders:
                self._owner_of[k.order.client_order_id] = name
            self.inner[name].resume(part)

    async def submit(self, order: Order) -> list[Fill]:
        """Send ``order`` through its owning venue (exactly once, by that venue's rules)."""
        venue = self.owner(order.instrument_id)
        self._owner_of[order.client_order_id] = venue_of(order.instrument_id)
        self.run_venue = order.venue
        return [booked_as(f, self.run_venue) for f in await venue.submit(order)]

    async def submit_basket(self, orders: list[Order]) -> list[Fill]:
        """One venue's basket goes to that venue; a cross-venue pair is legged (module
        docstring)."""
        names = {venue_of(o.instrument_id) for o in orders}
        for o in orders:
            self.owner(o.instrument_id)  # unknown ids fail before anything is sent
            self.run_venue = o.venue
        if len(names) == 1:
            venue = self.owner(orders[0].instrument_id)
            for o in orders:
                self._owner_of[o.client_order_id] = venue_of(o.instrument_id)
            try:
                if venue.supports_baskets:
                    fills = await venue.submit_basket(orders)
                else:
                    fills = [f for o in orders for f in await venue.submit(o)]
            except BasketIncomplete as exc:
                exc.fills = [booked_as(f, self.run_venue) for f in exc.fills]
                raise
            return [booked_as(f, self.run_venue) for f in fills]
        if len(orders) != 2:
            raise VenueError(f"crossvenue: a cross-venue basket has two legs, one per venue; "
                             f"got {len(orders)} ({', '.join(o.instrument_id for o in orders)})")
        return await self._legged(orders[0], orders[1])

    async def _legged(self, first: Order, second: Order) -> list[Fill]:
        try:
            return await self._leg_pair(first, second)
        finally:
            # the basket's answer (fills or the exception) carries what it needs; what
            # the venues say of these orders later reaches the engine all the same
            for order in (first, second):
                self._legging.discard(order.client_order_id)
                self._legs.pop(order.client_order_id, None)

    async def _leg_pair(self, first: Order, second: Order) -> list[Fill]:
        if self._start_pumps():
            # let both executions streams connect before the first leg can trade
            for _ in range(3):
                await asyncio.sleep(0)
        try:
            got_first = await self._send_and_follow(first)
        except OrderUnknown:
            self._cancel_unsent(second, f"not sent: the outcome of {first.client_order_id} "
                                        f"is unknown")
            raise
        # (a refusal of the first leg propagates: nothing executed)
        # Never more than the second leg's own quantity: that is what risk approved and
        # the ledger committed; a first leg that filled more is the engine's to even out.
        target = min(got_first, second.quantity)
        qty = self._lot_floor(second.instrument_id, target)
        if qty <= 0:
            self._cancel_unsent(second, f"not sent: the first leg {first.client_order_id} "
                                        f"filled {got_first}")
            self._close_rests([first])
            if got_first > 0:  # below one lot of the second venue: unwind it
                raise BasketIncomplete(f"crossvenue: first leg filled {got_first}, less "
                                       f"than one lot of {second.instrument_id}",
                                       self._fills_of(first))
            return []
        sized = attrs.evolve(second, quantity=qty)
        try:
            got_second = await self._send_and_follow(sized)
        except OrderUnknown:
            self._republish(first)  # its fills reach the engine through executions()
            raise
        except Exception as exc:
            self._close_rests([first, second])
            raise BasketIncomplete(f"crossvenue: second leg {second.client_order_id} refused "
                                   f"after the first filled {got_first}: {exc}",
                                   self._fills_of(first)) from exc
        self._close_rests([first, second])
        fills = self._fills_of(first) + self._fills_of(second)
        if got_second < target:
            raise BasketIncomplete(f"crossvenue: second leg {second.client_order_id} filled "
                                   f"{got_second} of the first leg's {got_first}", fills)
        return fills

    async def _send_and_follow(self, order: Order) -> Decimal:
        """Send one leg and wait until it is final; its filled quantity.  ``OrderUnknown``
        when its venue cannot tell, or it is not final within ``leg_timeout_s``."""
        coid = order.client_order_id
        self._owner_of[coid] = venue_of(order.instrument_id)
        self._legging.add(coid)
        leg = self._legs.setdefault(coid, _Leg())
        for fill in await self._submit_leg(order):
            leg.fills[fill.fill_id] = booked_as(fill, self.run_venue)
        deadline = time.monotonic() + self.settings.leg_timeout_s
        while leg.filled < order.quantity and leg.final is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise OrderUnknown(f"crossvenue: leg {coid} not final within "
                                   f"{self.settings.leg_timeout_s:g}s (filled {leg.filled} of "
                                   f"{order.quantity}); no further leg sent", [coid])
            news = self._news
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(news.wait(), left)
        return leg.filled

    async def _submit_leg(self, order: Order) -> list[Fill]:
        """One leg through its venue.  A refusal (``VenueError``) or an ``OrderUnknown``
        passes as it is; any other failure of the adapter may come after the venue took
        the order (the core's rule, :func:`argus_core.outcome_unknown`), so it is
        ``OrderUnknown`` too: never a refusal, never a made-up CANCELLED that would have
        the engine unwind the other leg."""
        try:
            return await self.owner(order.instrument_id).submit(order)
        except Exception as exc:
            if isinstance(exc, OrderUnknown) or not outcome_unknown(exc):
                raise
            coid = order.client_order_id
            raise OrderUnknown(f"crossvenue: leg {coid} on {venue_of(order.instrument_id)}: "
                               f"the venue adapter failed with {type(exc).__name__}: {exc} "
                               f"(not a refusal: the venue may have acted); no further leg "
                               f"sent", [coid]) from exc

    def _lot_floor(self, instrument_id: str, qty: Decimal) -> Decimal:
        inst = self._instruments.get(instrument_id)
        step = inst.lot_size if inst is not None else Decimal(1)
        return (qty / step).to_integral_value(rounding=ROUND_FLOOR) * step

    def _fills_of(self, order: Order) -> list[Fill]:
        leg = self._legs.get(order.client_order_id)
        return list(leg.fills.values()) if leg else []

    # Updates the composite adds go on the executions queue right before it returns or
    # raises (no await in between), so the engine books the answer's fills first.
    def _emit(self, item: Fill | OrderUpdate) -> None:
        self._start_pumps()
        assert self._executions is not None
        self._executions.put_nowait(item)

    def _cancel_unsent(self, order: Order, reason: str) -> None:
        self._emit(OrderUpdate(order.client_order_id, OrderStatus.CANCELLED, time.time_ns(),
                               reason=reason))

    def _close_rests(self, orders: list[Order]) -> None:
        """An IOC leg's unfilled rest is dead (and the second leg's unused quantity was
        never sent): say so, so the engine sees both legs final."""
        for order in orders:
            leg = self._legs.get(order.client_order_id, _Leg())
            if leg.filled < order.quantity:
                self._emit(OrderUpdate(order.client_order_id, OrderStatus.CANCELLED,
                                       time.time_ns(), reason=f"crossvenue leg ended with "
                                       f"{leg.filled} of {order.quantity} filled"))

    def _republish(self, order: Order) -> None:
        for fill in self._fills_of(order):
            self._emit(fill)

    async def lookup(self, order: Order) -> OrderUpdate | None:
        """The owning venue's answer."""
        self._owner_of[order.client_order_id] = venue_of(order.instrument_id)
        self.run_venue = order.venue
        return await self.owner(order.instrument_id).lookup(order)

    async def cancel(self, client_order_id: str) -> None:
        """Cancel through the venue the order went to."""
        await self._order_owner(client_order_id).cancel(client_order_id)

    async def open_orders(self) -> list[Order]:
        """Both venues' open orders."""
        parts = await asyncio.gather(*(v.open_orders() for v in self.inner.values()))
        return [o for part in parts for o in part]

    # -- executions --------------------------------------------------------------------
    def _start_pumps(self) -> bool:
        """Start following both venues' executions (once); whether this call started it."""
        if self._executions is not None:
            return False
        self._executions = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self._pumps = [loop.create_task(self._follow(name, venue))
                       for name, venue in self.inner.items()]
        return True

    async def _follow(self, name: str, venue: Venue) -> None:
        """One venue's executions: remembered for legging, then queued for the engine."""
        assert self._executions is not None
        queue = self._executions
        seen = False
        source = venue.executions()
        try:
            async for item in source:
                seen = True
                item = booked_as(item, self.run_venue)  # (multivenue's booked_as: why)
                self._note(item)
                queue.put_nowait(item)
            if seen:  # as the core treats a venue's own: what follows would go unbooked
                queue.put_nowait(VenueError(f"crossvenue: the {name} venue's executions "
                                            f"stream ended"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            queue.put_nowait(VenueError(f"crossvenue: the {name} venue's executions "
                                        f"failed: {exc}"))
        finally:
            # closed before the venue is (close()), not when the collector finds it
            await close_source(name, source, "crossvenue")

    def _note(self, item: Fill | OrderUpdate | FillCorrection) -> None:
        if isinstance(item, FillCorrection):
            # (it names the fill, not the order): a bust takes the fill off its leg (the
            # leg filled less), a final fee replaces the fill's, so a republished fill
            # carries it; the engine books the correction itself
            for leg in self._legs.values():
                fill = leg.fills.get(item.fill_id)
                if fill is None:
                    continue
                if item.bust:
                    del leg.fills[item.fill_id]
                elif item.fee is not None:
                    leg.fills[item.fill_id] = attrs.evolve(fill, fee=item.fee)
                break
        else:
            coid = item.client_order_id
            leg = self._legs.setdefault(coid, _Leg())
            if isinstance(item, Fill):
                leg.fills[item.fill_id] = item
            elif item.status in _FINAL:
                leg.final = item.status
                if coid not in self._legging:
                    # no basket waits on it: a final order's record would stay for the
                    # whole run (every order the run ever sent)
                    del self._legs[coid]
        news, self._news = self._news, asyncio.Event()
        news.set()

    async def executions(self) -> AsyncIterator[Fill | OrderUpdate | FillCorrection]:
        """Both venues' fills and order updates as they arrive, with the composite's own
        updates (a second leg's unused quantity cancelled, a leg never sent)."""
        self._start_pumps()
        assert self._executions is not None
        while True:
            item = await self._executions.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    async def close(self) -> None:
        """Stop following executions and close both venues."""
        for task in self._pumps:
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        errors = []
        for name, venue in self.inner.items():
            try:
                await venue.close()
            except Exception as exc:  # close the other one anyway
                errors.append(f"{name}: {exc}")
        if errors:
            log.warning("crossvenue: closing: %s", "; ".join(errors))

