"""TOML config -> frozen attrs classes, with errors that name the file and the key.

Layout::

    [argus]
    plugins = ["kraken"]          # entry-point names; omitted = every installed plugin
    mode = "replay"               # replay | paper | live (live also needs --live)
    seed = 0

    [run]
    venue = "replay"
    strategies = ["ma_cross"]
    scanners = []
    sizer = "fixed_fraction"
    starting_cash = "100000"

    [paper]
    latency_ms = 0

    [plugins.replay]              # each plugin's own table, validated by its config_class()
    bars_csv = "data/btc.csv"

Relative paths inside a config are resolved against the config file's folder
by :func:`resolve_path`.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import cattrs
from cattrs.cols import is_sequence, list_structure_factory
from cattrs.v import format_exception

from argus_core.errors import ArgusError, ConfigError, shown
from argus_core.models import GRID_STEPS
from argus_core.secrets import Secret, redact
from argus_core.serde import converter as _base_converter
from argus_core.serde import loads_frame

MODES = ("replay", "paper", "live")

config_converter = _base_converter.copy(forbid_extra_keys=True)


def _structure_secret(value: Any, _: type) -> Secret:
    if not isinstance(value, str):
        raise ConfigError("expected a secret reference string like '$env:NAME'")
    return Secret(value)


def _structure_int(value: Any, _: type) -> int:
    # TOML tells whole numbers from floats; 2.7 or true in a count is a mistake to report,
    # not to truncate (cattrs' default: int(2.7) == 2, int(True) == 1).  Text passes for
    # overrides, which may arrive as strings ("plugins.lab.gates.regime_min_bars" = "5").
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a whole number, got {shown(value)}")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"expected a whole number, got {shown(value)}")
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {shown(value)}") from None
    return value


def _structure_float(value: Any, _: type) -> float:
    # cattrs' default, float(value), read true as 1.0: `max_drawdown = true` was a limit of
    # 100 %.  Text passes as for counts (overrides); NaN and ranges are the validators'.
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise ValueError
        return float(value)
    except ValueError:
        raise ValueError(f"expected a number, got {shown(value)}") from None


def _structure_bool(value: Any, _: type) -> bool:
    # Registered because bool is an int (the int hook would catch it), and because
    # cattrs' default, bool(value), reads the text "false" as true.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"expected true or false, got {shown(value)}")


def _structure_str(value: Any, _: type) -> str:
    # cattrs' default is str(value): sizer = ["kelly"] became the name "['kelly']" and
    # venue = true the name "True".  Numbers pass as their text: an override such as
    # --set plugins.replay.symbol=2024 arrives as JSON.
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"expected text, got {_kind(value)}")


def _structure_path(value: Any, _: type) -> Path:
    # Path("") is ".", the config's own folder: an empty setting must not read a directory.
    if not isinstance(value, str | Path):
        raise ValueError(f"expected a path (text), got {_kind(value)}")
    if not str(value).strip():
        raise ValueError("expected a path, got an empty string")
    return Path(value)


def _kind(value: Any) -> str:
    """How a wrongly typed value reads in an error (never the value itself: a secret put
    in the wrong key must not be echoed)."""
    kinds = {bool: "true/false", str: "text", dict: "a table", list: "a list",
             type(None): "nothing"}
    return next((k for t, k in kinds.items() if isinstance(value, t)),
                "a number" if isinstance(value, int | float | Decimal)
                else type(value).__name__)


def _is_list(type_: Any) -> bool:
    return is_sequence(type_) and getattr(type_, "__origin__", None) is not tuple


def _list_factory(type_: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    # cattrs builds a list from any iterable: strategies = "ma_cross" became the strategies
    # 'm', 'a', ... and a table its keys.  A list must be written as one.
    inner = list_structure_factory(type_, converter)

    def structure_list(value: Any, cl: Any) -> Any:
        if isinstance(value, str | bytes | Mapping):
            example = f' (write ["{value}"])' if isinstance(value, str) else ""
            raise ValueError(f"expected a list, got {_kind(value)}{example}")
        return inner(value, cl)
    return structure_list


config_converter.register_structure_hook(str, _structure_str)
config_converter.register_structure_hook(int, _structure_int)
config_converter.register_structure_hook(float, _structure_float)
config_converter.register_structure_hook(bool, _structure_bool)
config_converter.register_structure_hook(Secret, _structure_secret)
config_converter.register_unstructure_hook(Secret, lambda s: s.reference)
config_converter.register_structure_hook(Path, _structure_path)
config_converter.register_unstructure_hook(Path, str)
config_converter.register_structure_hook_factory(_is_list, _list_factory)


def _in(*choices: str) -> Any:
    return attrs.validators.in_(choices)


# -- numeric ranges ---------------------------------------------------------------------------
Number = int | float | Decimal


class RangeError(ConfigError, ValueError):
    """A numeric setting outside its allowed range; names the key, the value and the range.

    A ``ValueError`` too, so attrs and cattrs treat it like any validator failure."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        super().__init__(f"{key} = {value} is outside the allowed range {allowed}")
        self.key, self.value, self.allowed = key, value, allowed


