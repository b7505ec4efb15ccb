"""Argus core: hook specifications, domain model, ledger, runner and builtin plugins."""

__version__ = "0.1.0"
