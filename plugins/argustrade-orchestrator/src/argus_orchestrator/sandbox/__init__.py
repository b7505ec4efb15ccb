"""The strategy sandbox: static validation and isolated worker processes for AI-written code.

* :func:`validate_source` — the ``ast`` allow-list filter (``argus sandbox check``).
* :class:`SandboxedStrategy` — a :class:`argus_core.interfaces.Strategy` whose code runs in
  an isolated worker (:mod:`argus_orchestrator.sandbox.worker`), the actual security boundary.
* ``CONTRACT.md`` — the contract AI-written strategies follow (also sent in the prompt).
"""

from __future__ import annotations

from pathlib import Path

from argus_orchestrator.sandbox.host import (
    PROTECTIONS,
    SandboxedStrategy,
    WorkerFailure,
    WorkerPolicy,
    WorkerProcess,
    active_protections,
    plain_event,
    plain_portfolio,
)
from argus_orchestrator.sandbox.validator import ValidationResult, validate_source

CONTRACT_PATH = Path(__file__).with_name("CONTRACT.md")


def contract_text() -> str:
    """The strategy contract, verbatim (it also goes into the generate prompt)."""
    return CONTRACT_PATH.read_text()


__all__ = [
    "CONTRACT_PATH",
    "PROTECTIONS",
    "SandboxedStrategy",
    "ValidationResult",
    "WorkerFailure",
    "WorkerPolicy",
    "WorkerProcess",
    "active_protections",
    "contract_text",
    "plain_event",
    "plain_portfolio",
    "validate_source",
]