@attrs.frozen
class Range:
    """An attrs validator: the value lies in an interval; ``None`` passes when ``optional``.

    ``lo``/``hi`` of ``None`` leave that side unbounded.  NaN never passes, and neither does
    an infinity (TOML accepts ``inf``) unless it is itself a closed bound, as in
    ``Range(lo=-math.inf)`` for "no floor, explicitly".
    """

    lo: Number | None = None
    hi: Number | None = None
    lo_open: bool = False
    hi_open: bool = False
    optional: bool = False

    def __str__(self) -> str:
        def show(bound: Number) -> str:
            if isinstance(bound, int) and bound >= 10**6 and str(bound).rstrip("0") == "1":
                return f"1e{len(str(bound)) - 1}"  # 10**15 reads 1e15, not 16 digits
            return f"{bound:g}" if isinstance(bound, float) else str(bound)
        left = "(-inf" if self.lo is None else f"{'(' if self.lo_open else '['}{show(self.lo)}"
        right = "inf)" if self.hi is None else f"{show(self.hi)}{')' if self.hi_open else ']'}"
        return f"{left}, {right}" + (" or unset" if self.optional else "")

    def contains(self, value: Number) -> bool:
        """True when ``value`` lies in the interval."""
        if isinstance(value, float) and not math.isfinite(value):
            return ((value == self.lo and not self.lo_open)
                    or (value == self.hi and not self.hi_open))
        if isinstance(value, Decimal) and not value.is_finite():
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return not (self.hi is not None
                    and (value >= self.hi if self.hi_open else value > self.hi))

    def __call__(self, instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None and self.optional:
            return
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise RangeError(attribute.name, repr(value), str(self))
        if not self.contains(value):
            raise RangeError(attribute.name, value, str(self))


def in_range(lo: Number | None = None, hi: Number | None = None, *, lo_open: bool = False,
             hi_open: bool = False, optional: bool = False) -> Range:
    """An attrs validator for a numeric setting, e.g. ``in_range(0, 1, lo_open=True)`` is a
    fraction in (0, 1]; errors name the key, the value and the range."""
    return Range(lo, hi, lo_open, hi_open, optional)


def url_scheme(*schemes: str) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator for an endpoint setting: a string starting with one of
    ``schemes`` (``url_scheme("ws", "wss")``); the error names the key and the schemes."""
    prefixes = tuple(f"{s}://" for s in schemes)

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, str) or not value.startswith(prefixes):
            raise ValueError(f"{attribute.name}: {value!r} must start with "
                             f"{' or '.join(prefixes)}")
    return check


def optional(rng: Range) -> Range:
    """``rng`` that also lets ``None`` (unset) through."""
    return attrs.evolve(rng, optional=True)


#: Common ranges.  Counts and sizes are positive; costs and delays non-negative; a
#: fraction of something (equity, volume, a drawdown) lies in (0, 1]; a probability in [0, 1].
POSITIVE = in_range(0, lo_open=True)
NON_NEGATIVE = in_range(0)
FRACTION = in_range(0, 1, lo_open=True)
PROBABILITY = in_range(0, 1)
FINITE = in_range()
AT_LEAST_ONE = in_range(1)
BPS = in_range(0, 10_000)  # a cost in basis points: at most the whole notional
GRID = in_range(*GRID_STEPS)  # a tick or a lot (an Instrument's bounds)


@attrs.frozen
class ArgusSection:
    """``[argus]``: which plugins load, the trading mode and the seed."""

    plugins: list[str] | None = None
    mode: str = attrs.field(default="replay", validator=_in(*MODES))
    seed: int = attrs.field(default=0, validator=in_range(0, 2**63 - 1))  # numpy needs >= 0


def _capital_shares(_inst: object, _attr: object, shares: dict[str, Decimal]) -> None:
    for slot, share in shares.items():
        if not 0 < share <= 1:
            raise RangeError(f"capital.{slot}", share, "(0, 1]")
    if sum(shares.values(), Decimal(0)) > 1:
        raise RangeError("the sum of [run] capital", sum(shares.values()), "(0, 1]")


@attrs.frozen
class RunSection:
    """``[run]``: what the loop wires together."""

    venue: str = "replay"
    strategies: list[str] = attrs.Factory(list)
    scanners: list[str] = attrs.Factory(list)
    sizer: str = "fixed_fraction"
    risk_checks: list[str] | None = None  # None = every registered check
    # At most 1e15: equity is kept to 1e-6 in 28-digit decimal arithmetic (1e999999 was
    # accepted and failed the first equity row with decimal.InvalidOperation).
    starting_cash: Decimal = attrs.field(default=Decimal("100000"),
                                         validator=[POSITIVE, in_range(0, 10**15, lo_open=True)])
    # Seconds without data after which an instrument's book counts as stale.  None: the
    # venue's own default_stale_after_s; 0: never stale (given explicitly, e.g. bar replays).
    # At most 1e9 s (31 years): it is held in int64 nanoseconds (1e300 overflowed).
    stale_after_s: float | None = attrs.field(
        default=None, validator=[optional(NON_NEGATIVE), optional(in_range(0, 10**9))])
    scan_every_events: int = attrs.field(default=1, validator=AT_LEAST_ONE)
    checkpoint_every_events: int = attrs.field(default=500, validator=AT_LEAST_ONE)
    # How far past a leg's fill price (bps) the unwind order of an incomplete basket may
    # trade: wide enough to get out of a moving book, bounded so no unwind goes at any price.
    unwind_slippage_bps: Decimal = attrs.field(default=Decimal("500"),
                                               validator=in_range(0, 5000))
    # Each strategy slot's share of the starting cash (slots not named share what is
    # left equally; none named: equal shares).  Every slot keeps its own book.
    capital: dict[str, Decimal] = attrs.field(factory=dict, validator=_capital_shares)


@attrs.frozen
class PaperSection:
    """``[paper]``: the paper broker's simulation settings."""

    latency_ms: int = attrs.field(default=0, validator=NON_NEGATIVE)
    slippage_bps: Decimal = attrs.field(default=Decimal("0"), validator=BPS)
    # Synthetic book half-spread when only bars exist (below 100%: the bid stays above 0).
    bar_spread_bps: Decimal = attrs.field(default=Decimal("2"),
                                          validator=in_range(0, 10_000, hi_open=True))
    # Share of a bar's volume shown as depth per level.
    bar_depth_fraction: float = attrs.field(default=0.1, validator=FRACTION)
    # Override the venue's fee schedule when set (no rebates: a negative fee is refused).
    maker_bps: Decimal | None = attrs.field(default=None, validator=optional(BPS))
    taker_bps: Decimal | None = attrs.field(default=None, validator=optional(BPS))
    fixed_fee: Decimal | None = attrs.field(default=None, validator=optional(in_range(0, 10**9)))
    # Scales fees and slippage (the lab's cost-sensitivity gates multiply it further).
    cost_multiplier: Decimal = attrs.field(default=Decimal("1"),
                                           validator=in_range(0, 1000, lo_open=True))


@attrs.frozen
class Config:
    """A whole, validated config file."""

    argus: ArgusSection = attrs.Factory(ArgusSection)
    run: RunSection = attrs.Factory(RunSection)
    paper: PaperSection = attrs.Factory(PaperSection)
    plugins: dict[str, dict[str, Any]] = attrs.Factory(dict)
    path: Path | None = None
    #: Dotted keys set over the file (``--set``) -> how errors name them
    #: (``"--set run.sizer=kelly"``): a bad value there has no line in the file.
    overrides: dict[str, str] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def base_dir(self) -> Path:
        """Folder relative paths in this config are resolved against."""
        return self.path.parent if self.path else Path.cwd()

    def get(self, dotted: str) -> Any:
        """The value at a dotted key (``"plugins.vrp.spread_scale"``) as the config file
        would write it; ``KeyError`` naming the key when it is not set."""
        node: Any = config_converter.unstructure(self)
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(dotted)
            node = node[part]
        return node

    def without_plugins(self, *names: str) -> Config:
        """A copy without the ``[plugins.NAME]`` tables of ``names`` (e.g. the lab's own
        settings, which do not change what a backtest computes)."""
        return attrs.evolve(self, plugins={k: v for k, v in self.plugins.items()
                                           if k not in names})

    def resolve_path(self, value: str | Path) -> Path:
        """``value`` made absolute relative to the config file."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()


#: Top-level tables that became plugin tables when their code left the core.
MOVED_TABLES = ("lab", "orchestrator")


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file; every way it can fail is a ``ConfigError``
    naming the file (missing, a directory, unreadable, not UTF-8, not TOML)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a BOM (Windows editors) is no key
        raw = tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: "
                          f"{exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
                          f"line {line}); TOML files are UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        said = str(exc).replace("(at end of document)",  # which line that is, too
                                f"(at end of document, line {len(text.splitlines()) or 1})")
        raise ConfigError(f"{path}: not valid TOML: {said}") from None
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Path | None = None, *,
                 overrides: dict[str, str] | None = None) -> Config:
    """Validate an already-parsed config mapping (``overrides``: see ``Config.overrides``)."""
    where = str(path) if path else "<config>"
    for key in ("path", "overrides"):
        if key in raw:
            raise ConfigError(f"{where}: unknown top-level key {key!r}")
    for moved in MOVED_TABLES:
        if moved in raw:
            raise ConfigError(f"{where}: [{moved}] is now [plugins.{moved}] (the {moved} is a "
                              f"plugin); rename the table and its sub-tables")
    cfg: Config = structure(raw, Config, where, overrides=overrides)
    return attrs.evolve(cfg, path=path.resolve() if path else None, overrides=overrides or {})


def structure(data: Any, cls: type, where: str, prefix: str = "", *,
              overrides: Mapping[str, str] | None = None) -> Any:
    """Structure ``data`` into ``cls``; errors name ``where`` and the dotted key (or the
    ``--set`` that gave it: ``overrides``).  Their text is redacted: a key pasted into the
    wrong setting is echoed by "expected ..., got ..."."""
    try:
        return config_converter.structure(data, cls)
    except cattrs.BaseValidationError as exc:
        messages = cattrs.transform_error(exc, path=prefix or "$",
                                          format_exception=_format_exception)
        tables = _tables(cls, prefix)
        message = f"{where}: " + "; ".join(_clean(m, tables) for m in messages)
    except RangeError as exc:  # a validator of ``cls`` itself: same shape as cattrs' errors
        message = f"{where}: {exc} @ {f'{prefix}.{exc.key}' if prefix else 'config'}"
    except ConfigError as exc:
        message = f"{where}: {prefix}: {exc}"
    except (TypeError, ValueError, AttributeError) as exc:
        message = f"{where}: {prefix or 'config'}: {exc}"
    raise ConfigError(redact(_with_lines(message, where, overrides or {})))


_AT_KEY = re.compile(r" @ ([\w.\[\]-]+)")
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_\-.\"' ]+?)\s*=")


def _with_lines(message: str, where: str, overrides: Mapping[str, str]) -> str:
    """Add the config file's line to each "... @ dotted.key" of ``message``: the key's own
    line, else its nearest table's (an inline table), so an error says where as well as
    what.  tomllib keeps no positions, hence this scan of the text by key paths.  An error
    about a key an override set (or a table's error naming it) is put on that ``--set``
    instead of ``where``: the file's line would point at a value it did not come from."""
    said = message.removeprefix(where)
    keys = [re.sub(r"\[\d+\]", "", key) for key in _AT_KEY.findall(said)]
    given = [text for key, text in overrides.items() if any(
        key == at or at.startswith(f"{key}.") or (key.startswith(f"{at}.") and re.search(
            rf"\b{re.escape(key.rpartition('.')[2])}\b", said)) for at in keys)]
    if top := re.search(r"unknown key\(s\) \(([^)]*)\) at the top level", said):
        unknown = {k.strip() for k in top.group(1).split(",")}
        given += [text for key, text in overrides.items() if key.split(".")[0] in unknown]
    if given:
        return ", ".join(given) + said
    try:
        text = Path(where).read_text(encoding="utf-8")
    except (OSError, ValueError):  # "<config>", a vanished file: the dotted key must do
        return message
    lines: dict[str, int] = {}
    table: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if header := _HEADER.match(line):
            table = _key_parts(header.group(1))
            lines.setdefault(".".join(table), number)
        elif assign := _ASSIGN.match(line):  # a dotted key opens its sub-tables here too
            key = table + _key_parts(assign.group(1))
            for n in range(len(table) + 1, len(key) + 1):
                lines.setdefault(".".join(key[:n]), number)

    def line_of(match: re.Match[str]) -> str:
        parts = re.sub(r"\[\d+\]", "", match.group(1)).split(".")
        # an unknown key is on its own line, not its table's
        if unknown := re.search(r"unknown key\(s\) \(([^,)]+)[^)]*\)$",
                                message[:match.start()]):
            parts.append(unknown.group(1).strip())
        for n in range(len(parts), 0, -1):
            if (found := lines.get(".".join(parts[:n]))) is not None:
                return f"{match.group(0)} (line {found})"
        return match.group(0)

    return _AT_KEY.sub(line_of, message)


def _key_parts(key: str) -> list[str]:
    return [part.strip().strip("\"'") for part in key.split(".")]


def _format_exception(exc: BaseException, type_: type | None) -> str:
    # Our own validators already say what was expected; cattrs' default hides it.
    if isinstance(exc, ValueError | ArgusError):
        return str(exc.args[0]) if exc.args else str(exc)
    if (type_ is not None and attrs.has(type_)
            and isinstance(exc, TypeError | AttributeError)):
        # cattrs reads a table with .keys(): a scalar or a list where a table belongs gave
        # "invalid value for type, expected RunSection" or "unknown error (...)".
        return "expected a table (a [section] or { key = value, ... })"
    if not getattr(exc, "__notes__", None) and not type(exc).__module__.startswith("cattrs"):
        # Raised by the settings class's own checks (__attrs_post_init__; cattrs notes each
        # field it structures, and its own errors say what they are): cattrs read a
        # KeyError as "required field missing" and anything else as "unknown error".
        return f"the settings' own check raised {type(exc).__name__}: {exc}"
    return format_exception(exc, type_)


def _tables(cls: type, path: str) -> dict[str, set[str]]:
    """Dotted table path -> its keys, for ``cls`` at ``path`` and its sub-tables."""
    if not attrs.has(cls):
        return {}
    out = {path: {f.name for f in attrs.fields(attrs.resolve_types(cls))}}
    for f in attrs.fields(cls):
        if isinstance(f.type, type):
            out |= _tables(f.type, f"{path}.{f.name}" if path else f.name)
    return out


def _clean(message: str, tables: Mapping[str, Collection[str]]) -> str:
    # cattrs says "extra fields found (x) @ $.run"; make it read like advice.
    message = message.replace("extra fields found", "unknown key(s)")
    if message.endswith(" @ $"):
        message = message[:-4] + " at the top level"
    message = message.replace("$.", "")
    # A validator's error is reported at its table: name the key, so that its own line is
    # found (the table's header line was given).  A range error says its key; another
    # error that opens with a key of its table ("segments: unknown ...", "'mode' must be
    # in ...") too.
    ranged = _RANGED.match(message)
    if ranged and not ranged.group(2).endswith(ranged.group(1)) and (
            " is outside the allowed range " in message
            or ranged.group(1) in tables.get(ranged.group(2), ())):
        message = f"{message}.{ranged.group(1)}"
    return message


_RANGED = re.compile(r"^'?([a-z_][a-z0-9_]*)'?(?: = |: | must ).* @ ([\w.\[\]-]+)$")


def plugin_settings(config: Config, plugin: str, cls: type | None) -> Any:
    """Validate ``[plugins.<plugin>]`` with the plugin's own class (None when it has none)."""
    table = config.plugins.get(plugin, {})
    where = str(config.path) if config.path else "<config>"
    if cls is None:
        if table:
            raise ConfigError(f"{where}: [plugins.{plugin}] is set but plugin {plugin!r} "
                              f"declares no settings")
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [plugins.{plugin}] must be a table")
    settings = structure(table, cls, where, prefix=f"plugins.{plugin}",
                         overrides=config.overrides)
    return _resolve_paths(settings, config)


def _resolve_paths(settings: Any, config: Config) -> Any:
    """Make ``Path`` fields and ``$file:`` secrets absolute relative to the config file's
    folder (a relative ``$file:keys/kraken`` read from the shell's working directory
    before, so the same command from another folder read another file or none)."""
    if not attrs.has(type(settings)):
        return settings
    attrs.resolve_types(type(settings))
    changes: dict[str, Path | Secret] = {}
    for field in attrs.fields(type(settings)):
        value = getattr(settings, field.name)
        if isinstance(value, Path) and not value.is_absolute():
            changes[field.name] = config.resolve_path(value)
        elif isinstance(value, Secret):
            resolved = value.resolved(config.base_dir)
            if resolved is not value:
                changes[field.name] = resolved
    return attrs.evolve(settings, **changes) if changes else settings


def parse_overrides(sets: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` pairs as overrides for :func:`apply_overrides` (each value is
    read as JSON, else kept as a string)."""
    overrides: dict[str, Any] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. plugins.example.fast=12")
        if not all(part.strip() for part in key.split(".")):
            raise ConfigError(f"--set {key!r}: an empty part in the dotted key (e.g. "
                              f"plugins.example.fast=12)")
        try:
            overrides[key] = loads_frame(value)  # depth-checked: a raised recursion limit
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


def apply_overrides(config: Config, overrides: dict[str, Any], *,
                    origin: str = "override") -> Config:
    """A copy of ``config`` with dotted keys replaced (``{"plugins.example.fast": 5}``);
    errors about them name ``<origin> KEY=VALUE`` (the CLI's: ``--set``), not the file."""
    if not overrides:
        return config
    raw = config_converter.unstructure(config)
    raw.pop("path", None)
    raw.pop("overrides", None)
    for dotted, value in overrides.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {dotted!r}: {part!r} is not a table")
        node[leaf] = value
    # The key, never the value: a credential pasted into the wrong setting stays unsaid.
    given = {key: f"{origin} {key}" for key in overrides}
    return parse_config(raw, config.path, overrides={**config.overrides, **given})


def canonical_json(config: Config) -> str:
    """Key-sorted JSON of a config (without its path): the basis of a run's identity."""
    import json

    raw = config_converter.unstructure(config)
    raw.pop("path", None)
    raw.pop("overrides", None)
    return json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
