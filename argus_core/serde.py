"""The one cattrs converter used for every (de)serialisation in Argus.

Config, ledger rows, recorded NDJSON streams, IPC with sandboxed strategies
and the orchestrator's prompts all go through ``converter``.  Decimals travel
as strings (exact), order books as nested lists, and market events carry a
``"type"`` tag so a recording can be replayed without guessing.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import cattrs
import numpy as np
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


def dump_event(event: models.MarketEvent) -> dict[str, Any]:
    """A market event as a JSON-ready dict with its ``type`` tag."""
    data: dict[str, Any] = converter.unstructure(event)
    data["type"] = _TAG_OF[type(event)]
    return data


def load_event(data: dict[str, Any], *, where: str = "event") -> models.MarketEvent:
    """Rebuild a market event from ``dump_event`` output; ``DataError`` says where it broke."""
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(data).__name__}")
    payload = dict(data)
    tag = payload.pop("type", None)
    cls = EVENT_TYPES.get(tag)
    if cls is None:
        raise DataError(f"{where}: unknown or missing event type {tag!r} "
                        f"(expected one of {sorted(EVENT_TYPES)})")
    try:
        return converter.structure(payload, cls)
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        detail = "; ".join(cattrs.transform_error(exc, format_exception=_fmt)) if isinstance(
            exc, cattrs.BaseValidationError) else str(exc)
        raise DataError(f"{where}: invalid {tag}: {detail}") from None


def _fmt(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, ValueError | DataError):
        return str(exc)
    return format_exception(exc, type_)


def dumps(obj: Any) -> str:
    """Compact, key-sorted JSON of any attrs object (stable bytes for hashing and ledgers)."""
    return json.dumps(converter.unstructure(obj), sort_keys=True, separators=(",", ":"))


#: No venue frame nests deeper than a few levels.  ``json.loads`` recurses once per level,
#: and a frame nested ~100,000 deep overflowed the C stack (a segmentation fault that took
#: the process, not a RecursionError), so :func:`loads_frame` measures the depth first.
MAX_FRAME_DEPTH = 200
# A JSON string as JSON tokenises it (linear); brackets: "[" "{" +1, "]" "}" -1 (int8).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_DEPTH_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def loads_frame(raw: str | bytes, **kwargs: Any) -> Any:
    """``json.loads(raw, **kwargs)`` of a venue's frame, refusing one nested deeper than
    :data:`MAX_FRAME_DEPTH` with the ``JSONDecodeError`` a malformed frame raises (the
    sandbox's worker, which imports no Argus code, keeps its own ``json_depth``)."""
    data = raw.encode("utf-8", "replace") if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") > MAX_FRAME_DEPTH:  # the depth is at most this
        steps = _JSON_STRING.sub(b"", data).translate(_DEPTH_STEPS, _NOT_BRACKETS)
        depth = np.cumsum(np.frombuffer(steps, dtype=np.int8), dtype=np.int64)
        if depth.size and int(depth.max()) > MAX_FRAME_DEPTH:
            raise json.JSONDecodeError(f"nested deeper than {MAX_FRAME_DEPTH} levels", "", 0)
    return json.loads(raw, **kwargs)
