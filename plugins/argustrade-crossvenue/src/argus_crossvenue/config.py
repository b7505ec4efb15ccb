"""``[plugins.crossvenue]``: the composite venue's and the scanner's settings.

Example::

    [plugins.crossvenue]
    mapping = "mapping.toml"              # relative to the config file
    min_edge = "0.001"                    # dollars per unit, after both venues' fees
    first_leg = "thinner"                 # which leg a live basket sends first
    [plugins.crossvenue.kalshi]           # a whole [plugins.kalshi] table
    rest_url = "http://127.0.0.1:8080"
    markets = ["KXFEDCUT-26SEP"]
    [plugins.crossvenue.polymarket]       # a whole [plugins.polymarket] table
    gamma_url = "http://127.0.0.1:8765"
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from argus_core import NON_NEGATIVE, in_range, to_decimal

#: The inner venues, by the entry-point name of their plugins.
KALSHI, POLYMARKET = "kalshi", "polymarket"
INNER_VENUES = (KALSHI, POLYMARKET)


def _dec_min_edge(value: Any) -> Decimal:
    return to_decimal(value, field="min_edge")


def _table(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, dict):
        raise ValueError(f"{attribute.name}: must be a table (the inner venue's settings, as "
                         f"[plugins.{attribute.name}] would hold them), got {value!r}")


@attrs.frozen
class CrossVenueSettings:
    """Settings of the ``crossvenue`` venue and scanner (``[plugins.crossvenue]``)."""

    #: ``[plugins.kalshi]``'s keys for the inner Kalshi venue.
    kalshi: dict[str, Any] = attrs.field(factory=dict, validator=_table)
    #: ``[plugins.polymarket]``'s keys for the inner Polymarket venue.
    polymarket: dict[str, Any] = attrs.field(factory=dict, validator=_table)
    #: The mapping file (TOML, see :mod:`argus_crossvenue.mapping`); relative to the config.
    mapping: Path | None = None
    #: Folder the inner venues' relative paths resolve against.  Left at its default it
    #: becomes the config file's folder (the core resolves every relative ``Path``).
    base_dir: Path = Path(".")
    #: Smallest profit per unit, after both venues' fees, that a price level must keep to
    #: be walked into (dollars; 0: any positive margin).
    min_edge: Decimal = attrs.field(default=Decimal(0), converter=_dec_min_edge,
                                    validator=NON_NEGATIVE)
    #: Trade pairs whose resolution sources or dates differ (never risk-free).  Off: they
    #: are reported in the research lane only.
    trade_not_risk_free: bool = False
    #: Which leg of a live cross-venue basket goes first (its fill sizes the second):
    #: "thinner" (the book with less depth within the limit; ties: Kalshi), "kalshi" or
    #: "polymarket".
    first_leg: str = attrs.field(default="thinner", validator=attrs.validators.in_(
        ("thinner", KALSHI, POLYMARKET)))
    #: Seconds a live leg may take to become final (filled, or its rest cancelled) before
    #: the basket gives up on it (the first leg: nothing more is sent; the second: the
    #: basket is reported incomplete and the engine unwinds the first).
    leg_timeout_s: float = attrs.field(default=10.0, validator=in_range(0, 600, lo_open=True))
