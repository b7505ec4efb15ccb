"""Static validation of AI-written strategy modules: an ``ast`` allow-list.

This is a *filter*, not the security boundary: it rejects code that plainly
breaks the contract (``CONTRACT.md``) before any of it runs, with every
reason at once (line, column, why), so the model can be told exactly what to
fix.  The boundary is the worker process (:mod:`argus_orchestrator.sandbox.worker`),
which must contain code that slips past this filter.

Why an allow-list and not a deny-list: Python's object graph is large and
grows with every release; a deny-list ("no ``__subclasses__``, no
``gi_frame``...") is only as good as its author's memory, and the red team
found eight ways past the old one (module attributes reached through an
alias, ``match`` class patterns, ``operator.attrgetter``...).  Here every
syntax node type, name, module, module member and attribute that AI code may
use is *listed*; anything else is refused.  The few deny-lists left
(:data:`FORBIDDEN_ATTRS`, :data:`FORBIDDEN_NAMES`) only refine messages or
vet the attribute names that the strategy itself defines on its own classes.

Why hand-written: RestrictedPython is the well-known library for this, but it
rewrites code to run *in-process* with guard functions; Argus never runs
untrusted code in-process, so all it needs is a reject-with-reasons pass
over the tree from the standard library's :mod:`ast`, short and auditable.

Robustness: the checker always gives a verdict.  Size, line, token-nesting
limits are checked before :func:`ast.parse` (whose C parser recurses), node
count and depth are measured without recursion before anything else walks
the tree, the walk itself is iterative, a wall-time limit applies, and any
internal failure becomes a rejection with a reason.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import importlib
import io
import keyword
import math
import re
import time
import tokenize
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any, cast

import attrs

from argus_orchestrator.sandbox.worker import COMPILE_FLAGS

# -- limits ---------------------------------------------------------------------------------
MAX_SOURCE_BYTES = 64 * 1024
MAX_LINES = 1500
MAX_NODES = 20_000
#: Deepest AST nesting accepted (legitimate strategies stay under ~30).
MAX_DEPTH = 100
#: Token-level guards run before the parser, so that it never recurses deeply.
MAX_BRACKET_DEPTH = 40
MAX_PREFIX_RUN = 16  # consecutive unary operators / 'not' / 'lambda' / 'await'
MAX_NESTING_TOKENS = 200  # right-nesting tokens (** lambda if else not :=) per statement
MAX_STATEMENT_OPS = 3000  # operators and brackets in one logical line
MAX_ELIF = 200  # 'elif' branches in the module (each nests the next one in the tree)
MAX_STRING = 4096  # characters in one string literal
MAX_INT_BITS = 1024  # bits of an integer literal or of a folded constant integer
MAX_FOLD_ITEMS = 100_000  # characters / items of a folded constant str, list or tuple
MAX_FOLD_TOTAL = 1_000_000  # characters / items of all folded constants in one module
MAX_FORMAT_WIDTH = 1000  # width or precision in a constant format spec
TIME_LIMIT_S = 5.0  # wall time for one validation


def _present(module_name: str, names: str) -> frozenset[str]:
    """``names`` (space-separated) that ``module_name`` has on this Python version."""
    module = importlib.import_module(module_name)
    return frozenset(n for n in names.split() if hasattr(module, n))


#: Importable modules -> the member names AI-written code may use (explicit lists: a
#: blanket "every public name" would hand out ``statistics.sys`` or ``fractions.operator``).
ALLOWED_IMPORTS: dict[str, frozenset[str]] = {
    "math": _present("math", """
        acos acosh asin asinh atan atan2 atanh cbrt ceil comb copysign cos cosh degrees dist
        e erf erfc exp exp2 expm1 fabs factorial floor fmod frexp fsum gamma gcd hypot inf
        isclose isfinite isinf isnan isqrt lcm ldexp lgamma log log10 log1p log2 modf nan
        nextafter perm pi pow prod radians remainder sin sinh sqrt sumprod tan tanh tau trunc
        ulp"""),
    "statistics": _present("statistics", """
        NormalDist StatisticsError correlation covariance fmean geometric_mean harmonic_mean
        linear_regression mean median median_grouped median_high median_low mode multimode
        pstdev pvariance quantiles stdev variance"""),
    "itertools": _present("itertools", """
        accumulate batched chain combinations combinations_with_replacement compress count
        cycle dropwhile filterfalse groupby islice pairwise permutations product repeat
        starmap takewhile tee zip_longest"""),
    "bisect": _present("bisect", "bisect bisect_left bisect_right insort insort_left "
                                 "insort_right"),
    "heapq": _present("heapq", "heapify heappop heappush heappushpop heapreplace merge "
                               "nlargest nsmallest"),
    "collections": frozenset({"deque", "defaultdict", "Counter", "OrderedDict"}),
    "typing": frozenset({"Any", "Optional", "Union", "List", "Dict", "Tuple", "Sequence",
                         "Mapping", "Iterable"}),
    "decimal": frozenset({"Decimal", "ROUND_HALF_UP", "ROUND_HALF_EVEN", "ROUND_DOWN",
                          "ROUND_UP", "ROUND_FLOOR", "ROUND_CEILING"}),
    "fractions": frozenset({"Fraction"}),
    "functools": frozenset({"reduce"}),
    "__future__": frozenset({"annotations"}),
}

#: Modules that may be imported whole (``import math``); only ``module.<listed member>``.
PLAIN_IMPORTS = frozenset({"math", "statistics", "itertools", "bisect", "heapq"})

#: Builtins AI-written code may name (the worker exposes exactly these, and a few more
#: exception classes).
ALLOWED_BUILTINS = frozenset({
    "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "frozenset",
    "int", "isinstance", "len", "list", "map", "max", "min", "pow", "range", "reversed",
    "round", "set", "slice", "sorted", "str", "sum", "tuple", "zip", "iter", "next", "repr",
    "chr", "ord", "hash", "callable", "staticmethod", "True", "False", "None",
    "Exception", "ValueError", "TypeError", "KeyError", "IndexError", "ZeroDivisionError",
    "ArithmeticError", "OverflowError", "StopIteration", "RuntimeError", "NotImplementedError",
})

#: Builtins that are never allowed, named so the reason is specific (any other builtin
#: outside :data:`ALLOWED_BUILTINS` is refused too).
FORBIDDEN_NAMES = frozenset({
    "eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "hasattr", "globals",
    "locals", "vars", "dir", "type", "super", "object", "print", "input", "breakpoint", "help",
    "exit", "quit", "memoryview", "bytearray", "bytes", "classmethod", "property", "id",
    "issubclass", "format", "__import__", "__builtins__", "__loader__", "__spec__",
    "__build_class__", "__name__", "__file__", "__dict__",
})
#: Every public builtin: one outside the allow-list may not even be shadowed, so a name
#: bound in one scope can never resolve to the real builtin in another.
_ALL_BUILTINS = frozenset(n for n in dir(builtins) if not n.startswith("_"))

#: Attribute names any value may have read: ordinary methods and data attributes of the
#: types a strategy handles (str, list, dict, set, tuple, int, float, deque, Counter,
#: OrderedDict, defaultdict, Decimal, Fraction, NormalDist, slice, range, exceptions).
#: Deliberately absent: ``format``/``format_map`` (attribute walks in format fields),
#: ``encode``/``decode`` (codec look-ups import modules), ``to_bytes``, ``mro``, every
#: frame/code/generator/traceback attribute, and anything starting with ``_``.
SAFE_ATTRS = frozenset({
    "capitalize", "casefold", "center", "count", "endswith", "expandtabs", "find", "index",
    "isalnum", "isalpha", "isascii",
    "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric", "isprintable", "isspace",
    "istitle", "isupper", "join",
    "ljust", "lower", "lstrip", "maketrans", "partition", "removeprefix", "removesuffix",
    "replace", "rfind", "rindex", "rjust",
    "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase",
    "title", "translate", "upper",
    "zfill",
    "append", "clear", "copy", "extend", "insert", "pop", "remove", "reverse", "sort",
    "fromkeys", "get", "items", "keys", "popitem", "setdefault", "update", "values",
    "add", "difference", "difference_update", "discard", "intersection", "intersection_update",
    "isdisjoint",
    "issubset", "issuperset", "symmetric_difference", "symmetric_difference_update", "union",
    "bit_length", "bit_count", "conjugate", "real", "imag", "numerator", "denominator",
    "as_integer_ratio", "is_integer",
    "fromhex", "hex",
    "appendleft", "extendleft", "maxlen", "popleft", "rotate",
    "default_factory", "elements", "most_common", "subtract", "total", "move_to_end",
    "adjusted", "as_tuple", "compare", "copy_abs", "copy_negate", "copy_sign", "exp", "fma",
    "from_float", "is_finite",
    "is_infinite", "is_nan", "is_signed", "is_zero", "ln", "log10", "normalize", "quantize",
    "scaleb", "sqrt",
    "to_eng_string", "to_integral", "to_integral_value", "sign", "digits", "exponent",
    "limit_denominator", "from_decimal",
    "cdf", "inv_cdf", "pdf", "overlap", "quantiles", "zscore", "samples", "from_samples",
    "mean", "median", "mode", "stdev",
    "variance", "slope", "intercept",
    "from_iterable", "start", "stop", "step", "indices", "args",
})

#: Attribute names refused outright, even when a strategy defines them on its own class.
FORBIDDEN_ATTRS = frozenset({
    "format", "format_map", "mro", "register", "load_module", "exec_module", "system",
    "popen", "modules", "builtins", "globals", "locals", "cell_contents", "obj", "mapping",
    "func", "fget", "fset", "fdel", "with_traceback", "add_note", "encode", "decode",
    "send", "throw", "to_bytes", "from_bytes",
})
#: Prefixes of frame/code/generator internals (``gi_frame``, ``f_globals``, ``tb_frame``...).
FORBIDDEN_ATTR_PREFIXES = ("gi_", "ag_", "cr_", "f_", "tb_", "co_", "func_", "im_")

#: Syntax node types AI code may contain; everything else (``match``, ``with``, ``async``,
#: ``yield``, ``global``, ``try/except*``, type aliases...) is refused by name.
_ALLOWED_NODES: frozenset[type] = frozenset({
    ast.Module, ast.FunctionDef, ast.ClassDef, ast.Return, ast.Delete, ast.Assign,
    ast.AugAssign, ast.AnnAssign, ast.For, ast.While, ast.If, ast.Raise, ast.Try, ast.Assert,
    ast.Import, ast.ImportFrom, ast.Expr, ast.Pass, ast.Break, ast.Continue,
    ast.BoolOp, ast.NamedExpr, ast.BinOp, ast.UnaryOp, ast.Lambda, ast.IfExp, ast.Dict,
    ast.Set, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Compare,
    ast.Call, ast.FormattedValue, ast.JoinedStr, ast.Constant, ast.Attribute, ast.Subscript,
    ast.Starred, ast.Name, ast.List, ast.Tuple, ast.Slice,
    ast.Load, ast.Store, ast.Del, ast.And, ast.Or,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.Pow, ast.LShift, ast.RShift, ast.BitOr,
    ast.BitXor, ast.BitAnd, ast.FloorDiv, ast.Invert, ast.Not, ast.UAdd, ast.USub,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn,
    ast.comprehension, ast.ExceptHandler, ast.arguments, ast.arg, ast.keyword, ast.alias,
})
_NODE_NAMES: dict[str, str] = {
    "Match": "'match' statements (class and attribute patterns read attributes unchecked)",
    "With": "'with' blocks", "AsyncWith": "'async with'", "AsyncFor": "'async for'",
    "AsyncFunctionDef": "'async def'", "Await": "'await'", "Yield": "'yield' (generators)",
    "YieldFrom": "'yield from' (generators)", "Global": "'global' statements",
    "Nonlocal": "'nonlocal' statements", "TryStar": "'except*'", "MatMult": "'@'",
    # Type parameters (3.12+): their bounds and defaults are code the checker never saw.
    "TypeVar": "type parameters ('def f[T]', 'class C[T]')",
    "ParamSpec": "type parameters ('def f[**P]')", "TypeVarTuple": "type parameters "
    "('def f[*Ts]')", "TypeAlias": "'type' aliases",
}
#: Node types an annotation may use (it runs at import time unless annotations are lazy).
_ANNOTATION_NODES: frozenset[type] = frozenset({
    ast.Name, ast.Attribute, ast.Subscript, ast.Tuple, ast.List, ast.Constant, ast.BinOp,
    ast.BitOr, ast.Load,
})
_EVENT_TYPES = frozenset({"bar", "trade", "book", "book_delta", "signal", "settlement",
                          "event", "book_status", "instrument"})
#: An f-string field's conversion (``!s``, ``!r``, ``!a``; -1 for none) as a function.
_CONVERSIONS: dict[int, Callable[[Any], Any]] = {-1: lambda value: value, ord("s"): str,
                                                ord("r"): repr, ord("a"): ascii}
_PADDING_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})
#: A quoted type in an annotation's brackets: dotted names joined by '|', nothing to run.
#: The brackets are an atomic group: their class holds ']', '|' and letters, so as a plain
#: group each one could end at any later ']' and the match backtracked exponentially (a
#: 100-character 'a[]|a[]|...!' held the checker, GIL and all, for seconds past its
#: deadline).  Committing to the last ']' of the run accepts the same strings.
_TYPE_NAME = re.compile(r"[A-Za-z_][\w.]*(?>\[[\w., \[\]|]*\])?(?:\s*\|\s*[A-Za-z_][\w.]*"
                        r"(?>\[[\w., \[\]|]*\])?)*", re.ASCII)
_CODING = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.ASCII)
_LINE_END = re.compile(r"\r\n|\r|\n")
_PREFIX_TOKENS = frozenset({"not", "lambda", "await", "~"})
_NESTING_TOKENS = frozenset({"**", "lambda", "not", "if", "else", ":=", "~", "await"})
_FLAT_OPS = frozenset({",", ":", ";", "=", ")", "]", "}", "->"})
# The expressions inside an f-string are one STRING token to the tokenizer but are parsed
# like any code: scan their text with the same bounds.
_FSTRING_PREFIX_RUN = re.compile(rf"(?:(?:\bnot\b|[-+~])\s*){{{MAX_PREFIX_RUN + 1},}}")
_FSTRING_NESTING = re.compile(r"\*\*|\blambda\b|\bnot\b|\bif\b|\belse\b|:=")
_FSTRING_OPS = re.compile(r"[-+*/%@&|^~<>=.!([{]")


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

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready verdict (``argus sandbox check --json``)."""
        return {"accepted": self.accepted, "reasons": self.reasons,
                "findings": [{"line": f.line, "col": f.col, "message": f.message}
                             for f in self.findings],
                "lines": self.n_lines, "nodes": self.n_nodes}


