"""Red team (round 38) of the composite's restart path, each test failing before its fix:

* fills came out of the composite under their inner venue's name (``Fill.venue`` =
  ``kalshi``, ``polymarket``: what real adapters set), so the ledger booked them there
  while the run's orders were booked under ``multivenue``; a restart's
  ``venue_resume("multivenue")`` then held no fills at all: no inner venue learnt which
  of its fills were booked (Polymarket reports a taker fill again under its trade id:
  booked twice), nor their fees, and each backfill started at its first order;
* ``split_resume`` handed each inner venue its orders with ``venue = "multivenue"``: an
  inner venue that keeps only its own orders (Kraken's ``resume`` skips
  ``order.venue != "kraken"``) forgot every order of the run;
* an order whose venue left the config between runs stopped the restart with "served
  by none" even when it was long final; a working one now names the remedy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import attrs
import pytest
from argus_multivenue import MultiVenue
from argus_multivenue.testing import ScriptedInner
from argus_multivenue.venue import split_resume

from argus_core import (
    ConfigError,
    Fill,
    KnownOrder,
    Ledger,
    Liquidity,
    Order,
    OrderStatus,
    Side,
    VenueResume,
)

S = 10**9


def _order(coid: str, venue: str, ts_s: int,
           status: OrderStatus = OrderStatus.OPEN) -> Order:
    """An order of the run as the core persists it: under the run's venue."""
    return Order(coid, "multivenue", f"{venue}:X", Side.BUY, Decimal(5), ts_ns=ts_s * S,
                 status=status)


def _inner_fill(fid: str, coid: str, venue: str, ts_s: int) -> Fill:
    """A fill as a real inner adapter reports it: under its own venue name."""
    return Fill(fid, coid, venue, f"{venue}:X", Side.BUY, Decimal(1), Decimal(1),
                Decimal("0.01"), Liquidity.TAKER, ts_s * S)


class _FillingInner(ScriptedInner):
    """A scripted inner venue whose ``submit`` answers with one fill of its own name."""

    async def submit(self, order: Order) -> list[Fill]:
        return [_inner_fill(f"{self.venue}-answer", order.client_order_id, self.venue, 3)]


async def _first(venue: MultiVenue) -> list[Any]:
    """The first item of the composite's executions (the inner streams run on)."""
    stream = cast(AsyncGenerator[Any, None], venue.executions())
    try:
        return [await anext(stream)]
    finally:
        await stream.aclose()


def test_fills_from_executions_and_answers_are_found_again_on_a_restart(
        tmp_path: Path) -> None:
    """Venue a's fill comes through ``executions()``, venue b's in ``submit``'s answer;
    both are booked as the core books them.  The restart hands each venue its own."""
    venue = MultiVenue(inner={"a": ScriptedInner("a", [_inner_fill("fa", "oa", "a", 2)],
                                                   then_wait=True),
                              "b": _FillingInner("b")})
    answered = asyncio.run(venue.submit(_order("ob", "b", 1)))
    streamed = asyncio.run(asyncio.wait_for(_first(venue), 5))
    assert {f.venue for f in answered + streamed} == {"multivenue"}
    with Ledger.in_dir(tmp_path / "run") as ledger, ledger.transaction():
        for coid, name in (("oa", "a"), ("ob", "b")):
            ledger.insert_order(_order(coid, name, 1), "r")
        for fill in answered + streamed:
            ledger.insert_fill(fill)
        known = ledger.venue_resume("multivenue")
    inner = {v: ScriptedInner(v) for v in "ab"}
    MultiVenue(inner=inner).resume(known)
    got = {v: i.known for v, i in inner.items()}
    assert got["a"] is not None and got["a"].fill_ids == {"fa": "oa"}, got
    assert got["b"] is not None and got["b"].fill_ids == {"b-answer": "ob"}, got
    assert got["a"].fill_fees == {"fa": Decimal("0.01")}
    assert got["a"].newest_fill_ts_ns is not None and got["a"].newest_fill_ts_ns <= 2 * S


