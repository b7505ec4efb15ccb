"""Kalshi's fee formula, rounded up per fill as the exchange rounds, against hand sums."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from argus_venue_kalshi.fees import KalshiFeeSchedule, kalshi_fee


@pytest.mark.parametrize(("contracts", "price", "expected"), [
    # 0.07 * 10 * 0.5 * 0.5 = 0.175 -> 0.18 (the fee schedule's worked example)
    ("10", "0.50", "0.18"),
    # 0.07 * 1 * 0.5 * 0.5 = 0.0175 -> 0.02 (the most one contract ever pays)
    ("1", "0.50", "0.02"),
    # 0.07 * 100 * 0.05 * 0.95 = 0.3325 -> 0.34
    ("100", "0.05", "0.34"),
    # 0.07 * 100 * 0.25 * 0.75 = 1.3125 -> 1.32
    ("100", "0.25", "1.32"),
    # 0.07 * 1 * 0.01 * 0.99 = 0.000693 -> 0.01 (any fee rounds up to a whole cent)
    ("1", "0.01", "0.01"),
    # 0.07 * 100 * 0.5 * 0.5 = 1.75 exactly: no rounding
    ("100", "0.50", "1.75"),
])
def test_taker_fee_rounds_up_to_the_cent(contracts: str, price: str, expected: str) -> None:
    fees = KalshiFeeSchedule()
    assert fees.fee(D(price), D(contracts), maker=False) == D(expected)


def test_maker_fee_is_zero_unless_the_market_charges_makers() -> None:
    assert KalshiFeeSchedule().fee(D("0.5"), D(10), maker=True) == 0
    charged = KalshiFeeSchedule(maker_rate=D("0.0175"))
    # 0.0175 * 100 * 0.5 * 0.5 = 0.4375 -> 0.44 ; 0.0175 * 10 * .25 = 0.04375 -> 0.05
    assert charged.fee(D("0.5"), D(100), maker=True) == D("0.44")
    assert charged.fee(D("0.5"), D(10), maker=True) == D("0.05")


def test_index_series_rate_and_centicent_rounding() -> None:
    # 0.035 * 10 * 0.5 * 0.5 = 0.0875 -> 0.09
    assert KalshiFeeSchedule(taker_rate=D("0.035")).fee(D("0.5"), D(10), maker=False) == D("0.09")
    # direct member: 0.07 * 1 * 0.01 * 0.99 = 0.000693 -> 0.0007
    direct = KalshiFeeSchedule(rounding=D("0.0001"))
    assert direct.fee(D("0.01"), D(1), maker=False) == D("0.0007")


def test_unit_fee_is_the_unrounded_per_contract_rate() -> None:
    assert KalshiFeeSchedule().unit_fee(D("0.5")) == D("0.0175")
    assert kalshi_fee(D("0.07"), D(0), D("0.5")) == 0


def test_paper_overrides_add_to_the_curve() -> None:
    fees = KalshiFeeSchedule(fixed_per_fill=D("0.01"))
    assert fees.fee(D("0.5"), D(10), maker=False) == D("0.19")