def _reject(message: str, n_lines: int = 0, line: int = 0, col: int = 0) -> ValidationResult:
    return ValidationResult(False, (Finding(line, col, message),), n_lines, 0)


def validate_bytes(data: bytes, *, time_limit_s: float = TIME_LIMIT_S) -> ValidationResult:
    """Check a module given as raw bytes (a file's content): size first, then UTF-8."""
    if len(data) > MAX_SOURCE_BYTES:
        return _reject(f"source is at least {len(data)} bytes; the limit is "
                       f"{MAX_SOURCE_BYTES}")
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Everything before the first bad byte decodes: say which line and column it is.
        valid = data[:exc.start].decode("utf-8")
        line, col = _text_position(valid, len(valid))
        return _reject(f"source is not valid UTF-8 (byte {exc.start}): {exc.reason}",
                       line=line, col=col)
    return validate_source(source.removeprefix("\ufeff"), time_limit_s=time_limit_s)


def validate_source(source: str, *, time_limit_s: float = TIME_LIMIT_S) -> ValidationResult:
    """Check ``source`` against the AI strategy contract; collect every finding.

    Never raises: oversize, unparsable, pathological or unexpected input is a
    rejection with a reason.
    """
    try:
        return _validate(source, time.monotonic() + time_limit_s)
    except _Overtime:
        return _reject(f"validation took longer than {time_limit_s:g} s; the source is too "
                       f"complex")
    except (RecursionError, MemoryError) as exc:
        return _reject(f"source is too complex to check safely ({type(exc).__name__})")
    except Exception as exc:  # a checker bug must still give a verdict, never accept
        return _reject(f"internal validator error ({type(exc).__name__}: {exc}); refused")


class _Overtime(Exception):
    """The wall-time limit ran out."""


def _text_position(text: str, index: int) -> tuple[int, int]:
    """Line (from 1) and column (characters, from 0) of ``text[index]``, lines ended as
    CPython ends them ('\\n', '\\r\\n', '\\r')."""
    ends = list(_LINE_END.finditer(text, 0, index))
    start = ends[-1].end() if ends else 0
    return len(ends) + 1, index - start


