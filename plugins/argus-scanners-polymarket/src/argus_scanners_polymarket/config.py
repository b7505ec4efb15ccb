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

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs

from argus_core import (
    AT_LEAST_ONE,
    FINITE,
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    ConfigError,
    Range,
    RangeError,
    in_range,
    optional,
)

#: A price strictly inside (0, 1).
PRICE = in_range(0, 1, lo_open=True, hi_open=True)


# --- what Python callers pass: every setting checked as the TOML path checks it ---------
# (cattrs converts a TOML value to the field's type before these run; a Python caller's
# value reached the scanners as given: ``persistence_scans=2.5`` counted half scans,
# ``trade_proven="false"`` (a non-empty string) traded proven constraints, a float
# ``max_size`` raised in the walk.  Red team round 40.)

def _decimal(value: Any) -> Any:
    """An int or float amount as its exact ``Decimal`` (floats through ``repr``: 0.02 is
    ``Decimal("0.02")``); anything else is left to the range validator, which names the
    key (a bool, text and None are no amount)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    return value


def _optional_decimal(value: Any) -> Any:
    return None if value is None else _decimal(value)


def _real(value: Any) -> Any:
    """An int or ``Decimal`` given for a float setting as its float (a ``Decimal`` window
    divided a float in the scan and raised); anything else left to the validator."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal):
        return float(value)
    return value


def _optional_real(value: Any) -> Any:
    return None if value is None else _real(value)


