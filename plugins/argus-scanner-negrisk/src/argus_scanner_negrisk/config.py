"""``[plugins.negrisk]`` settings."""

from __future__ import annotations

from decimal import Decimal

import attrs

from argus_core import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, in_range, optional


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
        max_levels: book depth per side packed for the kernel.
        max_basket_size: cap on the reported size (None: the books' joint depth).
    """

    min_edge: Decimal = attrs.field(default=Decimal("0"), validator=NON_NEGATIVE)
    gas_usd_per_leg: Decimal = attrs.field(default=Decimal("0"), validator=NON_NEGATIVE)
    max_outcomes: int = attrs.field(default=40, validator=in_range(2))
    bounded_subset: bool = False
    tail_probability_cap: Decimal = attrs.field(default=Decimal("0.02"),
                                                validator=in_range(0, 1))
    long_rebalance: bool = True
    short_rebalance: bool = True
    binary: bool = True
    pairs: bool = True
    sell_yes_basket: bool = False
    max_levels: int = attrs.field(default=64, validator=AT_LEAST_ONE)
    max_basket_size: Decimal | None = attrs.field(default=None, validator=optional(POSITIVE))