def _validate(source: str, deadline: float) -> ValidationResult:
    if not isinstance(source, str):
        return _reject(f"source must be text, not {type(source).__name__}")
    n_lines = len(re.findall(r"\r\n|\r|\n", source)) + 1
    findings: list[Finding] = []
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > MAX_SOURCE_BYTES:
        findings.append(Finding(0, 0, f"source is {size} bytes; the limit is "
                                      f"{MAX_SOURCE_BYTES}"))
    if n_lines > MAX_LINES:
        findings.append(Finding(0, 0, f"source has {n_lines} lines; the limit is {MAX_LINES}"))
    if "\x00" in source:
        findings.append(Finding(*_text_position(source, source.index("\x00")),
                                "source contains a NUL byte"))
    surrogate = next((i for i, c in enumerate(source) if 0xD800 <= ord(c) <= 0xDFFF), None)
    if surrogate is not None:
        findings.append(Finding(*_text_position(source, surrogate),
                                "source contains lone surrogate characters"))
    if findings:  # do not even tokenize oversize input
        return ValidationResult(False, tuple(findings), n_lines, 0)
    # The first two lines as CPython counts them ('\n', '\r\n', '\r' only): str.splitlines
    # also splits at '\x0c', '\x1c'-'\x1e', '\x85', '\u2028'..., so '#\x1c#\x1c# coding:
    # utf-7' on line 1 was the third piece and never checked, while compiling the file's
    # bytes obeys it.  Each such piece of those two lines is checked as well (an
    # over-approximation that refuses 'X = 1\x0c# coding: rot13').
    for number, line in enumerate(_LINE_END.split(source, maxsplit=2)[:2], start=1):
        for piece in (line, *line.splitlines()):
            match = _CODING.match(piece)
            if match and match.group(1).lower().replace("_", "-") not in ("utf-8", "utf8"):
                findings.append(Finding(number, 0, f"source encoding declaration "
                                                   f"{match.group(1)!r} is not allowed (UTF-8 "
                                                   f"only)"))
                break
    token_findings = _precheck_tokens(source, deadline)
    if any(f.message.startswith(("syntax error", "too deeply", "too many", "non-ASCII char"))
           for f in token_findings):
        return ValidationResult(False, tuple(findings + token_findings), n_lines, 0)
    findings.extend(token_findings)
    try:
        # As the worker compiles it (dont_inherit: no __future__ flags of this module).
        # cast: compile(..., "exec", PyCF_ONLY_AST) always returns an ast.Module; typeshed
        # only says ast.AST.
        tree = cast(ast.Module,
                    compile(source, "<strategy>", "exec", ast.PyCF_ONLY_AST | COMPILE_FLAGS,
                            dont_inherit=True))
    except SyntaxError as exc:
        syntax = Finding(exc.lineno or 0, exc.offset or 0, f"syntax error: {exc.msg}")
        return ValidationResult(False, (*findings, syntax), n_lines, 0)
    except (RecursionError, MemoryError, ValueError, OverflowError) as exc:
        at_line, at_col = _busiest_statement(source)
        unsafe = Finding(at_line, at_col,
                         f"source cannot be parsed safely ({type(exc).__name__}): an "
                         f"expression is nested or chained too deeply for the parser; the "
                         f"statement with the most operators starts here")
        return ValidationResult(False, (*findings, unsafe), n_lines, 0)
    n_nodes, depth, deepest = _measure(tree, deadline)
    if n_nodes > MAX_NODES:
        findings.append(Finding(0, 0, f"module has more than {MAX_NODES} syntax nodes"))
    if depth > MAX_DEPTH:
        findings.append(Finding(getattr(deepest, "lineno", 0), getattr(deepest, "col_offset", 0),
                                f"code is nested more than {MAX_DEPTH} levels deep"))
    if n_nodes > MAX_NODES or depth > MAX_DEPTH:
        return ValidationResult(False, tuple(findings), n_lines, n_nodes)
    checker = _Checker(tree, deadline, source)
    checker.run()
    findings.extend(checker.findings)
    if not findings:
        # The compiler's own checks, after the parser's: 'break' outside a loop, a repeated
        # argument or keyword, two starred targets, 21 nested loops parse, then fail to
        # compile (the worker would refuse to load what was accepted).
        try:
            compile(source, "<strategy>", "exec", COMPILE_FLAGS, dont_inherit=True)
        except SyntaxError as exc:
            findings.append(Finding(exc.lineno or 0, exc.offset or 0,
                                    f"syntax error: {exc.msg}"))
    unique = sorted(set(findings), key=lambda f: (f.line, f.col, f.message))
    return ValidationResult(not unique, tuple(unique), n_lines, n_nodes)


def _precheck_tokens(source: str, deadline: float) -> list[Finding]:
    """Bracket depth, prefix-operator runs and per-statement nesting, from tokens alone.

    The pure-Python tokenizer does not recurse, so this bounds what the (recursive) C
    parser will see: 900 unary minuses or 2,000 chained ``not``s never reach it.
    """
    findings: list[Finding] = []
    depth = run = nesting = ops = elifs = 0
    prev: tokenize.TokenInfo | None = None
    non_ascii_lines: set[int] = set()
    try:
        # Universal newlines, as the C tokenizer reads them: a lone '\r' ends a line there,
        # so it must here too (else code after '# comment\r' would hide in the comment).
        readline = io.StringIO(source, newline=None).readline
        for n, tok in enumerate(tokenize.generate_tokens(readline)):
            if n % 1024 == 0 and time.monotonic() > deadline:
                raise _Overtime
            line, col = tok.start
            if tok.type == tokenize.ERRORTOKEN and tok.string in " \t\f":
                # Blanks before a character no token starts with: the pure-Python tokenizer
                # then makes one error token per blank, each rescanning the rest of the
                # line ('x' + ' ' * 65_000 + '$' took 40 s, past the deadline's checks).
                # Refused at the first (a non-ASCII one could be an identifier's).
                rest = tok.line[col:]
                culprit = rest.lstrip(" \t\f")[:1] or tok.string
                col += len(rest) - len(rest.lstrip(" \t\f"))
                what = (f"non-ASCII character {culprit!r} (U+{ord(culprit):04X}) outside a "
                        f"string: identifiers are ASCII only") if not culprit.isascii() else \
                    "syntax error: unterminated string literal" if culprit in "'\"" else \
                    f"syntax error: invalid character {culprit!r}"
                return [*findings, Finding(line, col + 1, what)]
            if tok.type == tokenize.NEWLINE:
                nesting = ops = run = 0
            if tok.type in (tokenize.NL, tokenize.COMMENT, tokenize.NEWLINE, tokenize.INDENT,
                            tokenize.DEDENT):
                continue
            text = tok.string
            if tok.type == tokenize.STRING and "f" in text[:3].lower().split(text[-1])[0]:
                problem = _fstring_problem(text)
                if problem:
                    return [Finding(line, col, problem)]
                nesting += len(_FSTRING_NESTING.findall(text))
                ops += len(_FSTRING_OPS.findall(text))
            if tok.type == tokenize.NAME and text == "elif":
                elifs += 1
                if elifs > MAX_ELIF:
                    return [Finding(line, col, f"too deeply nested: more than {MAX_ELIF} "
                                               f"'elif' branches")]
            if tok.type == tokenize.NAME and not text.isascii() and line not in non_ascii_lines:
                non_ascii_lines.add(line)
                findings.append(Finding(line, col, f"non-ASCII identifier {text!r} is not "
                                                   f"allowed (identifiers are ASCII only)"))
            if tok.type == tokenize.OP and text in "([{":
                depth += 1
                if depth > MAX_BRACKET_DEPTH:
                    return [Finding(line, col, f"too deeply nested: more than "
                                               f"{MAX_BRACKET_DEPTH} open brackets")]
            elif tok.type == tokenize.OP and text in ")]}":
                depth = max(0, depth - 1)
            unary = text in ("-", "+") and tok.type == tokenize.OP and (
                prev is None or (prev.type == tokenize.OP and prev.string not in ")]}")
                or (prev.type == tokenize.NAME and keyword.iskeyword(prev.string)
                    and prev.string not in ("True", "False", "None")))
            run = run + 1 if (unary or (text in _PREFIX_TOKENS and tok.type != tokenize.STRING)) \
                else 0
            if run > MAX_PREFIX_RUN:
                return [Finding(line, col, f"too deeply nested: more than {MAX_PREFIX_RUN} "
                                           f"prefix operators in a row")]
            if tok.type != tokenize.STRING and (text in _NESTING_TOKENS or unary):
                nesting += 1
                if nesting > MAX_NESTING_TOKENS:
                    return [Finding(line, col, f"too deeply nested: more than "
                                               f"{MAX_NESTING_TOKENS} nesting operators in "
                                               f"one statement")]
            if tok.type == tokenize.OP and text not in _FLAT_OPS:
                ops += 1
                if ops > MAX_STATEMENT_OPS:
                    return [Finding(line, col, f"too many operators: more than "
                                               f"{MAX_STATEMENT_OPS} in one statement")]
            prev = tok
    except (tokenize.TokenError, SyntaxError) as exc:
        lineno, offset = (exc.args[1] if isinstance(exc, tokenize.TokenError) and
                          len(exc.args) > 1 else (getattr(exc, "lineno", 0),
                                                  getattr(exc, "offset", 0)))
        return [*findings, Finding(lineno or 0, offset or 0,
                                   f"syntax error: {exc.args[0] if exc.args else exc}")]
    return findings


def _fstring_problem(text: str) -> str | None:
    """The token pre-check's bounds, applied to the text of one f-string token."""
    if _FSTRING_PREFIX_RUN.search(text):
        return f"too deeply nested: more than {MAX_PREFIX_RUN} prefix operators in a row"
    # Python reads an f-string's expressions NFKC-normalised ('ｋeys' is 'keys'), and the
    # tree's positions inside a multi-line f-string cannot be trusted to find how a name
    # was spelled: a character that normalises to ASCII is refused anywhere in one.
    for char in {c for c in text if not c.isascii()}:
        read = unicodedata.normalize("NFKC", char)
        if read.isascii() and read != char and any(c.isalnum() or c == "_" for c in read):
            return (f"f-string holds {char!r}, which Python reads as {read!r} inside an "
                    f"expression (identifiers are ASCII only; write it in ASCII)")
    depth = 0
    for char in text:
        if char in "([{":
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                return f"too deeply nested: more than {MAX_BRACKET_DEPTH} open brackets"
        elif char in ")]}":
            depth = max(0, depth - 1)
    return None


