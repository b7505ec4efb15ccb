"""Fifth held-out audit: the checker under mutation fuzzing, checked against CPython.

Four audits wrote escape shapes by hand.  This one generates them: every
``escapes/`` sample that parses is rewritten by seeded, semantics-preserving
mutations (the shapes a fuzzer, or a model told "try another spelling", would
produce) and each variant must still be refused with a line and a column, or,
run in a worker, be contained.  The mutations:

* scope and binding shapes around a sub-expression of the sample (an attribute,
  a call, a name): an alias through an assignment, tuple unpacking, a starred
  target, a walrus, a comprehension, a lambda default, a nested function
  (closure), a class body, a decorator, ``match``, ``global``/``nonlocal``, an
  augmented assignment, an exception handler that binds it, ``del`` of the
  first alias, ``__class__`` assignment;
* spellings of the same thing: consistent renaming of the sample's own names,
  string constants built at run time (concatenation, ``join``, ``chr``,
  f-strings, ``%``, slicing, ``reversed``), attribute reads routed through
  callables that take a callable (``map``, ``sorted(key=)``, ``min``/``max(key=)``,
  ``functools.reduce``, ``itertools.starmap``, ``getattr``-like names);
* source-text shapes: NFKC look-alike letters in identifiers (f-strings
  included), comment and coding lines (behind every line separator Python's
  ``str.splitlines`` knows but the tokenizer does not), line continuations.

A differential check runs beside it, on every generated program: the checker
models names without scopes (one set of every name bound anywhere, so a name
bound in any scope may be read in any other), which is sound only if that set
holds every binding CPython makes.  CPython's own ``symtable`` says which names
each scope binds and which resolve to the module's globals or the builtins: a
binding the checker does not count, or an accepted program whose free name is
neither a module global nor an allowed builtin, is a misread.

Bypass found (accepted before; the regression below failed):

* a coding cookie on line 1 hidden behind ``\\x1c`` (``#\\x1c#\\x1c# coding:
  utf_7``): the checker found the first two lines with ``str.splitlines()``,
  which also splits at ``\\x0c``, ``\\x1c``-``\\x1e``, ``\\x85``, ``\\u2028``..., so
  the cookie was the third piece and never read, while CPython reads the file's
  bytes as UTF-7 (``argus sandbox check`` accepted a file that, imported as a
  file, runs ``open(...)`` hidden in a comment).  Lines are now split as
  CPython splits them.  Sample ``escapes/coding_cookie_behind_separator.py``.

Misreads the differential check found (the checker's binding count was not
CPython's; each regression below failed):

* a ``__future__`` import binds its name as a module global (``annotations`` is a
  ``__future__._Feature``), but the checker did not count it: with any other
  binding of ``annotations`` anywhere (a local of another function), a method's
  read of it was taken as that binding's and accepted, handing the strategy an
  interpreter object outside the allow-list.  Now counted, and a ``__future__``
  name may be neither read nor rebound.  Sample
  ``escapes/future_feature_value.py``;
* ``match`` capture patterns (``case x``, ``case [*x]``, ``case {**x}``) bind names
  the prepass did not count (``match`` is refused whole, so nothing ran; the count
  is now CPython's, so the differential check can hold without exceptions).

The fast run checks a few hundred variants; ``-m slow`` a few thousand, with a
sample run in workers.  Resource limits: ``test_sandbox_heldout5_limits.py``.
"""

from __future__ import annotations

import ast
import copy
import json
import random
import re
import socket
import symtable
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argus_orchestrator.sandbox import WorkerFailure, WorkerPolicy, WorkerProcess, validate_source
from argus_orchestrator.sandbox import validator as v
from argus_orchestrator.sandbox.validator import validate_bytes

ESCAPES = Path(__file__).parent / "escapes"
ROOT = Path(__file__).parents[4]
EXAMPLES = [*sorted((ROOT / "examples" / "orchestrator" / "variants").glob("*.py")),
            ROOT / "examples" / "orchestrator" / "seed_strategy.py"]


