"""Errors raised by the Heston plugin, rooted in the core's hierarchy.

Both parameter errors also subclass :class:`ValueError` so numeric callers that
know nothing of Argus can still catch them the usual way.
"""

from __future__ import annotations

from argus_core import ConfigError, PluginError


class HestonParameterError(ConfigError, ValueError):
    """A model, contract or simulation parameter is out of its domain."""


class BackendUnavailableError(PluginError):
    """The requested compute backend (cuda, opencl, cpu) cannot run here."""
