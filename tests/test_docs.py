"""Meta-tests: the docs stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from argus_core import hookspecs

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _spec_names() -> set[str]:
    return {name for name in dir(hookspecs)
            if callable(getattr(hookspecs, name))
            and hasattr(getattr(hookspecs, name), "argus_spec")}


def test_every_hook_is_in_the_readme_hook_reference() -> None:
    section = README.split("### Hook reference", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(\w+)\(", section, re.M))
    assert _spec_names(), "no hookspecs found"
    assert documented == _spec_names()


def test_every_hook_has_a_docstring() -> None:
    for name in _spec_names():
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name


def test_quick_start_has_two_commands_and_ci_runs_the_second() -> None:
    block = README.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.strip().splitlines() if line.strip()]
    assert len(commands) == 2
    assert "argus demo" in commands[0]
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci
