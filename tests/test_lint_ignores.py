"""Every lint suppression says why, beside it.

A ruff suppression in a tracked ``.py`` file (``# noqa: CODES``, ``# ruff: noqa: CODES``)
names the rules it silences and then gives a reason in a few words, e.g.
``# noqa: E402  (sys.path is set up first)``.  A bare ``# noqa`` (every rule) fails.  Each
rule in ``[tool.ruff.lint] ignore`` in ``pyproject.toml`` has a comment giving its reason.
The hostile samples under the orchestrator's ``sandbox/escapes/`` carry a file-level
``# ruff: noqa  -- reason`` on purpose: there a reason is required but codes are not.
(``# type: ignore[...]`` is mypy's business: ``warn_unused_ignores``, CONTRIBUTING.md.)
"""

from __future__ import annotations

import io
import re
import subprocess
import tokenize
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Deliberately hostile sample code: a blanket file-level noqa (with a reason) is allowed.
BLANKET_ALLOWED = "plugins/argustrade-orchestrator/tests/sandbox/escapes/"

#: What ruff reads as a suppression inside a comment: ``#`` then optional spaces, an
#: optional file-level ``ruff:``/``flake8:`` prefix, then ``noqa`` in any case.
_NOQA = re.compile(r"#\s*(?P<file>(?:ruff|flake8)\s*:\s*)?noqa\b(?P<rest>.*)", re.IGNORECASE)
_CODES = re.compile(r":\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*)")
_WORD = re.compile(r"[^\W\d_]{2,}")


def is_reason(text: str) -> bool:
    """A reason is a few words (at least two of two letters or more), not more codes."""
    return len(_WORD.findall(text)) >= 2


def suppression_problem(comment: str, *, require_codes: bool = True) -> str | None:
    """What is wrong with the suppression in ``comment`` (one comment token), or None
    when it has none or it names its codes and gives a reason."""
    for start in [m.start() for m in re.finditer("#", comment)]:
        m = _NOQA.match(comment, start)
        if m is None:
            continue
        rest = m["rest"]
        codes = _CODES.match(rest)
        if codes is None:
            if require_codes:
                return "names no rule codes (a bare noqa silences every rule)"
            reason = rest
        else:
            reason = rest[codes.end():]
        if not is_reason(reason):
            return "gives no reason after the codes"
        return None
    return None


def offences(source: str, *, require_codes: bool = True) -> list[tuple[int, str, str]]:
    """(line, comment, problem) for each suppression in ``source`` lacking codes or a
    reason.  Only real comments count (tokenize), not text inside strings."""
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            problem = suppression_problem(tok.string, require_codes=require_codes)
            if problem is not None:
                found.append((tok.start[0], tok.string, problem))
    return found


def ignore_entries(pyproject_text: str) -> list[tuple[str, str]]:
    """(code, comment) for each entry of ``ignore``/``extend-ignore`` in the
    ``[tool.ruff.lint]`` table of a pyproject.toml; the comment is '' when there is none.
    Reads the text (tomllib drops comments); cross-checked against tomllib by the caller."""
    entries: list[tuple[str, str]] = []
    section = None
    lines = iter(pyproject_text.splitlines())
    for line in lines:
        header = re.match(r"\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
        if header:
            section = header[1].strip()
            continue
        if section != "tool.ruff.lint" or not re.match(r"\s*(extend-)?ignore\s*=", line):
            continue
        line = line.split("=", 1)[1]
        while True:
            code_part, _, comment = line.partition("#")
            for code in re.findall(r"\"([A-Z]+[0-9]*)\"", code_part):
                entries.append((code, comment.strip()))
            if "]" in code_part:
                break
            line = next(lines)
    return entries


def tracked_python_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z", "*.py"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout ({exc})")
    return [p for p in out.split("\0") if p and (ROOT / p).is_file()]


