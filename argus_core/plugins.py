"""Plugin loading and the component registry.

:class:`PluginHost` wraps a pluggy ``PluginManager``: it loads builtins and
``argus`` entry points (filtered by the config and the ``ARGUS_BLOCK_PLUGINS``
environment variable), calls every ``register_*`` hook plugin by plugin so
each registration knows its owner, and rejects clashing names.  Plugins can be
added and removed while a runner is live; the registry is rebuilt each time.
"""

from __future__ import annotations

import importlib.metadata as md
import os
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import pluggy

from argus_core import hookspecs
from argus_core.discovery import BLOCK_ENV as BLOCK_ENV
from argus_core.discovery import COMMANDS_GROUP as COMMANDS_GROUP
from argus_core.discovery import CORE_DISTRIBUTION as CORE_DISTRIBUTION
from argus_core.discovery import ENTRY_POINT_GROUP, blocked_plugins
from argus_core.discovery import KNOWN_DISTRIBUTIONS as KNOWN_DISTRIBUTIONS
from argus_core.discovery import command_entry_points as command_entry_points
from argus_core.discovery import remedy_for as install_remedy
from argus_core.errors import ArgusError, PluginError

#: Registration hook -> component kind.
KINDS = {
    "register_venues": "venue",
    "register_scanners": "scanner",
    "register_strategies": "strategy",
    "register_risk_checks": "risk_check",
    "register_sizers": "sizer",
    "register_pricers": "pricer",
    "register_forecasters": "forecaster",
}

#: Builtin plugins: (name, module path).  They register through the same hooks.
BUILTINS = (
    ("replay", "argus_core.builtins.replay_venue"),
    ("risk", "argus_core.builtins.risk_checks"),
    ("sizing", "argus_core.builtins.sizers"),
    ("example", "argus_core.builtins.example_strategies"),
    ("journal", "argus_core.builtins.journal"),
)
BUILTIN_NAMES = frozenset(name for name, _ in BUILTINS)


@attrs.frozen
class Registration:
    """One registered component factory and the plugin that owns it."""

    kind: str
    name: str
    factory: Callable[[Any], Any]
    plugin: str


@attrs.frozen
class PluginInfo:
    """What ``argus plugins`` shows about one loaded plugin."""

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]
    registered: dict[str, list[str]]


def component_base(kind: str) -> type:
    """The base class a registered ``kind`` must build (``"venue"`` -> ``Venue``)."""
    from argus_core import interfaces

    return {"venue": interfaces.Venue, "scanner": interfaces.Scanner,
            "strategy": interfaces.Strategy, "risk_check": interfaces.RiskCheck,
            "sizer": interfaces.Sizer, "pricer": interfaces.Pricer,
            "forecaster": interfaces.Forecaster}[kind]


