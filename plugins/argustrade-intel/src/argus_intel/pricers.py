"""The pricer the API asks for probabilities of profit: the core's ``build_pricer`` with a
config that loads only the plugin that registers it (its default settings, as a run
without a ``[plugins.heston]`` table would have)."""

from __future__ import annotations

from argus_core import Config, Pricer, apply_overrides
from argus_core import build_pricer as core_build_pricer

#: The registered pricer the API uses, and the plugin (entry point) that registers it.
HESTON_PRICER, HESTON_PLUGIN = "heston", "heston"


def build_pricer(name: str = HESTON_PRICER, plugin: str = HESTON_PLUGIN) -> Pricer:
    """The pricer ``name`` registered by plugin ``plugin``, with default settings."""
    return core_build_pricer(apply_overrides(Config(), {"argus.plugins": [plugin]}), name)
