"""The bot's commands: what each one reads or writes and the HTML it answers.

Read commands (``/status``, ``/positions``, ``/pnl``, ``/thoughts``) read the ledger
read-only (:mod:`argus_telegram.ledger_view`).  ``/kill``, ``/flatten`` and ``/resume``
write the trading state latch exactly as ``argus kill [--flatten]`` / ``argus resume`` do,
through a connection of their own (``argus_core.Ledger``), never the loop's; the running
loop adopts it at its next commit.  Every function here blocks: the bot calls them through
``asyncio.to_thread``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

import apsw
import attrs

from argus_core import (
    LEDGER_FILE,
    Ledger,
    LedgerError,
    clean_reason,
    left_open_by_resume,
    left_open_text,
    request_trading_state,
)
from argus_telegram import ledger_view

HELP = ("/status: trading state, equity, open orders, last event\n"
        "/positions: open positions\n"
        "/pnl: realised and unrealised P&amp;L, fees\n"
        "/report: the run's HTML report as a file\n"
        "/thoughts: the orchestrator's latest thoughts\n"
        "/kill [reason]: HALT trading (working orders cancelled)\n"
        "/flatten [reason]: HALT and close every position\n"
        "/confirm CODE: carry out the /flatten that answered CODE\n"
        "/resume [reason]: trading ACTIVE again")
#: What ``/status`` adds to the state: whether the loop has taken it up.
ADOPTION = {None: "", True: ", adopted by the loop",
            False: ", not yet adopted by the loop (at its next commit)"}
#: Commands that change the run (everything else only reads).
CONTROL_COMMANDS = ("kill", "flatten", "resume")
#: Control commands that wait for ``/confirm CODE`` (``confirm_within_s``): a flatten
#: sells through the market; a kill only halts (the safe direction, undone by /resume, and
#: an emergency must not wait for a code).
CONFIRMED_COMMANDS = ("flatten",)
READ_COMMANDS = ("status", "positions", "pnl", "report", "thoughts", "help", "start")
#: Longest name of a person kept in the latch's ``by``.
MAX_NAME = 64
#: Bot API command names: ASCII letters, digits and ``_``, 1-32 of them.  Anything else
#: (``/ｋｉｌｌ``, a Kelvin sign that ``str.lower`` turns into ``k``) is no command of ours.
_NAME = re.compile(r"[A-Za-z0-9_]{1,32}")


@attrs.frozen
class Command:
    """A parsed command: ``/kill@argus_bot spreads blew out`` -> ``kill``, the reason."""

    name: str
    args: str
    chat_id: int
    user: str  # username, or the first name, or the user id

    @property
    def by(self) -> str:
        """Who asked, as stored in the latch: ``telegram:<chat id>/<username>``."""
        return f"telegram:{self.chat_id}/{self.user}"


def parse(text: str, chat_id: int, user: str, bot_username: str | None) -> Command | None:
    """The command in a message's text; None when it is not one, or addressed to another
    bot (``/status@other_bot``).  A name that is not plain ASCII (a look-alike such as
    ``/ｋｉｌｌ``) parses as the empty name, which no command has: it is answered as an
    unknown command, never obeyed."""
    if not text.startswith("/"):
        return None
    parts = text.split(maxsplit=1)  # any white space ends the name: "/kill\nreason" too
    head, args = parts[0], (parts[1] if len(parts) > 1 else "")
    name, _, addressee = head[1:].partition("@")
    if addressee and bot_username and addressee.lower() != bot_username.lower():
        return None
    name = name.lower() if _NAME.fullmatch(name) else ""
    return Command(name, args.strip(), chat_id, clean_reason(user, MAX_NAME) or "unknown")


def shown(text: str, limit: int = 40) -> str:
    """``text`` for a log line: escaped (no forged lines), cut."""
    return ascii(text[:limit])


@attrs.frozen
class ControlResult:
    """What ``/kill``, ``/flatten`` or ``/resume`` did: the latch now in force, whether
    this command wrote it, and the positions a resume leaves open by stopping a flatten
    under way (their instruments; empty otherwise)."""

    latch: dict[str, Any]
    written: bool
    left_open: tuple[str, ...] = ()


def set_trading_state(run_dir: Path, command: Command) -> ControlResult:
    """Write the latch for ``/kill``, ``/flatten`` or ``/resume`` by the core's rule
    (:func:`argus_core.request_trading_state`, as ``argus kill`` does), plus who asked.
    A resume that stops a flatten under way names the positions still open, read in the
    same ledger open as the write (``argus resume`` says the same)."""
    if not (Path(run_dir) / LEDGER_FILE).exists():
        raise LedgerError(f"{run_dir}: no {LEDGER_FILE}; is the run started?")
    default = ("cleared by a person with /resume on Telegram" if command.name == "resume"
               else f"killed by a person with /{command.name} on Telegram")
    with Ledger.in_dir(run_dir) as ledger:
        left = left_open_by_resume(ledger) if command.name == "resume" else []
        latch, written = request_trading_state(ledger, command.name,
                                               clean_reason(command.args) or default,
                                               command.by)
    return ControlResult(latch, written, tuple(left) if written else ())


def left_open_html(instruments: tuple[str, ...]) -> str:
    """What a resume says of the positions the flatten it stopped leaves open (the core's
    wording, :func:`argus_core.left_open_text`, as HTML)."""
    return escape(left_open_text(instruments, "/flatten"))


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "database is locked" (another connection, the loop's,
    held the write lock past the busy wait), itself or as the error it replaced (the
    ledger re-raises it as a ``LedgerError`` that calls the file damaged)."""
    return any(isinstance(e, apsw.BusyError) for e in (exc, exc.__cause__, exc.__context__))


