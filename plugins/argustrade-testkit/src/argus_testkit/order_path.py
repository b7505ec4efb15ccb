"""What a fault campaign drives and checks on :class:`~argus_testkit.engine.EngineHarness`:
intents of any kind routed through the core's order path, one order's cancel, a log
capture for secrets, and the venue-agnostic invariants (at most one exchange order per
intent, every exchange fill booked once, positions and cash equal to the exchange's,
nothing left pending once the venue can be asked).

Each venue's campaign supplies the exchange's own record (:class:`ExchangeTruth`): the
orders it holds per client id, its fills, the position and cash they make.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from decimal import Decimal as D

import attrs

from argus_core import Intent, OrderStatus, OrderType, Side, TimeInForce
from argus_testkit.engine import CASH, EngineHarness
from argus_testkit.engine import until as until  # its wait, one in the kit

#: Ledger statuses of an order still working at the venue.
WORKING = (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)


@attrs.frozen
class ExchangeOrder:
    """One order as the exchange records it: ``open`` (still working) and how much of it
    filled."""

    venue_order_id: str
    open: bool
    filled: D


@attrs.frozen
class ExchangeTruth:
    """The exchange's own record after a seed.

    ``orders``: core client order id -> every exchange order carrying its wire id (an
    order the exchange acted on twice is listed twice);
    ``fills``: exchange fill key -> (quantity signed by side, cash change incl. fees);
    ``instrument_id``: the one instrument the campaign trades;
    ``fill_key``: the key of a ledger fill id in ``fills`` (the exchange's fill id by
    default; a venue whose ledger fill ids name its order, not the trade, keys ``fills``
    by order and maps each ledger fill to it: their sums are compared)."""

    orders: dict[str, list[ExchangeOrder]]
    fills: dict[str, tuple[D, D]]
    instrument_id: str
    fill_key: Callable[[str], str] = lambda fill_id: fill_id

    @property
    def position(self) -> D:
        """The position the exchange's fills make."""
        return sum((q for q, _ in self.fills.values()), D(0))

    @property
    def cash(self) -> D:
        """The cash the exchange's fills leave of :data:`CASH`."""
        return CASH + sum((c for _, c in self.fills.values()), D(0))


def route(h: EngineHarness, seq: int, slot: str, side: Side, qty: D, *,
          limit: D | None = None, tif: TimeInForce = TimeInForce.IOC) -> str | None:
    """Route one intent of slot ``slot`` through the engine (risk, the ledger's commit,
    the venue); its client order id, or None when the engine made no order."""
    h.engine.seq = seq
    intent = Intent(slot, h.iid, side, quantity=qty,
                    limit_price=limit if limit is not None else h.mark,
                    order_type=OrderType.LIMIT if limit is not None else OrderType.MARKET,
                    time_in_force=tif)
    with h.between_events():
        orders = h.engine._route([intent], 1)
    return orders[0].client_order_id if orders else None


def cancel_slot(h: EngineHarness, slot: str) -> None:
    """Ask the engine to cancel the working orders of ``slot`` (sent in the background)."""
    with h.between_events():
        h.engine.cancel_working(slot, h.iid, f"cancelled by the campaign ({slot})")


def working(h: EngineHarness) -> list[tuple[str, str]]:
    """(client order id, slot) of the ledger's working orders."""
    rows = h.ledger.query("select client_order_id, strategy from orders where status in "
                          "(?, ?) order by ts_ns, client_order_id",
                          tuple(s.value for s in WORKING))
    return [(r["client_order_id"], r["strategy"]) for r in rows]


class LogCapture(logging.Handler):
    """Every log record of the process at INFO and above, formatted with its exception,
    for the secrets check (the root logger at INFO for the seed: DEBUG would add every
    library's wire trace and slow each seed several times over)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def __enter__(self) -> LogCapture:
        root = logging.getLogger()
        self._level = root.level
        root.addHandler(self)
        root.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._level)


def ledger_fills(h: EngineHarness, key: Callable[[str], str] = lambda fill_id: fill_id
                 ) -> dict[str, tuple[D, D]]:
    """The ledger's fills as (signed quantity, cash change), summed by ``key(fill id)``."""
    out: dict[str, tuple[D, D]] = {}
    for f in h.fills():
        sign = 1 if f["side"] == Side.BUY.value else -1
        q, px, fee = D(f["quantity"]), D(f["price"]), D(f["fee"])
        k = key(f["fill_id"])
        q0, c0 = out.get(k, (D(0), D(0)))
        out[k] = (q0 + sign * q, c0 - sign * q * px - fee)
    return out


def settled(h: EngineHarness, truth: ExchangeTruth) -> bool:
    """Whether the ledger has caught up with the exchange (for waiting, not checking)."""
    booked = ledger_fills(h, truth.fill_key)
    if set(booked) != set(truth.fills) or any(booked[k] != truth.fills[k] for k in booked) \
            or h.ledger.order_ids_in(OrderStatus.PENDING):
        return False
    for coid, held in truth.orders.items():
        row = h.ledger.order_row(coid)
        if row is None or len(held) != 1:
            continue
        if (OrderStatus(row["status"]) in WORKING) != held[0].open:
            return False
    return True


def check_invariants(h: EngineHarness, truth: ExchangeTruth, *,
                     secrets: Iterable[str] = (), log_lines: Iterable[str] = ()) -> None:
    """The campaign's invariants (``AssertionError`` naming the first broken one)."""
    rows = h.ledger.query("select client_order_id, status, filled_quantity, quantity "
                          "from orders")
    for coid, held in truth.orders.items():
        assert len(held) <= 1, f"{coid} reached the exchange {len(held)} times: {held}"
    booked = ledger_fills(h, truth.fill_key)
    missing = sorted(set(truth.fills) - set(booked))
    extra = sorted(set(booked) - set(truth.fills))
    assert not missing and not extra, f"fills not booked: {missing}; booked but not at the " \
                                      f"exchange: {extra}"
    for fill_id, (qty, cash) in truth.fills.items():
        assert booked[fill_id] == (qty, cash), \
            f"fill {fill_id} booked as {booked[fill_id]}, the exchange says {(qty, cash)}"
    position = h.account.positions.get(truth.instrument_id)
    assert (position.quantity if position else D(0)) == truth.position, \
        f"position {position} != the exchange's {truth.position}"
    assert h.account.cash == truth.cash, f"cash {h.account.cash} != the exchange's {truth.cash}"
    for row in rows:
        coid, status = row["client_order_id"], OrderStatus(row["status"])
        assert status is not OrderStatus.PENDING, f"{coid} left pending though the venue " \
                                                  f"can be asked"
        held = truth.orders.get(coid, [])
        if not held:
            assert status in (OrderStatus.CANCELLED, OrderStatus.REJECTED), \
                f"{coid} is {status} in the ledger but the exchange never had it"
            continue
        (order,) = held
        assert D(row["filled_quantity"]) == min(order.filled, D(row["quantity"])), \
            f"{coid}: ledger filled {row['filled_quantity']}, exchange {order.filled}"
        if order.open:
            assert status in WORKING, f"{coid} works at the exchange but is {status}"
        else:
            assert status not in WORKING, f"{coid} is final at the exchange but {status}"
    leaked = [line for line in log_lines for s in secrets if s and s in line]
    assert not leaked, f"a secret in the logs: {leaked[0][:200]}"
