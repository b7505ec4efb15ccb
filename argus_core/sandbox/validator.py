"""Static validation of AI-written strategy modules: an ``ast`` allow-list.

This is a *filter*, not the security boundary: it rejects code that plainly
breaks the contract (``CONTRACT.md``) before any of it runs, with every
reason at once, so the model can be told exactly what to fix.  The boundary
is the worker process (:mod:`argus_core.sandbox.worker`), which must contain
code that slips past this filter.

Why hand-written: RestrictedPython is the well-known library for this, but it
rewrites code to run *in-process* with guard functions; Argus never runs
untrusted code in-process, so all it needs is a reject-with-reasons pass
over the tree, which is short and auditable here.
"""

from __future__ import annotations

import ast
import importlib
import types
from collections.abc import Iterable

import attrs

MAX_SOURCE_BYTES = 64 * 1024
MAX_LINES = 1500
MAX_NODES = 20_000
MAX_STRING = 4096



def _public_callables(module_name: str) -> frozenset[str]:
    """Public names of a stdlib module, minus modules it re-exports.

    ``statistics.sys`` and ``statistics.random`` are public attributes of a
    public module: a blanket "every public name" rule would hand out ``sys``.
    """
    module = importlib.import_module(module_name)
    return frozenset(n for n in dir(module) if not n.startswith("_")
                     and not isinstance(getattr(module, n), types.ModuleType))


#: Importable modules -> the member names AI-written code may use.
ALLOWED_IMPORTS: dict[str, frozenset[str]] = {
    "math": _public_callables("math"),
    "statistics": _public_callables("statistics"),
    "itertools": _public_callables("itertools"),
    "bisect": _public_callables("bisect"),
    "heapq": _public_callables("heapq"),
    "collections": frozenset({"deque", "defaultdict", "Counter", "OrderedDict"}),
    "typing": frozenset({"Any", "Optional", "Union", "List", "Dict", "Tuple", "Sequence",
                         "Mapping", "Iterable"}),
    "decimal": frozenset({"Decimal", "ROUND_HALF_UP", "ROUND_HALF_EVEN", "ROUND_DOWN",
                          "ROUND_UP", "ROUND_FLOOR", "ROUND_CEILING"}),
    "fractions": frozenset({"Fraction"}),
    "functools": frozenset({"reduce"}),
    "__future__": frozenset({"annotations"}),
}

#: Modules that may be imported whole (``import math``); their attributes are checked.
PLAIN_IMPORTS = frozenset({"math", "statistics", "itertools", "bisect", "heapq"})

#: Builtins AI-written code may name (the worker exposes exactly these).
ALLOWED_BUILTINS = frozenset({
    "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "frozenset",
    "int", "isinstance", "len", "list", "map", "max", "min", "pow", "range", "reversed",
    "round", "set", "slice", "sorted", "str", "sum", "tuple", "zip", "iter", "next", "repr",
    "chr", "ord", "hash", "callable", "staticmethod", "True", "False", "None",
    "Exception", "ValueError", "TypeError", "KeyError", "IndexError", "ZeroDivisionError",
    "ArithmeticError", "OverflowError", "StopIteration",
})

#: Builtins that are never allowed, named so the reason is specific.
FORBIDDEN_NAMES = frozenset({
    "eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "hasattr", "globals",
    "locals", "vars", "dir", "type", "super", "object", "print", "input", "breakpoint", "help",
    "exit", "quit", "memoryview", "bytearray", "bytes", "classmethod", "property", "id",
    "issubclass", "format", "__import__", "__builtins__", "__loader__", "__spec__",
})

#: Attribute names refused outright (besides anything starting with ``_``).
FORBIDDEN_ATTRS = frozenset({"format", "format_map", "mro", "register", "load_module",
                             "exec_module", "system", "popen"})
#: Prefixes of frame/code/generator internals (``gi_frame``, ``f_globals``, ``tb_frame``...).
FORBIDDEN_ATTR_PREFIXES = ("gi_", "ag_", "cr_", "f_", "tb_", "co_", "func_", "im_")

_FORBIDDEN_NODES: dict[type, str] = {
    ast.Global: "'global' statements",
    ast.Nonlocal: "'nonlocal' statements",
    ast.With: "'with' blocks",
    ast.AsyncWith: "'async with'",
    ast.AsyncFor: "'async for'",
    ast.AsyncFunctionDef: "'async def'",
    ast.Await: "'await'",
    ast.Yield: "'yield' (generators)",
    ast.YieldFrom: "'yield from' (generators)",
}
_EVENT_TYPES = frozenset({"bar", "trade", "book", "book_delta", "signal", "settlement",
                          "event", "book_status"})


@attrs.frozen
class Finding:
    """One reason a module is refused: line, column and what is wrong."""

    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}:{self.col}: {self.message}"


@attrs.frozen
class ValidationResult:
    """The verdict on one module: accepted or every reason it is not."""

    accepted: bool
    findings: tuple[Finding, ...]
    n_lines: int
    n_nodes: int

    @property
    def reasons(self) -> list[str]:
        """The findings as human-readable strings."""
        return [str(f) for f in self.findings]


