"""The pricer the API asks for probabilities of profit, found through its plugin's
registration hook.

The core's public API builds only venues (``argus_core.build_venue``); nothing public
builds a registered pricer by name.  So this module does what the plugin host does for
one plugin, with public pieces only: it loads the ``argus`` entry point named
``plugin``, calls that plugin's ``register_pricers(register)`` hook with a ``register``
that keeps the factory registered as ``name``, and calls ``factory(None)`` (the plugin's
default settings), exactly as the core builds a component without a settings table.
Replace it with a public ``argus_core.build_pricer(name)`` when the core exports one.
"""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Callable
from typing import Any

from argus_core import PluginError, Pricer

#: The registered pricer the API uses, and the plugin (entry point) that registers it.
HESTON_PRICER, HESTON_PLUGIN = "heston", "heston"


def build_pricer(name: str = HESTON_PRICER, plugin: str = HESTON_PLUGIN) -> Pricer:
    """The pricer ``name`` registered by plugin ``plugin``, with default settings."""
    eps = [ep for ep in md.entry_points(group="argus") if ep.name == plugin]
    if not eps:
        raise PluginError(f"plugin {plugin!r} is not installed; pip install argus-gpu-heston")
    module = eps[0].load()
    hook = getattr(module, "register_pricers", None)
    if hook is None:
        raise PluginError(f"plugin {plugin!r} registers no pricers")
    found: dict[str, Callable[[Any], Any]] = {}

    def register(pricer_name: str, factory: Callable[[Any], Any]) -> None:
        found[pricer_name] = factory

    hook(register)
    if name not in found:
        raise PluginError(f"plugin {plugin!r} registers no pricer {name!r} "
                          f"(it registers: {', '.join(sorted(found)) or 'none'})")
    pricer = found[name](None)
    if not isinstance(pricer, Pricer):
        raise PluginError(f"plugin {plugin!r}: pricer factory {name!r} built a "
                          f"{type(pricer).__qualname__}, not a Pricer")
    return pricer