def _flag(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A switch must be a bool: ``"false"`` (a non-empty string, so true) or 1 are not."""
    if not isinstance(value, bool):
        raise RangeError(attribute.name, repr(value), "{true, false}")


def _whole(rng: Range) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """``rng`` for a count: an int (not a bool, not 2.5) inside it."""
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and rng.optional:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            raise RangeError(attribute.name, repr(value), f"whole numbers in {rng}")
        rng(instance, attribute, value)
    return check


def _text(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A name: non-empty text."""
    if not isinstance(value, str) or not value.strip():
        raise RangeError(attribute.name, repr(value), "a non-empty name")


def _pairs(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """``latency.pairs``: underlying (or token id) -> a spot instrument id
    (``venue:symbol``, e.g. ``kraken:BTC/USD``); a value that is no instrument id named
    no book, and the underlying's tokens were skipped without a word."""
    if not isinstance(value, dict):
        raise RangeError(attribute.name, repr(value), "a table of underlying = instrument id")
    for key, iid in value.items():
        venue, _, symbol = iid.partition(":") if isinstance(iid, str) else ("", "", "")
        if not isinstance(key, str) or not key or not venue or not symbol:
            raise RangeError(f"{attribute.name}.{key}", repr(iid),
                             "an instrument id (venue:symbol, e.g. kraken:BTC/USD)")


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

    near_certain_price: Decimal = attrs.field(converter=_decimal, default=Decimal("0.95"),
                                              validator=PRICE)
    max_hours_to_expiry: Decimal = attrs.field(converter=_decimal, default=Decimal("72"),
                                               validator=POSITIVE)
    redemption_delay_hours: Decimal = attrs.field(converter=_decimal, default=Decimal("1"),
                                                  validator=NON_NEGATIVE)
    min_annualized_return: Decimal = attrs.field(converter=_decimal, default=Decimal("0.10"),
                                                 validator=NON_NEGATIVE)
    min_edge: Decimal = attrs.field(converter=_decimal, default=Decimal("0"),
                                    validator=in_range(0, 1))
    max_size: Decimal | None = attrs.field(converter=_optional_decimal, default=None,
                                           validator=optional(POSITIVE))
    min_horizon_hours: Decimal = attrs.field(converter=_decimal, default=Decimal("1"),
                                             validator=POSITIVE)


@attrs.frozen
class CorrelationSettings:
    """``[plugins.pmscanners.correlation]``.

    Attributes:
        similarity_threshold: TF-IDF cosine similarity at or above which two questions of
            different markets are a candidate pair.
        min_violation: smallest ``bid(A) - ask(B) - fees`` (A implies B, so P(A) <= P(B))
            worth flagging, per share.
        min_liquidity: shares available at both touched levels, at least.
        max_per_event: at most this many flags per event (the best first; the event a
            finding names: the Gamma event, so nested markets of one event share it).
        max_candidates: cap on candidate pairs kept per scan structure (most similar first).
        max_neighbors: candidate partners kept per market (most similar first).
        trade_proven: report violations of *proven* constraints (nested numeric thresholds
            of one subject) in the executable lane as risk-free; off: everything is a
            research flag.
    """

    similarity_threshold: float = attrs.field(converter=_real, default=0.3,
                                              validator=in_range(0, 1))
    min_violation: Decimal = attrs.field(converter=_decimal, default=Decimal("0.005"),
                                         validator=in_range(0, 1))
    min_liquidity: Decimal = attrs.field(converter=_decimal, default=Decimal("10"),
                                         validator=NON_NEGATIVE)
    max_per_event: int = attrs.field(default=3, validator=_whole(AT_LEAST_ONE))
    max_candidates: int = attrs.field(default=20_000, validator=_whole(AT_LEAST_ONE))
    max_neighbors: int = attrs.field(default=50, validator=_whole(AT_LEAST_ONE))
    trade_proven: bool = attrs.field(default=False, validator=_flag)


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

    move_threshold: Decimal = attrs.field(converter=_decimal, default=Decimal("0.05"),
                                          validator=in_range(0, 1))
    min_age_s: float = attrs.field(converter=_real, default=30.0, validator=NON_NEGATIVE)
    min_gap: Decimal = attrs.field(converter=_decimal, default=Decimal("0.02"),
                                   validator=in_range(0, 1))
    min_depth: Decimal = attrs.field(converter=_decimal, default=Decimal("10"),
                                     validator=NON_NEGATIVE)
    persistence_scans: int = attrs.field(default=2, validator=_whole(AT_LEAST_ONE))


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

    window_s: float = attrs.field(converter=_real, default=300.0, validator=POSITIVE)
    min_move: Decimal = attrs.field(converter=_decimal, default=Decimal("0.08"),
                                    validator=in_range(0, 1))
    max_depth: Decimal = attrs.field(converter=_decimal, default=Decimal("200"),
                                     validator=POSITIVE)
    persistence_scans: int = attrs.field(default=2, validator=_whole(AT_LEAST_ONE))
    reversion_fraction: Decimal = attrs.field(converter=_decimal, default=Decimal("0.5"),
                                              validator=FRACTION)


@attrs.frozen
class BaselineSettings:
    """``[plugins.pmscanners.baseline]``: the ``baseline`` forecaster.

    Attributes:
        max_trade_age_s: the token's last trade counts when at most this old.
        confidence: the ``Forecast.confidence`` it reports (low: it is the market's own
            price, so it can only flag a book out of line with its own last trade).
    """

    max_trade_age_s: float = attrs.field(converter=_real, default=300.0, validator=POSITIVE)
    confidence: float = attrs.field(converter=_real, default=0.1, validator=in_range(0, 1))


@attrs.frozen
class ValueSettings:
    """``[plugins.pmscanners.value]``.

    Attributes:
        forecaster: the registered forecaster (``register_forecasters``) asked for
            ``p_win`` of each token.
        min_edge: each ask level is taken while ``p - ask - unit fee >= min_edge``.
        max_size: cap on the shares per token (None: the book's depth).
        executable_min_edge: with ``executable_min_confidence``, the gate to the executable
            lane: edge per share and forecast confidence at least these.  Unset: research.
        executable_min_confidence: see ``executable_min_edge``.
    """

    forecaster: str = attrs.field(default="baseline", validator=_text)
    min_edge: Decimal = attrs.field(converter=_decimal, default=Decimal("0.02"),
                                    validator=in_range(0, 1))
    max_size: Decimal | None = attrs.field(converter=_optional_decimal, default=None,
                                           validator=optional(POSITIVE))
    executable_min_edge: Decimal | None = attrs.field(converter=_optional_decimal, default=None,
                                                      validator=optional(in_range(0, 1)))
    executable_min_confidence: float | None = attrs.field(converter=_optional_real, default=None,
                                                          validator=optional(in_range(0, 1)))


@attrs.frozen
class MakerSettings:
    """``[plugins.pmscanners.maker]``.

    Attributes:
        quote_size: shares per quote (5: Polymarket's usual ``orderMinSize``); raised to the
            instrument's ``min_size`` (and to the rewards program's ``rewards_min_size``
            when rewards are counted), rounded up to its lot.
        min_edge: a side is reported when its edge per share exceeds this.
        adverse_floor: expected adverse selection per filled share with no flow against
            the quote (price units).
        adverse_per_flow: extra adverse selection per unit of OFI imbalance against the
            quote (price units; imbalance in [-1, 1]).
        ofi_window_s: the OFI window; ``ofi_levels``: book levels in it.
        reward_per_share: liquidity reward per filled share (price units), when the venue's
            instrument ``meta`` gives no rewards program.
        reward_pool_share: the share of a market's daily rewards pool (``meta
            ["rewards_daily_rate"]``) a quote expects; with ``expected_daily_fills`` it
            makes the reward per filled share.  0: only ``reward_per_share``.
        expected_daily_fills: shares a quote expects to fill per day.
        inventory: held shares per token id (the scanner sees no portfolio); a published
            ``Signal`` named ``inventory_signal`` for the token overrides it.
        inventory_signal: the signal name read for the inventory.
        skew_per_share: the reservation price moves this much (price units) per share held.
        max_inventory: no further bid at or above this many shares held, no ask at or
            below minus it.
    """

    quote_size: Decimal = attrs.field(converter=_decimal, default=Decimal("5"), validator=POSITIVE)
    min_edge: Decimal = attrs.field(converter=_decimal, default=Decimal("0.001"),
                                    validator=in_range(0, 1))
    adverse_floor: Decimal = attrs.field(converter=_decimal, default=Decimal("0.005"),
                                         validator=in_range(0, 1))
    adverse_per_flow: Decimal = attrs.field(converter=_decimal, default=Decimal("0.02"),
                                            validator=in_range(0, 1))
    ofi_window_s: float = attrs.field(converter=_real, default=60.0, validator=POSITIVE)
    ofi_levels: int = attrs.field(default=1, validator=_whole(AT_LEAST_ONE))
    reward_per_share: Decimal = attrs.field(converter=_decimal, default=Decimal("0"),
                                            validator=in_range(0, 1))
    reward_pool_share: float = attrs.field(converter=_real, default=0.0, validator=in_range(0, 1))
    expected_daily_fills: Decimal = attrs.field(converter=_decimal, default=Decimal("1000"),
                                                validator=POSITIVE)
    inventory: dict[str, Decimal] = attrs.field(factory=dict)
    inventory_signal: str = attrs.field(default="inventory", validator=_text)
    skew_per_share: Decimal = attrs.field(converter=_decimal, default=Decimal("0.0001"),
                                          validator=NON_NEGATIVE)
    max_inventory: Decimal | None = attrs.field(converter=_optional_decimal, default=None,
                                                validator=optional(POSITIVE))


@attrs.frozen
class LatencySettings:
    """``[plugins.pmscanners.latency]``.

    Attributes:
        pairs: underlying (instrument ``meta["underlying"]``, e.g. ``"BTC"``) or token id ->
            the spot instrument id in the same market state (e.g. ``"kraken:BTC/USD"``).
        min_edge: flagged when ``P - ask - unit fee`` is at least this (the threshold
            beyond fees).
        vol_window_s: realised volatility over the spot samples of this many seconds.
        default_vol: annualised volatility used until ``min_vol_samples`` returns exist.
        min_vol_samples: returns needed before the realised volatility is used.
        max_size: cap on the shares per token.
        executable_min_edge: gate to the executable lane (unset: research only).
        max_spot_age_s: the spot is unknown when its newest print, bar or book is older
            than this at the scan, and an opening price read from the samples must lie
            within this of the window's start.
    """

    pairs: dict[str, str] = attrs.field(factory=dict, validator=_pairs)
    min_edge: Decimal = attrs.field(converter=_decimal, default=Decimal("0.03"),
                                    validator=in_range(0, 1))
    vol_window_s: float = attrs.field(converter=_real, default=3600.0, validator=POSITIVE)
    default_vol: float = attrs.field(converter=_real, default=0.6, validator=POSITIVE)
    min_vol_samples: int = attrs.field(default=10, validator=_whole(AT_LEAST_ONE))
    max_size: Decimal | None = attrs.field(converter=_optional_decimal, default=None,
                                           validator=optional(POSITIVE))
    executable_min_edge: Decimal | None = attrs.field(converter=_optional_decimal, default=None,
                                                      validator=optional(in_range(0, 1)))
    max_spot_age_s: float = attrs.field(converter=_real, default=120.0, validator=POSITIVE)


@attrs.frozen
class RankingSettings:
    """``[plugins.pmscanners.ranked]``: one ranking across scanners (README, "ranked").

    Attributes:
        scanners: this plugin's scanners the ranking runs (empty: all but ``ranked``).
        w_edge, w_capacity, w_confidence, w_persistence, w_ofi, w_competition: the weights
            of the score's terms.
        edge_scale: edge per share that scores 1 (edges above it score 1 too).
        capacity_scale: notional (price x size) scoring 1 on the log scale.
        persistence_cap: consecutive scans scoring 1.
        competition_cap: other findings on the same instruments scoring 1.
        executable_min_score, executable_min_confidence, executable_min_persistence: the
            gate for a finding that is not risk-free: executable only when all three are
            set and met (and its scanner did not rule it out).  Unset: research.
        ofi_window_s: the OFI window used for the ``w_ofi`` term.
    """

    scanners: list[str] = attrs.field(factory=list)
    w_edge: float = attrs.field(converter=_real, default=0.35, validator=NON_NEGATIVE)
    w_capacity: float = attrs.field(converter=_real, default=0.15, validator=NON_NEGATIVE)
    w_confidence: float = attrs.field(converter=_real, default=0.25, validator=NON_NEGATIVE)
    w_persistence: float = attrs.field(converter=_real, default=0.10, validator=NON_NEGATIVE)
    w_ofi: float = attrs.field(converter=_real, default=0.10, validator=NON_NEGATIVE)
    w_competition: float = attrs.field(converter=_real, default=0.05, validator=NON_NEGATIVE)
    edge_scale: float = attrs.field(converter=_real, default=0.05, validator=POSITIVE)
    capacity_scale: float = attrs.field(converter=_real, default=1000.0, validator=POSITIVE)
    persistence_cap: int = attrs.field(default=5, validator=_whole(AT_LEAST_ONE))
    competition_cap: int = attrs.field(default=3, validator=_whole(AT_LEAST_ONE))
    executable_min_score: float | None = attrs.field(converter=_optional_real, default=None,
                                                     validator=optional(FINITE))
    executable_min_confidence: float | None = attrs.field(converter=_optional_real, default=None,
                                                          validator=optional(in_range(0, 1)))
    executable_min_persistence: int | None = attrs.field(
        default=None, validator=_whole(optional(AT_LEAST_ONE)))
    ofi_window_s: float = attrs.field(converter=_real, default=60.0, validator=POSITIVE)


#: ``time_in_force`` values of :class:`MakerStrategySettings`.
MAKER_TIME_IN_FORCE = ("auto", "post_only", "gtc")


def token_ids(value: object) -> list[str]:
    """``pm_maker.tokens`` as the text ids the strategy matches against ``Instrument.id`` /
    ``symbol``.  A whole number (``tokens = [123]``: a token id written without quotes) is
    its digits; anything else that is not text, an empty id, one with spaces, or a bare id
    written as a fraction or exponent (a float has lost a 77-digit id's digits) is refused:
    before, ``[123]`` was kept as the int 123, matched no instrument, and nothing was quoted
    without a word."""
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise TokenIdError(f"pm_maker.tokens: expected a list of token ids, got "
                           f"{type(value).__name__}")
    out = []
    for k, item in enumerate(value):
        where = f"pm_maker.tokens[{k}]"
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str):
            raise TokenIdError(f"{where}: expected a token id (text), got "
                               f"{type(item).__name__} {item!r}")
        if not item or item != item.strip() or " " in item:
            raise TokenIdError(f"{where}: {item!r} is not a token id (empty or has spaces)")
        bare = item.rpartition(":")[2]
        if not bare.isdigit() and _is_number(bare):
            raise TokenIdError(f"{where}: {item!r} is a number with a fraction or exponent, "
                               f"not a token id (its digits are lost): write the id in quotes")
        out.append(item)
    return out


def _is_number(text: str) -> bool:
    """Whether ``text`` is a decimal number written with a fraction or an exponent."""
    return re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text) is not None