def test_each_inner_venue_gets_its_orders_under_its_own_name() -> None:
    """As a single-venue run of it would have persisted them (Kraken keeps only its own)."""
    inner = {v: ScriptedInner(v) for v in "ab"}
    MultiVenue(inner=inner).resume(VenueResume(
        (KnownOrder(_order("oa", "a", 1)), KnownOrder(_order("ob", "b", 2)))))
    venues = {v: [k.order.venue for k in i.known.orders] for v, i in inner.items() if i.known}
    assert venues == {"a": ["a"], "b": ["b"]}


def _prefix(instrument_id: str) -> str:
    return instrument_id.partition(":")[0]


def test_a_final_order_of_a_venue_no_longer_configured_is_skipped() -> None:
    """Venue c traded in the first process and was removed from ``venues`` since: its
    filled order is history, and the restart goes on with a and b."""
    inner = {v: ScriptedInner(v) for v in "ab"}
    MultiVenue(inner=inner).resume(VenueResume(
        (KnownOrder(_order("oa", "a", 1)),
         KnownOrder(_order("oc", "c", 2, OrderStatus.FILLED), None, Decimal(5))),
        {"fc": "oc"}, 3 * S))
    assert inner["a"].known is not None and len(inner["a"].known.orders) == 1
    assert inner["b"].known is not None and inner["b"].known.orders == ()


def test_a_working_order_of_a_venue_no_longer_configured_stops_the_restart() -> None:
    """Its fills would never be followed: the error names the order and the remedy."""
    known = VenueResume((KnownOrder(_order("oc", "c", 2, OrderStatus.OPEN)),))
    with pytest.raises(ConfigError, match=r"order oc on c:X is open .*put its venue back"):
        split_resume(known, ["a", "b"], _prefix)
    with pytest.raises(ConfigError, match=r"order oc"):
        MultiVenue(inner={v: ScriptedInner(v) for v in "ab"}).resume(known)


def test_the_kraken_adapter_learns_its_orders_back_through_the_composite() -> None:
    """The real consequence of the venue name: Kraken's ``resume`` keeps only orders of
    venue ``kraken``; before, it learnt none of them (their later fills were unknown)."""
    kraken = pytest.importorskip("argus_venue_kraken.venue")
    venue = kraken.KrakenVenue()
    order = Order("ok", "multivenue", "kraken:BTC/USD", Side.BUY, Decimal(1), ts_ns=S,
                  status=OrderStatus.OPEN)
    MultiVenue(inner={"kraken": venue, "b": ScriptedInner("b")}).resume(
        VenueResume((KnownOrder(order, "TXID-1"),)))
    assert venue.execution._txid_core == {"TXID-1": "ok"}


def test_fills_go_out_under_the_name_the_composite_was_registered_under(
        tmp_path: Path) -> None:
    """A composite registered as ``mymulti`` (the core's orders carry that name, and the
    restart reads by it): its fills are booked under that name, not the class's."""
    venue = MultiVenue(inner={"a": _FillingInner("a"), "b": ScriptedInner("b")})
    order = attrs.evolve(_order("oa", "a", 1), venue="mymulti")
    answered = asyncio.run(venue.submit(order))
    assert [f.venue for f in answered] == ["mymulti"]
    with Ledger.in_dir(tmp_path / "run") as ledger, ledger.transaction():
        ledger.insert_order(order, "r")
        ledger.insert_fill(answered[0])
        known = ledger.venue_resume("mymulti")
    restarted = MultiVenue(inner={"a": ScriptedInner("a"), "b": ScriptedInner("b")})
    restarted.resume(known)
    assert restarted.run_venue == "mymulti"
    assert restarted.inner["a"].known.fill_ids == {"a-answer": "oa"}  # type: ignore[attr-defined]
