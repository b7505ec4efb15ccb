"""The static filter against the red-team corpus, pathological input and real strategies.

Every module in ``escapes/`` must be refused with a line, a column and a reason
(for most, the reason names the technique); absurdly nested or oversized
input must get a verdict, never an exception; the allow-list of attributes
must reach no module, frame or code object; and every real strategy of the
example (variants, recorded answers, offline trials) must stay accepted.
"""

from __future__ import annotations

import builtins
import collections
import decimal
import fractions
import importlib
import importlib.util
import itertools
import json
import re
import statistics
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from argus_orchestrator.sandbox import CONTRACT_PATH, validate_source
from argus_orchestrator.sandbox import validator as v

ROOT = Path(__file__).parents[4]
ESCAPES = sorted((Path(__file__).parent / "escapes").glob("*.py"))
EXAMPLE = ROOT / "examples" / "orchestrator"

#: For each sample, a reason that names its technique (not an incidental one).
EXPECTED = {
    "annotation_bomb": "annotations may only combine types",
    "attrgetter_via_module": "use 'from fractions import",
    "audit_hook_bypass": "statistics.sys is not allowed",
    "breakpoint_input": "the name 'breakpoint' is not allowed",
    "builtin_method_self": "'__self__'",
    "builtins_module_import": "import of 'builtins'",
    "builtins_shadowing": "'__builtins__'",
    "class_body_payload": "only methods, a docstring and literal constants",
    "class_getitem_hook": "'__class_getitem__'",
    "codecs_rot13_eval": "import of 'codecs'",
    "coding_cookie": "encoding declaration 'unicode_escape'",
    "coroutine_frame": "'async def'",
    "counter_subclass_hook": "base classes",
    "cpu_spin": "can never end",
    "ctypes_syscalls": "import of 'ctypes'",
    "ctypes_via_sys_modules": "statistics.sys is not allowed",
    "decorator_payload": "decorators other than @staticmethod",
    "default_argument_bomb": "huge value",
    "del_and_setattr_module": "modules are read-only",
    "descriptor_get": "'__set_name__'",
    "dunder_methods_defined": "'__getattr__'",
    "encode_decode_codec_lookup": "'decode'",
    "environ_and_proc": "import of 'os'",
    "eval_exec_compile": "the name 'eval' is not allowed",
    "exception_context_chain": "'__context__'",
    "forge_protocol": "import of 'os'",
    "fork_bomb": "import of 'os'",
    "format_map_walk": "'format_map'",
    "format_via_unbound_method": "'format'",
    "format_width_bomb": "format width",
    "from_import_module_member": "fractions.sys is not allowed",
    "fstring_spec_attr": "'__class__'",
    "function_globals_builtins": "'__globals__'",
    "functools_partial_cache": "functools.partial is not allowed",
    "functools_reduce_getattr": "the name 'getattr' is not allowed",
    "functools_update_wrapper": "functools.update_wrapper is not allowed",
    "gc_memory_scan": "import of 'gc'",
    "gc_referrers_frames": "import of 'gc'",
    "generator_frame_walk": "'gi_frame'",
    "generator_function_frames": "'yield'",
    "getattr_string_concat": "the name 'getattr' is not allowed",
    "global_nonlocal_rebind": "'global'",
    "huge_constant_module": "huge value",
    "huge_reply": "huge value",
    "import_at_load": "module-level Try",
    "importlib_import": "import of 'importlib'",
    "init_subclass_hook": "'__init_subclass__'",
    "inspect_currentframe": "import of 'inspect'",
    "keyword_dunder_kwargs": "keyword argument '__class__'",
    "kill_host": "import of 'os'",
    "lambda_module_level": "module-level Assign",
    "marshal_code_object": "import of 'marshal'",
    "match_capture_module": "'match'",
    "match_class_pattern_format": "'match'",
    "match_mapping_attr": "'match'",
    "memory_bomb": "'bytearray'",
    "metaclass_keyword": "metaclasses",
    "module_attr_dict_container": "may only be used as statistics.<name>",
    "module_attr_direct": "'_os'",
    "module_attr_function_return": "may only be used as statistics.<name>",
    "module_attr_local_alias": "may only be used as statistics.<name>",
    "module_attr_subscript": "may only be used as statistics.<name>",
    "module_comprehension": "may only be used as statistics.<name>",
    "module_default_argument": "may only be used as statistics.<name>",
    "module_lambda_default": "may only be used as statistics.<name>",
    "module_rebinding": "cannot rebind 'math'",
    "module_walrus": "may only be used as statistics.<name>",
    "mro_subclasses": "'mro'",
    "multiline_attribute_chain": "'__subclasses__'",
    "multiprocessing_spawn": "import of 'multiprocessing'",
    "nfkc_attribute": "non-ASCII identifier",
    "nfkc_identifier": "non-ASCII identifier",
    "operator_methodcaller": "import of 'operator'",
    "os_environ_via_random": "statistics.random is not allowed",
    "pathlib_read_secret": "import of 'pathlib'",
    "pickle_loads": "import of 'pickle'",
    "print_forged_frame": "the name 'print' is not allowed",
    "proc_fd_pipes": "'with' blocks",
    "read_secret_file": "'with' blocks",
    "recursion_limit_segfault": "import of 'sys'",
    "reduce_ex_copyreg": "'__reduce_ex__'",
    "regex_catastrophic": "import of 're'",
    "resource_raise_limits": "import of 'resource'",
    "segfault": "import of 'ctypes'",
    "shift_bomb": "huge value",
    "signal_deadline_evasion": "import of 'signal'",
    "spawn_processes": "import of 'os'",
    "str_format_walk": "'format'",
    "string_formatter": "import of 'string'",
    "subclasses_walk": "'__subclasses__'",
    "super_self_walk": "the name 'super' is not allowed",
    "sys_stdout_fd1": "import of 'sys'",
    "tcp_connect": "import of 'socket'",
    "thread_after_reply": "import of 'threading'",
    "traceback_frame_walk": "'__traceback__'",
    "try_star_exception_group": "'except*'",
    "type_three_args": "the name 'type' is not allowed",
    "typing_get_type_hints_eval": "typing.get_type_hints is not allowed",
    "udp_and_unix": "import of 'socket'",
    "urllib_dns_exfil": "import of 'urllib.request'",
    "vars_globals_locals": "the name 'globals' is not allowed",
    "with_context_manager": "'with' blocks",
    "write_outside": "import of 'os'",
}