def _parsed_corpus() -> tuple[dict[str, ast.Module], dict[str, str]]:
    """Every corpus sample Python can parse (a few are unparsable on purpose), and each
    one's leading comment lines (a coding cookie is a sample's point, and unparsing
    drops comments)."""
    trees: dict[str, ast.Module] = {}
    headers: dict[str, str] = {}
    for path in sorted(ESCAPES.glob("*.py")):
        text = path.read_text()
        try:
            trees[path.stem] = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        lines = text.split("\n")
        count = next((i for i, line in enumerate(lines) if not line.startswith("#")), 0)
        headers[path.stem] = "".join(line + "\n" for line in lines[:count])
    return trees, headers


CORPUS, HEADERS = _parsed_corpus()


# -- the mutations ---------------------------------------------------------------------------
class _Fresh:
    """Fresh, checker-clean names (``v0``, ``v1``...) for one variant."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken
        self.n = 0

    def __call__(self) -> str:
        while f"v{self.n}" in self.taken:
            self.n += 1
        self.n += 1
        return f"v{self.n - 1}"


def _functions(tree: ast.Module) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.body]


def _targets(stmt: ast.stmt) -> list[tuple[ast.AST, str, int | None, ast.expr]]:
    """(parent, field, index, child) for the loaded sub-expressions of ``stmt`` worth
    moving: attributes, calls and names, outside nested scopes (a lambda's or a
    comprehension's own names would leave their scope)."""
    found: list[tuple[ast.AST, str, int | None, ast.expr]] = []
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp |
                      ast.GeneratorExp | ast.FunctionDef | ast.ClassDef) and node is not stmt:
            continue
        for field, value in ast.iter_fields(node):
            items = value if isinstance(value, list) else [value]
            for index, child in enumerate(items):
                if not isinstance(child, ast.AST):
                    continue
                if isinstance(child, ast.Attribute | ast.Call | ast.Name) and isinstance(
                        getattr(child, "ctx", ast.Load()), ast.Load) and not (
                        isinstance(node, ast.Call) and field == "func"
                        and isinstance(child, ast.Name)):
                    found.append((node, field, index if isinstance(value, list) else None,
                                  child))
                stack.append(child)
    return found


def _replace(parent: ast.AST, field: str, index: int | None, new: ast.expr) -> None:
    if index is None:
        setattr(parent, field, new)
    else:
        getattr(parent, field)[index] = new


def _stmt(text: str) -> list[ast.stmt]:
    return ast.parse(text).body


def _load(name: str) -> ast.Name:
    return ast.Name(name, ast.Load())


#: Scope and binding shapes: (prelude statements, replacement expression) around ``E``.
#: ``{e}`` is the moved expression's source, ``{a}``/``{b}`` fresh names.
WRAPS: dict[str, tuple[str, str]] = {
    "alias": ("{a} = {e}", "{a}"),
    "alias_chain": ("{a} = {e}\n{b} = {a}", "{b}"),
    "tuple_unpack": ("{a}, {b} = {e}, 0", "{a}"),
    "starred": ("*{a}, = [{e}]", "{a}[0]"),
    "starred_tail": ("{b}, *{a} = [0, {e}]", "{a}[0]"),
    "walrus": ("", "({a} := {e})"),
    "list_comp": ("", "[{a} for {a} in [{e}]][0]"),
    "dict_comp": ("", "{{0: {a} for {a} in [{e}]}}[0]"),
    "genexp_next": ("", "next({a} for {a} in [{e}])"),
    "nested_comp": ("", "[{b} for {a} in [[{e}]] for {b} in {a}][0]"),
    "lambda_default": ("", "(lambda {a}={e}: {a})()"),
    "lambda_call": ("", "(lambda {a}: {a})({e})"),
    "closure": ("def {a}():\n    return {e}", "{a}()"),
    "closure_cell": ("{b} = {e}\ndef {a}():\n    return {b}", "{a}()"),
    "nested_closure": ("def {a}():\n    {b} = {e}\n    def {b}2():\n        return {b}\n"
                       "    return {b}2()", "{a}()"),
    "class_body": ("class {a}:\n    {b} = {e}", "{a}.{b}"),
    "decorator": ("def {b}(f):\n    return {e}\n@{b}\ndef {a}():\n    pass", "{a}"),
    "match_capture": ("match {e}:\n    case {a}:\n        pass", "{a}"),
    "global_decl": ("def {b}():\n    global {a}\n    {a} = {e}\n{b}()", "{a}"),
    "nonlocal_decl": ("def {b}():\n    {a} = 0\n    def {b}2():\n        nonlocal {a}\n"
                      "        {a} = {e}\n    {b}2()\n    return {a}", "{b}()"),
    "augmented": ("{a} = [0]\n{a} += [{e}]", "{a}[1]"),
    "except_binding": ("try:\n    raise ValueError({e})\nexcept ValueError as {a}:\n"
                       "    {b} = {a}.args[0]", "{b}"),
    "del_first_alias": ("{a} = {e}\n{b} = {a}\ndel {a}", "{b}"),
    "for_target": ("for {a} in [{e}]:\n    pass", "{a}"),
    "ifexp": ("", "({e} if 1 else None)"),
    "boolop": ("", "(0 or {e})"),
    "class_assign": ("class {a}:\n    pass\n{b} = {a}()\n{b}.__class__ = {e}", "{b}"),
    "map_call": ("", "list(map(lambda {a}: {a}, [{e}]))[0]"),
    "sorted_key": ("", "sorted([{e}], key=lambda {a}: 0)[0]"),
    "max_key": ("", "max([{e}], key=lambda {a}: 0)"),
    "reduce": ("", "reduce(lambda {a}, {b}: {b}, [{e}], 0)"),
    "starmap": ("", "list(starmap(lambda {a}: {a}, [({e},)]))[0]"),
}

