"""``[plugins.negrisk]`` settings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from argus_core import NON_NEGATIVE, POSITIVE, RangeError, in_range, optional

#: Deepest book side packed (``max_levels``): a Polymarket book side holds a few hundred
#: levels at most; the packed arrays are ``max_levels`` x rows, so a typo of 10**9 would
#: fail at the first scan (memory) rather than here.
MAX_LEVELS = 1000


def _decimal(value: Any) -> Any:
    """An int or float setting as its exact ``Decimal`` (floats through ``repr``: 0.01 is
    ``Decimal("0.01")``), as Python callers write them; anything else is left to the range
    validator, which names the key (a bool, text and None are no amount)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    return value


def _optional_decimal(value: Any) -> Any:
    return None if value is None else _decimal(value)


def _flag(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A switch must be a bool: ``"yes"``, ``"false"`` or 1 are not (a non-empty string
    is truthy, so ``"false"`` would switch it on)."""
    if not isinstance(value, bool):
        raise RangeError(attribute.name, repr(value), "{true, false}")


def _whole(rng: Any) -> Any:
    """``rng``, for a count: an int (not a bool, not 2.5) inside it."""
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RangeError(attribute.name, repr(value), f"whole numbers in {rng}")
        rng(instance, attribute, value)
    return check


@attrs.frozen
class NegRiskSettings:
    """Settings of the negRisk scanner.

    Attributes:
        min_edge: smallest net edge per basket unit (after taker fees and gas) worth reporting;
            the walk takes no level earning less than this a unit (before gas), so a deep
            book at a thinner edge cannot hide the levels that earn it.
            Taker fees are the venue's fee schedule (``market.fee_schedule``); to scan under
            other fees, change them at the venue (``[plugins.polymarket]
            fee_rate_override``) or in ``[paper]``.
        gas_usd_per_leg: fixed cost per basket leg (settlement transactions, relayer fees).
        max_outcomes: events with more outcomes are skipped, or scanned in bounded-subset
            mode when ``bounded_subset`` is on.
        bounded_subset: for large events, buy YES of the ``max_outcomes`` likeliest outcomes
            only; the omitted tail's probability (sum of its YES asks) must be at most
            ``tail_probability_cap``.  Such opportunities are NOT risk-free.
        long_rebalance / short_rebalance / binary / pairs: which baskets to scan
            (YES of every outcome; NO of every outcome; YES+NO of a binary market; YES+NO
            of each outcome of a negRisk event).
        sell_yes_basket: also report selling one YES of every outcome above 1 (needs YES
            inventory of every outcome; off by default).
        max_levels: book depth per side packed for the kernel (at most ``MAX_LEVELS``).
        max_basket_size: cap on the reported size (None: the books' joint depth).
    """

    min_edge: Decimal = attrs.field(default=Decimal("0"), converter=_decimal,
                                    validator=NON_NEGATIVE)
    gas_usd_per_leg: Decimal = attrs.field(default=Decimal("0"), converter=_decimal,
                                           validator=NON_NEGATIVE)
    max_outcomes: int = attrs.field(default=40, validator=_whole(in_range(2)))
    bounded_subset: bool = attrs.field(default=False, validator=_flag)
    tail_probability_cap: Decimal = attrs.field(default=Decimal("0.02"), converter=_decimal,
                                                validator=in_range(0, 1))
    long_rebalance: bool = attrs.field(default=True, validator=_flag)
    short_rebalance: bool = attrs.field(default=True, validator=_flag)
    binary: bool = attrs.field(default=True, validator=_flag)
    pairs: bool = attrs.field(default=True, validator=_flag)
    sell_yes_basket: bool = attrs.field(default=False, validator=_flag)
    max_levels: int = attrs.field(default=64, validator=_whole(in_range(1, MAX_LEVELS)))
    max_basket_size: Decimal | None = attrs.field(default=None, converter=_optional_decimal,
                                                  validator=optional(POSITIVE))