def test_corpus_has_at_least_sixty_distinct_techniques() -> None:
    assert len(ESCAPES) >= 60
    docs = [ast_docstring(p) for p in ESCAPES]
    assert all(docs), [p.name for p, d in zip(ESCAPES, docs, strict=True) if not d]
    assert len(set(docs)) == len(docs)  # one technique per sample


def ast_docstring(path: Path) -> str | None:
    """A sample's top docstring (it names the technique)."""
    import ast

    return ast.get_docstring(ast.parse(path.read_text()))


@pytest.mark.parametrize("escape", ESCAPES, ids=[p.stem for p in ESCAPES])
def test_every_escape_is_refused_with_line_column_and_reason(escape: Path) -> None:
    result = validate_source(escape.read_text())
    assert not result.accepted
    assert result.findings
    for finding in result.findings:
        assert isinstance(finding.line, int) and finding.line >= 0
        assert isinstance(finding.col, int) and finding.col >= 0
        assert finding.message.strip()
    assert any(f.line >= 1 for f in result.findings), result.reasons
    if escape.stem in EXPECTED:
        assert any(EXPECTED[escape.stem] in r for r in result.reasons), result.reasons


def _in_on_event(expr: str) -> str:
    return ("class Strategy:\n    def on_event(self, event, state, portfolio):\n"
            f"        return [{expr}]\n")


