"""``[plugins.overnight]``: the session strategy's settings, field by field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from argus_core import NON_NEGATIVE, POSITIVE, in_range, optional
from argus_overnight.sessions import SEGMENTS


def utc_seconds(text: str) -> int:
    """An ISO date or date-time (naive means UTC) as unix seconds."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _iso(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None:
        try:
            utc_seconds(value)
        except ValueError as exc:
            raise ValueError(f"{attribute.name} = {value!r} is not an ISO date") from exc


def _divides_an_hour(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 \
            or 3600 % value:
        raise ValueError(f"bar_seconds = {value!r} must divide an hour (60, 300, 900, "
                         f"3600...): every session cut is a whole UTC hour, and a longer "
                         f"bar would straddle one")


def _known_segments(instance: Any, attribute: attrs.Attribute, value: list[str]) -> None:
    if not value:  # would switch the strategy off without a word
        raise ValueError(f"segments = [] allows no segment, so the strategy could never "
                         f"trade; choose from {list(SEGMENTS)} (leave it out for all)")
    unknown = sorted(set(value) - set(SEGMENTS))
    if unknown:
        raise ValueError(f"segments: unknown {unknown}; choose from {list(SEGMENTS)}")


@attrs.frozen
class Settings:
    """``[plugins.overnight]``: what ``overnight_session`` may hold and when.

    Training: every segment instance that *ends* by ``train_end`` (and starts at or after
    ``train_start``) feeds the per-segment estimates; nothing later ever does.  The
    strategy trades only at transitions at or after ``train_end``, so a replay that starts
    there is a clean out-of-sample test.  ``history_csv`` (Kraken OHLCVT, relative to the
    config) supplies training bars from before the replay; without it the replay itself
    must start before ``train_end``.
    """

    train_end: str = attrs.field(default="2021-01-01", validator=_iso)
    train_start: str | None = attrs.field(default=None, validator=_iso)
    history_csv: Path | None = None
    instrument_id: str | None = None  # trade only this instrument (default: any bar)
    bar_seconds: int = attrs.field(default=3600, validator=_divides_an_hour)
    # Session gating: the segments the strategy may hold at all.
    segments: list[str] = attrs.field(factory=lambda: list(SEGMENTS),
                                      validator=_known_segments)
    min_samples: int = attrs.field(default=30, validator=POSITIVE)
    # training t-statistic a segment's mean return must reach (NaN would refuse every one)
    min_t: float = attrs.field(default=2.0, validator=in_range(-100, 100))
    # Mean training return a segment must beat, in bps; unset: the round trip's fees
    # (2 x the venue's taker fee) plus extra_cost_bps.
    hurdle_bps: float | None = attrs.field(default=None, validator=optional(NON_NEGATIVE))
    extra_cost_bps: float = attrs.field(default=6.0, validator=NON_NEGATIVE)  # spread + slip
    # Regime gating (the lab's regime features; published Signals win over our own).
    regime_gate: bool = True
    max_p_change: float = attrs.field(default=0.5, validator=NON_NEGATIVE)
    bocpd_beta0: float = attrs.field(default=0.04 ** 2, validator=POSITIVE)  # daily var prior
    # Optional global risk flow (see argus_overnight.riskflow for the CSV contract).
    risk_flow_csv: Path | None = None
    # the least flow score (a mean of simple returns, 0.004 = +0.4%) to hold; NaN would
    # compare false and pass every score, switching the gate off unseen
    min_risk_flow: float = attrs.field(default=0.0, validator=in_range(-1, 1))
    risk_flow_max_age_hours: float = attrs.field(default=24.0, validator=POSITIVE)

    def __attrs_post_init__(self) -> None:
        if self.train_start is not None and \
                utc_seconds(self.train_start) >= utc_seconds(self.train_end):
            raise ValueError("train_start must be before train_end")
