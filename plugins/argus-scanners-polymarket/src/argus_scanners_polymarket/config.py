"""``[plugins.pmscanners]`` settings: one sub-table per scanner.

```toml
[plugins.pmscanners.resolution]
min_annualized_return = 0.20
[plugins.pmscanners.correlation]
similarity_threshold = 0.35
```

Every numeric setting has a range (``argus_core.in_range``); a value outside is refused
at start-up naming the file, the key (``plugins.pmscanners.resolution.near_certain_price``),
the value and the range, and an unknown key is refused likewise.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from argus_core import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, in_range, optional

#: A price strictly inside (0, 1).
PRICE = in_range(0, 1, lo_open=True, hi_open=True)


@attrs.frozen
class ResolutionSettings:
    """``[plugins.pmscanners.resolution]``.

    Attributes:
        near_certain_price: an unresolved token whose best *bid* is at least this is
            "priced at near-certainty" (research lane; it can still lose).
        max_hours_to_expiry: ... and only when its event ends within this many hours.
        redemption_delay_hours: hours from resolution (or the event's end) until the payout
            can be redeemed; added to the horizon the return is annualised over.
        min_annualized_return: smallest simple annualised return ``(1 - cost) / cost *
            year / horizon`` worth reporting, checked per ask level.
        min_edge: smallest net edge per share (payout - price - unit fee).
        max_size: cap on the shares taken per token (None: the book's depth).
        min_horizon_hours: floor of the horizon (a resolved market redeemable "now" would
            otherwise annualise to infinity).
    """

    near_certain_price: Decimal = attrs.field(default=Decimal("0.95"), validator=PRICE)
    max_hours_to_expiry: Decimal = attrs.field(default=Decimal("72"), validator=POSITIVE)
    redemption_delay_hours: Decimal = attrs.field(default=Decimal("1"), validator=NON_NEGATIVE)
    min_annualized_return: Decimal = attrs.field(default=Decimal("0.10"),
                                                 validator=NON_NEGATIVE)
    min_edge: Decimal = attrs.field(default=Decimal("0"), validator=in_range(0, 1))
    max_size: Decimal | None = attrs.field(default=None, validator=optional(POSITIVE))
    min_horizon_hours: Decimal = attrs.field(default=Decimal("1"), validator=POSITIVE)


@attrs.frozen
class CorrelationSettings:
    """``[plugins.pmscanners.correlation]``.

    Attributes:
        similarity_threshold: TF-IDF cosine similarity at or above which two questions of
            different markets are a candidate pair.
        min_violation: smallest ``bid(A) - ask(B) - fees`` (A implies B, so P(A) <= P(B))
            worth flagging, per share.
        min_liquidity: shares available at both touched levels, at least.
        max_per_event: at most this many flags per event (the best first).
        max_candidates: cap on candidate pairs kept per scan structure (most similar first).
        max_neighbors: candidate partners kept per market (most similar first).
        trade_proven: report violations of *proven* constraints (nested numeric thresholds
            of one subject) in the executable lane as risk-free; off: everything is a
            research flag.
    """

    similarity_threshold: float = attrs.field(default=0.3, validator=in_range(0, 1))
    min_violation: Decimal = attrs.field(default=Decimal("0.005"), validator=in_range(0, 1))
    min_liquidity: Decimal = attrs.field(default=Decimal("10"), validator=NON_NEGATIVE)
    max_per_event: int = attrs.field(default=3, validator=AT_LEAST_ONE)
    max_candidates: int = attrs.field(default=20_000, validator=AT_LEAST_ONE)
    max_neighbors: int = attrs.field(default=50, validator=AT_LEAST_ONE)
    trade_proven: bool = False


@attrs.frozen
class StaleSettings:
    """``[plugins.pmscanners.stale]``.

    Attributes:
        move_threshold: the event's other outcomes' implied probability (sum of mids) moved by
            at least this since the token's own book last changed ...
        min_age_s: ... and the token's book has not updated for at least this many seconds.
        min_gap: the token's quote must sit at least this far on the wrong side of its
            fair value (1 - sum of the other outcomes' mids).
        min_depth: shares at the stale level, at least.
        persistence_scans: consecutive scans the condition must hold before it is reported.
    """

    move_threshold: Decimal = attrs.field(default=Decimal("0.05"), validator=in_range(0, 1))
    min_age_s: float = attrs.field(default=30.0, validator=NON_NEGATIVE)
    min_gap: Decimal = attrs.field(default=Decimal("0.02"), validator=in_range(0, 1))
    min_depth: Decimal = attrs.field(default=Decimal("10"), validator=NON_NEGATIVE)
    persistence_scans: int = attrs.field(default=2, validator=AT_LEAST_ONE)


@attrs.frozen
class SpikeSettings:
    """``[plugins.pmscanners.spike]``.

    Attributes:
        window_s: the reference mid is the EMA of mids with this time constant.
        min_move: |mid - reference| at least this (probability points) is a spike ...
        max_depth: ... on a thin book: shares at the spiked touch at most this ...
        persistence_scans: ... seen on this many consecutive scans.
        reversion_fraction: the expected reversion: this fraction of the move.
    """

    window_s: float = attrs.field(default=300.0, validator=POSITIVE)
    min_move: Decimal = attrs.field(default=Decimal("0.08"), validator=in_range(0, 1))
    max_depth: Decimal = attrs.field(default=Decimal("200"), validator=POSITIVE)
    persistence_scans: int = attrs.field(default=2, validator=AT_LEAST_ONE)
    reversion_fraction: Decimal = attrs.field(default=Decimal("0.5"), validator=FRACTION)


@attrs.frozen
class PmScannersSettings:
    """``[plugins.pmscanners]``: one sub-table per scanner (each optional)."""

    resolution: ResolutionSettings = attrs.field(factory=ResolutionSettings)
    correlation: CorrelationSettings = attrs.field(factory=CorrelationSettings)
    stale: StaleSettings = attrs.field(factory=StaleSettings)
    spike: SpikeSettings = attrs.field(factory=SpikeSettings)
