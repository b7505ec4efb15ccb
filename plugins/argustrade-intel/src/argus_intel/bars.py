"""A run's bars, from the data its recorded config replayed.

The ledger stores the run's config (``runs.config_json``) but not its bars; a replay of
the builtin ``replay`` venue names them in ``[plugins.replay]``: ``bars_csv`` (a Kraken
OHLCVT CSV, with or without a header) or ``ndjson`` (an ``argus record`` file).  This
module reads that file with the replay's own reader (``argus_core.iter_bars_csv``): a CSV
row's time is the bar's *open*
(unix seconds) and the bar is stamped at its close (``open + bar_seconds``), rows outside
``start``/``end`` (open time, end exclusive) are left out, and a recording's ``bar``
events are taken as they are.

Relative paths in the recorded config were relative to the config file, which the
ledger does not record; they are resolved against the ``data_dirs`` the server was
given (``argus intel serve --data-dir``), then the working directory, first match wins.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from argus_core import Bar, DataError, converter, iter_bars_csv


@attrs.frozen
class BarSeries:
    """One instrument's bars, in time order (``ts_ns`` is each bar's close time)."""

    instrument_id: str
    ts_ns: NDArray[np.int64]
    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]
    volume: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])

    def row(self, i: int) -> dict[str, Any]:
        """Bar ``i`` as a JSON-ready dict."""
        return {"instrument_id": self.instrument_id, "ts_ns": int(self.ts_ns[i]),
                "open": float(self.open[i]), "high": float(self.high[i]),
                "low": float(self.low[i]), "close": float(self.close[i]),
                "volume": float(self.volume[i])}


def _epoch_s(value: Any) -> int | None:
    """A replay window bound (ISO date or unix seconds) as unix seconds."""
    if value is None:
        return None
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())
    except ValueError:
        raise DataError(f"replay window bound {value!r} is not an ISO date or unix "
                        f"seconds") from None


def resolve(value: str, data_dirs: Sequence[Path]) -> Path:
    """An absolute path of a file the recorded config names."""
    path = Path(value).expanduser()
    if path.is_absolute():
        candidates = [path]
    else:
        candidates = [(d / path).resolve() for d in [*data_dirs, Path.cwd()]]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise BarsUnavailable(
        f"the run's data file {value!r} is not found on the server; start the server with "
        f"--data-dir set to the folder of the run's config file",
        f"the run's data file {value!r} is not found (tried {tried})")


class BarsUnavailable(DataError):
    """A run's bars cannot be read.  ``str()`` is what an API caller may see: it names
    the file as the run's recorded config does (which ``/v1/runs/{id}`` shows anyway),
    never where the server looked or found it; ``detail`` is the whole story, for the
    server's log."""

    def __init__(self, public: str, detail: str) -> None:
        super().__init__(public)
        self.detail = detail


def _without_paths(exc: DataError, named: dict[Path, str], data_dirs: Sequence[Path]
                   ) -> BarsUnavailable:
    """``exc`` (often the core's reader naming the file it read) as a
    :class:`BarsUnavailable` whose public text names no server path: each resolved file
    as the recorded config names it, the data folders and working directory as
    placeholders."""
    if isinstance(exc, BarsUnavailable):
        return exc
    detail = public = str(exc)
    for path, value in named.items():
        public = public.replace(str(path), value)
    folders = [(str(Path(d).resolve()), "<data-dir>") for d in data_dirs]
    folders += [(str(Path(d)), "<data-dir>") for d in data_dirs]
    for folder, placeholder in sorted([*folders, (str(Path.cwd()), "<cwd>")],
                                      key=lambda f: -len(f[0])):
        if len(folder) > 1:  # never "/" itself
            public = public.replace(folder, placeholder)
    return BarsUnavailable(public, detail)


#: The replay's own bounds on ``bar_seconds`` (``ReplaySettings``: 1 s .. 366 days).
MAX_BAR_SECONDS = 366 * 86_400


