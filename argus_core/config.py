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

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import cattrs
from cattrs.v import format_exception

from argus_core.errors import ArgusError, ConfigError
from argus_core.secrets import Secret
from argus_core.serde import converter as _base_converter

MODES = ("replay", "paper", "live")

config_converter = _base_converter.copy(forbid_extra_keys=True)


def _structure_secret(value: Any, _: type) -> Secret:
    if not isinstance(value, str):
        raise ConfigError("expected a secret reference string like '$env:NAME'")
    return Secret(value)


config_converter.register_structure_hook(Secret, _structure_secret)
config_converter.register_unstructure_hook(Secret, lambda s: s.reference)
config_converter.register_structure_hook(Path, lambda v, _: Path(v))
config_converter.register_unstructure_hook(Path, str)


def _in(*choices: str) -> Any:
    return attrs.validators.in_(choices)


@attrs.frozen
class ArgusSection:
    """``[argus]``: which plugins load, the trading mode and the seed."""

    plugins: list[str] | None = None
    mode: str = attrs.field(default="replay", validator=_in(*MODES))
    seed: int = 0


@attrs.frozen
class RunSection:
    """``[run]``: what the loop wires together."""

    venue: str = "replay"
    strategies: list[str] = attrs.Factory(list)
    scanners: list[str] = attrs.Factory(list)
    sizer: str = "fixed_fraction"
    risk_checks: list[str] | None = None  # None = every registered check
    starting_cash: Decimal = Decimal("100000")
    stale_after_s: float = 0.0  # 0 disables the stale-data guard (replay of bars)
    scan_every_events: int = 1
    checkpoint_every_events: int = 500


@attrs.frozen
class PaperSection:
    """``[paper]``: the paper broker's simulation settings."""

    latency_ms: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    slippage_bps: Decimal = Decimal("0")
    bar_spread_bps: Decimal = Decimal("2")  # synthetic book half-spread when only bars exist
    bar_depth_fraction: float = 0.1  # share of a bar's volume shown as depth per level
    maker_bps: Decimal | None = None  # overrides the venue's schedule when set
    taker_bps: Decimal | None = None
    fixed_fee: Decimal | None = None
    cost_multiplier: Decimal = Decimal("1")  # scales fees and slippage (cost-sensitivity gates)


@attrs.frozen
class Config:
    """A whole, validated config file."""

    argus: ArgusSection = attrs.Factory(ArgusSection)
    run: RunSection = attrs.Factory(RunSection)
    paper: PaperSection = attrs.Factory(PaperSection)
    plugins: dict[str, dict[str, Any]] = attrs.Factory(dict)
    lab: dict[str, Any] = attrs.Factory(dict)
    orchestrator: dict[str, Any] = attrs.Factory(dict)
    path: Path | None = None

    @property
    def base_dir(self) -> Path:
        """Folder relative paths in this config are resolved against."""
        return self.path.parent if self.path else Path.cwd()

    def resolve_path(self, value: str | Path) -> Path:
        """``value`` made absolute relative to the config file."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Path | None = None) -> Config:
    """Validate an already-parsed config mapping."""
    where = str(path) if path else "<config>"
    if "path" in raw:
        raise ConfigError(f"{where}: unknown top-level key 'path'")
    try:
        cfg = structure(raw, Config, where)
    except ConfigError:
        raise
    return attrs.evolve(cfg, path=path.resolve() if path else None)


def structure(data: Any, cls: type, where: str, prefix: str = "") -> Any:
    """Structure ``data`` into ``cls``; errors name ``where`` and the dotted key."""
    try:
        return config_converter.structure(data, cls)
    except cattrs.BaseValidationError as exc:
        messages = cattrs.transform_error(exc, path=prefix or "$",
                                          format_exception=_format_exception)
        raise ConfigError(f"{where}: " + "; ".join(_clean(m) for m in messages)) from None
    except ConfigError as exc:
        raise ConfigError(f"{where}: {prefix}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {prefix or 'config'}: {exc}") from None


def _format_exception(exc: BaseException, type_: type | None) -> str:
    # Our own validators already say what was expected; cattrs' default hides it.
    if isinstance(exc, ValueError | ArgusError):
        return str(exc.args[0]) if exc.args else str(exc)
    return format_exception(exc, type_)


def _clean(message: str) -> str:
    # cattrs says "extra fields found (x) @ $.run"; make it read like advice.
    return message.replace("extra fields found", "unknown key(s)").replace("$.", "")


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
    settings = structure(table, cls, where, prefix=f"plugins.{plugin}")
    return _resolve_paths(settings, config)


def _resolve_paths(settings: Any, config: Config) -> Any:
    """Make ``Path`` fields absolute relative to the config file's folder."""
    attrs.resolve_types(type(settings))
    changes = {}
    for field in attrs.fields(type(settings)):
        value = getattr(settings, field.name)
        if isinstance(value, Path) and not value.is_absolute():
            changes[field.name] = config.resolve_path(value)
    return attrs.evolve(settings, **changes) if changes else settings


def apply_overrides(config: Config, overrides: dict[str, Any]) -> Config:
    """A copy of ``config`` with dotted keys replaced (``{"plugins.example.fast": 5}``)."""
    if not overrides:
        return config
    raw = config_converter.unstructure(config)
    raw.pop("path", None)
    for dotted, value in overrides.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {dotted!r}: {part!r} is not a table")
        node[leaf] = value
    return parse_config(raw, config.path)


def canonical_json(config: Config) -> str:
    """Key-sorted JSON of a config (without its path): the basis of a run's identity."""
    import json

    raw = config_converter.unstructure(config)
    raw.pop("path", None)
    return json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
