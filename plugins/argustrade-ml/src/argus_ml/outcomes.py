"""Labels from outcomes rather than bars: how a market resolved, and what a trade made.

Each label records when it became known (``known_ts_ns``) and its horizon (from the
decision or the opening to that time), so a training set built on them can purge and
embargo exactly as the bar labels do (:mod:`argus_ml.labels`).

* :func:`resolution_labels` -- the binary outcome of a market from its
  :class:`~argus_core.Settlement` events (a venue's stream, a recording) or
  :func:`read_resolution_table` (CSV ``instrument_id, known_ts_ns, price`` and, optional,
  ``opened_ts_ns``): ``outcome`` = the settlement price (1 or 0 for a binary; a price in
  between, e.g. a 50/50 void, is kept as it is), known at the settlement's stamp.  The
  opening comes from the table or ``Instrument.meta["opens_ns"]`` when given; without
  one the horizon is unknown (None).
* :func:`trade_labels` -- realised P&L of each round trip (flat -> flat per strategy and
  instrument) from a run's ledger fills, read with :class:`argus_core.Ledger`: P&L =
  sell proceeds - buy cost - fees (settlement fills count as the exit they are), known
  at the fill that brought the position back to flat; horizon = that time minus the
  first fill's.  A fill that flips the position through zero closes the trip with the
  part that reaches zero and opens the next with the rest (fees shared pro rata).
  Trips still open at the end of the ledger are not labels (their outcome is unknown).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from argus_core import DataError, Ledger, Settlement

ZERO = Decimal(0)


@attrs.frozen
class ResolutionLabel:
    """A market's outcome (settlement price), when it became known, and the horizon from
    its opening (None when the opening is unknown)."""

    instrument_id: str
    outcome: Decimal
    known_ts_ns: int
    opened_ts_ns: int | None = None

    @property
    def horizon_ns(self) -> int | None:
        """Nanoseconds from the opening to the resolution."""
        return None if self.opened_ts_ns is None else self.known_ts_ns - self.opened_ts_ns


def resolution_labels(settlements: Iterable[object],
                      opened: Mapping[str, int] | None = None) -> list[ResolutionLabel]:
    """Labels from the :class:`~argus_core.Settlement` events in ``settlements`` (other
    events are skipped, so a whole stream may be passed), in stream order.  A market
    settled twice keeps its first settlement (a venue's repeat is not a new outcome)."""
    out: dict[str, ResolutionLabel] = {}
    for ev in settlements:
        if isinstance(ev, Settlement) and ev.price is not None \
                and ev.instrument_id not in out:  # a voided market has no outcome to learn
            out[ev.instrument_id] = ResolutionLabel(
                ev.instrument_id, ev.price, ev.ts_ns,
                (opened or {}).get(ev.instrument_id))
    return list(out.values())


#: A ``known_ts_ns`` below this (1973-03-03) is seconds or milliseconds, not nanoseconds:
#: read as nanoseconds every outcome would be "known" in 1970, before every decision, and
#: the purge and embargo would let the labels leak into training.
MIN_TS_NS = 10**17


def read_resolution_table(path: Path) -> list[ResolutionLabel]:
    """Labels from a CSV with a header naming ``instrument_id``, ``known_ts_ns``,
    ``price`` and optionally ``opened_ts_ns``; ``DataError`` names the line (blank lines
    counted) and what: a malformed or non-finite number, a price outside [0, 1], a time
    that is not nanoseconds since 1970, a resolution before the opening, and a market
    listed again with another outcome or time (an identical repeat is dropped)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the resolution table: {exc.strerror}") from None
    reader = csv.DictReader(text.splitlines())
    need = {"instrument_id", "known_ts_ns", "price"}
    if not need <= set(reader.fieldnames or ()):
        raise DataError(f"{path}: header must name {', '.join(sorted(need))} "
                        f"(and optionally opened_ts_ns); got {reader.fieldnames}")
    out: dict[str, tuple[int, ResolutionLabel]] = {}
    for row in reader:
        where = f"{path}:{reader.line_num}"
        try:
            price = Decimal(row["price"])
            opened = row.get("opened_ts_ns") or None
            label = ResolutionLabel(row["instrument_id"], price, int(row["known_ts_ns"]),
                                    None if opened is None else int(opened))
        except (ValueError, ArithmeticError, TypeError):
            raise DataError(f"{where}: malformed resolution row {row!r}") from None
        if not price.is_finite() or not ZERO <= price <= 1:
            raise DataError(f"{where}: price {row['price']} is not in [0, 1]")
        if min(label.known_ts_ns, label.opened_ts_ns or MIN_TS_NS) < MIN_TS_NS:
            raise DataError(f"{where}: a time before 1973 ({row!r}): times are nanoseconds "
                            f"since 1970, not seconds or milliseconds")
        if label.horizon_ns is not None and label.horizon_ns < 0:
            raise DataError(f"{where}: resolved before it opened")
        first = out.get(label.instrument_id)
        if first is not None and first[1] != label:
            raise DataError(f"{where}: {label.instrument_id} resolved again, differently "
                            f"from line {first[0]}")
        out.setdefault(label.instrument_id, (reader.line_num, label))
    return [label for _line, label in out.values()]


@attrs.frozen
class TradeLabel:
    """One round trip's realised outcome: P&L after fees, when it became known (the
    closing fill) and its horizon (from the opening fill)."""

    strategy: str
    instrument_id: str
    opened_ts_ns: int
    known_ts_ns: int
    quantity: Decimal  # the largest absolute position of the trip
    side: str  # "long" | "short"
    pnl: Decimal
    fees: Decimal

    @property
    def horizon_ns(self) -> int:
        """Nanoseconds from the first fill to the fill that closed the trip."""
        return self.known_ts_ns - self.opened_ts_ns

    @property
    def win(self) -> bool:
        """Whether the trip made money after fees."""
        return self.pnl > 0


@attrs.define
class _Trip:
    opened_ts_ns: int
    position: Decimal = ZERO
    cash: Decimal = ZERO
    fees: Decimal = ZERO
    peak: Decimal = ZERO


#: Order slots that close other strategies' positions: the core's settlement fills and
#: its flattening orders (a kill with flatten).
CLOSING_SLOTS = ("settlement", "flatten")


def trade_labels_from_fills(fills: Iterable[Mapping[str, Any]]) -> list[TradeLabel]:
    """Round trips from fill rows (``strategy, instrument_id, side, price, quantity, fee,
    ts_ns`` in ledger order), closed ones only, in closing order.  A settlement or
    flattening fill closes the open trips on its instrument, shared pro rata by position
    (as the core shares it between strategy books)."""
    trips: dict[tuple[str, str], _Trip] = {}
    out: list[TradeLabel] = []
    for f in fills:
        iid = str(f["instrument_id"])
        sign = 1 if f["side"] == "buy" else -1
        qty, price, fee = Decimal(f["quantity"]), Decimal(f["price"]), Decimal(f["fee"])
        ts, strategy = int(f["ts_ns"]), str(f["strategy"])
        shares = [(strategy, qty)]
        if strategy in CLOSING_SLOTS:
            held = [(k[0], abs(t.position)) for k, t in sorted(trips.items())
                    if k[1] == iid and t.position != 0 and (t.position > 0) != (sign > 0)]
            total = sum((h for _, h in held), ZERO)
            if total > 0:
                shares, left = [], qty
                for i, (owner, h) in enumerate(held):
                    part = left if i == len(held) - 1 else qty * h / total
                    shares.append((owner, part))
                    left -= part
        fee_left = fee
        for i, (owner, part) in enumerate(shares):
            part_fee = fee_left if i == len(shares) - 1 else fee * part / qty
            fee_left -= part_fee
            _book(trips, out, (owner, iid), sign, part, price, part_fee, ts)
    return out


def _book(trips: dict[tuple[str, str], _Trip], out: list[TradeLabel], key: tuple[str, str],
          sign: int, qty: Decimal, price: Decimal, fee: Decimal, ts: int) -> None:
    """Apply one fill (or a share of one) to ``key``'s trip, closing it at zero."""
    while qty > 0:
        trip = trips.get(key)
        if trip is None:
            trip = trips[key] = _Trip(ts)
        # the part of this fill that moves the position at most back to zero
        closing = trip.position != 0 and (trip.position > 0) != (sign > 0)
        part = min(qty, abs(trip.position)) if closing else qty
        part_fee = fee * part / qty
        trip.position += sign * part
        trip.cash -= sign * part * price
        trip.fees += part_fee
        trip.peak = max(trip.peak, abs(trip.position))
        qty -= part
        fee -= part_fee
        if trip.position == 0:
            side = "long" if sign < 0 else "short"  # the closing fill opposes the trip
            out.append(TradeLabel(key[0], key[1], trip.opened_ts_ns, ts, trip.peak, side,
                                  trip.cash - trip.fees, trip.fees))
            del trips[key]


def trade_labels(run_dir: Path) -> list[TradeLabel]:
    """Round trips of a run's ledger (``run_dir/argus.db``), read with
    :class:`argus_core.Ledger`; every fill is attributed to its order's strategy."""
    path = Path(run_dir)
    if not (path / "argus.db").exists():
        raise DataError(f"{path}: no run ledger (argus.db) here")
    with Ledger.in_dir(path) as ledger:
        rows = ledger.query(
            "select o.strategy, f.instrument_id, f.side, f.price, f.quantity, f.fee, f.ts_ns"
            " from fills f join orders o on o.client_order_id = f.client_order_id"
            " order by f.ts_ns, f.fill_id")
    return trade_labels_from_fills(rows)
