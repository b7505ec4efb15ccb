"""The fingerprint of the files a study reads, so that results of other data are never reused.

A sweep point, a compiled bar series and a gate verdict are identified by the config's
text, but the config names its data by path: with the bars file edited (a month
appended, a bad tick fixed) every finished point of a sweep was resumed as done, and
the walk-forward, PBO and reality check judged numbers of data that no longer exists,
mixed with fresh ones.  :func:`input_fingerprint` hashes the *content* of every file a
config (or a sweep point's overrides) names; the lab stores it beside what it computed
and recomputes whatever was computed from other content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from argus_core import Config, canonical_json

#: Strings longer than this are not paths (a path is at most 4,096 bytes on Linux).
_MAX_PATH = 4096
_CHUNK = 1 << 20
#: (path, size, mtime_ns) -> content digest: a file is hashed once per process while it
#: is unchanged (the gates ask for the fingerprint several times per run).
_DIGESTS: dict[tuple[str, int, int], str] = {}


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON-like value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def _named_file(config: Config, text: str) -> Path | None:
    """The regular file ``text`` names (relative to the config, as the core resolves
    paths), or None.  Folders are left out: one may hold the lab's own output."""
    if not text or len(text) > _MAX_PATH or "\x00" in text:
        return None
    try:
        path = config.resolve_path(text)
        return path if path.is_file() else None
    except (OSError, ValueError, RuntimeError):  # unreadable, a bad name, a symlink loop
        return None


def _digest(path: Path) -> str:
    """sha256 of the file's content (remembered while its size and mtime stay)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def input_fingerprint(config: Config, overrides: Iterable[dict[str, Any]] = ()) -> str:
    """A short hash of the content of every file named by ``config`` (its own
    ``[plugins.lab]`` / ``[plugins.orchestrator]`` tables aside) or by ``overrides``
    (a sweep's points): it changes when any of those files' bytes change, and only then
    (a ``touch`` keeps it)."""
    raw = json.loads(canonical_json(config.without_plugins("lab", "orchestrator")))
    texts = set(_strings(raw)) | {s for point in overrides for s in _strings(point)}
    files = sorted({p for p in (_named_file(config, t) for t in texts) if p is not None})
    h = hashlib.sha256()
    for path in files:
        try:
            h.update(f"{path}\0{_digest(path)}\n".encode())
        except OSError as exc:  # unreadable now: the backtest will say so; count it as such
            h.update(f"{path}\0unreadable: {exc.strerror}\n".encode())
    return h.hexdigest()[:16]
