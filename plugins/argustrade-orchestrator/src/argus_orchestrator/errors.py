"""Errors of the orchestrator and its sandbox (exit codes 9 and 8 of the ``argus`` CLI)."""

from argus_core import ArgusError


class SandboxError(ArgusError):
    """AI-written code was rejected or misbehaved in its worker."""

    exit_code = 8


class OrchestratorError(ArgusError):
    """A cycle step failed (model call, budget, secret found, bad configuration)."""

    exit_code = 9


class BudgetExceeded(OrchestratorError):
    """A token or cost budget (per cycle or per day) would be exceeded by the next call."""


__all__ = ["BudgetExceeded", "OrchestratorError", "SandboxError"]