def test_every_noqa_names_its_codes_and_gives_a_reason() -> None:
    files = tracked_python_files()
    assert len(files) > 100 and "argus_core/interfaces.py" in files
    bad = []
    for rel in files:
        source = (ROOT / rel).read_text(encoding="utf-8")
        try:
            found = offences(source, require_codes=not rel.startswith(BLANKET_ALLOWED))
        except (tokenize.TokenError, SyntaxError) as exc:
            bad.append(f"{rel}: cannot be tokenized ({exc})")
            continue
        bad += [f"{rel}:{line}: {problem}: {comment}" for line, comment, problem in found]
    assert not bad, ("lint suppressions without a reason (write "
                     "`# noqa: CODE  (why)` or rewrite the line cleanly):\n" + "\n".join(bad))


def test_every_ignored_rule_in_pyproject_has_a_reason() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    lint = tomllib.loads(text)["tool"]["ruff"]["lint"]
    entries = ignore_entries(text)
    # The text reading sees exactly what ruff sees.
    assert sorted(c for c, _ in entries) == sorted(lint.get("ignore", [])
                                                   + lint.get("extend-ignore", []))
    bad = [code for code, comment in entries if not is_reason(comment)]
    assert not bad, f"pyproject.toml [tool.ruff.lint] ignores without a reason: {bad}"


# -- the checkers themselves --------------------------------------------------------------

@pytest.mark.parametrize("line", [
    "import x  # noqa: E402  (sys.path is set up first)",
    "f = g  # noqa: E731 -- a one-line objective",
    "def f(): pass  # noqa: B027 - optional hook, no-op by default",
    "x = 1  # noqa:E501,W291 long generated table",
    "x = 1  # NOQA: E501 E502  (generated data)",
    "x = 1  # see the noqa policy in CONTRIBUTING.md",   # mentions noqa, suppresses nothing
    "s = '# noqa'",                                      # inside a string: not a comment
    "x = 1  # plain comment",
    "# ruff: noqa: E501  -- a generated table",
])
def test_the_checker_accepts(line: str) -> None:
    assert offences(line + "\n") == []


@pytest.mark.parametrize("line", [
    "import x  # noqa",
    "import x  # noqa  (sys.path is set up first)",    # a reason, but every rule silenced
    "import x  #noqa:E402",
    "import x  # noqa: E402",
    "import x  # noqa: E402, F401",
    "import x  # noqa: E402  ()",
    "import x  # noqa: E402  -- ok",                   # one word is not a reason
    "x = 1  # trailing words # noqa: E501",
    "# ruff: noqa",
    "# ruff: noqa: E501",
    "# flake8: noqa",
])
def test_the_checker_refuses(line: str) -> None:
    assert [n for n, _, _ in offences(line + "\n")] == [1]


def test_a_blanket_noqa_with_a_reason_passes_only_where_allowed() -> None:
    src = "# ruff: noqa  -- deliberately hostile sample code for the sandbox tests\n"
    assert offences(src, require_codes=False) == []
    assert len(offences(src)) == 1
    assert len(offences("# ruff: noqa\n", require_codes=False)) == 1


def test_the_pyproject_reader_finds_each_entry_and_its_comment() -> None:
    text = """
[tool.ruff]
line-length = 100

[tool.ruff.lint]
select = ["E"]
ignore = [
    "RUF001",  # ambiguous unicode in strings: maths on purpose
    "RUF002",
    "E501", "W291",  # long lines in generated tables
]
extend-ignore = ["B027"]

[tool.other]
ignore = ["X1"]
"""
    assert ignore_entries(text) == [
        ("RUF001", "ambiguous unicode in strings: maths on purpose"), ("RUF002", ""),
        ("E501", "long lines in generated tables"), ("W291", "long lines in generated tables"),
        ("B027", ""),
    ]
    assert ignore_entries('[tool.ruff.lint]\nignore = ["RUF001", "RUF002"]\n') == [
        ("RUF001", ""), ("RUF002", "")]