def validate_source(source: str) -> ValidationResult:
    """Check ``source`` against the AI strategy contract; collect every finding."""
    findings: list[Finding] = []
    n_lines = source.count("\n") + 1
    size = len(source.encode("utf-8", "replace"))
    if size > MAX_SOURCE_BYTES:
        findings.append(Finding(0, 0, f"source is {size} bytes; the limit is {MAX_SOURCE_BYTES}"))
    if n_lines > MAX_LINES:
        findings.append(Finding(0, 0, f"source has {n_lines} lines; the limit is {MAX_LINES}"))
    if "\x00" in source:
        findings.append(Finding(0, 0, "source contains a NUL byte"))
    if findings:  # do not even parse oversize input
        return ValidationResult(False, tuple(findings), n_lines, 0)
    try:
        tree = ast.parse(source, filename="<strategy>", mode="exec")
    except SyntaxError as exc:
        return ValidationResult(False, (Finding(exc.lineno or 0, exc.offset or 0,
                                                f"syntax error: {exc.msg}"),), n_lines, 0)
    except (RecursionError, MemoryError, ValueError) as exc:
        return ValidationResult(False, (Finding(0, 0, f"source cannot be parsed safely: "
                                                      f"{type(exc).__name__}"),), n_lines, 0)
    checker = _Checker()
    n_nodes = sum(1 for _ in ast.walk(tree))
    if n_nodes > MAX_NODES:
        findings.append(Finding(0, 0, f"module has {n_nodes} syntax nodes; the limit is "
                                      f"{MAX_NODES}"))
    else:
        checker.check_module(tree)
        findings.extend(checker.findings)
    findings.sort(key=lambda f: (f.line, f.col, f.message))
    return ValidationResult(not findings, tuple(findings), n_lines, n_nodes)