def _measure(tree: ast.AST, deadline: float) -> tuple[int, int, ast.AST | None]:
    """Node count and maximum depth, iteratively (no recursion, stops past the limits).

    The deepest node is reported by its nearest node with a position: the deepest
    node itself is often a ``Load`` context or an operator, which has none (a chain of
    3,000 ``.x`` was refused at line 0, column 0).
    """
    stack: list[tuple[ast.AST, int, ast.AST | None]] = [(tree, 1, None)]
    count = best = 0
    deepest: ast.AST | None = None
    while stack:
        node, depth, located = stack.pop()
        if hasattr(node, "lineno"):
            located = node
        count += 1
        if count % 1024 == 0 and time.monotonic() > deadline:
            raise _Overtime
        if depth > best:
            best, deepest = depth, located
        if count > MAX_NODES or best > MAX_DEPTH:
            break
        stack.extend((child, depth + 1, located) for child in ast.iter_child_nodes(node))
    return count, best, deepest


def _busiest_statement(source: str) -> tuple[int, int]:
    """Where the logical line with the most operators starts ((0, 0) if none can be
    found): the place to look when the parser itself gave up (``RecursionError``),
    which says nothing about where."""
    best, where = 0, (0, 0)
    ops, start = 0, None
    with contextlib.suppress(tokenize.TokenError, SyntaxError):
        readline = io.StringIO(source, newline=None).readline
        for tok in tokenize.generate_tokens(readline):
            if tok.type == tokenize.NEWLINE:
                ops, start = 0, None
                continue
            if tok.type in (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
                continue
            start = start or tok.start
            ops += tok.type == tokenize.OP
            if ops > best:
                best, where = ops, start
    return where


def _is_docstring(stmt: ast.stmt, index: int) -> bool:
    return index == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
        and isinstance(stmt.value.value, str)


def _is_literal(node: ast.AST) -> bool:
    """Literals, containers of literals and operators on them: no names, no calls."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Constant):
            continue
        if isinstance(n, ast.Tuple | ast.List | ast.Set):
            stack.extend(n.elts)
        elif isinstance(n, ast.Dict):
            if any(k is None for k in n.keys):
                return False
            stack.extend(k for k in n.keys if k is not None)
            stack.extend(n.values)
        elif isinstance(n, ast.UnaryOp):
            stack.append(n.operand)
        elif isinstance(n, ast.BinOp):
            stack.extend((n.left, n.right))
        else:
            return False
    return True


def _binding_problem(name: str) -> str | None:
    """Why ``name`` may not be bound (assigned, imported, defined...), or None."""
    if name.startswith("_") and name != "_":
        return f"names starting with '_' are not allowed ({name!r})"
    if name in FORBIDDEN_NAMES or (name in _ALL_BUILTINS and name not in ALLOWED_BUILTINS):
        return f"the name {name!r} is not allowed (it shadows a builtin that is not allowed)"
    if name == "staticmethod":
        return "cannot rebind 'staticmethod' (a decorator runs at import)"
    return None


def _user_attr_problem(attr: str) -> str | None:
    """Why ``attr`` may not be used or defined as an attribute name, or None."""
    if attr.startswith("_"):
        return f"attribute {attr!r} is not allowed (no '_' or dunder attributes)"
    if attr in ("format", "format_map"):
        return (f"attribute {attr!r} is not allowed (format fields walk attributes, as in "
                f"'{{0.__class__}}'); use an f-string")
    if attr in FORBIDDEN_ATTRS or attr.startswith(FORBIDDEN_ATTR_PREFIXES):
        return f"attribute {attr!r} is not allowed (it reaches interpreter internals)"
    return None


class _TooBig(Exception):
    """A constant expression would build a value past the fold limits."""


_NOT_CONST = object()
_FAILED = object()


@attrs.frozen
class _Ctx:
    """What the iterative walk knows about where a node sits."""

    annotation: bool = False


class _Checker:
    """One pass over a parsed module: prepass for bindings, then an iterative check."""

    def __init__(self, tree: ast.Module, deadline: float, source: str | None = None) -> None:
        self.tree = tree
        self.deadline = deadline
        # Lines as UTF-8 (node columns count bytes), to say where a finding is in
        # characters, and to see how a non-ASCII name is spelled: the parser
        # NFKC-normalises identifiers, and inside an f-string (one STRING token to the
        # token pre-check) 'ｅｖａｌ' is only seen here, already spelled 'eval'.
        self.lines = source.encode("utf-8").splitlines() if source is not None else None
        self.raw_lines = None if source is None or source.isascii() else self.lines
        self.findings: list[Finding] = []
        self.bound: dict[str, int] = {}  # name -> number of binding sites
        self.module_aliases: dict[str, str] = {}  # alias -> module
        self.import_sites: dict[str, set[str]] = {}  # alias -> modules imported under it
        self.import_counts: dict[str, int] = {}  # alias -> plain imports binding it
        self.strategy_sites: list[ast.AST] = []  # every node that binds 'Strategy'
        self.typing_names: set[str] = set()
        self.future_names: set[str] = set()  # 'annotations': a __future__._Feature object
        self.user_attrs: set[str] = set()
        self.constants: dict[str, ast.expr] = {}  # module constants bound exactly once
        self.class_methods: set[int] = set()  # ids of defs directly in a class body
        self.approved: set[int] = set()  # ids of module Names used as module.member
        self.folded: dict[int, Any] = {}
        self.fold_total = 0  # items built by folding so far (the validator builds them too)

    def _spelled_non_ascii(self, node: ast.Name | ast.Attribute) -> str | None:
        """How an identifier is written in the source, when that is not ASCII (the tree
        holds its NFKC-normalised form); None otherwise."""
        if self.raw_lines is None or node.end_lineno != node.lineno \
                or node.end_col_offset is None or not 0 < node.lineno <= len(self.raw_lines):
            return None
        raw = self.raw_lines[node.lineno - 1][node.col_offset:node.end_col_offset]
        text = raw.decode("utf-8", "replace")
        if isinstance(node, ast.Attribute):
            text = text.rsplit(".", 1)[-1].strip()
        return None if text.isascii() else text

    def fail(self, node: ast.AST, message: str) -> None:
        self.findings.append(Finding(*self._position(node), message))

    def _position(self, node: ast.AST) -> tuple[int, int]:
        """Where ``node`` is written: its line, and its column in characters (the tree
        counts UTF-8 bytes: after '€' a column was 2 too far right).  An attribute is
        placed at its name, not where the expression it ends starts: in a chain spread
        over lines that was lines above the name to fix."""
        line, col = getattr(node, "lineno", 0), getattr(node, "col_offset", 0)
        if isinstance(node, ast.Attribute):
            line, col = self._attr_position(node) or (line, col)
        if self.raw_lines is None or not 0 < line <= len(self.raw_lines):
            return line, col  # an ASCII source: bytes are characters
        return line, len(self.raw_lines[line - 1][:col].decode("utf-8", "replace"))

    def _attr_position(self, node: ast.Attribute) -> tuple[int, int] | None:
        """Line and byte column of an attribute's name, or None where the source does
        not show it just before the node's end (positions in 3.11's f-strings may not
        be the source's)."""
        end_line, end_col = node.end_lineno, node.end_col_offset
        if self.lines is None or end_line is None or end_col is None \
                or not 0 < end_line <= len(self.lines):
            return None
        raw = self.lines[end_line - 1]
        # Back over the name's own bytes only (a regex or a decode of the whole line,
        # per finding, would make a long line's findings quadratic work).
        start = end_col
        while start > 0 and (raw[start - 1] >= 0x80 or chr(raw[start - 1]).isalnum()
                             or raw[start - 1] == ord("_")):
            start -= 1
        written = raw[start:end_col].decode("utf-8", "replace")
        if unicodedata.normalize("NFKC", written) != node.attr:
            return None
        return end_line, start

    # -- driver -------------------------------------------------------------------------
    def run(self) -> None:
        self._prepass()
        self._check_module_shape()
        stack: list[tuple[ast.AST, _Ctx]] = [(self.tree, _Ctx())]
        while stack:
            node, ctx = stack.pop()
            # At every node (a clock read is ~50 ns): one node's folding can take long, and
            # a small module has fewer than a batch of nodes, so a check every 256 nodes
            # let a 200-node module run for 45 s.
            if time.monotonic() > self.deadline:
                raise _Overtime
            children = self._check(node, ctx)
            stack.extend(reversed(children))

    def _walk(self, root: ast.AST) -> Iterator[ast.AST]:
        stack = [root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(ast.iter_child_nodes(node))

    # -- prepass: every binding site, module aliases, user attribute names, constants ------
    def _prepass(self) -> None:
        for stmt in self.tree.body:
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.name in PLAIN_IMPORTS:
                        self.module_aliases[alias.asname or alias.name] = alias.name
                        self.import_sites.setdefault(alias.asname or alias.name, set()).add(
                            alias.name)
                    self.import_counts[alias.asname or alias.name.split(".")[0]] = \
                        self.import_counts.get(alias.asname or alias.name.split(".")[0], 0) + 1
            elif isinstance(stmt, ast.ImportFrom) and stmt.module == "typing":
                self.typing_names.update(a.asname or a.name for a in stmt.names)
            elif isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
                self.future_names.update(a.asname or a.name for a in stmt.names)
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(
                    stmt.targets[0], ast.Name) and _is_literal(stmt.value):
                self.constants[stmt.targets[0].id] = stmt.value
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) \
                    and stmt.value is not None and _is_literal(stmt.value):
                self.constants[stmt.target.id] = stmt.value
        for node in self._walk(self.tree):
            for name in self._bindings(node):
                self.bound[name] = self.bound.get(name, 0) + 1
                if name == "Strategy":
                    self.strategy_sites.append(node)
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store | ast.Del) \
                    and _user_attr_problem(node.attr) is None:
                self.user_attrs.add(node.attr)
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if isinstance(stmt, ast.FunctionDef):
                        self.class_methods.add(id(stmt))
                        names = [stmt.name]
                    elif isinstance(stmt, ast.Assign):
                        names = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
                    elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                        names = [stmt.target.id]
                    else:
                        names = []
                    self.user_attrs.update(a for a in names if _user_attr_problem(a) is None)
        self.constants = {k: v for k, v in self.constants.items() if self.bound.get(k) == 1}

    @staticmethod
    def _bindings(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            return [node.id]
        if isinstance(node, ast.arg):
            return [node.arg]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return [node.name]
        if isinstance(node, ast.ExceptHandler) and node.name:
            return [node.name]
        if isinstance(node, ast.Import):
            return [a.asname or a.name.split(".")[0] for a in node.names]
        if isinstance(node, ast.ImportFrom):
            # A __future__ import binds its name too ('annotations' is a module global).
            return [a.asname or a.name for a in node.names if a.name != "*"]
        # Match patterns bind names ('match' is refused, but the count stays CPython's).
        if isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            return [node.name]
        if isinstance(node, ast.MatchMapping) and node.rest:
            return [node.rest]
        return []

    # -- module and class shape ---------------------------------------------------------
    def _check_module_shape(self) -> None:
        strategy: ast.ClassDef | None = None
        for index, stmt in enumerate(self.tree.body):
            if _is_docstring(stmt, index):
                continue
            if isinstance(stmt, ast.Import | ast.ImportFrom | ast.FunctionDef):
                continue
            if isinstance(stmt, ast.ClassDef):
                if stmt.name == "Strategy":
                    strategy = stmt
                continue
            if self._inert_assignment(stmt):
                continue
            self.fail(stmt, f"module-level {type(stmt).__name__} is not allowed: only the "
                            f"docstring, imports, literal constants, functions and classes "
                            f"may appear at module level (no side effects at import)")
        if self.bound.get("Strategy", 0) > 1:
            # Named at the second site in the source (the prepass walks out of order).
            second = sorted(self.strategy_sites, key=self._position)[1]
            self.fail(second, "the name 'Strategy' is bound more than once")
        if strategy is None:
            self.fail(self.tree, "no top-level 'class Strategy' found")
        else:
            self._check_strategy_class(strategy)

    @staticmethod
    def _inert_assignment(stmt: ast.stmt) -> bool:
        """``NAME = literal`` or ``NAME: annotation [= literal]`` (runs nothing at import)."""
        if isinstance(stmt, ast.Assign):
            return all(isinstance(t, ast.Name) for t in stmt.targets) and _is_literal(stmt.value)
        if isinstance(stmt, ast.AnnAssign):
            return isinstance(stmt.target, ast.Name) and (
                stmt.value is None or _is_literal(stmt.value))
        return False

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

    # -- the per-node check ---------------------------------------------------------------
    def _check(self, node: ast.AST, ctx: _Ctx) -> list[tuple[ast.AST, _Ctx]]:
        kind = type(node)
        if kind not in _ALLOWED_NODES:
            what = _NODE_NAMES.get(kind.__name__, f"{kind.__name__} syntax")
            self.fail(node, f"{what} not allowed")
            return []
        if ctx.annotation and isinstance(node, ast.expr) and kind not in _ANNOTATION_NODES:
            self.fail(node, f"annotations may only name types ({kind.__name__} found)")
            return []
        if ctx.annotation and isinstance(node, ast.BinOp) and not isinstance(node.op, ast.BitOr):
            self.fail(node, "annotations may only combine types with '|'")
            return []
        handler = getattr(self, f"_check_{kind.__name__}", None)
        if handler is not None:
            result: list[tuple[ast.AST, _Ctx]] | None = handler(node, ctx)
            if result is not None:
                self._refuse_unwalked(node, result)
                return result
        return [(child, ctx) for child in ast.iter_child_nodes(node)]

    def _refuse_unwalked(self, node: ast.AST, walked: list[tuple[ast.AST, _Ctx]]) -> None:
        """Refuse every child of ``node`` that its handler does not walk and whose type is
        not on the allow-list.

        A handler lists the children it walks; a field it does not know goes unchecked.
        Python 3.12 added one to ``def`` and ``class`` (``type_params``): the bounds and
        defaults in ``def f[T: eval('1')]`` or ``class C[T = ().__class__]`` were never
        seen, so any name, builtin or dunder was accepted (3.13 runs a default on
        ``C[()]``).  Checked by type, not by field name: a field a later Python adds is
        refused too.  A skipped child of an allowed type (an import's alias, a context)
        was left out on purpose."""
        seen = {id(child) for child, _ in walked}
        for child in ast.iter_child_nodes(node):
            kind = type(child)
            if kind not in _ALLOWED_NODES and id(child) not in seen:
                what = _NODE_NAMES.get(kind.__name__, f"{kind.__name__} syntax")
                self.fail(child if hasattr(child, "lineno") else node, f"{what} not allowed")

    def _binding(self, node: ast.AST, name: str) -> None:
        """Checks for a name bound (assigned, a parameter, a def, a loop variable...) here."""
        problem = _binding_problem(name)
        if problem:
            self.fail(node, problem)
        elif name in self.module_aliases or name in self.typing_names \
                or name in self.future_names:
            what = "module" if name in self.module_aliases else "typing name" \
                if name in self.typing_names else "__future__ feature"
            self.fail(node, f"cannot rebind {name!r}: it names an imported {what}")

    # statements ---------------------------------------------------------------------------
    def _check_Import(self, node: ast.Import, ctx: _Ctx) -> list[tuple[ast.AST, _Ctx]]:
        if not any(node is stmt for stmt in self.tree.body):
            self.fail(node, "imports are only allowed at module level")
            return []
        for alias in node.names:
            name = alias.name
            if name not in ALLOWED_IMPORTS:
                self.fail(alias, f"import of {name!r} is not allowed (allowed: "
                                f"{', '.join(sorted(m for m in ALLOWED_IMPORTS if m[0] != '_'))})")
            elif name not in PLAIN_IMPORTS:
                self.fail(alias, f"use 'from {name} import ...' for {name!r} (only some of its "
                                f"names are allowed)")
            else:
                bound = alias.asname or name
                problem = _binding_problem(bound)
                if problem:
                    self.fail(alias, f"cannot bind the name {bound!r}: {problem}")
                elif len(self.import_sites.get(bound, ())) > 1 or self.bound.get(
                        bound, 0) > self.import_counts.get(bound, 0):
                    # The same 'import math' twice is harmless; anything else that binds
                    # the name would make 'math.<x>' mean something else somewhere.
                    self.fail(alias, f"module alias {bound!r} is bound more than once")
        return []

    def _check_ImportFrom(self, node: ast.ImportFrom, ctx: _Ctx) -> list[tuple[ast.AST, _Ctx]]:
        module = node.module or ""
        if node.level:
            self.fail(node, "relative imports are not allowed")
            return []
        if not any(node is stmt for stmt in self.tree.body):
            self.fail(node, "imports are only allowed at module level")
            return []
        if module not in ALLOWED_IMPORTS:
            self.fail(node, f"import from {module!r} is not allowed")
            return []
        allowed = ALLOWED_IMPORTS[module]
        for alias in node.names:
            bound = alias.asname or alias.name
            if module == "__future__" and alias.asname is not None:
                # A future import's alias binds a plain name, and it was never checked:
                # 'annotations as __builtins__' replaced the module's builtins.
                self.fail(alias, f"'from __future__ import {alias.name}' takes no alias "
                                f"('as {alias.asname}' binds a name no check covers)")
            elif alias.name == "*":
                self.fail(alias, f"'from {module} import *' is not allowed")
            elif alias.name.startswith("_") or alias.name not in allowed:
                self.fail(alias, f"{module}.{alias.name} is not allowed")
            elif module != "__future__" and _binding_problem(bound):
                self.fail(alias, f"cannot bind the name {bound!r}: {_binding_problem(bound)}")
            elif module == "typing" and self.bound.get(bound, 0) > 1:
                self.fail(alias, f"typing name {bound!r} is bound more than once")
        return []

    def _check_FunctionDef(self, node: ast.FunctionDef, ctx: _Ctx) -> list[tuple[ast.AST, _Ctx]]:
        in_class = id(node) in self.class_methods
        if node.name == "__init__" and in_class:
            pass
        elif node.name.startswith("_"):
            self.fail(node, f"function name {node.name!r} is not allowed (only '__init__', in "
                            f"a class, may start with '_')")
        else:
            self._binding(node, node.name)
        for deco in node.decorator_list:
            if not (in_class and isinstance(deco, ast.Name) and deco.id == "staticmethod"):
                self.fail(deco, "decorators other than @staticmethod on a method are not "
                                "allowed")
        # Defaults run when the 'def' runs (at import): literals only, and small.
        for default in node.args.defaults + node.args.kw_defaults:
            if default is not None and not _is_literal(default):
                self.fail(default, f"function {node.name!r}: default values must be literals")
        children = self._arguments(node.args, ctx)
        if node.returns is not None:
            children.append((node.returns, _Ctx(annotation=True)))
        children.extend((s, _Ctx()) for s in node.body)
        return children

    def _arguments(self, args: ast.arguments, ctx: _Ctx) -> list[tuple[ast.AST, _Ctx]]:
        children: list[tuple[ast.AST, _Ctx]] = []
        every = args.posonlyargs + args.args + args.kwonlyargs + [
            a for a in (args.vararg, args.kwarg) if a is not None]
        for arg in every:
            self._binding(arg, arg.arg)
            if arg.annotation is not None:
                children.append((arg.annotation, _Ctx(annotation=True)))
        children.extend((d, ctx) for d in args.defaults + args.kw_defaults if d is not None)
        return children

    def _check_Lambda(self, node: ast.Lambda, ctx: _Ctx) -> list[tuple[ast.AST, _Ctx]]:
        return [*self._arguments(node.args, ctx), (node.body, ctx)]

    def _check_ClassDef(self, node: ast.ClassDef, ctx: _Ctx) -> list[tuple[ast.AST, _Ctx]]:
        if node.bases or node.keywords:
            self.fail(node, f"class {node.name!r}: base classes and metaclasses are not allowed")
        if node.decorator_list:
            self.fail(node, f"class {node.name!r}: class decorators are not allowed")
        self._binding(node, node.name)
        for index, stmt in enumerate(node.body):
            # A class body runs at import time: only inert statements.
            if isinstance(stmt, ast.FunctionDef | ast.Pass) or _is_docstring(stmt, index):
                continue
            if self._inert_assignment(stmt):
                continue
            self.fail(stmt, f"class {node.name!r}: only methods, a docstring and literal "
                            f"constants may appear in a class body")
        return [(s, _Ctx()) for s in node.body]

    def _check_AnnAssign(self, node: ast.AnnAssign, ctx: _Ctx) -> list[tuple[ast.AST, _Ctx]]:
        children: list[tuple[ast.AST, _Ctx]] = [(node.target, ctx),
                                               (node.annotation, _Ctx(annotation=True))]
        if node.value is not None:
            children.append((node.value, ctx))
        return children

    def _check_ExceptHandler(self, node: ast.ExceptHandler, ctx: _Ctx) -> None:
        if node.name:
            self._binding(node, node.name)

    def _check_While(self, node: ast.While, ctx: _Ctx) -> None:
        test = self._fold(node.test)
        if test is _NOT_CONST or test is _FAILED:
            return
        try:
            endless = bool(test)
        except Exception:
            return
        if endless and not self._exits(node.body):
            self.fail(node, "this loop can never end (a constant condition and no break, "
                            "return or raise)")

    def _exits(self, body: list[ast.stmt]) -> bool:
        """Whether ``body`` has a break (of this loop), a return or a raise."""
        stack: list[ast.AST] = list(body)
        while stack:
            n = stack.pop()
            if isinstance(n, ast.Return | ast.Raise | ast.Break):
                return True
            if isinstance(n, ast.FunctionDef | ast.Lambda | ast.ClassDef):
                continue
            if isinstance(n, ast.For | ast.While):
                # A break in a nested loop ends that loop only; its return or raise still
                # leaves this one, and so does a break in its 'else'.
                stack.extend(x for x in self._walk(n) if isinstance(x, ast.Return | ast.Raise))
                stack.extend(n.orelse)
                continue
            stack.extend(ast.iter_child_nodes(n))
        return False

    def _check_comprehension(self, node: ast.comprehension, ctx: _Ctx) -> None:
        if node.is_async:
            self.fail(node.target, "'async for' comprehensions are not allowed")

    # expressions --------------------------------------------------------------------------
    def _check_Name(self, node: ast.Name, ctx: _Ctx) -> list[tuple[ast.AST, _Ctx]]:
        name = node.id
        spelled = self._spelled_non_ascii(node)
        if spelled is not None:
            self.fail(node, f"non-ASCII identifier {spelled!r} (read as {name!r}) is not "
                            f"allowed (identifiers are ASCII only)")
        if isinstance(node.ctx, ast.Store | ast.Del):
            self._binding(node, name)
            return []
        if name in self.module_aliases:
            if id(node) not in self.approved:
                self.fail(node, f"module {self.module_aliases[name]!r} may only be used as "
                                f"{name}.<name> (not aliased, stored, passed or subscripted)")
        elif name in self.future_names:
            self.fail(node, f"{name!r} names a __future__ feature, not a value")
        elif name in self.typing_names:
            if not ctx.annotation:
                self.fail(node, f"typing name {name!r} may only appear in annotations")
        elif name in FORBIDDEN_NAMES:
            self.fail(node, f"the name {name!r} is not allowed")
        elif name.startswith("_") and name != "_":
            self.fail(node, f"names starting with '_' are not allowed ({name!r})")
        elif name not in self.bound and name not in ALLOWED_BUILTINS:
            if name in _ALL_BUILTINS:
                self.fail(node, f"the builtin {name!r} is not allowed")
            else:
                self.fail(node, f"the name {name!r} is neither defined in this module nor an "
                                f"allowed builtin")
        return []

    def _check_Attribute(self, node: ast.Attribute, ctx: _Ctx) -> list[tuple[ast.AST, _Ctx]]:
        attr = node.attr
        value = node.value
        spelled = self._spelled_non_ascii(node)
        if spelled is not None:
            self.fail(node, f"non-ASCII identifier {spelled!r} (read as {attr!r}) is not "
                            f"allowed (identifiers are ASCII only)")
        if isinstance(value, ast.Name) and value.id in self.module_aliases:
            module = self.module_aliases[value.id]
            self.approved.add(id(value))
            if not isinstance(node.ctx, ast.Load):
                self.fail(node, f"cannot assign or delete {module}.{attr} (modules are "
                                f"read-only)")
            elif attr not in ALLOWED_IMPORTS[module]:
                self.fail(node, f"{module}.{attr} is not allowed")
            return [(value, ctx)]
        problem = _user_attr_problem(attr)
        if problem:
            self.fail(node, problem)
        elif isinstance(node.ctx, ast.Load) and attr not in SAFE_ATTRS \
                and attr not in self.user_attrs:
            self.fail(node, f"attribute {attr!r} is not in the allowed list (ordinary methods "
                            f"of str, list, dict, set, numbers, deque, Counter, Decimal, "
                            f"Fraction... and attributes this module defines on its classes)")
        return [(value, ctx)]

    def _check_keyword(self, node: ast.keyword, ctx: _Ctx) -> None:
        if node.arg is None:
            if not _plain_keys(node.value):
                # Keys made at run time could name a private parameter (Fraction(1, -2,
                # **{'_normalize': False}) built a fraction with a negative denominator).
                self.fail(node, "'**' in a call takes only a dict display whose keys are "
                                "strings not starting with '_' (keys made at run time "
                                "could name private parameters); pass keyword arguments "
                                "by name")
        elif node.arg.startswith("_"):
            self.fail(node, f"keyword argument {node.arg!r} is not allowed")

    def _check_Constant(self, node: ast.Constant, ctx: _Ctx) -> None:
        value = node.value
        if isinstance(value, bytes):
            self.fail(node, "bytes literals are not allowed")
        elif isinstance(value, str) and len(value) > MAX_STRING:
            self.fail(node, f"string constant of {len(value)} characters exceeds {MAX_STRING}")
        elif isinstance(value, int) and not isinstance(value, bool) \
                and value.bit_length() > MAX_INT_BITS:
            self.fail(node, f"integer literal of {value.bit_length()} bits exceeds "
                            f"{MAX_INT_BITS}")

    def _check_BinOp(self, node: ast.BinOp, ctx: _Ctx) -> None:
        if ctx.annotation:
            # 'List[int] | "x"' is Union[List[int], ForwardRef("x")] at import: typing
            # compiles a string beside a '|' as it does one inside brackets.
            for side in (node.left, node.right):
                self._forward_ref(side, "beside a '|' in an annotation")
        if isinstance(node.op, ast.Mod):
            fmt = self._fold(node.left)
            problem = _format_problem(fmt, spec=False) if isinstance(fmt, str) else None
            if problem:
                self.fail(node, problem)
                self.folded[id(node)] = _FAILED  # never format it while folding
                return
        self._fold(node)

    def _check_UnaryOp(self, node: ast.UnaryOp, ctx: _Ctx) -> None:
        self._fold(node)

    def _check_display(self, node: ast.Tuple | ast.List | ast.Set | ast.Dict,
                       ctx: _Ctx) -> None:
        # A display is built where it stands: '{[]}' raises there, and a dict of huge
        # items is as huge as a tuple of them (unpacking targets build nothing).
        if not isinstance(getattr(node, "ctx", None), ast.Store | ast.Del):
            self._fold(node)

    _check_Tuple = _check_List = _check_Set = _check_Dict = _check_display

    def _check_Subscript(self, node: ast.Subscript, ctx: _Ctx) -> None:
        if not ctx.annotation:
            return
        # Annotations run at import (without 'from __future__ import annotations'):
        # "X: 'abc'[5]" raised there.  The base of a subscript names a type.
        if not isinstance(node.value, ast.Name | ast.Attribute):
            self.fail(node, f"annotations may only subscript a type name "
                            f"({type(node.value).__name__} found)")
        # typing compiles a string inside its brackets at import (typing.ForwardRef).
        stack: list[ast.AST] = [node.slice]
        while stack:
            part = stack.pop()
            self._forward_ref(part, "inside an annotation's brackets")
            if isinstance(part, ast.Tuple | ast.List):
                stack.extend(ast.iter_child_nodes(part))
            elif isinstance(part, ast.BinOp):  # a string on either side: _check_BinOp says so
                stack.extend(side for side in (part.left, part.right)
                             if not isinstance(side, ast.Constant))

    def _forward_ref(self, part: ast.AST, where: str) -> None:
        """A string constant that typing compiles at import must be only a type name."""
        if isinstance(part, ast.Constant) and isinstance(part.value, str) \
                and not _TYPE_NAME.fullmatch(part.value):
            self.fail(part, f"a string {where} is compiled at import (typing.ForwardRef); "
                            f"quote only a type name, not {part.value[:40]!r}")

    def _check_Call(self, node: ast.Call, ctx: _Ctx) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "pow":
            # pow(b, e), pow(b, e, None), pow(base=b, exp=e): b ** e, folded with its
            # size guard (a modulus that is not None keeps the result small).
            given = dict(zip(("base", "exp", "mod"), _spelled_args(node), strict=False))
            for k in node.keywords:
                if k.arg is not None:
                    given[k.arg] = k.value
                elif isinstance(k.value, ast.Dict):  # pow(**{"base": 2, "exp": 10**8})
                    given.update((key.value, value) for key, value
                                 in zip(k.value.keys, k.value.values, strict=True)
                                 if isinstance(key, ast.Constant) and isinstance(key.value, str))
            mod = given.get("mod")
            if "base" in given and "exp" in given and (
                    mod is None or (isinstance(mod, ast.Constant) and mod.value is None)):
                self._fold_binop(node, ast.Pow(), given["base"], given["exp"])
        if isinstance(func, ast.Attribute) and func.attr in _PADDING_METHODS:
            for arg in node.args:
                width = self._fold(arg)
                if isinstance(width, int) and width > MAX_FOLD_ITEMS:
                    self.fail(arg, f"padding to {width} characters exceeds {MAX_FOLD_ITEMS}")

    def _check_FormattedValue(self, node: ast.FormattedValue, ctx: _Ctx) -> None:
        spec = node.format_spec
        if isinstance(spec, ast.JoinedStr):
            for part in spec.values:
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    problem = _format_problem(part.value, spec=True)
                    if problem:
                        self.fail(part, problem)
                elif isinstance(part, ast.FormattedValue):
                    # f"{x:{W}}": a constant W is a width (int) or a whole spec (str), an
                    # f-string's text included (f"{x:{f'{9}{99999999}'}}").
                    width = self._constant_text(part.value)
                    if isinstance(width, int) and abs(width) > MAX_FORMAT_WIDTH:
                        self.fail(part, f"format width {width} exceeds {MAX_FORMAT_WIDTH}")
                    elif isinstance(width, str) and _format_problem(width, spec=True):
                        self.fail(part, str(_format_problem(width, spec=True)))
            # Each piece may be small while the spec they spell is not: f"{x:{999}{999}}".
            text = self._spec_text(spec)
            problem = _format_problem(text, spec=True) if text is not None else None
            if problem:
                self.fail(spec, f"{problem} (the format spec {str(text)[:40]!r} is put "
                                f"together from constant pieces)")

    def _spec_text(self, spec: ast.JoinedStr) -> str | None:
        """The text of a format spec whose every piece is constant, or None.

        Only small pieces are put together: a nested field's own spec must pass the
        width check before it is applied (it is refused on its own otherwise), so
        nothing large is ever formatted here.
        """
        pieces: list[str] = []
        for part in spec.values:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                pieces.append(part.value)
                continue
            if not isinstance(part, ast.FormattedValue):
                return None
            value = self._constant_text(part.value)
            if not isinstance(value, int | float | str) or _weight(value) > MAX_FORMAT_WIDTH:
                return None
            inner = ""
            if isinstance(part.format_spec, ast.JoinedStr):
                nested = self._spec_text(part.format_spec)
                if nested is None or _format_problem(nested, spec=True):
                    return None
                inner = nested
            try:
                converted = _CONVERSIONS[part.conversion](value)
                pieces.append(format(converted, inner))
            except (KeyError, ValueError, TypeError, OverflowError):
                return None
        return "".join(pieces)

    def _constant_text(self, node: ast.AST) -> Any:
        """:meth:`_fold`, and an f-string whose every piece is constant as its text."""
        if isinstance(node, ast.JoinedStr):
            text = self._spec_text(node)
            return _NOT_CONST if text is None else text
        return self._fold(node)

    # -- constant folding with size guards ---------------------------------------------------
    def _fold(self, node: ast.AST) -> Any:
        """The value of a constant expression, ``_NOT_CONST``, or ``_FAILED`` (reported).

        Nothing is computed that could exceed the fold limits: each operation's result
        size is bounded from its operands' sizes first (``10**10**8`` is never built).
        """
        key = id(node)
        if key in self.folded:
            return self.folded[key]
        if self.fold_total > MAX_FOLD_TOTAL:  # reported: no more folding in this module
            return _FAILED
        # Here too, not only between nodes: one statement's node can fold thousands of
        # operations ('(T*1, T*1, ...)' held the checker for hours past its limit).
        if time.monotonic() > self.deadline:
            raise _Overtime
        self.folded[key] = _NOT_CONST  # guards against re-entry
        value: Any = _NOT_CONST
        if isinstance(node, ast.Constant):
            # Bytes literals are refused (reported where they stand), so never folded:
            # the '%' width checks read str formats only, and b'%0999999999d' % 1 built
            # a gigabyte here.
            value = _NOT_CONST if isinstance(node.value, bytes) else node.value
        elif isinstance(node, ast.Name) and node.id in self.constants:
            value = self._fold(self.constants[node.id])
        elif isinstance(node, ast.Tuple | ast.List | ast.Set | ast.Dict):
            # A dict folds as its keys then its values ('{**x}' has a None key: not const).
            parts: list[ast.expr | None] = [*node.keys, *node.values] \
                if isinstance(node, ast.Dict) else list(node.elts)
            items = [self._fold(e) if e is not None else _NOT_CONST for e in parts]
            if not any(i is _NOT_CONST or i is _FAILED for i in items):
                value = self._build(node, items)
            elif any(i is _FAILED for i in items):
                value = _FAILED
        elif isinstance(node, ast.UnaryOp):
            operand = self._fold(node.operand)
            value = operand if operand is _NOT_CONST or operand is _FAILED else \
                self._apply(node, lambda: _unary(node.op, operand))
        elif isinstance(node, ast.BinOp):
            value = self._fold_binop(node, node.op, node.left, node.right)
        self.folded[key] = value
        return value

    def _build(self, node: ast.AST, items: list[Any]) -> Any:
        kinds: dict[type, Callable[[list[Any]], Any]] = {
            ast.Tuple: tuple, ast.List: list, ast.Set: set,
            ast.Dict: lambda kv: dict(zip(kv[:len(kv) // 2], kv[len(kv) // 2:], strict=True)),
        }
        kind = kinds[type(node)]
        weight = 0
        for item in items:  # before building: a set hashes every item through its nesting
            weight += max(1, _weight(item, MAX_FOLD_ITEMS - weight))
            if weight > MAX_FOLD_ITEMS:
                self.fail(node, f"constant expression would build a huge value (a "
                                f"{type(node).__name__.lower()} holding more than "
                                f"{MAX_FOLD_ITEMS} items through its nesting)")
                return _FAILED
        return self._apply(node, lambda: kind(items))

    def _fold_binop(self, node: ast.AST, op: ast.operator, left_node: ast.AST,
                    right_node: ast.AST) -> Any:
        left, right = self._fold(left_node), self._fold(right_node)
        if left is _FAILED or right is _FAILED:
            return _FAILED
        if left is _NOT_CONST or right is _NOT_CONST:
            return _NOT_CONST
        try:
            _check_size(op, left, right)
        except _TooBig as exc:
            self.fail(node, f"constant expression would build a huge value ({exc}); limits: "
                            f"{MAX_INT_BITS}-bit integers, {MAX_FOLD_ITEMS} items or "
                            f"characters")
            return _FAILED
        return self._apply(node, lambda: _binary(op, left, right))

    def _apply(self, node: ast.AST, compute: Any) -> Any:
        try:
            value = compute()
        except _TooBig as exc:
            self.fail(node, f"constant expression would build a huge value ({exc})")
            return _FAILED
        except Exception as exc:
            self.fail(node, f"constant expression raises {type(exc).__name__}: {exc}")
            return _FAILED
        # The total counts each value's weight, not its length: '(T * 1, T * 1, ...)' of a
        # T holding 99,999 items in one tuple adds 1 per product by length, and each
        # product's weighing walked all of T again (2,900 of them: four minutes).
        weight = _weight(value)
        if _length(value) is not None:
            self.fold_total += weight
            if self.fold_total > MAX_FOLD_TOTAL:
                if self.fold_total - weight <= MAX_FOLD_TOTAL:  # report the first only
                    self.fail(node, f"constant expressions in this module build more than "
                                    f"{MAX_FOLD_TOTAL} items or characters in all")
                return _FAILED
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            self.fail(node, f"constant expression builds a {value.bit_length()}-bit integer "
                            f"(limit {MAX_INT_BITS})")
            return _FAILED
        if weight > MAX_FOLD_ITEMS:
            self.fail(node, f"constant expression would build a huge value (more than "
                            f"{MAX_FOLD_ITEMS} items or characters through its nesting)")
            return _FAILED
        return value


def _plain_keys(node: ast.expr) -> bool:
    """Whether ``node`` (what ``**`` unpacks in a call) is a dict display whose every key
    is a string constant not starting with '_': keyword arguments by name, spelled so."""
    return isinstance(node, ast.Dict) and all(
        isinstance(k, ast.Constant) and isinstance(k.value, str) and not k.value.startswith("_")
        for k in node.keys)


def _length(value: Any) -> int | None:
    if isinstance(value, str | bytes | tuple | list | set | frozenset | dict):
        return len(value)
    return None


def _weight(value: Any, limit: int = MAX_FOLD_ITEMS) -> int:
    """The work of hashing, comparing or printing a folded value, counted without doing it.

    Characters of a string, and the items of a container through every level of its
    nesting, each container inside it one more (an empty one is one item):
    ``((1,) * 99_999,) * 99_999`` is two small tuples in memory, but hashing or printing
    it visits 10**10 items, so it weighs 10**10; 99,999 ones each in a tuple nested 37
    deep weigh 3.7 million (counted by its ones alone that weighed 99,999 and took 3.7
    million steps to weigh).  An integer weighs a machine word per 64 bits.  Counting
    stops once past ``limit`` (about ``limit`` steps at most, however large the value).
    """
    total = 0
    stack = [value]
    inner = 0  # 0 for the value itself: its own container is not one of its items
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += max(1, len(item))
        elif isinstance(item, int):
            total += 1 + item.bit_length() // 64
        elif isinstance(item, tuple | list | set | frozenset):
            total += inner or not item
            stack.extend(item)
        elif isinstance(item, dict):
            total += inner or not item
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            total += 1
        inner = 1
    return total


def _percent_fields(text: str) -> list[str]:
    """Widths and precisions of the ``%`` fields in ``text`` (``'*'`` for a star), read as
    ``str % args`` reads them: ``%%`` is a literal percent, and a ``(key)`` ends at its
    matching parenthesis (``'%(()x)9s'`` has the key ``()x`` and the width 9).

    One pass over the text: a regular expression for this took quadratic time on
    ``'%(' * 50_000`` (each unclosed key was scanned to the end again).
    """
    numbers: list[str] = []
    n = len(text)
    i = text.find("%")
    while 0 <= i < n - 1:
        j = i + 1
        if text[j] == "%":
            i = text.find("%", j + 1)
            continue
        if text[j] == "(":
            depth, j = 1, j + 1
            while j < n and depth:
                depth += {"(": 1, ")": -1}.get(text[j], 0)
                j += 1
            if depth:
                break  # an unclosed key: '%' raises there, and no field follows
        while j < n and text[j] in "-+ #0":
            j += 1
        for dot in (False, True):
            if dot:
                if j >= n or text[j] != ".":
                    break
                j += 1
            if j < n and text[j] == "*":
                numbers.append("*")
                j += 1
                continue
            first = j
            while j < n and "0" <= text[j] <= "9":
                j += 1
            if j > first:
                numbers.append(text[first:j])
        i = text.find("%", j + 1)  # past the conversion character
    return numbers


def _format_problem(text: str, spec: bool) -> str | None:
    """Why a constant format (a ``%`` format or an f-string spec) is refused, or None.

    ``'%0999999999d' % 1`` and ``f"{1:>999999999}"`` build a gigabyte from a few bytes.
    """
    numbers = re.findall(r"\d+", text) if spec else _percent_fields(text)
    if "*" in numbers:
        return "'*' widths in % formats are not allowed"
    if any(n.isdigit() and (len(n) > 9 or int(n) > MAX_FORMAT_WIDTH) for n in numbers):
        return f"format width or precision exceeds {MAX_FORMAT_WIDTH}"
    return None


def _check_size(op: ast.operator, left: Any, right: Any) -> None:
    """Raise :class:`_TooBig` if ``left op right`` would be too large to compute."""
    ints = isinstance(left, int) and isinstance(right, int)
    if isinstance(op, ast.Pow) and ints and right > 0 and abs(left) > 1:
        # |left| >= 2, so an exponent past MAX_INT_BITS is too big without computing more.
        if right > MAX_INT_BITS or right * math.log2(abs(left)) > MAX_INT_BITS:
            raise _TooBig(f"{left} ** {right}")
    elif isinstance(op, ast.LShift) and ints and right > 0:
        if left.bit_length() + right > MAX_INT_BITS:
            raise _TooBig(f"{left} << {right}")
    elif isinstance(op, ast.Mult):
        for seq, count in ((left, right), (right, left)):
            # Weight, not length: (big,) * n repeats every item nested in 'big' n times.
            n = _weight(seq) if _length(seq) is not None else None
            if n is not None and isinstance(count, int) and count > 0 \
                    and count > MAX_FOLD_ITEMS // n:
                raise _TooBig(f"a sequence of {n} items (through its nesting) repeated "
                              f"{count} times")
        if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _TooBig("integer product")
    elif isinstance(op, ast.Mod) and isinstance(left, str) and _format_problem(left, False):
        raise _TooBig("a '%' format with a huge width")
    elif isinstance(op, ast.Add) and _length(left) is not None and _length(right) is not None:
        total = _weight(left) + _weight(right)
        if total > MAX_FOLD_ITEMS:
            raise _TooBig(f"{total} items (through their nesting)")


def _unary(op: ast.unaryop, operand: Any) -> Any:
    if isinstance(op, ast.USub):
        return -operand
    if isinstance(op, ast.UAdd):
        return +operand
    if isinstance(op, ast.Invert):
        return ~operand
    return not operand


_BINARY = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b, ast.Pow: lambda a, b: a ** b,
    ast.LShift: lambda a, b: a << b, ast.RShift: lambda a, b: a >> b,
    ast.BitOr: lambda a, b: a | b, ast.BitXor: lambda a, b: a ^ b,
    ast.BitAnd: lambda a, b: a & b,
}


def _binary(op: ast.operator, left: Any, right: Any) -> Any:
    if isinstance(left, str) and isinstance(op, ast.Mod):
        # '%' formatting of a constant: each width was checked; bound the result, every
        # field's padding included, before building it (20,000 '%999d' fields would
        # make 20 MB).  The arguments' weight is bounded, so their reprs are small.
        args = right if isinstance(right, tuple) else (right,)
        padding = sum(int(n) for n in _percent_fields(left) if n.isdigit())
        # ascii() is the longest a '%s', '%r' or '%a' field can write its argument.
        filled = sum(len(ascii(a)) for a in args)
        if isinstance(right, dict):
            # '%(key)s' may name the same value in every field: count it once per field
            # ('%(a)s' * 14_000 % {'a': 'x' * 50_000} is 700 MB from two small operands).
            longest = max((len(ascii(v)) for v in right.values()), default=0)
            filled = max(filled, left.count("%") * longest)
        if len(left) + padding + filled > MAX_FOLD_ITEMS:
            raise _TooBig("formatted string")
    return _BINARY[type(op)](left, right)


def _spelled_args(call: ast.Call) -> list[ast.expr]:
    """A call's positional arguments with ``*[...]`` / ``*(...)`` displays spelled out
    (another starred value ends the list: what follows it is unknown)."""
    out: list[ast.expr] = []
    for arg in call.args:
        if not isinstance(arg, ast.Starred):
            out.append(arg)
        elif isinstance(arg.value, ast.List | ast.Tuple):
            out.extend(arg.value.elts)
        else:
            break
    return out
