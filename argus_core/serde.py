"""The one cattrs converter used for every (de)serialisation in Argus.

Config, ledger rows, recorded NDJSON streams, IPC with sandboxed strategies
and the orchestrator's prompts all go through ``converter``.  Decimals travel
as strings (exact), order books as nested lists, and market events carry a
``"type"`` tag so a recording can be replayed without guessing.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import cattrs
import numpy as np
from cattrs.cols import (
    homogenous_tuple_structure_factory,
    is_mapping,
    is_sequence,
    list_structure_factory,
    mapping_structure_factory,
)
from cattrs.gen import make_dict_structure_fn
from cattrs.v import format_exception

from argus_core import models
from argus_core.errors import DataError

converter = cattrs.Converter(forbid_extra_keys=True)

converter.register_unstructure_hook(Decimal, str)
converter.register_structure_hook(Decimal, lambda v, _: models.to_decimal(v))
converter.register_unstructure_hook(np.ndarray, lambda a: a.tolist())
converter.register_structure_hook(np.ndarray, lambda v, _: np.asarray(v, dtype=np.float64))

#: Tag -> class for market events in recordings (NDJSON) and IPC.
EVENT_TYPES: dict[str, type] = {
    "bar": models.Bar,
    "trade": models.Trade,
    "book_delta": models.BookDelta,
    "book": models.OrderBook,
    "event": models.Event,
    "signal": models.Signal,
    "book_status": models.BookStatus,
    "settlement": models.Settlement,
    "instrument": models.Instrument,
}
_TAG_OF = {cls: tag for tag, cls in EVENT_TYPES.items()}

for _cls in EVENT_TYPES.values():
    converter.register_structure_hook(_cls, make_dict_structure_fn(_cls, converter,
                                                                   _cattrs_forbid_extra_keys=True))


def _json_kind(value: Any) -> str:
    """How a wrongly typed JSON value reads in an error (a long text is described)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {value!r}" if len(value) <= 40 else \
            f"a text of {len(value)} characters"
    kinds = {dict: "an object", list: "a list", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def _strict_bool(value: Any, _: Any) -> bool:
    if type(value) is bool:
        return value
    raise ValueError(f"expected true or false, got {_json_kind(value)}")


def _strict_int(value: Any, cl: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if cl is int else cl(value)  # an IntEnum: its member
    raise ValueError(f"expected an integer, got {_json_kind(value)}")


def _strict_float(value: Any, _: Any) -> float:
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise ValueError(f"{value!r} is out of range") from None
    raise ValueError(f"expected a number, got {_json_kind(value)}")


def _strict_str(value: Any, cl: Any) -> str:
    if isinstance(value, str):  # a StrEnum member too (dump_event's dict, before JSON)
        return value if cl is str else cl(value)  # a StrEnum (Side): its member
    raise ValueError(f"expected a text, got {_json_kind(value)}")


def _strict_levels(value: Any, _: Any) -> np.ndarray:
    """Book levels as recorded: a list of ``[price, size]`` lists of JSON numbers."""
    if not isinstance(value, list):
        raise ValueError(f"expected a list of [price, size] levels, got {_json_kind(value)}")
    for n, level in enumerate(value):
        if not isinstance(level, list) or len(level) != 2:
            raise ValueError(f"level {n}: expected a [price, size] pair, got "
                             f"{_json_kind(level)}")
        for x in level:
            if not isinstance(x, float | int) or isinstance(x, bool):
                raise ValueError(f"level {n}: expected numbers, got {_json_kind(x)}")
    try:
        return np.asarray(value, dtype=np.float64)
    except OverflowError:
        raise ValueError("a level's number is out of range") from None


def _strict_sequence(type_: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    inner = (homogenous_tuple_structure_factory(type_, conv)
             if getattr(type_, "__origin__", None) is tuple else
             list_structure_factory(type_, conv))

    def structure(value: Any, cl: Any) -> Any:
        if not isinstance(value, list | tuple):  # a tuple: dump_event's, before JSON
            raise ValueError(f"expected a list, got {_json_kind(value)}")
        return inner(value, cl)
    return structure


def _strict_mapping(type_: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    inner = mapping_structure_factory(type_, conv)

    def structure(value: Any, cl: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError(f"expected an object, got {_json_kind(value)}")
        return inner(value, cl)
    return structure


#: The converter a recording (its events, its header's instruments and fee schedules) is
#: read with: what ``argus record`` wrote and nothing it would not.  cattrs' defaults call
#: the field's type on the value, so ``"live": "false"`` was True, a bid ``[true, 5]`` a bid
#: at 1.0 and ``"instrument_id": 5`` the id "5".  Here a bool comes only from a JSON
#: boolean, a number (float or int field) only from a JSON number (not a boolean, not a
#: text), a text only from a JSON string, a list from a list and an object from an
#: object; a ``Decimal`` from a JSON string (as the recorder writes it) or a number.
recording_converter = converter.copy(forbid_extra_keys=True)
# By class, so a subclass comes here too: a ``StrEnum`` (``Side``) from a JSON string only.
recording_converter.register_structure_hook(bool, _strict_bool)
recording_converter.register_structure_hook(int, _strict_int)
recording_converter.register_structure_hook(float, _strict_float)
recording_converter.register_structure_hook(str, _strict_str)
recording_converter.register_structure_hook(np.ndarray, _strict_levels)
recording_converter.register_structure_hook_factory(is_sequence, _strict_sequence)
recording_converter.register_structure_hook_factory(is_mapping, _strict_mapping)
for _cls in EVENT_TYPES.values():
    recording_converter.register_structure_hook(
        _cls, make_dict_structure_fn(_cls, recording_converter, _cattrs_forbid_extra_keys=True))


def dump_event(event: models.MarketEvent) -> dict[str, Any]:
    """A market event as a JSON-ready dict with its ``type`` tag."""
    data: dict[str, Any] = converter.unstructure(event)
    data["type"] = _TAG_OF[type(event)]
    return data


def load_event(data: dict[str, Any], *, where: str = "event") -> models.MarketEvent:
    """Rebuild a market event from ``dump_event`` output (read strictly, as
    :data:`recording_converter` reads it); ``DataError`` says where it broke."""
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(data).__name__}")
    payload = dict(data)
    tag = payload.pop("type", None)
    cls = EVENT_TYPES.get(tag) if isinstance(tag, str) else None
    if cls is None:
        named = repr(tag) if tag is None or (isinstance(tag, str) and len(tag) <= 40) \
            else _json_kind(tag)
        raise DataError(f"{where}: unknown or missing event type {named} "
                        f"(expected one of {sorted(EVENT_TYPES)})")
    try:
        event: models.MarketEvent = recording_converter.structure(payload, cls)
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError,
            ArithmeticError) as exc:
        raise DataError(f"{where}: invalid {tag}: {structure_error(exc)}") from None
    if type(event) is models.Signal and not math.isfinite(event.value):
        # (published live, a non-finite reading is no reading; recorded, it is bad data)
        raise DataError(f"{where}: invalid signal: Signal {event.name} {event.instrument_id}"
                        f"@{event.ts_ns}: value {event.value!r} is not finite")
    return event


def _fmt(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, ValueError | DataError):
        return str(exc)
    return format_exception(exc, type_)


def structure_error(exc: BaseException) -> str:
    """What a failed ``structure`` call found, one ``message @ $.field`` per problem (the
    object's own checks without the `` @ $``)."""
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(m.removesuffix(" @ $") for m in cattrs.transform_error(
            exc, format_exception=_fmt))
    return str(exc)


def dumps(obj: Any) -> str:
    """Compact, key-sorted JSON of any attrs object (stable bytes for hashing and ledgers)."""
    return json.dumps(converter.unstructure(obj), sort_keys=True, separators=(",", ":"))


#: No venue frame nests deeper than a few levels.  ``json.loads`` recurses once per level,
#: and a frame nested ~100,000 deep overflowed the C stack (a segmentation fault that took
#: the process, not a RecursionError), so :func:`loads_frame` measures the depth first.
MAX_FRAME_DEPTH = 200
# "[" and "{" +1, "]" and "}" -1, every other byte 0.
_DEPTH_STEPS = np.zeros(256, dtype=np.int8)
_DEPTH_STEPS[list(b"[{")], _DEPTH_STEPS[list(b"]}")] = 1, -1


def check_depth(raw: str | bytes) -> None:
    """Refuse JSON text nested deeper than :data:`MAX_FRAME_DEPTH` (``JSONDecodeError``)
    before ``json.loads`` recurses into it: an import may have raised Python's recursion
    limit (py_ecc sets 100,000), and a document nested that deep then overflows the C
    stack and kills the process instead of raising ``RecursionError``."""
    if isinstance(raw, str):  # counted before encoding: most frames have few brackets
        deep = raw.count("[") + raw.count("{") > MAX_FRAME_DEPTH
    else:
        deep = raw.count(b"[") + raw.count(b"{") > MAX_FRAME_DEPTH
    if deep:  # the depth is at most the count of opening brackets
        data = raw.encode("utf-8", "replace") if isinstance(raw, str) else raw
        # Escaped backslashes, then escaped quotes, blanked (JSON pairs backslashes from
        # the left, as ``replace`` scans): every quote left opens or closes a string, and
        # a bracket after an odd number of them is inside one.  Vectorised: a regex that
        # stripped the strings kept a backtracking entry per escape (two million
        # backslashes: ~230 MB), and many short strings cost ~1 us each.
        plain = np.frombuffer(data.replace(b"\\\\", b"__").replace(b'\\"', b"__"),
                              dtype=np.uint8)
        inside = (np.cumsum(plain == ord('"'), dtype=np.int32) & 1).astype(bool)
        steps = _DEPTH_STEPS[plain]
        steps[inside] = 0
        depth = np.cumsum(steps, dtype=np.int32)
        if depth.size and int(depth.max()) > MAX_FRAME_DEPTH:
            raise json.JSONDecodeError(f"nested deeper than {MAX_FRAME_DEPTH} levels", "", 0)


def loads_frame(raw: str | bytes, **kwargs: Any) -> Any:
    """``json.loads(raw, **kwargs)`` of a venue's frame, refusing one nested deeper than
    :data:`MAX_FRAME_DEPTH` with the ``JSONDecodeError`` a malformed frame raises (the
    sandbox's worker, which imports no Argus code, keeps its own ``json_depth``)."""
    check_depth(raw)
    try:
        data = json.loads(raw, **kwargs)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # an integer past int()'s limit of digits, or a hook's refusal
        why = f"a number of more than {sys.get_int_max_str_digits():,} digits" \
            if "integer string conversion" in str(exc) else str(exc)
        raise json.JSONDecodeError(why, "", 0) from None
    if ("\\ud" in raw or "\\uD" in raw) if isinstance(raw, str) else \
            (b"\\ud" in raw or b"\\uD" in raw):
        data = _whole_characters(data)
    return data


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``' ``object_pairs_hook`` that refuses an object naming a key twice
    (json keeps the last: a second ``"ts_ns"`` silently moved a recorded bar)."""
    out = dict(pairs)
    if len(out) < len(pairs):  # (the search is quadratic, and only on the error's path)
        keys = [k for k, _ in pairs]
        twice = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"the key {twice!r} appears twice in one object")
    return out


def _whole_characters(data: Any) -> Any:
    """``data`` with each lone surrogate in its strings (JSON's ``"\\ud800"``: ``json.loads``
    pairs the halves of a character, never a half alone) replaced by U+FFFD: no UTF-8
    writer accepts one, so a venue's or a recording's text holding one (a title cut in the
    middle of an emoji by a JavaScript encoder) stopped the run in the ledger's writer."""
    if isinstance(data, str):
        return _LONE_SURROGATE.sub("\ufffd", data)
    if isinstance(data, list):
        return [_whole_characters(v) for v in data]
    if isinstance(data, dict):
        return {_whole_characters(k): _whole_characters(v) for k, v in data.items()}
    return data
