"""Fourth held-out audit: the public Python-jail techniques as corpus entries.

Each technique from the public collections (see the module docstring of
``test_sandbox_heldout4_validator.py`` for the sources) is an ``escapes/`` file,
adapted so that it would do harm if it ran (read the secret file or the
environment, list the root, spawn, reach the host).  Like every corpus file it
is refused by the checker and contained by the OS layer alone
(``test_sandbox_escapes.py``, ``test_sandbox_containment.py``); here each is
also refused for its own technique (the reason names it, with a line), and
run once more with the Python guards on, after which an ordinary strategy
still runs.

Held (refused by the allow-list before this audit, kept as samples): every
``__subclasses__``/``__globals__``/``__self__``/frame walk, site builtins,
decorator and comprehension-target tricks, NFKC spellings, codec cookies,
``match``, ``async``, ``except*``, code objects, and every import outside the
list (numpy, ctypes, pickle, sys, os...).  Accepted and harmless, so not
samples: monkeypatching an imported class's plain attribute
(``Fraction.limit_denominator = len``: the worker's own objects only).  Plain
Python the checker accepts and only the worker stops, as the contract says:
see the last test.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argus_orchestrator.sandbox import WorkerFailure, WorkerPolicy, WorkerProcess, validate_source

ESCAPES = Path(__file__).parent / "escapes"

#: Each new sample -> a fragment of the reason that names its technique.
TECHNIQUES = {
    "abcmeta_register_builtins": "'__class__'",
    "annotation_forwardref_compile": "compiled at import (typing.ForwardRef)",
    "async_genexp_ag_frame": "'async def'",
    "attribute_error_obj": "attribute 'obj' is not allowed",
    "builtin_function_self_loader": "'__self__'",
    "builtin_importer_load_module": "'load_module'",
    "class_getitem_comprehension_target": "'__class_getitem__'",
    "closure_cell_write": "'cell_contents'",
    "code_interact": "import of 'code'",
    "code_replace_load_fast": "'__code__'",
    "ctypes_pythonapi_run": "import of 'ctypes'",
    "decorator_chain_no_parens": "decorators other than @staticmethod",
    "dict_constant_repeat_bomb": "huge value",
    "dictview_mapping_class_dict": "'mapping'",
    "exception_group_split": "'ExceptionGroup'",
    "fileloader_get_data": "'__subclasses__'",
    "fullwidth_underscore_dunder": "non-ASCII identifier",
    "function_type_new_code": "the name 'compile' is not allowed",
    "future_alias_builtins": "takes no alias",
    "generator_send_throw": "'send'",
    "getattribute_string_dunder": "'__getattribute__'",
    "heapq_merge_generator_frame": "'gi_frame'",
    "help_pager_shell": "the name 'help' is not allowed",
    "io_fileio_subclass": "'__subclasses__'",
    "license_printer_filenames": "'license'",
    "loader_spec_names": "the name '__loader__' is not allowed",
    "mappingproxy_or_uaf": "'__dict__'",
    "mmap_exec_shellcode": "import of 'mmap'",
    "numpy_ctypeslib_pickle": "import of 'numpy'",
    "octal_escape_import": "the name '__import__' is not allowed",
    "pdb_set_trace": "import of 'pdb'",
    "percent_mapping_bomb": "huge value",
    "posixsubprocess_fork_exec": "import of '_posixsubprocess'",
    "pythoninspect_environ": "import of 'os'",
    "signal_handler_frame": "import of '_signal'",
    "sys_hooks_frames": "import of 'sys'",
    "utf7_coding_comment": "encoding declaration 'utf_7'",
}

GOOD = '''
class Strategy:
    def on_event(self, event, state, portfolio):
        state["n"] = state.get("n", 0) + 1
        return []
'''


def test_every_technique_has_its_sample() -> None:
    assert all((ESCAPES / f"{name}.py").is_file() for name in TECHNIQUES)
    assert len(list(ESCAPES.glob("*.py"))) >= 150  # the corpus as a whole


@pytest.mark.parametrize("name", sorted(TECHNIQUES))
def test_each_technique_is_refused_by_name_with_a_position(name: str) -> None:
    result = validate_source((ESCAPES / f"{name}.py").read_text())
    assert not result.accepted
    named = [f for f in result.findings if TECHNIQUES[name] in f.message]
    assert named and all(f.line >= 1 for f in named), result.reasons


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A secret in the environment and in a file, and a listener, for samples to go after."""
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
             "port": listener.getsockname()[1]}
    yield {"canary": canary, "event": event, "tmp": tmp_path, "listener": listener}
    listener.close()


POLICY = WorkerPolicy(call_timeout_s=1.0, start_timeout_s=4.0, memory_mb=256)
CALL = {"op": "call", "state": {}, "portfolio": {"cash": 0.0, "equity": 0.0, "positions": {}}}


@pytest.mark.parametrize("name", sorted(TECHNIQUES))
def test_each_technique_is_contained_with_the_guards_on(name: str,
                                                        host: dict[str, Any]) -> None:
    before = sorted(p.name for p in host["tmp"].iterdir())
    text = ""
    try:
        with WorkerProcess((ESCAPES / f"{name}.py").read_text(), POLICY) as worker:
            try:
                text = json.dumps(worker.call({**CALL, "event": host["event"]}))
            except WorkerFailure as exc:
                assert exc.kind in {"timeout", "crash", "malformed"}
                text = str(exc)
            text += worker.stderr_tail(100_000)
    except WorkerFailure as exc:  # refused or killed while loading
        assert exc.kind in {"startup", "timeout", "crash"}
        text = str(exc)
    assert host["canary"] not in text
    assert "root:x:0:0" not in text
    assert sorted(p.name for p in host["tmp"].iterdir()) == before
    with pytest.raises(BlockingIOError):
        host["listener"].accept()
    # The host is unharmed: the next strategy starts and answers as usual.
    with WorkerProcess(GOOD, POLICY) as worker:
        reply = worker.call({**CALL, "event": host["event"]})
    assert reply["ok"] is True and reply["state"] == {"n": 1}


#: Plain Python the checker accepts (it is not the boundary) that overflows the C stack
#: of CPython 3.11: hash() of a tuple nested a million deep recurses in C unguarded.
C_STACK_OVERFLOW = '''
class Strategy:
    def on_event(self, event, state, portfolio):
        nested = ()
        for _ in range(1_000_000):
            nested = (nested,)
        state["h"] = hash(nested)
        return []
'''


def test_a_c_stack_overflow_at_run_time_is_a_contained_crash(host: dict[str, Any]) -> None:
    assert validate_source(C_STACK_OVERFLOW).accepted  # runtime work: the worker's to stop
    with WorkerProcess(C_STACK_OVERFLOW, POLICY) as worker, \
            pytest.raises(WorkerFailure) as failure:
        worker.call({**CALL, "event": host["event"]})
    assert failure.value.kind in {"crash", "timeout"}
    with WorkerProcess(GOOD, POLICY) as worker:
        assert worker.call({**CALL, "event": host["event"]})["ok"] is True
