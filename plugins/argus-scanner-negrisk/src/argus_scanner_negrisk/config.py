"""``[plugins.negrisk]`` settings."""

from __future__ import annotations

from decimal import Decimal

import attrs


def _non_negative(instance: object, attribute: attrs.Attribute, value: Decimal) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name}: must be >= 0, got {value}")


@attrs.frozen
class NegRiskSettings:
    """Settings of the negRisk scanner.

    Attributes:
        min_edge: smallest net edge per basket unit (after taker fees and gas) worth reporting.
        taker_fee_rate / fee_exponent: override every instrument's fee curve
            (``rate * (p(1-p)) ** exponent`` per share); None reads the instrument's
            ``meta["fee_rate"]`` / ``meta["fee_exponent"]`` (set by the Polymarket venue).
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
        max_levels: book depth per side packed for the kernel.
        max_basket_size: cap on the reported size (None: the books' joint depth).
    """

    min_edge: Decimal = attrs.field(default=Decimal("0"), validator=_non_negative)
    taker_fee_rate: Decimal | None = attrs.field(default=None, validator=_non_negative)
    fee_exponent: Decimal | None = attrs.field(default=None, validator=_non_negative)
    gas_usd_per_leg: Decimal = attrs.field(default=Decimal("0"), validator=_non_negative)
    max_outcomes: int = attrs.field(default=40, validator=attrs.validators.ge(2))
    bounded_subset: bool = False
    tail_probability_cap: Decimal = attrs.field(default=Decimal("0.02"), validator=_non_negative)
    long_rebalance: bool = True
    short_rebalance: bool = True
    binary: bool = True
    pairs: bool = True
    sell_yes_basket: bool = False
    max_levels: int = attrs.field(default=64, validator=attrs.validators.ge(1))
    max_basket_size: Decimal | None = attrs.field(default=None, validator=_non_negative)
