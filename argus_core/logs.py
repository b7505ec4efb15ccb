"""Logging for the ``argus`` command: how loud each logger is, and JSON lines.

``-v`` shows Argus's own decisions (INFO from loggers named ``argus*``: ``argus_core``,
``argus.journal``, every ``argus_*`` plugin), ``-vv`` Argus's DEBUG, ``-vvv`` everyone's
DEBUG; third-party loggers (matplotlib's font manager...) stay at WARNING below that.
``--log-json`` (or ``ARGUS_LOG_JSON=1``) writes one JSON object per line to stderr.
Every line, text or JSON, passes through :func:`argus_core.secrets.redact`, and so do the
tracebacks Python itself prints for an exception nothing caught (in the main thread or
another one: a venue's or a bot's).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType

from argus_core.secrets import redact

#: The run id of the run in progress; the runner sets it when a run starts.
RUN_ID: ContextVar[str | None] = ContextVar("argus_run_id", default=None)
#: (Argus's level, everyone else's) per ``-v`` count.
LEVELS = ((logging.WARNING, logging.WARNING), (logging.INFO, logging.WARNING),
          (logging.DEBUG, logging.WARNING), (logging.DEBUG, logging.DEBUG))
_HANDLER_NAME = "argus-cli"


class RedactingFormatter(logging.Formatter):
    """``LEVEL logger: message``, with key-shaped text redacted."""

    def format(self, record: logging.LogRecord) -> str:
        """The formatted line, redacted."""
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger (the component), message, run_id."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one redacted JSON line."""
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line = {"ts": ts, "level": record.levelname, "logger": record.name,
                "message": redact(record.getMessage())}
        if (run_id := RUN_ID.get()) is not None:
            line["run_id"] = run_id
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(line)


def _excepthook(kind: type[BaseException], exc: BaseException,
                tb: TracebackType | None) -> None:
    """``sys.excepthook``: the default traceback, redacted."""
    sys.stderr.write(redact("".join(traceback.format_exception(kind, exc, tb))))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    """``threading.excepthook``: the default report of a thread's uncaught exception,
    redacted (a venue or bot thread's error may carry a URL with a token in it)."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    text = "".join(traceback.format_exception(args.exc_type, args.exc_value,
                                              args.exc_traceback))
    sys.stderr.write(redact(f"Exception in thread {name}:\n{text}"))


def install_excepthooks() -> None:
    """Redact the tracebacks Python prints for uncaught exceptions (idempotent)."""
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook


def configure(verbosity: int, as_json: bool) -> logging.Handler:
    """Install the CLI's one stderr handler on the root logger (replacing a previous one,
    so repeated invocations in one process do not print twice) and return it."""
    argus_level, other_level = LEVELS[min(verbosity, len(LEVELS) - 1)]
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    # Argus's records pass from one level, everyone else's from another.
    handler.addFilter(lambda r: r.levelno >= (argus_level if r.name.startswith("argus")
                                              else other_level))
    # The websockets library's DEBUG records are frame dumps that elide a long frame's
    # middle: an echoed credential's halves would no longer read as the secret.
    logging.getLogger("websockets").setLevel(logging.INFO)
    handler.setFormatter(JsonFormatter() if as_json
                         else RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(min(argus_level, other_level))
    install_excepthooks()
    return handler
