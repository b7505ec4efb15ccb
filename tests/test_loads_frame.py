"""``argus_core.loads_frame``, which every venue parses its websocket frames with: a frame
nested deeper than ``MAX_FRAME_DEPTH`` is refused before ``json.loads`` (nested ~100,000
deep it overflowed the C stack of a pytest worker: a segmentation fault, the process
gone), as the malformed frame it is.  Brackets inside strings do not count; real frames
parse as ``json.loads`` parses them."""

from __future__ import annotations

import json

import pytest

from argus_core import loads_frame
from argus_core.serde import MAX_FRAME_DEPTH


@pytest.mark.parametrize("deep", ["[" * 100_000 + "]" * 100_000,
                                  '{"a":' * 300 + "1" + "}" * 300,
                                  "[" * (MAX_FRAME_DEPTH + 1) + "]" * (MAX_FRAME_DEPTH + 1)])
def test_a_frame_nested_too_deep_is_refused_before_it_is_parsed(deep: str) -> None:
    with pytest.raises(json.JSONDecodeError, match="nested deeper than 200"):
        loads_frame(deep)
    with pytest.raises(json.JSONDecodeError, match="nested deeper than 200"):
        loads_frame(deep.encode())


def test_frames_within_the_depth_parse_as_json_loads_does() -> None:
    text = '{"a": "' + "[" * 1000 + '\\"", "b": [1, 2, {"c": 3}]}'  # brackets in a string
    assert loads_frame(text) == json.loads(text)
    many = "[" + ",".join(['{"p": 1}'] * 5000) + "]"  # wide, not deep
    assert len(loads_frame(many)) == 5000
    edge = "[" * MAX_FRAME_DEPTH + "]" * MAX_FRAME_DEPTH
    assert loads_frame(edge) == json.loads(edge)
    assert loads_frame(b'{"x": [[[1.5]]]}', parse_float=str) == {"x": [[["1.5"]]]}


def test_text_a_person_or_a_run_wrote_is_depth_checked_under_a_raised_recursion_limit(
        ) -> None:
    """py_ecc (imported with Polymarket's signing) raises the recursion limit to 100,000:
    ``json.loads`` of text nested that deep then overflows the C stack and kills the
    process.  A ``--set`` value, the control latch and a checkpoint row are read
    depth-checked first (a subprocess: the crash must not take a test worker with it)."""
    import subprocess
    import sys

    code = """
import sys
sys.setrecursionlimit(100_000)
deep = "[" * 100_000 + "]" * 100_000
from argus_core.config import parse_overrides
from argus_core.control import parse_latch
assert parse_overrides(["a.b=" + deep])["a.b"] == deep  # kept as text, refused later
assert parse_latch(deep) is None
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode,
                                                                  done.stderr[-2000:])