def _when(ts_ns: int | None) -> str:
    if ts_ns is None:
        return "none yet"
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _money(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{Decimal(str(value)):,.2f}"


def status_text(run_dir: Path) -> str:
    """``/status``."""
    s = ledger_view.status(run_dir)
    run = s["run"] or {}
    return "\n".join([
        f"<b>Run</b> {escape(str(run.get('run_id', '?')))} "
        f"({escape(str(run.get('mode', '?')))}, {escape(str(run.get('status', '?')))})",
        "Trading " + ledger_view.describe_state(s["latch"]) + ADOPTION[s["adopted"]],
        f"Equity {_money(s['equity'])} (cash {_money(s['cash'])})",
        f"Open orders {s['open_orders']}, fills {s['fills']}",
        f"Last event {_when(s['last_event_ns'])}"])


def positions_text(run_dir: Path) -> str:
    """``/positions``."""
    held = ledger_view.positions(run_dir)
    if not held:
        return "No open positions."
    return "<b>Positions</b>\n" + "\n".join(
        f"{escape(str(p['instrument_id']))}: {escape(str(p['quantity']))} @ "
        f"{escape(str(p['avg_price']))} (realised {_money(p['realized_pnl'])})"
        for p in held)


def pnl_text(run_dir: Path) -> str:
    """``/pnl``."""
    p = ledger_view.pnl(run_dir)
    return "\n".join([
        "<b>P&amp;L</b>",
        f"Realised {_money(p['realised'])} (before fees)",
        f"Unrealised {_money(p['unrealised'])}",
        f"Fees {_money(p['fees'])}",
        f"Total {_money(p['total'])} (equity against starting cash "
        f"{_money(p['starting_cash'])})"])


def thoughts_text(run_dir: Path) -> str:
    """``/thoughts``."""
    entries = ledger_view.thoughts(run_dir)
    if entries is None:
        return "The orchestrator is not running on this run (no thought spool in its ledger)."
    if not entries:
        return "The orchestrator has not thought anything yet."
    lines = ["<b>Latest thoughts</b>"]
    for t in entries:
        said = str(t["response_text"] or t["error"] or "")
        if len(said) > 300:
            said = said[:300] + "…"
        lines.append(f"{_when(t['ts_ns'])} {escape(str(t['purpose']))} "
                     f"({escape(str(t['model']))}, {escape(str(t['status']))}): "
                     f"{escape(said)}")
    return "\n".join(lines)


def write_report(run_dir: Path, timeout_s: float) -> Path:
    """Run ``argus report RUN_DIR`` in a subprocess (the report is the core's CLI, not a
    public API; a subprocess also keeps plotting out of the trading process) and return
    the HTML file it wrote."""
    done = subprocess.run([sys.executable, "-m", "argus_core.cli", "report", str(run_dir)],
                          capture_output=True, text=True, timeout=timeout_s, check=False)
    path = Path(run_dir) / "report.html"
    if done.returncode != 0 or not path.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"argus report exited {done.returncode}: {tail[0]}")
    return path