class TokenIdError(ConfigError, ValueError):
    """A ``pm_maker.tokens`` entry that is no token id (a ``ValueError`` too, so attrs and
    cattrs report it like any validator failure, under its key)."""


#: ``pm_maker``'s default ``stop_before_end_s``: no quote within an hour of the event's end
#: (typed ``float | None`` so the field's type is too: ``None`` turns it off).
STOP_BEFORE_END_S: float | None = 3600.0


@attrs.frozen
class MakerStrategySettings:
    """``[plugins.pmscanners.pm_maker]``: the ``pm_maker`` strategy's lifecycle (its prices,
    sizes and edges come from ``[plugins.pmscanners.maker]``, the maker scanner's table).

    Attributes:
        tokens: instrument ids (``"polymarket:<token id>"``) or bare token ids to quote;
            empty: every binary instrument with a two-sided book.
        max_inventory: shares held at which the bid stops (and, with ``allow_short``,
            short shares at which the ask stops); a bid is sized so that a full fill
            stays within it.  Then only the reducing side is quoted.
        allow_short: quote an ask without holding the shares (off: an ask sells only
            shares held, as on Polymarket, where a SELL needs the tokens).
        cancel_ofi: cancel (and do not post) the bid while the OFI imbalance is at or
            below ``-cancel_ofi`` (selling pressure), the ask while it is at or above
            ``+cancel_ofi``.
        min_requote_s: per side, a quote is moved (cancel that side, then post) or
            re-posted after a cancel at most once per this many seconds; cancels for risk
            (adverse OFI, the inventory limit, a negative edge, a quote that would cross,
            a stale book, the trading state) never wait.
        refresh_s: a quote resting this long is cancelled and posted afresh (it
            reconciles orders the venue ended unseen, such as a rejected post-only
            order); 0: never.
        time_in_force: ``post_only`` (refused if it would cross; the paper broker and
            venues with ``supports_post_only``), ``gtc`` (a limit priced not to cross), or
            ``auto``: post-only in replay and paper, GTC live (the Polymarket venue takes
            no post-only orders).
        cancel_when_stale: cancel the token's quotes while its book is not tradeable (a
            disconnect, a checksum failure, a quiet feed): a maker does not rest blind.
        stop_before_end_s: cancel the token's quotes, and post none, from this many
            seconds before its event's end (``Event.end_ts_ns``) on: near and after the
            end the outcome is often known to takers before the book moves, and a resting
            quote is only picked off.  Always, whatever ``cancel_when_stale``; 0: from
            the end itself on; unset (``None``): never.  Default 3600 (an hour).  An
            event with no end time is quoted as before.
    """

    tokens: list[str] = attrs.field(factory=list, converter=token_ids)
    max_inventory: Decimal = attrs.field(converter=_decimal, default=Decimal("50"),
                                         validator=POSITIVE)
    allow_short: bool = attrs.field(default=False, validator=_flag)
    cancel_ofi: float = attrs.field(converter=_real, default=0.6,
                                    validator=in_range(0, 1, lo_open=True))
    min_requote_s: float = attrs.field(converter=_real, default=2.0, validator=NON_NEGATIVE)
    refresh_s: float = attrs.field(converter=_real, default=300.0, validator=NON_NEGATIVE)
    time_in_force: str = attrs.field(default="auto",
                                     validator=attrs.validators.in_(MAKER_TIME_IN_FORCE))
    cancel_when_stale: bool = attrs.field(default=True, validator=_flag)
    stop_before_end_s: float | None = attrs.field(converter=_optional_real,
        default=STOP_BEFORE_END_S, validator=attrs.validators.optional(NON_NEGATIVE))


@attrs.frozen
class PmScannersSettings:
    """``[plugins.pmscanners]``: one sub-table per scanner (each optional), and
    ``pm_maker`` for the maker strategy."""

    resolution: ResolutionSettings = attrs.field(factory=ResolutionSettings)
    correlation: CorrelationSettings = attrs.field(factory=CorrelationSettings)
    stale: StaleSettings = attrs.field(factory=StaleSettings)
    spike: SpikeSettings = attrs.field(factory=SpikeSettings)
    baseline: BaselineSettings = attrs.field(factory=BaselineSettings)
    value: ValueSettings = attrs.field(factory=ValueSettings)
    maker: MakerSettings = attrs.field(factory=MakerSettings)
    latency: LatencySettings = attrs.field(factory=LatencySettings)
    ranked: RankingSettings = attrs.field(factory=RankingSettings)
    pm_maker: MakerStrategySettings = attrs.field(factory=MakerStrategySettings)