def _table(config: dict[str, Any], *path: str) -> dict[str, Any]:
    """The table at ``path`` of a recorded config (empty when absent); ``DataError`` when
    it is something else (a hand-edited or damaged config: it was an AttributeError)."""
    table: Any = config
    for i, name in enumerate(path):
        table = table.get(name, {})
        if not isinstance(table, dict):
            raise DataError(f"the run's recorded config has [{'.'.join(path[:i + 1])}] = "
                            f"{type(table).__name__}, not a table")
    return dict(table)


def _bar_seconds(replay: dict[str, Any]) -> int:
    """``[plugins.replay] bar_seconds`` as the replay checks it (a whole number of
    seconds, 1 .. 366 days): text was a ValueError, a negative one stamped bars before
    they opened."""
    value = replay.get("bar_seconds", 3600)
    if type(value) is not int or not 1 <= value <= MAX_BAR_SECONDS:
        raise DataError(f"[plugins.replay] bar_seconds = {value!r} in the run's recorded "
                        f"config: expected whole seconds from 1 to {MAX_BAR_SECONDS}")
    return value


def bars_of_config(config: dict[str, Any], data_dirs: Sequence[Path]) -> list[BarSeries]:
    """Every instrument's bars of a run whose recorded config is ``config``; a
    :class:`BarsUnavailable` (its text naming no server path) when they cannot be read."""
    named: dict[Path, str] = {}  # each file resolved -> as the recorded config names it
    try:
        return _bars_of_config(config, data_dirs, named)
    except DataError as exc:
        raise _without_paths(exc, named, data_dirs) from None
    except OSError as exc:  # a file gone, unreadable or a folder since it was found
        raise _without_paths(DataError(f"{exc.filename or 'the data file'}: cannot be read "
                                       f"({exc.strerror or type(exc).__name__})"),
                             named, data_dirs) from None


def _bars_of_config(config: dict[str, Any], data_dirs: Sequence[Path],
                    named: dict[Path, str]) -> list[BarSeries]:
    venue = _table(config, "run").get("venue", "replay")
    replay = _table(config, "plugins", "replay")
    if venue != "replay" or not (replay.get("bars_csv") or replay.get("ndjson")):
        raise DataError(f"bars are served for runs of the builtin replay venue with "
                        f"[plugins.replay] bars_csv or ndjson; this run's venue is {venue!r}")

    def located(value: str) -> Path:
        path = resolve(value, data_dirs)
        named[path] = value
        return path

    if replay.get("bars_csv"):
        instrument_id = f"{replay.get('venue', 'replay')}:{replay.get('symbol', 'BTC/USD')}"
        bars = iter_bars_csv(located(str(replay["bars_csv"])), instrument_id,
                             _bar_seconds(replay),
                             _epoch_s(replay.get("start")), _epoch_s(replay.get("end")),
                             warn_gaps=False)
        return [_series(instrument_id, [(b.ts_ns, b.open, b.high, b.low, b.close, b.volume)
                                        for b in bars])]
    by_instrument: dict[str, list[tuple[int, float, float, float, float, float]]] = {}
    for bar in _ndjson_bars(located(str(replay["ndjson"]))):
        by_instrument.setdefault(bar.instrument_id, []).append(
            (bar.ts_ns, bar.open, bar.high, bar.low, bar.close, bar.volume))
    return [_series(k, v) for k, v in sorted(by_instrument.items())]


def _series(instrument_id: str, rows: list[tuple[int, float, float, float, float, float]]
            ) -> BarSeries:
    arr = np.array([r[1:] for r in rows], dtype=np.float64).reshape(-1, 5)
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    return BarSeries(instrument_id, ts, arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy(),
                     arr[:, 3].copy(), arr[:, 4].copy())


def _ndjson_bars(path: Path) -> Iterator[Bar]:
    """The ``bar`` events of an ``argus record`` file."""
    with open(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON: {exc.msg}") from None
            if not isinstance(data, dict) or data.get("type") != "bar":
                continue
            payload = {k: v for k, v in data.items() if k != "type"}
            try:
                yield converter.structure(payload, Bar)
            except (DataError, ValueError, TypeError, KeyError, ExceptionGroup) as exc:
                raise DataError(f"{path}:{lineno}: invalid bar: {exc}") from None