def _is_constant_expr(node: ast.AST) -> bool:
    """Literals, containers of literals and arithmetic on them: no calls, no names."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return all(_is_constant_expr(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _is_constant_expr(k) for k in node.keys) and all(
            _is_constant_expr(v) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        return _is_constant_expr(node.operand)
    if isinstance(node, ast.BinOp):
        # No '**' at import time: 10**10**10 would stall the worker before any deadline.
        return (not isinstance(node.op, ast.Pow) and _is_constant_expr(node.left)
                and _is_constant_expr(node.right))
    return False


class _Checker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.module_aliases: dict[str, str] = {}  # alias -> module name

    def fail(self, node: ast.AST, message: str) -> None:
        self.findings.append(Finding(getattr(node, "lineno", 0),
                                     getattr(node, "col_offset", 0), message))

    # -- module level -------------------------------------------------------------
    def check_module(self, tree: ast.Module) -> None:
        strategy: ast.ClassDef | None = None
        for index, stmt in enumerate(tree.body):
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
                    and isinstance(stmt.value.value, str) and index == 0:
                continue  # docstring
            if isinstance(stmt, ast.Import | ast.ImportFrom | ast.FunctionDef):
                continue
            if isinstance(stmt, ast.ClassDef):
                if stmt.name == "Strategy":
                    strategy = stmt
                continue
            if isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets) \
                    and _is_constant_expr(stmt.value):
                continue
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) \
                    and stmt.value is not None and _is_constant_expr(stmt.value):
                continue
            self.fail(stmt, f"module-level {type(stmt).__name__} is not allowed: only the "
                            f"docstring, imports, literal constants, functions and classes "
                            f"may appear at module level (no side effects at import)")
        if strategy is None:
            self.fail(tree, "no top-level 'class Strategy' found")
        else:
            self._check_strategy_class(strategy)
        self.visit(tree)

    def _check_strategy_class(self, cls: ast.ClassDef) -> None:
        methods = {s.name: s for s in cls.body if isinstance(s, ast.FunctionDef)}
        on_event = methods.get("on_event")
        if on_event is None:
            self.fail(cls, "class Strategy must define on_event(self, event, state, portfolio)")
        else:
            args = on_event.args
            n = len(args.posonlyargs) + len(args.args)
            if n != 4 or args.vararg or args.kwarg or args.kwonlyargs:
                self.fail(on_event, "on_event must take exactly (self, event, state, portfolio)")
        for stmt in cls.body:
            if isinstance(stmt, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "EVENTS" for t in stmt.targets):
                ok = isinstance(stmt.value, ast.Tuple | ast.List) and all(
                    isinstance(e, ast.Constant) and e.value in _EVENT_TYPES
                    for e in stmt.value.elts)
                if not ok:
                    self.fail(stmt, f"EVENTS must be a tuple of event type names from "
                                    f"{sorted(_EVENT_TYPES)}")

    # -- generic checks -------------------------------------------------------------
    def generic_visit(self, node: ast.AST) -> None:
        reason = _FORBIDDEN_NODES.get(type(node))
        if reason:
            self.fail(node, f"{reason} are not allowed")
        super().generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            root = alias.name
            if root not in ALLOWED_IMPORTS:
                self.fail(node, f"import of {root!r} is not allowed (allowed: "
                                f"{', '.join(sorted(m for m in ALLOWED_IMPORTS if m[0] != '_'))})")
                continue
            if root not in PLAIN_IMPORTS:
                self.fail(node, f"use 'from {root} import ...' for {root!r} (only some of its "
                                f"names are allowed)")
                continue
            self._bind(node, alias.asname or root)
            self.module_aliases[alias.asname or root] = root

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:
            self.fail(node, "relative imports are not allowed")
            return
        if module not in ALLOWED_IMPORTS:
            self.fail(node, f"import from {module!r} is not allowed")
            return
        allowed = ALLOWED_IMPORTS[module]
        for alias in node.names:
            if alias.name == "*":
                self.fail(node, f"'from {module} import *' is not allowed")
            elif alias.name.startswith("_") or alias.name not in allowed:
                self.fail(node, f"{module}.{alias.name} is not allowed")
            else:
                self._bind(node, alias.asname or alias.name)

    def _bind(self, node: ast.AST, name: str) -> None:
        if name.startswith("_") or name in FORBIDDEN_NAMES:
            self.fail(node, f"cannot bind the name {name!r}")

    def visit_Name(self, node: ast.Name) -> None:
        self._check_identifier(node, node.id)

    def visit_arg(self, node: ast.arg) -> None:
        self._check_identifier(node, node.arg)
        self.generic_visit(node)

    def visit_keyword(self, node: ast.keyword) -> None:
        if node.arg is not None and node.arg.startswith("_"):
            self.fail(node, f"keyword argument {node.arg!r} is not allowed")
        self.generic_visit(node)

    def _check_identifier(self, node: ast.AST, name: str) -> None:
        if name in FORBIDDEN_NAMES:
            self.fail(node, f"the name {name!r} is not allowed")
        elif name.startswith("_"):
            self.fail(node, f"names starting with '_' are not allowed ({name!r})")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        if attr.startswith("_"):
            self.fail(node, f"attribute {attr!r} is not allowed (no '_' or dunder attributes)")
        elif attr in FORBIDDEN_ATTRS or attr.startswith(FORBIDDEN_ATTR_PREFIXES):
            self.fail(node, f"attribute {attr!r} is not allowed")
        elif isinstance(node.value, ast.Name) and node.value.id in self.module_aliases:
            module = self.module_aliases[node.value.id]
            if attr not in ALLOWED_IMPORTS[module]:
                self.fail(node, f"{module}.{attr} is not allowed")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str | bytes) and len(node.value) > MAX_STRING:
            self.fail(node, f"string constant of {len(node.value)} characters exceeds "
                            f"{MAX_STRING}")
        if isinstance(node.value, bytes):
            self.fail(node, "bytes literals are not allowed")

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if node.name.startswith("_") and node.name != "__init__":
            self.fail(node, f"function name {node.name!r} is not allowed (only '__init__' may "
                            f"start with '_')")
        elif node.name in FORBIDDEN_NAMES:
            self.fail(node, f"function name {node.name!r} shadows a forbidden builtin")
        for deco in node.decorator_list:
            if not (isinstance(deco, ast.Name) and deco.id == "staticmethod"):
                self.fail(deco, "decorators other than @staticmethod are not allowed")
        # Defaults and annotations run when the 'def' runs (at import): keep them inert.
        for default in node.args.defaults + node.args.kw_defaults:
            if default is not None and not _is_constant_expr(default):
                self.fail(default, f"function {node.name!r}: default values must be literals")
        annotations = [a.annotation for a in (node.args.posonlyargs + node.args.args
                                              + node.args.kwonlyargs)] + [node.returns]
        for ann in annotations:
            if ann is not None and any(isinstance(n, ast.Call) for n in ast.walk(ann)):
                self.fail(ann, f"function {node.name!r}: annotations must not call anything")
        self._visit_all([node.args])
        self._visit_all(node.body)
        if node.returns is not None:
            self._visit_all([node.returns])

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if node.bases or node.keywords:
            self.fail(node, f"class {node.name!r}: base classes and metaclasses are not allowed")
        if node.decorator_list:
            self.fail(node, f"class {node.name!r}: class decorators are not allowed")
        self._check_identifier(node, node.name)
        for index, stmt in enumerate(node.body):
            # A class body runs at import time: only inert statements.
            if isinstance(stmt, ast.FunctionDef | ast.Pass):
                continue
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
                    and isinstance(stmt.value.value, str) and index == 0:
                continue
            if isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets) \
                    and _is_constant_expr(stmt.value):
                continue
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and (
                    stmt.value is None or _is_constant_expr(stmt.value)) and not any(
                    isinstance(n, ast.Call) for n in ast.walk(stmt.annotation)):
                continue
            self.fail(stmt, f"class {node.name!r}: only methods, a docstring and literal "
                            f"constants may appear in a class body")
        self._visit_all(node.body)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.generic_visit(node)

    def _visit_all(self, nodes: Iterable[ast.AST | None]) -> None:
        for n in nodes:
            if n is not None:
                self.visit(n)