#: Attribute reads re-spelled through callables that take a callable: ``X.attr``.
ATTRIBUTE_ROUTES: dict[str, str] = {
    "getattr": "getattr({x}, {s})",
    "reduce_getattr": "reduce(getattr, [{s}], {x})",
    "map_getattr": "list(map(getattr, [{x}], [{s}]))[0]",
    "sorted_key_getattr": "sorted([{x}], key=lambda o: getattr(o, {s}))[0]",
    "vars_item": "vars({x})[{s}]",
    "dunder_getattribute": "{x}.__getattribute__({s})",
    "type_dict": "type({x}).__dict__[{s}]",
    "attrgetter_import": "__import__('operator').attrgetter({s})({x})",
}

#: The name of an attribute (or a builtin) as a string, built at run time.
STRING_BUILDERS: dict[str, Callable[[str], str]] = {
    "concat": lambda s: " + ".join(repr(c) for c in s),
    "join": lambda s: f"''.join({list(s)!r})",
    "chr": lambda s: " + ".join(f"chr({ord(c)})" for c in s),
    "fstring": lambda s: "f'" + "".join(f"{{chr({ord(c)})}}" for c in s) + "'",
    "percent": lambda s: f"'%s' % {s!r}",
    "reversed_slice": lambda s: f"{s[::-1]!r}[::-1]",
    "reversed_join": lambda s: f"''.join(reversed({s[::-1]!r}))",
    "replace": lambda s: f"{s.replace('_', '-')!r}.replace('-', '_')",
    "split_join": lambda s: f"'_'.join({s.split('_')!r})",
}

#: Full-width (NFKC) look-alikes of ASCII letters.
FULLWIDTH = {c: chr(ord(c) - ord("a") + 0xFF41) for c in "abcdefghijklmnopqrstuvwxyz"}


def _wrap(tree: ast.Module, rng: random.Random, kind: str) -> bool:
    """Move one sub-expression of a function body through the binding shape ``kind``."""
    fresh = _Fresh({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)})
    spots = [(f, i, s) for f in _functions(tree) for i, s in enumerate(f.body)
             if not isinstance(s, ast.FunctionDef | ast.ClassDef)]
    rng.shuffle(spots)
    for func, index, stmt in spots:
        targets = _targets(stmt)
        if not targets:
            continue
        parent, field, position, child = rng.choice(targets)
        a, b = fresh(), fresh()
        prelude, replacement = WRAPS[kind]
        expr = ast.unparse(child)
        try:
            new_expr = ast.parse(replacement.format(a=a, b=b, e=expr), mode="eval").body
            new_stmts = _stmt(prelude.format(a=a, b=b, e=expr)) if prelude else []
        except SyntaxError:
            return False
        _replace(parent, field, position, new_expr)
        func.body[index:index] = new_stmts
        return True
    return False