#: Input built to crash, hang or exhaust the checker (or the parser under it).  Generated
#: here rather than stored in ``escapes/``: linters that parse every file (ruff's worker
#: threads) overflow their own stacks on some of these.
PATHOLOGICAL = {
    "unary_minus_900": _in_on_event("-" * 900 + "1"),
    "unary_minus_30k": _in_on_event("-" * 30_000 + "1"),
    "not_chain_2000": _in_on_event("not " * 2000 + "True"),
    "not_chain_15k": _in_on_event("not " * 15_000 + "True"),
    "invert_chain": _in_on_event("~" * 5000 + "1"),
    "sum_chain_30k": _in_on_event("1+" * 30_000 + "1"),
    "attribute_chain": _in_on_event("event" + ".x" * 20_000),
    "subscript_chain": _in_on_event("event" + "[0]" * 20_000),
    "call_chain": _in_on_event("len" + "()" * 20_000),
    "power_chain": _in_on_event("2**" * 20_000 + "2"),
    "conditional_chain": _in_on_event("1 if 1 else " * 5000 + "1"),
    "lambda_chain": _in_on_event("lambda: " * 7000 + "1"),
    "walrus_chain": _in_on_event("(y:=" * 150 + "1" + ")" * 150),
    "parens_199": _in_on_event("(" * 199 + "1" + ")" * 199),
    "parens_300": _in_on_event("(" * 300 + "1" + ")" * 300),
    "lists_199": _in_on_event("[" * 199 + "]" * 199),
    "dicts_150": _in_on_event("{1:" * 150 + "1" + "}" * 150),
    "comparison_chain": _in_on_event("1<" * 20_000 + "1"),
    "fstring_minus": _in_on_event("f'{" + "-" * 5000 + "1}'"),
    "fstring_not": _in_on_event("f'{" + "not " * 5000 + "1}'"),
    "fstring_parens": _in_on_event("f'{" + "(" * 150 + "1" + ")" * 150 + "}'"),
    "elif_chain": _in_on_event("1") + "def f(x):\n    if x:\n        pass\n"
    + "    elif x:\n        pass\n" * 700,
    "multi_line_sum": "X = (" + "1 +\n" * 1400 + "1)\n" + _in_on_event("1"),
    "indentation_99": "".join(" " * i + "if 1:\n" for i in range(99)) + " " * 99 + "pass\n",
    "oversize": "#" * (v.MAX_SOURCE_BYTES + 1),
    "too_many_lines": "\n" * (v.MAX_LINES + 1),
    "carriage_return_lines": "\r" * (v.MAX_LINES + 1),
    "nul_byte": "x = 1\x00",
    "lone_surrogate": "x = '\ud800'\n",
    "unterminated": "x = (\n" * 30,
    "unterminated_string": "x = '''\n" + "a\n" * 10,
    "bad_indent": "if 1:\n        x = 1\n    y = 2\n",
    "many_nodes": _in_on_event(", ".join(["1"] * 25_000)),
    "long_string": _in_on_event("'" + "a" * 60_000 + "'"),
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_input_gets_a_verdict_quickly(name: str) -> None:
    result = validate_source(PATHOLOGICAL[name])
    assert not result.accepted
    assert result.reasons and all(r.startswith("line ") for r in result.reasons)


def test_pathological_input_under_a_huge_recursion_limit() -> None:
    """The token pre-check, not the interpreter's recursion limit, keeps the parser safe."""
    script = (
        "import json, sys\n"
        "sys.setrecursionlimit(1_000_000)\n"
        "from argus_orchestrator.sandbox import validate_source\n"
        "cases = json.load(sys.stdin)\n"
        "print(json.dumps({k: validate_source(s).accepted for k, s in cases.items()}))\n")
    proc = subprocess.run([sys.executable, "-c", script], input=json.dumps(PATHOLOGICAL),
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == {k: False for k in PATHOLOGICAL}


def test_time_limit_and_internal_failures_are_rejections(
        monkeypatch: pytest.MonkeyPatch) -> None:
    good = (EXAMPLE / "seed_strategy.py").read_text()
    late = validate_source(good, time_limit_s=-1.0)
    assert not late.accepted and "longer than" in late.reasons[0]

    def broken(self: Any) -> None:
        raise KeyError("checker bug")

    monkeypatch.setattr(v._Checker, "run", broken)
    crashed = validate_source(good)
    assert not crashed.accepted and "internal validator error" in crashed.reasons[0]
    assert not validate_source(b"class Strategy: pass").accepted  # type: ignore[arg-type]


def test_cli_gives_a_json_verdict_and_no_traceback_for_any_input(tmp_path: Path) -> None:
    from argus_orchestrator.commands import sandbox_group
    from click.testing import CliRunner

    runner = CliRunner()
    files = {name: PATHOLOGICAL[name] for name in ("unary_minus_900", "not_chain_2000",
                                                   "sum_chain_30k", "oversize", "nul_byte")}
    for name, source in files.items():
        path = tmp_path / f"{name}.py"
        path.write_text(source, encoding="utf-8", errors="surrogatepass")
        res = runner.invoke(sandbox_group, ["check", str(path), "--json"])
        assert res.exit_code == 8, (name, res.output)
        assert "Traceback" not in res.output
        payload = json.loads(res.output)
        assert payload["accepted"] is False and payload["reasons"]
        assert all({"line", "col", "message"} <= set(f) for f in payload["findings"])
        plain = runner.invoke(sandbox_group, ["check", str(path)])
        assert plain.exit_code == 8 and "rejected" in plain.output
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"X = '\xe9'\n")
    res = runner.invoke(sandbox_group, ["check", str(latin), "--json"])
    assert res.exit_code == 8 and "UTF-8" in json.loads(res.output)["reasons"][0]
    big = tmp_path / "big.py"
    big.write_bytes(b"#" * (10 * v.MAX_SOURCE_BYTES))
    assert runner.invoke(sandbox_group, ["check", str(big)]).exit_code == 8
    for unreadable in (tmp_path / "missing.py", tmp_path):
        res = runner.invoke(sandbox_group, ["check", str(unreadable), "--json"])
        assert res.exit_code == 4, res.output
        payload = json.loads(res.output)
        assert payload["readable"] is False and payload["accepted"] is False
    good = tmp_path / "good.py"
    good.write_text((EXAMPLE / "seed_strategy.py").read_text())
    res = runner.invoke(sandbox_group, ["check", str(good), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["accepted"] is True


def test_allowed_attributes_reach_no_module_frame_or_code() -> None:
    """Walk every public attribute name a strategy could use (listed or self-defined,
    i.e. anything not refused outright) from every value it can hold: no module, frame,
    code object, traceback or cell is ever reachable."""
    roots: list[Any] = []
    for module_name, members in v.ALLOWED_IMPORTS.items():
        if module_name != "__future__":
            module = importlib.import_module(module_name)
            roots += [getattr(module, m) for m in members]
    roots += [getattr(builtins, n) for n in v.ALLOWED_BUILTINS if n not in {"True", "False",
                                                                            "None"}]
    roots += ["s", 1, 1.5, 1j, True, None, [], {}, set(), frozenset(), (), range(3),
              slice(1, 2), collections.deque(), collections.Counter(), collections.OrderedDict(),
              collections.defaultdict(list), decimal.Decimal(1), fractions.Fraction(1),
              decimal.Decimal(1).as_tuple(), statistics.NormalDist(),
              statistics.linear_regression([1, 2, 3], [1, 2, 4]), (x for x in []), iter([]),
              map(abs, []), zip(), enumerate([]), reversed([]), {}.keys(), {}.items(),
              ValueError("x"), KeyError("k"), StopIteration(1), itertools.count(),
              staticmethod(abs), lambda: 0, ...]
    bad = (types.ModuleType, types.FrameType, types.CodeType, types.TracebackType,
           types.CellType)
    seen: set[int] = set()
    alive: list[Any] = []  # keeps ids unique while walking
    frontier = [(r, repr(r)[:40]) for r in roots]
    reached = []
    for _ in range(4):
        following = []
        for obj, path in frontier:
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            alive.append(obj)
            if isinstance(obj, bad):
                reached.append(path)
                continue
            for name in dir(obj):
                if v._user_attr_problem(name) is not None:
                    continue
                try:
                    value = getattr(obj, name)
                except Exception:
                    continue
                following.append((value, f"{path}.{name}"))
        frontier = following
    assert not reached
    assert len(seen) > 500  # the walk did cover the graph


def _example_sources() -> dict[str, str]:
    sources = {p.name: p.read_text() for p in sorted((EXAMPLE / "variants").glob("*.py"))}
    sources["seed_strategy.py"] = (EXAMPLE / "seed_strategy.py").read_text()
    sources["CONTRACT.md"] = re.findall(r"```python\n(.*?)```", CONTRACT_PATH.read_text(),
                                        re.S)[0]
    for answer in ("cycle1_generate.md", "cycle3_generate.md"):  # accepted ones
        text = (EXAMPLE / "answers" / answer).read_text()
        sources[answer] = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    spec = importlib.util.spec_from_file_location("prior_trials", EXAMPLE / "prior_trials.py")
    assert spec is not None and spec.loader is not None
    trials = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trials)
    for variant in [*trials.VARIANTS, trials.ANSWER]:
        sources["trial " + variant["id"]] = trials.variant_source(variant)
    return sources


def test_real_example_strategies_stay_accepted() -> None:
    sources = _example_sources()
    assert len(sources) >= 15
    for name, source in sources.items():
        result = validate_source(source)
        assert result.accepted, (name, result.reasons)


def test_contract_documents_every_allowed_name() -> None:
    contract = CONTRACT_PATH.read_text()
    listed = set(v.ALLOWED_BUILTINS) | set(v.SAFE_ATTRS) | set(v.FORBIDDEN_ATTRS)
    for members in v.ALLOWED_IMPORTS.values():
        listed |= members
    missing = sorted(n for n in listed if not re.search(rf"\b{re.escape(n)}\b", contract))
    assert not missing
    for limit in ("MAX_SOURCE_BYTES", "MAX_LINES", "MAX_NODES", "MAX_DEPTH"):
        assert f"{getattr(v, limit):,}" in contract or str(getattr(v, limit)) in contract
