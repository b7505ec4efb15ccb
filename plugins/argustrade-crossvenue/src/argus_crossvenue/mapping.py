"""The mapping file: which Kalshi contract and which Polymarket token are one outcome.

Pairs are written by a person (``argus crossvenue suggest`` only proposes candidates);
only mapped pairs are ever scanned or traded::

    [[pairs]]
    name = "fed-cut-sep-2026"            # the opportunity's event id
    relation = "same"                    # "same": both pay in the same world;
                                         # "complement": exactly one of them pays
    [pairs.kalshi]
    ticker = "KXFEDCUT-26SEP"
    side = "yes"                         # the Kalshi contract this pair maps
    resolution_source = "FOMC statement"
    settles = 2026-09-16                 # TOML date (or "2026-09-16")
    [pairs.polymarket]
    token_id = "7300..."                 # the CLOB token this pair maps
    outcome = "Yes"                      # that token's outcome, as Gamma names it
    resolution_source = "FOMC statement"
    settles = 2026-09-16

A pair whose resolution sources or settlement dates differ is *not risk-free*: one
venue may resolve differently, or later, than the other.  The scanner says so in the
opportunity's ``reason`` and ``risk_free = False``.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path
from typing import Any

import attrs

from argus_core import ConfigError

SAME, COMPLEMENT = "same", "complement"
_TICKER = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,99}$")


@attrs.frozen
class KalshiSide:
    """The Kalshi half of a pair: a market's YES or NO contract."""

    ticker: str
    side: str  # "yes" | "no"
    resolution_source: str
    settles: dt.date

    @property
    def instrument_id(self) -> str:
        """``kalshi:<TICKER>/YES`` or ``/NO`` (the Kalshi venue's ids)."""
        return f"kalshi:{self.ticker}/{self.side.upper()}"

    @property
    def complement_id(self) -> str:
        """The other contract of the same market."""
        other = "NO" if self.side == "yes" else "YES"
        return f"kalshi:{self.ticker}/{other}"


@attrs.frozen
class PolymarketSide:
    """The Polymarket half of a pair: one CLOB token."""

    token_id: str
    outcome: str
    resolution_source: str
    settles: dt.date

    @property
    def instrument_id(self) -> str:
        """``polymarket:<token id>`` (the Polymarket venue's ids)."""
        return f"polymarket:{self.token_id}"


@attrs.frozen
class Pair:
    """One mapped pair: the Kalshi contract and the Polymarket token, and whether they pay
    in the same world (``same``) or in opposite worlds (``complement``)."""

    name: str
    relation: str
    kalshi: KalshiSide
    polymarket: PolymarketSide

    def differences(self) -> list[str]:
        """Why the pair is not risk-free (empty when sources and dates agree)."""
        out = []
        k, p = self.kalshi, self.polymarket
        if k.resolution_source.strip().lower() != p.resolution_source.strip().lower():
            out.append(f"resolution sources differ (kalshi: {k.resolution_source!r}, "
                       f"polymarket: {p.resolution_source!r})")
        if k.settles != p.settles:
            out.append(f"settlement dates differ (kalshi: {k.settles.isoformat()}, "
                       f"polymarket: {p.settles.isoformat()})")
        return out

    @property
    def risk_free(self) -> bool:
        """Both venues resolve from the same source on the same date."""
        return not self.differences()


def _str(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}.{key}: required, a non-empty string (got {value!r})")
    return value.strip()


def _date(table: dict[str, Any], key: str, where: str) -> dt.date:
    value = table.get(key)
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise ConfigError(f"{where}.{key}: required, a date like 2026-09-16 (got {value!r})")


def _known(table: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    extra = sorted(set(table) - set(keys))
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)} (known: "
                          f"{', '.join(keys)})")


def parse_pair(raw: Any, where: str) -> Pair:
    """One ``[[pairs]]`` item, validated; errors name the file, the pair and the key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    _known(raw, ("name", "relation", "kalshi", "polymarket"), where)
    name = _str(raw, "name", where)
    relation = raw.get("relation", SAME)
    if relation not in (SAME, COMPLEMENT):
        raise ConfigError(f"{where}.relation: must be 'same' or 'complement', got {relation!r}")
    k, p = raw.get("kalshi"), raw.get("polymarket")
    if not isinstance(k, dict) or not isinstance(p, dict):
        raise ConfigError(f"{where}: needs a [pairs.kalshi] and a [pairs.polymarket] table")
    kw, pw = f"{where}.kalshi", f"{where}.polymarket"
    _known(k, ("ticker", "side", "resolution_source", "settles", "title"), kw)
    _known(p, ("token_id", "outcome", "resolution_source", "settles", "title"), pw)
    ticker = _str(k, "ticker", kw)
    if not _TICKER.match(ticker):
        raise ConfigError(f"{kw}.ticker: {ticker!r} is not a Kalshi market ticker")
    side = str(k.get("side", "yes")).lower()
    if side not in ("yes", "no"):
        raise ConfigError(f"{kw}.side: must be 'yes' or 'no', got {k.get('side')!r}")
    token = _str(p, "token_id", pw)
    if not token.isdigit():
        raise ConfigError(f"{pw}.token_id: {token!r} is not a decimal CLOB token id")
    return Pair(name, relation,
                KalshiSide(ticker, side, _str(k, "resolution_source", kw), _date(k, "settles", kw)),
                PolymarketSide(token, _str(p, "outcome", pw), _str(p, "resolution_source", pw),
                               _date(p, "settles", pw)))


def load_mapping(path: Path) -> list[Pair]:
    """Every pair of the mapping file at ``path``; a clear ``ConfigError`` naming the file
    and the key for anything missing, unknown or malformed, or a pair name used twice."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: mapping file not found ([plugins.crossvenue] "
                          f"mapping)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    _known(raw, ("pairs",), str(path))
    items = raw.get("pairs", [])
    if not isinstance(items, list):
        raise ConfigError(f"{path}: pairs must be an array of tables ([[pairs]])")
    pairs = [parse_pair(item, f"{path}: pairs[{n}]") for n, item in enumerate(items)]
    names = [p.name for p in pairs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{path}: pair name(s) {', '.join(twice)} used more than once")
    first: dict[tuple[str, str], str] = {}
    for pair in pairs:
        key = (pair.kalshi.ticker, pair.polymarket.token_id)
        if key in first:
            # either a repeat, or a contradiction (one of them buys one outcome twice)
            raise ConfigError(f"{path}: pairs {first[key]!r} and {pair.name!r} both map "
                              f"Kalshi market {key[0]} to Polymarket token {key[1]}; map "
                              f"a market pair once")
        first[key] = pair.name
    return pairs