def _rename(tree: ast.Module, rng: random.Random) -> bool:
    """Rename the sample's own plain names consistently (never a problem name: renaming
    ``__builtins__`` away would remove what makes the sample bad)."""
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
             and isinstance(n.ctx, ast.Store)} | {
        n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    names = {n for n in names if v._binding_problem(n) is None and n not in (
        "self", "event", "state", "portfolio", "Strategy", "_")}
    defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    names -= defined  # a method's name is also read as an attribute
    # An import binds its name too, and renaming only the other bindings would turn a read
    # of it into a read of an unbound global (a __future__ name cannot be renamed at all).
    names -= {a.asname or a.name.split(".")[0] for n in ast.walk(tree)
              if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names}
    if not names:
        return False
    chosen = set(rng.sample(sorted(names), k=max(1, len(names) // 2)))
    fresh = _Fresh({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | names)
    mapping = {n: fresh() for n in sorted(chosen)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in mapping:
            node.id = mapping[node.id]
        elif isinstance(node, ast.arg) and node.arg in mapping:
            node.arg = mapping[node.arg]
    return True


def _strings(tree: ast.Module, rng: random.Random) -> bool:
    """Build one string constant of a function body at run time instead."""
    inside = {id(n) for f in _functions(tree) for s in f.body for n in ast.walk(s)}
    spots = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(
        n.value, str) and 0 < len(n.value) < 40 and id(n) in inside]
    spots = [n for n in spots if not _in_fstring(tree, n)]
    if not spots:
        return False
    node = rng.choice(spots)
    text = STRING_BUILDERS[rng.choice(sorted(STRING_BUILDERS))](node.value)
    new = ast.parse(text, mode="eval").body
    return _swap(tree, node, new)


def _swap(tree: ast.Module, node: ast.AST, new: ast.expr) -> bool:
    """Put ``new`` where ``node`` stands in ``tree``."""
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is node:
                setattr(parent, field, new)
                return True
            if isinstance(value, list) and any(x is node for x in value):
                value[next(i for i, x in enumerate(value) if x is node)] = new
                return True
    return False


def _in_fstring(tree: ast.Module, node: ast.AST) -> bool:
    return any(isinstance(p, ast.JoinedStr) and any(x is node for x in ast.walk(p))
               for p in ast.walk(tree))


def _attribute_route(tree: ast.Module, rng: random.Random) -> bool:
    """Re-spell one attribute read ``X.attr`` as a lookup by a built string."""
    spots = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute)
             and isinstance(n.ctx, ast.Load)]
    if not spots:
        return False
    node = rng.choice(spots)
    route = ATTRIBUTE_ROUTES[rng.choice(sorted(ATTRIBUTE_ROUTES))]
    built = STRING_BUILDERS[rng.choice(sorted(STRING_BUILDERS))](node.attr)
    new = ast.parse(route.format(x=ast.unparse(node.value), s=built), mode="eval").body
    return _swap(tree, node, new)


AST_MUTATIONS: dict[str, Callable[[ast.Module, random.Random], bool]] = {
    **{f"wrap_{k}": (lambda kind: lambda t, r: _wrap(t, r, kind))(k) for k in WRAPS},
    "rename": _rename,
    "strings": _strings,
    "attribute_route": _attribute_route,
}


# Source-text mutations (after unparsing): look-alikes, comments, coding lines, continuations.
def _nfkc(source: str, rng: random.Random) -> str:
    """One identifier letter (f-strings included) spelled full-width: Python reads the same
    name (NFKC), so the variant means the same."""
    spots = [i for i, c in enumerate(source) if c in FULLWIDTH
             and _identifier_at(source, i)]
    if not spots:
        return source
    i = rng.choice(spots)
    return source[:i] + FULLWIDTH[source[i]] + source[i + 1:]


def _identifier_at(source: str, i: int) -> bool:
    """Whether the letter at ``i`` is in code (not in a comment or a plain string)."""
    line_start = source.rfind("\n", 0, i) + 1
    before = source[line_start:i]
    if "#" in before:
        return False
    if (before.count("'") + before.count('"')) % 2 == 0:
        return True
    # A letter inside an f-string's braces is code; in any other string it is text.
    in_braces = before.rfind("{") > before.rfind("}")
    return in_braces and ("f'" in before or 'f"' in before)


SEPARATORS = ("\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x0b")


def _comments(source: str, rng: random.Random) -> str:
    """Comment and coding lines: harmless ones, and cookies behind line separators that
    ``str.splitlines`` knows and the tokenizer does not."""
    choice = rng.randrange(4)
    if choice == 0:
        sep = rng.choice(SEPARATORS)
        codec = rng.choice(["utf_7", "rot13", "unicode_escape", "latin-1", "utf-16"])
        return f"#{sep}#{sep}# -*- coding: {codec} -*-\n{source}"
    if choice == 1:
        return f"# -*- coding: utf-8 -*-\n# {rng.choice(SEPARATORS)} note\n{source}"
    lines = source.split("\n")
    at = rng.randrange(len(lines))
    if choice == 2:
        lines.insert(at, " " * (len(lines[at]) - len(lines[at].lstrip())) + "# comment")
    else:
        lines[at] = lines[at] + "  # " + rng.choice(SEPARATORS) + " trailing"
    return "\n".join(lines)


def _continuations(source: str, rng: random.Random) -> str:
    """A backslash continuation after one ``=``, ``(`` or ``,`` outside strings."""
    lines = source.split("\n")
    spots = [(n, i) for n, line in enumerate(lines) for i, c in enumerate(line)
             if c in "=(," and "'" not in line[:i] and '"' not in line[:i]
             and "#" not in line[:i]]
    if not spots:
        return source
    n, i = rng.choice(spots)
    lines[n] = lines[n][:i + 1] + " \\\n        " + lines[n][i + 1:]
    return "\n".join(lines)


TEXT_MUTATIONS: dict[str, Callable[[str, random.Random], str]] = {
    "nfkc": _nfkc, "comments": _comments, "continuation": _continuations}


def variant(name: str, seed: int, salt: str = "") -> tuple[str, list[str]]:
    """One seeded variant of corpus sample ``name``: its source and the mutations applied."""
    rng = random.Random(f"{salt}{name}:{seed}")
    tree = copy.deepcopy(CORPUS[name])
    applied: list[str] = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(sorted(AST_MUTATIONS))
        if AST_MUTATIONS[kind](tree, rng):
            applied.append(kind)
    ast.fix_missing_locations(tree)
    source = HEADERS[name] + ast.unparse(tree) + "\n"
    if rng.random() < 0.35:
        kind = rng.choice(sorted(TEXT_MUTATIONS))
        source = TEXT_MUTATIONS[kind](source, rng)
        applied.append(kind)
    return source, applied


def variants(count: int, salt: str = "") -> Iterator[tuple[str, int, str, list[str]]]:
    """``count`` variants spread over the corpus: (sample, seed, source, mutations)."""
    names = sorted(CORPUS)
    for i in range(count):
        name = names[i % len(names)]
        seed = i // len(names)
        source, applied = variant(name, seed, salt)
        yield name, seed, source, applied


# -- the differential check against symtable -------------------------------------------------
def _scopes(table: symtable.SymbolTable) -> Iterator[symtable.SymbolTable]:
    stack = [table]
    while stack:
        scope = stack.pop()
        yield scope
        stack.extend(scope.get_children())


def symtable_misreads(source: str, accepted: bool | None = None) -> list[str]:
    """Where CPython's symtable and the checker's name model disagree on ``source``.

    * every name CPython binds in any scope is counted by the checker's prepass;
    * when the checker accepts: every name read in a scope that CPython resolves to
      the module's globals or the builtins is a module-level binding or an allowed
      builtin, and an imported module's alias is never local or free anywhere.
    """
    try:
        table = symtable.symtable(source, "<strategy>", "exec")
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    checker = v._Checker(tree, float("inf"))
    checker._prepass()
    counted = set(checker.bound)
    problems: list[str] = []
    module_level: set[str] = set()
    for scope in _scopes(table):
        for symbol in scope.get_symbols():
            name = symbol.get_name()
            if name.startswith("."):  # a comprehension's own iterator argument
                continue
            bound = symbol.is_assigned() or symbol.is_parameter() or symbol.is_imported() \
                or symbol.is_namespace()
            if scope.get_type() == "module" and bound:
                module_level.add(name)
            if bound and name not in counted and name != "__class__":
                problems.append(f"{scope.get_type()} {scope.get_name()!r} binds {name!r}, "
                                f"which the checker does not count")
    if accepted is None:
        accepted = validate_source(source).accepted
    if accepted:
        aliases = set(checker.module_aliases)
        for scope in _scopes(table):
            for symbol in scope.get_symbols():
                name = symbol.get_name()
                if not symbol.is_referenced():
                    continue
                implicit = (symbol.is_global() and not symbol.is_declared_global()) or (
                    scope.get_type() == "module" and not symbol.is_assigned()
                    and not symbol.is_imported())
                if implicit and name not in module_level and name not in v.ALLOWED_BUILTINS:
                    problems.append(f"{scope.get_name()!r} reads {name!r} from the "
                                    f"builtins, which are not allowed")
                if name in aliases and (symbol.is_local() or symbol.is_free()) \
                        and scope.get_type() != "module":
                    problems.append(f"{scope.get_name()!r} binds the module alias {name!r}")
    return problems


# -- properties ------------------------------------------------------------------------------
def _refused_with_position(source: str) -> str | None:
    """None when ``source`` is refused with a located, non-empty reason; else why not."""
    result = validate_source(source)
    if result.accepted:
        return "accepted"
    if not all(f.message.strip() and f.line >= 0 and f.col >= 0 for f in result.findings):
        return f"a finding without a position or a message: {result.reasons}"
    if not any(f.line >= 1 for f in result.findings):
        return f"no finding names a line: {result.reasons}"
    return None


def _check_variants(count: int, salt: str = "") -> tuple[int, list[str]]:
    failures: list[str] = []
    n = 0
    for name, seed, source, applied in variants(count, salt):
        n += 1
        why = _refused_with_position(source)
        if why is not None:
            failures.append(f"{name} seed {seed} {applied}: {why}\n{source}")
        misreads = symtable_misreads(source)
        if misreads:
            failures.append(f"{name} seed {seed} {applied}: {misreads}")
    return n, failures


def test_the_mutations_all_apply_and_keep_the_variants_parsable() -> None:
    """The generator exercises every mutation, and what it writes is Python."""
    seen: set[str] = set()
    unparsable = 0
    for _, _, source, applied in variants(2 * len(CORPUS)):
        seen.update(applied)
        try:
            ast.parse(source)
        except SyntaxError:
            unparsable += 1
    assert len(CORPUS) >= 140
    assert seen >= set(AST_MUTATIONS) | set(TEXT_MUTATIONS), \
        set(AST_MUTATIONS) | set(TEXT_MUTATIONS) - seen
    assert unparsable < len(CORPUS) // 4  # a look-alike in a string prefix, say: still valid


def test_a_few_hundred_variants_are_each_refused_with_a_line_and_no_misread() -> None:
    n, failures = _check_variants(3 * len(CORPUS))
    assert n >= 400
    assert not failures, "\n\n".join(failures[:5])


@pytest.mark.slow
def test_thousands_of_variants_are_each_refused_with_a_line_and_no_misread() -> None:
    n, failures = _check_variants(25 * len(CORPUS), salt="slow")
    assert n >= 3000
    assert not failures, "\n\n".join(failures[:5])


#: Every binding shape, each wrapped around a plain read in an accepted strategy: the
#: differential check must find nothing, and the checker's verdict must match the shape's.
PLAIN = '''
import math


class Strategy:
    def on_event(self, event, state, portfolio):
        closes = state.setdefault("closes", [])
        closes.append(event["close"])
        level = math.sqrt(abs(closes[-1]))
        state["level"] = level
        return []
'''

#: The shapes whose syntax is refused whatever they wrap (the rest are accepted).
REFUSED_SHAPES = {"wrap_match_capture", "wrap_global_decl", "wrap_nonlocal_decl",
                  "wrap_class_assign", "wrap_decorator", "wrap_class_body", "wrap_reduce",
                  "wrap_starmap"}


@pytest.mark.parametrize("kind", sorted(f"wrap_{k}" for k in WRAPS))
def test_binding_shapes_around_an_accepted_strategy(kind: str) -> None:
    for seed in range(6):
        rng = random.Random(f"{kind}:{seed}")
        tree = ast.parse(PLAIN)
        assert AST_MUTATIONS[kind](tree, rng)
        ast.fix_missing_locations(tree)
        source = ast.unparse(tree)
        assert symtable_misreads(source) == [], source
        result = validate_source(source)
        # Moving the module itself out of 'math.sqrt' is refused whatever the shape.
        moved_module = re.search(r"\bmath\b(?!\.)", source.split("\n", 1)[1])
        expected = kind not in REFUSED_SHAPES and not moved_module
        assert result.accepted is expected, (source, result.reasons)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_real_strategies_under_the_binding_shapes_have_no_misread(path: Path) -> None:
    """The example strategies (accepted), mutated: symtable and the checker agree."""
    base = ast.parse(path.read_text())
    assert validate_source(path.read_text()).accepted
    for kind in sorted(AST_MUTATIONS):
        tree = copy.deepcopy(base)
        if AST_MUTATIONS[kind](tree, random.Random(kind)):
            ast.fix_missing_locations(tree)
            assert symtable_misreads(ast.unparse(tree)) == [], kind


@pytest.mark.parametrize(("source", "misread"), [
    # The oracle itself: a name read but bound nowhere resolves to the builtins.
    ("X = 1\ndef f():\n    return open\n", "reads 'open'"),
    ("import math\ndef f(math):\n    return math\n", "binds the module alias 'math'"),
])
def test_the_differential_oracle_sees_what_it_looks_for(source: str, misread: str) -> None:
    """Told the checker accepted these (it refuses them), the oracle names the misread."""
    assert not validate_source(source).accepted
    assert any(misread in m for m in symtable_misreads(source, accepted=True))


# -- the bypass this audit found --------------------------------------------------------------
COOKIE_BASE = '''
class Strategy:
    def on_event(self, event, state, portfolio):
        return []  #+AAo-        return [open(event['secret_path']).read()]
'''


@pytest.mark.parametrize("separator", SEPARATORS)
def test_a_coding_cookie_behind_a_line_separator_is_refused(separator: str) -> None:
    source = f"#{separator}#{separator}# -*- coding: utf_7 -*-\n" + COOKIE_BASE
    for result in (validate_source(source), validate_bytes(source.encode())):
        assert not result.accepted
        assert any("encoding declaration 'utf_7'" in f.message and f.line == 1
                   for f in result.findings), result.reasons


def test_the_cookie_behind_a_separator_is_obeyed_by_cpython() -> None:
    """Why it matters: compiled as a file's bytes, the hidden line is code."""
    source = "#\x1c#\x1c# -*- coding: utf_7 -*-\n" + COOKIE_BASE
    namespace: dict[str, Any] = {}
    exec(compile(source.encode(), "<file>", "exec"), namespace)
    assert "open" in namespace["Strategy"].on_event.__code__.co_names
    sample = (ESCAPES / "coding_cookie_behind_separator.py")
    namespace = {}
    exec(compile(sample.read_bytes(), "<file>", "exec"), namespace)
    assert "open" in namespace["Strategy"].on_event.__code__.co_names
    result = validate_bytes(sample.read_bytes())
    assert any("encoding declaration 'utf_7'" in f.message and f.line == 1
               for f in result.findings), result.reasons


def test_a_utf8_cookie_behind_separators_and_plain_separators_stay_accepted() -> None:
    for separator in SEPARATORS:
        source = f"#{separator}#{separator}# -*- coding: utf-8 -*-\n" + COOKIE_BASE
        assert validate_source(source).accepted, separator
        assert validate_source(f"# {separator} note\n" + COOKIE_BASE).accepted, separator


FUTURE_READ = '''from __future__ import annotations


def shadow():
    annotations = 1
    return annotations


class Strategy:
    def on_event(self, event, state, portfolio):
        state["f"] = repr(annotations)
        return []
'''


def test_a_future_name_is_neither_a_value_nor_rebindable() -> None:
    result = validate_source(FUTURE_READ)
    assert not result.accepted
    assert any(f.line == 5 and "cannot rebind 'annotations'" in f.message
               for f in result.findings), result.reasons
    assert any(f.line == 11 and "'annotations' names a __future__ feature" in f.message
               for f in result.findings), result.reasons
    sample = (ESCAPES / "future_feature_value.py").read_text()
    assert any("names a __future__ feature" in r for r in validate_source(sample).reasons)
    # The import itself stays fine, and so does every strategy that only imports it.
    assert validate_source("from __future__ import annotations\n" + GOOD).accepted


@pytest.mark.parametrize("pattern", ["x", "[*x]", "{**x}", "[1, x]", "(x as y)"])
def test_match_captures_are_counted_as_bindings(pattern: str) -> None:
    source = f"def f(v):\n    match v:\n        case {pattern}:\n            pass\n"
    checker = v._Checker(ast.parse(source), float("inf"))
    checker._prepass()
    assert "x" in checker.bound
    assert symtable_misreads(source) == []


# -- containment: variants run in workers ------------------------------------------------------
@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A secret in the environment and in a file, and a listener, for variants to go after."""
    canary = f"sk-ant-api03-CANARY{uuid.uuid4().hex}"
    monkeypatch.setenv("ANTHROPIC_API_KEY", canary)
    secret = tmp_path / "secret.txt"
    secret.write_text(canary)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.setblocking(False)
    event = {"type": "bar", "instrument_id": "test:X", "close": 1.0,
             "secret_path": str(secret), "host_dir": str(tmp_path),
             "sentinel_path": str(secret), "host_pid": 1,
             "port": listener.getsockname()[1]}
    yield {"canary": canary, "event": event, "tmp": tmp_path, "listener": listener}
    listener.close()


POLICY_OS_ONLY = WorkerPolicy(python_guards=False, call_timeout_s=1.0, start_timeout_s=4.0,
                              memory_mb=256)
POLICY_FULL = WorkerPolicy(call_timeout_s=1.0, start_timeout_s=4.0, memory_mb=256)
CALL = {"op": "call", "state": {}, "portfolio": {"cash": 0.0, "equity": 0.0, "positions": {}}}
GOOD = '''
class Strategy:
    def on_event(self, event, state, portfolio):
        state["n"] = state.get("n", 0) + 1
        return []
'''


def _contained(source: str, policy: WorkerPolicy, host: dict[str, Any]) -> str:
    """Run ``source`` in a worker against the host's bait; the outcome, in words."""
    before = sorted(p.name for p in host["tmp"].iterdir())
    text, outcome = "", "ran"
    try:
        with WorkerProcess(source, policy) as worker:
            try:
                text = json.dumps(worker.call({**CALL, "event": host["event"]}))
            except WorkerFailure as exc:
                assert exc.kind in {"timeout", "crash", "malformed"}, exc
                text, outcome = str(exc), exc.kind
            text += worker.stderr_tail(100_000)
    except WorkerFailure as exc:  # refused or killed while loading
        assert exc.kind in {"startup", "timeout", "crash"}, exc
        text, outcome = str(exc), f"load {exc.kind}"
    assert host["canary"] not in text
    assert "root:x:0:0" not in text
    assert sorted(p.name for p in host["tmp"].iterdir()) == before
    with pytest.raises(BlockingIOError):
        host["listener"].accept()
    return outcome


def _worker_sample(count: int, salt: str) -> list[tuple[str, str]]:
    rng = random.Random(salt)
    picked = rng.sample(list(variants(4 * len(CORPUS), salt)), count)
    return [(f"{name}:{seed}:{'+'.join(applied)}", source)
            for name, seed, source, applied in picked]


def _run_in_workers(count: int, salt: str, host: dict[str, Any]) -> dict[str, int]:
    outcomes: dict[str, int] = {}
    for index, (_, source) in enumerate(_worker_sample(count, salt)):
        policy = POLICY_OS_ONLY if index % 2 else POLICY_FULL
        outcome = _contained(source, policy, host)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    # The host and its running loop are unharmed: the next strategy answers as usual.
    with WorkerProcess(GOOD, POLICY_FULL) as worker:
        reply = worker.call({**CALL, "event": host["event"]})
    assert reply["ok"] is True and reply["state"] == {"n": 1}
    return outcomes


def test_a_sample_of_variants_is_contained_by_workers(host: dict[str, Any]) -> None:
    outcomes = _run_in_workers(6, "fast", host)
    assert sum(outcomes.values()) == 6


@pytest.mark.slow
def test_a_larger_sample_of_variants_is_contained_by_workers(host: dict[str, Any]) -> None:
    outcomes = _run_in_workers(60, "slow", host)
    assert sum(outcomes.values()) == 60
