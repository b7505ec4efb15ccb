"""Command-line helpers for plugins' bad-input tests: run ``argus`` as a user would (click's
``CliRunner`` through the core's root group, so a plugin's command is found by its entry
point) and read the one ``error:`` line a refusal prints."""

from __future__ import annotations

from collections.abc import Sequence

from click.testing import CliRunner, Result


def invoke_argus(args: Sequence[str]) -> Result:
    """``argus ARGS...`` in-process (``prog_name`` ``argus``, as usage errors name it)."""
    from argus_core.cli import cli

    return CliRunner().invoke(cli, list(args), prog_name="argus")


def error_line(result: Result, code: int) -> str:
    """The text of the single ``error: ...`` line of a refused command, after checking it
    exited with ``code`` and printed no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    (line,) = [ln for ln in result.output.splitlines() if ln.startswith("error: ")]
    return line.removeprefix("error: ")
