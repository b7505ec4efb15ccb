"""An answer about one order never ends, fills or adopts another (red team r38).

QueryOrders (and the OpenOrders / ClosedOrders look-ups) answer about the txids asked;
an entry keyed by order A's txid but naming order B's ``cl_ord_id`` was read as B's: B
acknowledged and cancelled under A's txid, and A taken as settled (never asked again).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from argus_venue_kraken.config import KrakenSettings
from argus_venue_kraken.execution import KrakenExecution, cl_ord_id_for
from argus_venue_kraken.schemas import OrderEvent

from argus_core import OrderStatus

A, B = "run1-1-s1-0", "run1-2-s1-0"


class StubRest:
    """The few REST calls a backfill and a look-up make, answered from fixed tables."""

    clock_skew_s = 0.0

    def __init__(self, query: dict[str, Any], open_: dict[str, Any] | None = None) -> None:
        self.query, self.open = query, open_ or {}
        self.asked: list[list[str]] = []

    async def trades_history_pages(self, start: int) -> AsyncIterator[dict[str, Any]]:
        yield {}

    async def query_orders(self, txids: list[str]) -> dict[str, Any]:
        self.asked.append(list(txids))
        return self.query

    async def open_orders(self, cl_ord_id: str | None = None) -> dict[str, Any]:
        return self.open

    async def closed_orders(self, cl_ord_id: str | None = None) -> dict[str, Any]:
        return {}


def execution(tmp_path: Path, rest: StubRest) -> KrakenExecution:
    ex = KrakenExecution(KrakenSettings(nonce_path=tmp_path / "nonce", dead_man_timeout_s=0),
                         rest)  # type: ignore[arg-type]
    ex.adopt_txid(A, "OA-1")
    ex.adopt_txid(B, "OB-1")
    ex.placed_txids.update({"OA-1", "OB-1"})
    ex.backfill_from_ns = 1_700_000_000 * 10**9
    return ex


def entry(cl: str, status: str) -> dict[str, Any]:
    return {"cl_ord_id": cl_ord_id_for(cl), "status": status, "opentm": 1700000000.5,
            "closetm": 1700000001.5, "reason": "User requested"}


async def test_an_entry_for_a_naming_b_ends_and_adopts_neither(tmp_path) -> None:
    rest = StubRest({"OA-1": entry(B, "canceled"), "OB-1": entry(B, "open")})
    ex = execution(tmp_path, rest)
    events = await ex.backfill(reconnected=True)
    assert rest.asked == [["OA-1", "OB-1"]]
    # Only B's own entry counts: acknowledged under its own txid, not cancelled.
    acks = [(e.status, e.cl_ord_id, e.order_id) for e in events if isinstance(e, OrderEvent)]
    assert acks == [(OrderStatus.OPEN, cl_ord_id_for(B), "OB-1")]
    assert len(events) == 1
    assert "OA-1" in ex.placed_txids  # A is not settled: asked about again
    assert ex.core_id_for(cl_ord_id_for(B), "OA-1") is None and ex.id_conflicts >= 1
    assert ex.core_id_for(None, "OA-1") == A and ex.core_id_for(cl_ord_id_for(B)) == B


async def test_an_entry_not_asked_about_is_not_adopted(tmp_path) -> None:
    rest = StubRest({"OX-9": entry(B, "canceled")})
    ex = execution(tmp_path, rest)
    ex._txid_core.pop("OB-1")  # B's txid not known yet: only its own entry may give it
    assert await ex.backfill(reconnected=True) == []
    assert ex.core_id_for(None, "OX-9") is None


async def test_a_new_txid_is_not_adopted_by_an_order_that_has_one(tmp_path) -> None:
    """A txid we asked about (a trade's order) naming B, which already has its txid."""
    rest = StubRest({"OX-9": entry(B, "canceled")})
    ex = execution(tmp_path, rest)
    ex.unsettled_txids.add("OX-9")
    assert await ex.backfill() == []
    assert ex.core_id_for(None, "OX-9") is None and "OX-9" in ex.unsettled_txids


async def test_a_new_txid_of_an_order_without_one_is_still_learnt(tmp_path) -> None:
    rest = StubRest({"OX-9": entry(B, "canceled")})
    ex = execution(tmp_path, rest)
    ex._txid_core.pop("OB-1")
    ex.placed_txids.discard("OB-1")
    ex.unsettled_txids.add("OX-9")
    events = await ex.backfill()
    seen = [(e.status, e.order_id) for e in events if isinstance(e, OrderEvent)]
    assert seen == [(OrderStatus.OPEN, "OX-9"), (OrderStatus.CANCELLED, "OX-9")]
    assert ex.core_id_for(None, "OX-9") == B


@pytest.mark.parametrize("status", ["open", "closed"])
async def test_a_look_up_of_a_never_takes_b_txid(tmp_path, status) -> None:
    rest = StubRest({}, open_={"OB-1": entry(A, status)})
    ex = execution(tmp_path, rest)
    assert await ex.lookup(A, cl_ord_id_for(A), "test") is None
    assert ex.core_id_for(None, "OB-1") == B
