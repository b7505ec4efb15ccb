"""Building a run from a config: plugins, settings, components and the ledger.

:func:`assemble` is the single place where a config becomes live objects, and
it validates everything before any order can exist: unknown plugin tables,
bad settings, missing components, and capabilities a mode needs that the
venue lacks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import attrs

from argus_core.config import Config, canonical_json, plugin_settings
from argus_core.errors import ConfigError, PluginError
from argus_core.interfaces import Forecaster, Pricer, RiskCheck, Scanner, Sizer, Strategy, Venue
from argus_core.ledger import Ledger
from argus_core.migrations import Migrations
from argus_core.plugins import PluginHost, component_base, fenced_call, remedy_for

T = TypeVar("T")


@attrs.define
class RunContext:
    """What observers (``on_startup``, ``on_fill``...) and commands get about a run."""

    config: Config
    host: PluginHost
    run_dir: Path
    run_id: str
    mode: str
    ledger: Ledger | None = None
    settings: dict[str, Any] = attrs.Factory(dict)
    venue: Venue | None = None  # the run's venue (plugins' on_startup may prepare it)
    #: Paper and live: how many events wait in the loop's queue, and when (monotonic ns)
    #: the loop last took one (an idle tick too): a health check reads a loop that takes
    #: nothing while events wait as stuck.  None and 0 in a replay, or before the loop.
    events_waiting: Callable[[], int] | None = None
    taken_mono_ns: int = 0


class Lazy(Mapping[str, T]):
    """Components built on first use (a GPU engine or a model should not start unless
    asked for): the run's pricers and forecasters."""

    def __init__(self, build: Callable[[str], T], names: list[str]) -> None:
        self._build = build
        self._names = names
        self._cache: dict[str, T] = {}

    def __getitem__(self, name: str) -> T:
        if name not in self._cache:
            if name not in self._names:
                raise KeyError(name)
            self._cache[name] = self._build(name)
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@attrs.define
class Assembly:
    """The live components of a run."""

    ctx: RunContext
    venue: Venue
    strategies: dict[str, Strategy]
    scanners: list[Scanner]
    sizer: Sizer
    risk_checks: list[RiskCheck]
    pricers: Lazy[Pricer]
    forecasters: Lazy[Forecaster]
    #: the registered name of each of ``risk_checks`` (their checkpoint keys), in order
    risk_check_names: list[str] = attrs.Factory(list)


def run_id_for(config: Config) -> str:
    """Deterministic run id: same config and seed, same id (and so the same order ids)."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:12]


def build_venue(config: Config) -> Venue:
    """The configured venue, built with its plugin's validated settings (e.g. to read a
    replay's bars outside a run)."""
    host = load_host(config)
    venue: Venue = build(host, validate_settings(config, host), "venue", config.run.venue)
    return venue


def build_pricer(config: Config, name: str) -> Pricer:
    """A registered pricer built with its plugin's validated settings (e.g. for a service
    that prices outside a run)."""
    host = load_host(config)
    pricer: Pricer = build(host, validate_settings(config, host), "pricer", name)
    return pricer


def load_host(config: Config) -> PluginHost:
    """Load builtins and the plugins the config names."""
    host = PluginHost()
    host.load(config.argus.plugins)
    return host


def validate_settings(config: Config, host: PluginHost) -> dict[str, Any]:
    """Every loaded plugin's settings; tables for plugins that are not loaded are errors."""
    classes = host.config_classes()
    loaded = set(host.plugin_names())
    _refuse_unloaded(config, loaded, config.plugins)
    return {name: plugin_settings(config, name, classes.get(name)) for name in loaded}


def check_plugin_tables(config: Config, names: Iterable[str]) -> None:
    """``[plugins.<name>]`` of each of ``names`` checked by its plugin's settings class, the
    plugins loaded as ``config`` names them: a config made from another by overrides (a
    proving backtest's window) is refused at once, not when it first runs."""
    host = load_host(config)
    _refuse_unloaded(config, set(host.plugin_names()), names)
    classes = host.config_classes()
    for name in names:
        plugin_settings(config, name, classes.get(name))


def _refuse_unloaded(config: Config, loaded: set[str], names: Iterable[str]) -> None:
    for name in names:
        if name not in loaded:
            # the --set that made the table, where one did: the file never named it
            where = ", ".join(text for key, text in config.overrides.items() if
                              f"{key}.".startswith(f"plugins.{name}.")) or \
                (str(config.path) if config.path else "<config>")
            raise ConfigError(f"{where}: [plugins.{name}] configures a plugin that is not "
                              f"loaded (loaded: {', '.join(sorted(loaded))}); list it in "
                              f"[argus] plugins, and if it is not installed: "
                              f"{remedy_for(name)}")


def build(host: PluginHost, settings: dict[str, Any], kind: str, name: str) -> Any:
    """Instantiate a registered component with its plugin's settings."""
    reg = host.get(kind, name)
    built = fenced_call(reg.plugin, f"{kind} factory {name!r}", reg.factory,
                        settings.get(reg.plugin))
    base = component_base(kind)
    if not isinstance(built, base):
        raise PluginError(f"plugin {reg.plugin!r}: {kind} factory {name!r} built a "
                          f"{type(built).__qualname__}, not a {base.__name__} (subclass "
                          f"argus_core.{base.__name__})")
    return built


def assemble(config: Config, run_dir: Path, *, host: PluginHost | None = None,
             strategies: dict[str, Strategy] | None = None) -> Assembly:
    """Turn a config into components, validating before anything trades."""
    host = host or load_host(config)
    settings = validate_settings(config, host)
    run = config.run
    venue = build(host, settings, "venue", run.venue)
    if config.argus.mode == "live" and not venue.supports_live_orders:
        raise ConfigError(f"venue {run.venue!r} has no live order entry; it cannot run in "
                          f"mode 'live'")
    if config.argus.mode == "live":
        problems = venue.live_problems()
        if problems:
            where = str(config.path) if config.path else "<config>"
            raise ConfigError(f"{where}: venue {run.venue!r} cannot trade live: "
                              + "; ".join(problems))
    strategy_objs: dict[str, Strategy] = {
        name: build(host, settings, "strategy", name) for name in run.strategies
        if not strategies or name not in strategies}
    strategy_objs.update(strategies or {})
    scanners = [build(host, settings, "scanner", name) for name in run.scanners]
    sizer = build(host, settings, "sizer", run.sizer)
    check_names = run.risk_checks if run.risk_checks is not None else sorted(
        host.registry["risk_check"])
    checks = [build(host, settings, "risk_check", name) for name in check_names]
    pricers, forecasters = (Lazy(partial(build, host, settings, kind),
                                 sorted(host.registry[kind])) for kind in ("pricer", "forecaster"))
    ctx = RunContext(config, host, run_dir, run_id_for(config), config.argus.mode,
                     settings=settings, venue=venue)
    return Assembly(ctx, venue, strategy_objs, scanners, sizer, checks, pricers, forecasters,
                    list(check_names))


def open_ledger(ctx: RunContext) -> Ledger:
    """Open the run's ledger with the core's and every plugin's migrations."""
    migrations = Migrations()
    for impl in ctx.host.pm.hook.register_migrations.get_hookimpls():
        fenced_call(impl.plugin_name, "register_migrations", impl.function, migrations)
    ledger = Ledger.in_dir(ctx.run_dir, migrations)
    ctx.ledger = ledger
    return ledger
