"""Outcome labels by hand: market resolutions (settlements, a resolution table) and the
realised P&L of round trips from fills, each with the time it became known and its
horizon."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from argus_ml.config import MLSettings
from argus_ml.outcomes import (
    ResolutionLabel,
    read_resolution_table,
    resolution_labels,
    trade_labels_from_fills,
)
from argus_ml.venue import UpDownReplayVenue

from argus_core import DataError, Instrument, Settlement

H = 3_600 * 10**9


def test_resolutions_from_a_venues_settlements_with_their_opening(tmp_path: Path) -> None:
    csv = tmp_path / "b.csv"
    csv.write_text("".join(f"{1_700_000_000 + 3600 * i},{c},{c + 1},{c - 1},{c},5,1\n"
                           for i, c in enumerate([100.0, 101.0, 99.0, 104.0])))
    venue = UpDownReplayVenue(MLSettings(bars_csv=csv, window_bars=1))
    events = list(venue.events())
    # each window's contracts are listed in the stream as it opens
    opened = {i.id: int(i.meta["opens_ns"]) for i in events
              if isinstance(i, Instrument) and "opens_ns" in i.meta}
    labels = {lb.instrument_id: lb for lb in resolution_labels(events, opened)}
    # closes 100 -> 101 (up), 101 -> 99 (down), 99 -> 104 (up); windows open at closes
    t0 = (1_700_000_000 + 3600) * 10**9
    assert [labels[f"updown:BTC/USD-UP-{t0 // 10**9 + 3600 * k}"].outcome
            for k in range(3)] == [1, 0, 1]
    first = labels[f"updown:BTC/USD-DOWN-{t0 // 10**9}"]
    assert first == ResolutionLabel(first.instrument_id, Decimal(0), t0 + H, t0)
    assert first.horizon_ns == H
    # a repeated settlement is not a new outcome; no opening -> no horizon
    again = resolution_labels([Settlement("x:y", 5, Decimal(1)), Settlement("x:y", 9,
                                                                            Decimal(0))])
    assert again == [ResolutionLabel("x:y", Decimal(1), 5, None)] and again[0].horizon_ns is None


T0 = 1_700_000_000 * 10**9  # times in the table are nanoseconds since 1970


def test_a_resolution_table_is_read_and_bad_rows_are_named(tmp_path: Path) -> None:
    good = tmp_path / "r.csv"
    good.write_text("instrument_id,known_ts_ns,price,opened_ts_ns\n"
                    f"pm:A-YES,{T0 + 2000},1,{T0 + 500}\npm:B-YES,{T0 + 3000},0.5,\n")
    assert read_resolution_table(good) == [
        ResolutionLabel("pm:A-YES", Decimal(1), T0 + 2000, T0 + 500),
        ResolutionLabel("pm:B-YES", Decimal("0.5"), T0 + 3000, None)]
    bad = tmp_path / "bad.csv"
    bad.write_text(f"instrument_id,known_ts_ns,price\npm:A,{T0 + 10},1.5\n")
    with pytest.raises(DataError, match=r"bad.csv:2: price 1.5"):
        read_resolution_table(bad)
    bad.write_text("instrument_id,price\npm:A,1\n")
    with pytest.raises(DataError, match="header must name"):
        read_resolution_table(bad)
    bad.write_text(f"instrument_id,known_ts_ns,price,opened_ts_ns\npm:A,{T0 + 10},1,{T0 + 20}\n")
    with pytest.raises(DataError, match="resolved before it opened"):
        read_resolution_table(bad)


def _fill(strategy: str, iid: str, side: str, price: str, qty: str, fee: str, ts: int
          ) -> dict[str, object]:
    return {"strategy": strategy, "instrument_id": iid, "side": side, "price": price,
            "quantity": qty, "fee": fee, "ts_ns": ts}


def test_round_trips_by_hand_including_a_flip_through_zero() -> None:
    labels = trade_labels_from_fills([
        _fill("a", "k:BTC", "buy", "100", "2", "0.2", 1),
        _fill("a", "k:BTC", "buy", "103", "1", "0.1", 2),
        _fill("a", "k:BTC", "sell", "105", "4", "0.4", 3),  # closes 3, opens a short of 1
        _fill("a", "k:BTC", "buy", "101", "1", "0.1", 4),
        _fill("a", "k:ETH", "buy", "10", "1", "0", 5),  # still open: not a label
    ])
    long_trip, short_trip = labels
    # long: -200 - 103 + 3 x 105 = 12, fees 0.2 + 0.1 + 0.3 -> 11.4, known at t3
    assert (long_trip.pnl, long_trip.fees, long_trip.side) == (Decimal("11.4"),
                                                              Decimal("0.6"), "long")
    assert (long_trip.opened_ts_ns, long_trip.known_ts_ns, long_trip.horizon_ns) == (1, 3, 2)
    assert long_trip.quantity == 3 and long_trip.win
    # short: 105 - 101 = 4, fees 0.1 + 0.1 -> 3.8, opened at t3, known at t4
    assert (short_trip.pnl, short_trip.side, short_trip.horizon_ns) == (Decimal("3.8"),
                                                                        "short", 1)


def test_a_settlement_closes_each_strategys_trip_pro_rata() -> None:
    labels = trade_labels_from_fills([
        _fill("a", "pm:X-YES", "buy", "0.4", "10", "0.04", 1),
        _fill("b", "pm:X-YES", "buy", "0.5", "30", "0", 2),
        _fill("settlement", "pm:X-YES", "sell", "1", "40", "0", 9),
    ])
    by = {lb.strategy: lb for lb in labels}
    assert by["a"].pnl == Decimal("5.96") and by["a"].known_ts_ns == 9  # 10 x 0.6 - 0.04
    assert by["b"].pnl == Decimal(15) and by["b"].horizon_ns == 7
    lost = trade_labels_from_fills([_fill("a", "pm:Y", "buy", "0.7", "5", "0", 1),
                                    _fill("settlement", "pm:Y", "sell", "0", "5", "0", 4)])
    assert lost[0].pnl == Decimal("-3.5") and not lost[0].win
