"""A replay's order rows wait in memory until the checkpoint's commit (issue 14: fewer
statements per order, batched at checkpoint commits): every operation on a deferred
ledger must leave exactly the rows the plain one writes statement by statement, and every
read must see the orders not yet written."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import apsw
import pytest

from argus_core.ledger import ORDER_COLUMNS, Ledger
from argus_core.models import (
    Fill,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

RUN = "run1"


def _order(k: int, rng: random.Random) -> Order:
    return Order(f"{RUN}-{k}-slot-0", "replay", f"replay:S{k % 3}/USD",
                 rng.choice([Side.BUY, Side.SELL]), Decimal(rng.randint(1, 900)) / 100,
                 Decimal(rng.randint(100, 200)) if k % 2 else None,
                 OrderType.LIMIT if k % 2 else OrderType.MARKET,
                 rng.choice([TimeInForce.GTC, TimeInForce.IOC]), f"slot{k % 2}", 1000 + k,
                 OrderStatus.OPEN, f"b{k // 3}" if k % 4 == 0 else None, k % 5 == 0,
                 f"reason {k}", Decimal("150.5") if k % 3 else None, Decimal("151.25"),
                 Decimal("0.5") if k % 2 else None)


def _script(ledger: Ledger, seed: int) -> list[Any]:
    """The same seeded sequence of order operations; returns what each read answered."""
    rng = random.Random(seed)
    seen: list[Any] = []
    ids: list[str] = []
    ledger.begin()
    for k in range(60):
        order = _order(k, rng)
        seen.append(ledger.insert_order(order, RUN))
        ids.append(order.client_order_id)
        if k % 7 == 3:  # the same id again: refused, in the buffer or written
            seen.append(ledger.insert_order(order, RUN))
        coid = rng.choice(ids)
        op = rng.randrange(7)
        if op == 0:
            ledger.set_order_status(coid, OrderStatus.FILLED, Decimal(rng.randint(1, 9)))
        elif op == 1:
            ledger.set_order_status(coid, OrderStatus.CANCELLED, reason=f"why {k}")
        elif op == 2:
            ledger.move_order_status(coid, OrderStatus.REJECTED,
                                     (OrderStatus.OPEN, OrderStatus.PENDING), f"late {k}")
        elif op == 3:
            ledger.set_venue_order_id(coid, f"v{k}")
        elif op == 4:
            ledger.insert_fill(Fill(f"f{k}", coid, "replay", order.instrument_id, Side.BUY,
                                    Decimal("150"), Decimal("0.01"), Decimal("0.001"),
                                    Liquidity.TAKER, 2000 + k))
        elif op == 5:
            seen.append((ledger.order_status(coid), ledger.basket_of(coid),
                         ledger.order_exists(coid)))
        else:
            seen.append(ledger.working_orders())
        if k % 20 == 19:
            seen.append(ledger.order_ids_in(OrderStatus.FILLED))
            ledger.commit()
            ledger.begin()
    seen.append(ledger.order_row(ids[5]))
    seen.append(ledger.working_instruments("slot1"))
    seen.append([o.client_order_id for o in ledger.basket_unwinds("b0")])
    ledger.commit()
    return seen


def _rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with Ledger(path) as ledger:
        return {t: [tuple(r.values()) for r in ledger.query(f"select * from {t} order by 1")]
                for t in ("orders", "fills")}


@pytest.mark.parametrize("seed", range(8))
def test_deferred_orders_leave_the_same_rows_and_answer_the_same(
        tmp_path: Path, seed: int) -> None:
    plain, deferred = Ledger(tmp_path / "plain.db"), Ledger(tmp_path / "deferred.db")
    deferred.defer_writes = True
    with plain, deferred:
        assert _script(deferred, seed) == _script(plain, seed)
    assert _rows(tmp_path / "deferred.db") == _rows(tmp_path / "plain.db")
    assert _rows(tmp_path / "plain.db")["orders"]


def test_a_deferred_order_is_not_written_until_the_commit_and_a_rollback_drops_it(
        tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as ledger:
        ledger.defer_writes = True
        ledger.begin()
        assert ledger.insert_order(_order(1, random.Random(1)), RUN)
        changes = ledger.conn.total_changes()
        ledger.set_order_status(f"{RUN}-1-slot-0", OrderStatus.FILLED, Decimal(1))
        assert ledger.conn.total_changes() == changes  # no statement per status change
        assert ledger.order_status(f"{RUN}-1-slot-0") is OrderStatus.FILLED
        ledger.rollback()
        assert not ledger.order_exists(f"{RUN}-1-slot-0")
        assert ledger.query("select * from orders") == []


def test_order_columns_are_the_core_tables(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as ledger:
        cols = tuple(r[1] for r in ledger.conn.execute("pragma table_info(orders)"))
    assert cols == ORDER_COLUMNS


def test_a_duplicate_deferred_order_fails_loudly_if_the_buffer_were_bypassed(
        tmp_path: Path) -> None:
    """The guard the buffer keeps: the flush is a plain insert, never 'or ignore', so an
    id written twice could never pass silently."""
    with Ledger(tmp_path / "l.db") as ledger:
        ledger.defer_writes = True
        ledger.begin()
        order = _order(2, random.Random(2))
        assert ledger.insert_order(order, RUN)
        ledger.flush()
        ledger._orders[order.client_order_id] = ["x"] * len(ORDER_COLUMNS)
        ledger._orders[order.client_order_id][0] = order.client_order_id
        with pytest.raises(apsw.ConstraintError):
            ledger.flush()
        ledger.rollback()
