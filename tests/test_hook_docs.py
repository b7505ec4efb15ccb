"""Meta-tests of the hooks (datasette's pattern): every hookspec is documented in HOOKS.md
with its exact signature and its docstring's summary, nothing there is stale, and every
hook is exercised by some test in the repository."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from argus_core import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS_MD = ROOT / "HOOKS.md"


def _hookspecs() -> dict[str, Callable[..., object]]:
    found = {name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
             if hasattr(fn, "argus_spec")}
    assert len(found) > 10
    return found


HOOKS = _hookspecs()


def _signature(fn: Callable[..., object]) -> str:
    """``def name(arg: Annotation, ...) -> Return`` as the code declares it (the module
    uses postponed annotations, so each annotation is its source text)."""
    sig = inspect.signature(fn)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"def {fn.__name__}({params}) -> {sig.return_annotation}"


def _plain(text: str) -> str:
    """Docstring or Markdown text without markup, whitespace collapsed."""
    text = re.sub(r":(?:class|func|mod|data|meth):`~?([^`]+)`", r"\1", text)
    return " ".join(text.replace("`", "").split())


def _sections() -> dict[str, str]:
    parts = re.split(r"^## `(\w+)`$", HOOKS_MD.read_text(), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_hook_is_documented_and_nothing_else() -> None:
    documented = _sections()
    assert set(documented) == set(HOOKS), (
        f"HOOKS.md lacks {sorted(set(HOOKS) - set(documented))}; documents hooks that do "
        f"not exist: {sorted(set(documented) - set(HOOKS))}")


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_documented_signature_and_summary_match_the_code(name: str) -> None:
    section = _sections()[name]
    code = re.search(r"```python\n(.+?)\n```", section, flags=re.S)
    assert code is not None, f"HOOKS.md: no python block under {name}"
    assert code.group(1).strip() == _signature(HOOKS[name]), (
        f"HOOKS.md documents {name} as {code.group(1).strip()!r}; the code says "
        f"{_signature(HOOKS[name])!r}")
    doc = inspect.getdoc(HOOKS[name])
    assert doc, f"hookspec {name} has no docstring"
    assert _plain(doc.split("\n\n")[0]) in _plain(section), (
        f"HOOKS.md: the section of {name} lacks its docstring's summary")


def _test_sources() -> dict[Path, str]:
    paths = [*ROOT.glob("tests/**/*.py"), *ROOT.glob("plugins/*/tests/**/*.py")]
    return {p: p.read_text() for p in paths if p.name != Path(__file__).name}


def _implementing_modules() -> dict[str, set[str]]:
    """hook name -> dotted names of the builtin and first-party plugin modules that
    implement it with ``@hookimpl``."""
    out: dict[str, set[str]] = {}
    sources = [(p, ".".join(p.relative_to(ROOT).with_suffix("").parts))
               for p in ROOT.glob("argus_core/builtins/*.py")]
    for p in ROOT.glob("plugins/*/src/**/*.py"):
        parts = p.relative_to(ROOT).with_suffix("").parts
        sources.append((p, ".".join(parts[parts.index("src") + 1:])))
    for path, module in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name in HOOKS and any(
                    "hookimpl" in ast.unparse(d) for d in node.decorator_list):
                out.setdefault(node.name, set()).add(module)
    return out


def _exercised(name: str, tests: dict[Path, str], modules: dict[str, set[str]]) -> bool:
    """A test implements the hook (``def name(`` / ``name = hookimpl(...)``), calls it
    (``hook.name`` / ``.name(``), or loads a module that implements it (names it)."""
    direct = re.compile(rf"(\bdef {name}\(|\b{name}\s*=\s*hookimpl|hook\.{name}\b|"
                        rf"\.{name}\()")
    for text in tests.values():
        if direct.search(text) or any(m in text for m in modules.get(name, ())):
            return True
    return False


def test_every_hook_is_exercised_by_a_test() -> None:
    tests, modules = _test_sources(), _implementing_modules()
    untested = [name for name in sorted(HOOKS) if not _exercised(name, tests, modules)]
    assert not untested, (f"no test implements, calls or loads an implementation of: "
                          f"{untested} (add a test plugin implementing it, or delete the hook "
                          f"and its section in HOOKS.md)")