class PluginHost:
    """Owns the pluggy manager and the registry of components built from it."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("argus")
        self.pm.add_hookspecs(hookspecs)
        self._dists: dict[str, tuple[str | None, str | None]] = {}
        self.broken: dict[str, str] = {}  # plugin -> why it could not load (tolerant loads)
        self.registry: dict[str, dict[str, Registration]] = {k: {} for k in KINDS.values()}

    # -- loading ---------------------------------------------------------------
    def load(self, names: Iterable[str] | None = None, *, builtins: bool = True,
             tolerant: bool = False) -> None:
        """Load builtins and the named entry-point plugins (``None``: every installed one).

        ``tolerant`` (for ``argus plugins`` and reports): a plugin that is not installed,
        fails to import or register is left out and its error kept in ``broken`` instead
        of stopping the load.
        """
        blocked = blocked_plugins()
        if builtins:
            for name, module in BUILTINS:
                if name not in blocked:
                    self.add_plugin(_import(name, module, None), name, rebuild=False)

        def skipped(name: str) -> bool:
            return name in blocked or (name in BUILTIN_NAMES and self.pm.has_plugin(name))

        wanted = None if names is None else [n for n in names if not skipped(n)]
        # Installed metadata is read only when entry-point plugins are wanted: a
        # builtins-only config (the demo's ``plugins = []``) reads none of it.
        eps: dict[str, list[md.EntryPoint]] = {}  # name -> what claims it
        for ep in md.entry_points(group=ENTRY_POINT_GROUP) if wanted is None or wanted else ():
            if ep not in eps.setdefault(ep.name, []):
                eps[ep.name].append(ep)
        for name in [n for n in eps if not skipped(n)] if wanted is None else wanted:
            if name not in eps:
                missing = f"plugin {name!r} is not installed; {remedy_for(name)}"
                if not tolerant:
                    raise PluginError(missing)
                self.broken[name] = missing
                continue
            if len(claims := eps[name]) > 1:  # one was shadowed, silently, before
                clash = (f"plugin name {name!r} is claimed by " + " and ".join(sorted(
                    repr(e.dist.name if e.dist else e.value) for e in claims)) +
                    "; uninstall all but one (pip uninstall NAME)")
                if not tolerant:
                    raise PluginError(clash)
                self.broken[name] = clash
                continue
            ep = claims[0]
            dist = ep.dist.name if ep.dist else None
            version = ep.dist.version if ep.dist else None
            if not tolerant:
                self.add_plugin(_import(name, ep.value, dist), name, rebuild=False,
                                distribution=(dist, version))
                continue
            try:  # rebuild per plugin so a raising registration hook is pinned on its plugin
                self.add_plugin(_import(name, ep.value, dist), name,
                                distribution=(dist, version))
            except ArgusError as exc:  # a plugin's own DataError, ConfigError... too
                self.broken[name] = str(exc)
        self.rebuild()

    def add_plugin(self, plugin: object, name: str, *, rebuild: bool = True,
                   distribution: tuple[str | None, str | None] = (None, None)) -> None:
        """Register ``plugin`` under ``name`` (live: the registry is rebuilt)."""
        if self.pm.has_plugin(name):
            raise PluginError(f"plugin name {name!r} is already loaded; names must be unique")
        self.check_hooks(plugin, name)
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name!r} implements an invalid hook: {exc}") from None
        except ValueError:  # pluggy: this object is loaded already, under another name
            raise PluginError(f"plugin {name!r} is the module of plugin "
                              f"{self.pm.get_name(plugin)!r} again; one entry point per "
                              f"plugin module") from None
        self._dists[name] = distribution
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=name)
            raise PluginError(f"plugin {name!r} implements an unknown hook: {exc}") from None
        if rebuild:
            try:
                self.rebuild()
            except ArgusError:  # any error the fence let through: the plugin goes again
                self.pm.unregister(name=name)
                self.rebuild()
                raise

    def check_hooks(self, plugin: object, name: str) -> list[str]:
        """The argus hooks ``plugin`` implements; refuses, naming the plugin, what pluggy
        takes silently or reports bare: a ``@hookimpl`` naming no argus hook (its
        ``specname`` counts) and a function named like a hook without ``@hookimpl`` (pluggy
        skips it: that hook of an installed plugin registered nothing, unsaid).  A plugin
        may implement none (one that only adds commands is listed by ``argus plugins``)."""
        def is_hook(attr: str) -> bool:  # pm.hook also holds callers of unknown names
            return getattr(getattr(self.pm.hook, attr, None), "spec", None) is not None

        marker = f"{self.pm.project_name}_impl"
        hooks: list[str] = []
        unknown: list[str] = []
        undecorated: list[str] = []
        for attr in dir(plugin):
            value = getattr(plugin, attr, None)
            if isinstance(opts := getattr(value, marker, None), dict):
                hook = opts.get("specname") or attr
                (hooks if is_hook(hook) else unknown).append(hook)
            elif not attr.startswith("_") and callable(value) and is_hook(attr):
                undecorated.append(attr)
        if unknown:
            raise PluginError(f"plugin {name!r} implements an unknown hook: @hookimpl on "
                              f"{unknown}, which name no argus hook (see argus_core.hookspecs)")
        if undecorated:
            raise PluginError(f"plugin {name!r}: {undecorated} have a hook's name but no "
                              f"@hookimpl, so pluggy would skip them; decorate them "
                              f"(from argus_core import hookimpl)")
        return hooks

    def remove_plugin(self, name: str) -> None:
        """Unregister plugin ``name`` and rebuild the registry."""
        if not self.pm.has_plugin(name):
            raise PluginError(f"plugin {name!r} is not loaded")
        self.pm.unregister(name=name)
        self._dists.pop(name, None)
        self.rebuild()

    # -- registry ----------------------------------------------------------------
    def rebuild(self) -> None:
        """Call every registration hook, plugin by plugin, and detect clashes."""
        registry: dict[str, dict[str, Registration]] = {k: {} for k in KINDS.values()}
        for hook_name, kind in KINDS.items():
            caller = getattr(self.pm.hook, hook_name)
            for impl in caller.get_hookimpls():  # registration order
                plugin_name = impl.plugin_name

                def register(name: str, factory: Callable[[Any], Any], *,
                             _kind: str = kind, _plugin: str = plugin_name) -> None:
                    if not isinstance(name, str) or not name:
                        raise PluginError(f"plugin {_plugin!r} registered a {_kind} with an "
                                          f"empty or non-string name")
                    if not callable(factory):
                        raise PluginError(f"plugin {_plugin!r} registered {_kind} {name!r} "
                                          f"with a factory that is not callable")
                    base = component_base(_kind)
                    if isinstance(factory, type) and not issubclass(factory, base):
                        raise PluginError(
                            f"plugin {_plugin!r} registered {_kind} {name!r} as "
                            f"{factory.__qualname__}, which is not a {base.__name__} "
                            f"(subclass argus_core.{base.__name__})")
                    existing = registry[_kind].get(name)
                    if existing is not None and existing.plugin == _plugin:
                        raise PluginError(f"plugin {_plugin!r} registers {_kind} {name!r} "
                                          f"twice; register each name once")
                    if existing is not None:
                        raise PluginError(
                            f"{_kind} name {name!r} is registered by both {existing.plugin!r} "
                            f"and {_plugin!r}; remove one of them from [argus] plugins or set "
                            f"{BLOCK_ENV}={_plugin}")
                    registry[_kind][name] = Registration(_kind, name, factory, _plugin)

                before = sum(map(len, registry.values()))
                returned = fenced_call(plugin_name, hook_name, impl.function, register)
                if returned and sum(map(len, registry.values())) == before:
                    # it returned what it meant to register: "unknown" came only later
                    raise PluginError(f"plugin {plugin_name!r}: {hook_name} returned "
                                      f"{str(returned)[:80]}; call register(name, factory) "
                                      f"for each instead of returning them")
        self.registry = registry

    def get(self, kind: str, name: str) -> Registration:
        """The registration of ``kind`` called ``name``; a clear error when absent."""
        try:
            return self.registry[kind][name]
        except KeyError:
            known = ", ".join(sorted(self.registry.get(kind, {}))) or "none"
            blocked = ", ".join(sorted(blocked_plugins()))
            raise PluginError(f"no {kind} named {name!r} is registered (known: {known}); "
                              f"is the plugin that provides it installed and listed in "
                              f"[argus] plugins?" + (blocked and f" ({BLOCK_ENV} blocks "
                              f"{blocked}: {unblock()})")) from None

    def config_classes(self) -> dict[str, type]:
        """Plugin name -> the attrs class validating its ``[plugins.NAME]`` table."""
        out: dict[str, type] = {}
        for impl in self.pm.hook.config_class.get_hookimpls():
            cls = fenced_call(impl.plugin_name, "config_class", impl.function)
            if cls is not None:
                if not attrs.has(cls):
                    raise PluginError(f"plugin {impl.plugin_name!r}: config_class() must "
                                      f"return an attrs class, got {cls!r}")
                out[impl.plugin_name] = cls
        return out

    def plugin_names(self) -> list[str]:
        """Names of every loaded plugin, in load order."""
        return [name for name, _ in self.pm.list_name_plugin()]

    def info(self) -> list[PluginInfo]:
        """Name, distribution, version, hooks and registrations of every loaded plugin."""
        rows = []
        for name, plugin in self.pm.list_name_plugin():
            hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or []))
            registered: dict[str, list[str]] = {}
            for kind, entries in self.registry.items():
                names = sorted(r.name for r in entries.values() if r.plugin == name)
                if names:
                    registered[kind] = names
            dist, version = self._dists.get(name, (None, None))
            if name in BUILTIN_NAMES:
                dist, version = CORE_DISTRIBUTION, _version(CORE_DISTRIBUTION)
            rows.append(PluginInfo(name, dist, version, hooks, registered))
        return rows


def fenced_call(plugin: str, hook: str, function: Callable[..., Any], *args: Any) -> Any:
    """Call plugin code; turn any exception into a ``PluginError`` naming plugin and hook.
    An ``ArgusError`` the plugin raised on purpose (bad data, a config or venue error)
    keeps its class and exit code, its message prefixed with the plugin and hook."""
    try:
        return function(*args)
    except PluginError:
        raise
    except ArgusError as exc:
        if exc.args and isinstance(exc.args[0], str) and f"plugin {plugin!r}" not in exc.args[0]:
            exc.args = (f"plugin {plugin!r} failed in hook {hook}: {exc.args[0]}",
                        *exc.args[1:])
        raise
    except Exception as exc:
        raise PluginError(f"plugin {plugin!r} failed in hook {hook}: "
                          f"{type(exc).__name__}: {exc}") from exc


def remedy_for(name: str) -> str:
    """What to tell a user whose config names plugin ``name`` that is not loaded: how to
    install it, and how to unblock it when ``ARGUS_BLOCK_PLUGINS`` blocks it (then it is
    most likely installed)."""
    if name not in blocked_plugins():
        return install_remedy(name)
    remedy = "it is built in" if name in BUILTIN_NAMES else install_remedy(name)
    return f"{remedy}; but {BLOCK_ENV} blocks {name!r}: {unblock()}"


def unblock() -> str:
    """How to load a plugin ``ARGUS_BLOCK_PLUGINS`` blocks (its value shown)."""
    return (f"remove it from {BLOCK_ENV} (now {os.environ.get(BLOCK_ENV, '')!r}) or unset "
            f"that variable to load it")


def _import(name: str, target: str, dist: str | None) -> object:
    module_name, _, attr = target.partition(":")
    try:
        obj: object = importlib_import(module_name)
        for part in filter(None, attr.split(".")):
            obj = getattr(obj, part)
    except Exception as exc:
        origin = f" (from {dist})" if dist else ""
        raise PluginError(f"plugin {name!r}{origin} failed to import {target!r}: "
                          f"{type(exc).__name__}: {exc}; reinstall it or block it with "
                          f"{BLOCK_ENV}={name}") from exc
    return obj


def importlib_import(module_name: str) -> object:
    """Import a module by dotted name (separate so tests can see import failures)."""
    import importlib

    return importlib.import_module(module_name)


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None
