"""Red team of ``check_test_plugin`` (behind ``register_plugin`` and ``extra_plugins``):
plugins that break the hook contract in the ways a plugin author actually does.

Found and fixed (each test failed before):

* ``@hookimpl(specname="register_strategies")`` on a function with another name -- a
  hook implementation pluggy documents and the core's host registers -- was refused as
  "implements no argus hook: decorate its hook functions with @hookimpl";
* a plugin whose only ``@hookimpl`` had a misspelt name (``register_stratgies``) was told
  to add the ``@hookimpl`` it already had, instead of which name is wrong;
* a plugin with one decorated hook and one hook-named function *without* ``@hookimpl``
  was taken: pluggy skips the undecorated function, so that hook (say its venue)
  registered nothing, and the author's test failed far away with "no venue named ...".
"""

from __future__ import annotations

import types
from collections.abc import Callable

import pytest

from argus_core import Intent, MarketEvent, Strategy, StrategyContext, hookimpl
from argus_core.errors import PluginError
from argus_core.plugins import PluginHost

Register = Callable[[object, str], None]


class _Quiet(Strategy):
    """A strategy that never trades: what the test plugins register."""

    name = "quiet"

    def __init__(self, settings: object) -> None:
        self.settings = settings

    def on_event(self, event: MarketEvent, ctx: StrategyContext) -> list[Intent]:
        return []


def _plugin(**functions: Callable[..., object]) -> types.ModuleType:
    module = types.ModuleType("test_plugin")
    for name, function in functions.items():
        setattr(module, name, function)
    return module


@hookimpl
def _register_quiet(register: Callable[..., None]) -> None:
    register("quiet", _Quiet)


def test_a_hookimpl_with_specname_is_a_hook(argus_host: PluginHost,
                                           register_plugin: Register) -> None:
    """Before: refused as a plugin with no hook."""
    @hookimpl(specname="register_strategies")
    def add_quiet(register: Callable[..., None]) -> None:
        register("quiet", _Quiet)

    register_plugin(_plugin(add_quiet=add_quiet), "mine")
    assert argus_host.get("strategy", "quiet").plugin == "mine"


def test_a_misspelt_hookimpl_is_named_as_unknown(register_plugin: Register) -> None:
    """Before: "decorate its hook functions with @hookimpl" -- it was decorated."""
    @hookimpl
    def register_stratgies(register: Callable[..., None]) -> None:
        register("quiet", _Quiet)

    with pytest.raises(PluginError, match=r"plugin 'mine'.*'register_stratgies'.*no argus "
                                          r"hook"):
        register_plugin(_plugin(register_stratgies=register_stratgies), "mine")


def test_a_hook_function_without_hookimpl_beside_one_with_it_is_refused(
        register_plugin: Register) -> None:
    """Before: accepted; ``register_venues`` was skipped by pluggy without a word."""
    def register_venues(register: Callable[..., None]) -> None:
        raise AssertionError("never called: pluggy skips an undecorated function")

    plugin = _plugin(register_strategies=_register_quiet, register_venues=register_venues)
    with pytest.raises(PluginError, match=r"plugin 'mine'.*'register_venues'.*no "
                                          r"@hookimpl"):
        register_plugin(plugin, "mine")


def test_private_helpers_and_non_hook_names_are_left_alone(
        argus_host: PluginHost, register_plugin: Register) -> None:
    """Held: a private helper and an ordinary public function are not hooks."""
    def helper() -> None:
        """Not a hook."""

    plugin = _plugin(register_strategies=_register_quiet, helper=helper,
                     _register_venues=helper)
    register_plugin(plugin, "mine")
    assert argus_host.get("strategy", "quiet").plugin == "mine"
