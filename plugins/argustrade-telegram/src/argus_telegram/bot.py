"""The bot: its own thread and asyncio loop beside the trading loop, never blocking it.

Three tasks share the bot's loop:

* the **sender** takes batched notifications from the :class:`~argus_telegram.outbox.Outbox`
  (critical ones at once, the rest once per ``batch_interval_s``), spaces and caps them
  (:class:`~argus_telegram.outbox.RateLimiter`), and on a 429 waits the Bot API's
  ``retry_after`` and sends the same message again; a network error is retried too, so a
  HALTED notice is never lost to a hiccup;
* the **watcher** reads the ledger read-only every ``ledger_poll_s`` for state changes,
  risk events, drift alarms, rollbacks and fills
  (:class:`~argus_telegram.ledger_view.LedgerWatcher`), and whenever all it derived has
  been delivered saves its marks in the run folder (:mod:`argus_telegram.delivered`): the
  next bot of the run starts from them, telling what it missed, marked late;
* the **poller** long-polls ``getUpdates`` (confirming each update with ``offset``) and
  answers commands from the configured chats; any other chat is refused and logged.

Fills are read from the ledger like the rest (committed fills, as the ``on_fill``
observers see them), so what a crash kept from the chats is re-derived by the next bot.
The token is read once, at :meth:`TelegramBot.start`, and never logged: ``httpx`` logs
every request's URL, which holds the token, so a filter masks it on that logger.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import enum
import functools
import hmac
import logging
import re
import secrets
import threading
import time
import warnings
from collections import deque
from collections.abc import Awaitable, Callable
from html import escape, unescape
from pathlib import Path
from typing import Any

from telegram import Bot, Message, Update
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBUserWarning

from argus_core import ConfigError, TradingState, redact
from argus_telegram import commands, delivered
from argus_telegram.config import TelegramSettings
from argus_telegram.ledger_view import LedgerWatcher, Marks, MarksError, describe_state
from argus_telegram.outbox import Notice, Outbox, RateLimiter, hh_mm, outgoing

log = logging.getLogger(__name__)
_TAG = re.compile(r"<[^>]*>")
PARSE_MODE = "HTML"
#: Delays between retries of a failed send or poll (seconds), the last one repeating.
BACKOFF_S = (0.5, 1.0, 2.0, 5.0)
#: A message to the chats is given up after this many failed tries (never a critical one
#: while the bot runs; at shutdown the flush deadline ends it).
MAX_TRIES = 8
#: Updates asked for: new messages only (an edit, a channel post or a button press is
#: never a command; :meth:`TelegramBot._handle` ignores them should they come anyway).
ALLOWED_UPDATES = ["message"]
#: At most this many getUpdates pages are skipped at start-up (100 updates each).
MAX_STALE_PAGES = 20
#: Refusals kept for :attr:`TelegramBot.refused` (the newest), and strangers (chat, user)
#: told once that they may not use the bot: past that many, the rest are only logged (a
#: stranger with many accounts would otherwise grow both, and the replies, without end).
MAX_REFUSED = 1000
MAX_TOLD = 1000
#: How long a /kill or /flatten that finds the ledger busy is tried again (seconds).
BUSY_RETRY_S = 60
#: Control commands waiting for their ``/confirm CODE`` kept at most (the oldest go), and
#: wrong codes tolerated for one before it is forgotten (6 digits: no guessing).
MAX_PENDING_CONFIRMS = 100
MAX_CONFIRM_TRIES = 3


class PendingControl:
    """A ``/flatten`` waiting for ``/confirm CODE`` from the same person."""

    def __init__(self, command: commands.Command, code: str, expires_at: float) -> None:
        self.command, self.code, self.expires_at = command, code, expires_at
        self.tries = 0


class Outcome(enum.Enum):
    """What became of one Bot API call."""

    SENT = "sent"
    REFUSED = "refused"  # a 4xx that retrying cannot fix (bad request, blocked by the user)
    FAILED = "failed"  # still failing after MAX_TRIES (network, 5xx): worth queueing again


class TokenMask(logging.Filter):
    """Replaces the bot token, and anything else credential-shaped (``argus_core.redact``:
    a key a person pasted into a command, which PTB's debug log of ``getUpdates``
    repeats), in log records of the loggers it is attached to."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def mask(self, text: str) -> str:
        """``text`` without the token or anything credential-shaped."""
        return redact(text.replace(self.token, "<token>") if self.token else text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the token and credentials in the message, its arguments and its traceback
        (an exception's text can quote an answer holding the request's URL); keep the
        record."""
        message = record.getMessage()
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # Handlers format the traceback from exc_text when it is set: set it masked.
            record.exc_text = self.mask(logging.Formatter().formatException(record.exc_info))
        return True


#: Loggers that may print request URLs (``.../bot<token>/sendMessage``) or errors quoting
#: them, with every child of theirs that exists when the bot starts (:func:`url_loggers`).
_URL_LOGGERS = ("httpx", "httpcore", "telegram", "argus_telegram")


def url_loggers() -> list[logging.Logger]:
    """The loggers the token mask goes on: :data:`_URL_LOGGERS` and their children.  A
    logger's filter sees only records logged on it, not its children's (PTB logs an
    answer it cannot parse, a proxy's page quoting ``/bot<token>/``, on
    ``telegram.request.BaseRequest``); they exist once the library is imported."""
    names = [n for n in list(logging.root.manager.loggerDict)
             if any(n == p or n.startswith(p + ".") for p in _URL_LOGGERS)]
    return [logging.getLogger(n) for n in sorted({*_URL_LOGGERS, *names})]


def retry_after_s(exc: RetryAfter) -> float:
    """``exc.retry_after`` in seconds (an int or a timedelta, depending on PTB settings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB 22 warns that the int form is deprecated
        value = exc.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


def is_transient(exc: Exception) -> bool:
    """Whether a failed Bot API call may pass when tried again: a network error, a 5xx,
    or an answer the library could not read (a proxy's page, even with HTTP 200: PTB's
    "Invalid server response" is a bare ``TelegramError``, and a body without ``result``
    a ``KeyError``).  Such an answer is no refusal: counted as one, the critical alert it
    carried was dropped."""
    if isinstance(exc, NetworkError):  # includes TimedOut and 5xx (BadRequest caught before)
        return True
    return type(exc) is TelegramError or not isinstance(exc, TelegramError)


def plain_text(html: str) -> str:
    """``html`` without its tags and entities (a fallback when Telegram refuses the HTML)."""
    return unescape(_TAG.sub("", html))


class TelegramBot:
    """One run's bot: :meth:`start` (raises ``ConfigError`` for a refused token),
    :meth:`notify` from any thread, :meth:`stop` flushes and ends the thread."""

    def __init__(self, settings: TelegramSettings, run_dir: Path, *, run_id: str,
                 mode: str) -> None:
        self.settings, self.run_dir = settings, Path(run_dir)
        self.run_id, self.mode = run_id, mode
        self.outbox = Outbox(settings.max_pending, late_after_s=settings.late_after_s)
        self.limiter = RateLimiter(settings.max_messages_per_minute,
                                   settings.min_message_interval_s)
        self.watcher = LedgerWatcher(self.run_dir, max_fills=settings.max_pending)
        #: What the ledger held after the marks a previous bot of the run delivered up to
        #: (sent after the start notice, marked late), and the marks last saved.
        self.catch_up: list[Notice] = []
        self._saved: Marks | None = None
        self.catch_up_problem: str | None = None  # why the marks file could not be used
        self._save_failed = False
        self.username: str | None = None
        # (chat id, user, command) refused, the newest MAX_REFUSED
        self.refused: deque[tuple[int, str, str]] = deque(maxlen=MAX_REFUSED)
        self._told: set[tuple[int, int | None]] = set()  # (chat, user) told they may not
        #: Commands from allowed chats left waiting before this bot started: not obeyed
        #: (a /resume typed for an earlier run, a kill the last process already handled).
        self.stale: list[tuple[int, str]] = []  # (chat id, command)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._mask: TokenMask | None = None
        self._masked_loggers: list[logging.Logger] = []
        self._commands_down: str | None = None  # why commands are not received, once told
        self._offset: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._flushing = False  # at shutdown: send what is queued, unbatched and uncapped
        self._polling: asyncio.Future[list[Notice]] | None = None  # a ledger read in flight
        self._delivering = False  # a message taken from the outbox is still being sent
        #: (chat id, user id) -> the control command waiting for its /confirm CODE
        self._pending: dict[tuple[int, int | None], PendingControl] = {}
        self.clock = time.monotonic  # (tests move it)

    # -- the loop's side ------------------------------------------------------------------
    def start(self) -> None:
        """Read the token, ask the Bot API who we are (``getMe``) and start the thread;
        ``ConfigError`` naming ``[plugins.telegram] token`` when the token is refused."""
        if self.settings.token is None:
            raise ConfigError("[plugins.telegram] token: not set; the bot cannot start")
        try:
            token = self.settings.token.reveal()
        except ConfigError as exc:
            raise ConfigError(f"[plugins.telegram] token: {exc}") from None
        self._mask = TokenMask(token)
        self._masked_loggers = url_loggers()
        for logger in self._masked_loggers:
            logger.addFilter(self._mask)
        self.catch_up = self._prime()
        self._thread = threading.Thread(target=self._run_thread, args=(token,),
                                        name=f"argus-telegram-{self.run_id[:12]}",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(self.settings.startup_timeout_s + 5):
            self.stop()
            raise ConfigError(f"[plugins.telegram] base_url {self.settings.base_url}: no "
                              f"answer to getMe within {self.settings.startup_timeout_s} s")
        if self._startup_error is not None:
            error = self._startup_error
            self._unmask()
            raise error

    def _prime(self) -> list[Notice]:
        """Prime the watcher from the marks a previous bot of this run delivered up to,
        returning what followed them, marked late; without a marks file (a first start)
        from now, as with one that cannot be used (warned, in the log and the chats)."""
        path = delivered.path_of(self.run_dir)
        try:
            since = delivered.load(self.run_dir, self.run_id)
            if since is not None:
                late = (f"⏰ <i>late: from before this bot started "
                        f"({hh_mm(time.time())} UTC)</i>: ")
                notices = self.watcher.prime(since, late)
                self._saved = since
                log.info("telegram: %d alert(s) from before this bot started, from %s",
                         len(notices), path)
                return notices
        except MarksError as exc:
            log.warning("telegram: %s %s; alerts from before this bot started are not "
                        "sent (it starts from now)", path, exc)
            self.catch_up_problem = str(exc)
        self.watcher.prime()
        return []

    def notify(self, notice: Notice) -> None:
        """Queue a notification (any thread), if its kind is configured."""
        if self.settings.wants(notice.kind):
            self.outbox.put(notice)

    def stop(self) -> None:
        """Read the ledger one last time, deliver what is pending (up to
        ``shutdown_flush_s``), then stop polling and end the thread."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(self.settings.shutdown_flush_s + 10)
            if self._thread.is_alive():
                log.warning("telegram: the bot thread did not stop in time; left running "
                            "as a daemon")
        self._unmask()

    def _unmask(self) -> None:
        if self._mask is not None:
            for logger in self._masked_loggers:
                logger.removeFilter(self._mask)

    # -- the bot's thread ---------------------------------------------------------------
    def _run_thread(self, token: str) -> None:
        try:
            asyncio.run(self._main(token))
        except BaseException as exc:  # a thread must not die silently
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()
            else:
                log.error("telegram: the bot stopped: %s", exc)

    def _bot(self, token: str) -> Bot:
        s = self.settings
        # Long polls hold their connection for poll_timeout_s: a pool of their own.
        return Bot(token, base_url=s.base_url, base_file_url=s.base_file_url,
                   request=HTTPXRequest(connection_pool_size=8, read_timeout=15.0,
                                        write_timeout=30.0, connect_timeout=10.0,
                                        media_write_timeout=60.0),
                   get_updates_request=HTTPXRequest(connection_pool_size=1,
                                                    read_timeout=10.0,
                                                    connect_timeout=10.0))

    async def _main(self, token: str) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        bot = self._bot(token)
        try:
            try:
                # initialize() asks getMe: the token is checked before the run trades.
                await asyncio.wait_for(bot.initialize(), self.settings.startup_timeout_s)
            except InvalidToken:
                raise ConfigError(
                    f"[plugins.telegram] token ({self._token_ref()}): the Bot API at "
                    f"{self.settings.base_url} refused it (401 Unauthorized); check the "
                    f"token @BotFather gave") from None
            except (TelegramError, TimeoutError) as exc:
                raise ConfigError(
                    f"[plugins.telegram] base_url {self.settings.base_url}: getMe failed "
                    f"({type(exc).__name__}: {self._masked(str(exc), token)})") from None
            await self._skip_stale_updates(bot)
            await self._serve(bot)
        finally:
            with contextlib.suppress(Exception):  # closing the HTTP pool is best effort
                await bot.shutdown()

    async def _skip_stale_updates(self, bot: Bot) -> None:
        """Confirm, without obeying, every update waiting before this bot started.

        Telegram keeps unconfirmed updates for a day: a ``/resume`` typed for an earlier
        run, or a ``/kill`` the previous process of this run handled but had not yet
        confirmed when it stopped, would otherwise be obeyed (again) now.  Runs before
        the bot says it is ready, so a command sent after start-up is never skipped."""
        seen: set[int] = set()
        for _ in range(MAX_STALE_PAGES):
            try:
                updates = await self._read_updates(bot, 0)
            except TelegramError as exc:
                log.warning("telegram: could not skip the updates left from before start-up "
                            "(%s); they may be obeyed", type(exc).__name__)
                return
            if updates is None:
                continue  # an unreadable one, skipped: the next page
            if not updates:
                return
            for update in updates:
                self._offset = update.update_id + 1
                message = update.message
                if message is not None and message.text and message.chat is not None \
                        and message.text.startswith("/") \
                        and message.chat.id in self.settings.chat_ids \
                        and update.update_id not in seen:  # one sent twice is one
                    seen.add(update.update_id)
                    self.stale.append((message.chat.id, commands.shown(message.text)))
            log.warning("telegram: skipped %d update(s) sent before this bot started",
                        len(updates))
        # Still more (a stranger can pad the queue): the Bot API forgets every update but
        # the newest at a negative offset, and that one is confirmed unread.  Paging on
        # would obey the command that waited past the last page.
        with contextlib.suppress(TelegramError):
            last = await _raw_updates(bot, offset=-1)
            if isinstance(last, list) and last and isinstance(last[-1], dict) \
                    and type(last[-1].get("update_id")) is int:
                self._offset = last[-1]["update_id"] + 1
                log.warning("telegram: more than %d pages of updates waited at start-up; the "
                            "rest were forgotten unread (none obeyed)", MAX_STALE_PAGES)

    async def _read_updates(self, bot: Bot, timeout: int) -> list[Update] | None:
        """The updates after the offset; None when one could not be read, which is then
        skipped by its raw id (a field of the wrong type raised out of the library's
        parsing: the poller stopped for good, and a /kill was never obeyed)."""
        try:
            return list(await bot.get_updates(offset=self._offset, timeout=timeout,
                                              allowed_updates=ALLOWED_UPDATES))
        except TelegramError:
            raise
        except Exception as exc:
            raw = await _raw_updates(bot, offset=self._offset, limit=1)
            first = raw[0] if isinstance(raw, list) and raw else None
            if not isinstance(first, dict) or type(first.get("update_id")) is not int:
                raise TelegramError(f"an update that cannot be read ({exc})") from exc
            self._offset = first["update_id"] + 1  # confirmed unread: never obeyed
            log.error("telegram: update %d cannot be read (%s: %s); skipped, not obeyed",
                      first["update_id"], type(exc).__name__, exc)
            return None

    async def _serve(self, bot: Bot) -> None:
        self.username = bot.bot.username
        self._ready.set()
        log.info("telegram: bot @%s serving run %s to %d chat(s)", self.username, self.run_id,
                 len(self.settings.chat_ids))
        start = self.watcher.start_state  # a run resumed halted says so at once
        held = "" if start.get("state") == TradingState.ACTIVE.value else \
            f"; trading {describe_state(start)}"
        self.notify(Notice("run", f"▶️ Argus run <code>{escape(self.run_id)}</code> "
                                  f"({escape(self.mode)}) started{held}; /help lists the "
                                  f"commands", critical=bool(held)))
        if self.catch_up_problem is not None:
            self.outbox.put(Notice("run", f"⚠️ <code>{delivered.MARKS_FILE}</code> "
                                          f"{escape(self.catch_up_problem)}: alerts from "
                                          f"before this bot started are not sent; /status "
                                          f"shows the state now"))
        for notice in self.catch_up:
            self.notify(notice)
        self.catch_up = []
        if self.stale:  # to every chat (whatever ``events`` says): a person is waiting
            self.outbox.put(Notice("run", f"⚠️ Not obeyed: {len(self.stale)} command(s) sent "
                                          f"before this bot started (for an earlier run, or "
                                          f"already handled); send again what you still "
                                          f"want", critical=True))
        poller = asyncio.create_task(self._poll_updates(bot))
        watcher = asyncio.create_task(self._watch_ledger())
        sender = asyncio.create_task(self._send_loop(bot))
        try:
            assert self._stopping is not None
            await self._stopping.wait()
            poller.cancel()
            watcher.cancel()
            await asyncio.gather(poller, watcher, return_exceptions=True)
            await self._final_read()
            await self._flush(sender)  # what the run said goes out before "stopped"
            self.notify(Notice("run", f"⏹ Argus run <code>{escape(self.run_id)}</code> "
                                      f"stopped"))
            await self._flush(sender)
            self._save_marks()
        finally:
            for task in (poller, watcher, sender, *self._tasks):
                task.cancel()
            await asyncio.gather(poller, watcher, sender, *self._tasks,
                                 return_exceptions=True)

    def _token_ref(self) -> str:
        return self.settings.token.reference if self.settings.token else "unset"

    @staticmethod
    def _masked(text: str, token: str) -> str:
        return text.replace(token, "<token>") if token else text

    async def _flush(self, sender: asyncio.Task[None]) -> None:
        """Let the sender deliver what is queued, up to ``shutdown_flush_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.shutdown_flush_s
        self._flushing = True
        # Until the message in hand is sent too: the outbox empties when the sender takes
        # it, and cancelling the sender mid-send (a retry's back-off) would lose it.
        while (len(self.outbox) or self._delivering) and not sender.done() \
                and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if len(self.outbox) or self._delivering:
            log.warning("telegram: %d notification(s) undelivered at shutdown",
                        len(self.outbox) + self._delivering)

    async def _final_read(self) -> None:
        try:
            if self._polling is not None:  # a read the shutdown's cancel interrupted
                polling = self._polling
                try:
                    for notice in await polling:
                        self.notify(notice)
                finally:
                    self._polling = None
            for notice in await asyncio.to_thread(self.watcher.poll):
                self.notify(notice)
        except Exception as exc:  # the run is ending; say so and go on
            log.warning("telegram: last ledger read failed: %s", exc)

    # -- notifications ------------------------------------------------------------------
    def _save_marks(self) -> None:
        """Save the watcher's marks when everything derived up to them has been delivered:
        nothing queued, no message in hand, no ledger read in flight (its marks moved, its
        notices not queued yet).  On the bot's loop, between the watcher's reads: the
        check and the marks are one moment.  A write that fails is warned of once."""
        if len(self.outbox) or self._delivering or self._polling is not None:
            return
        marks = self.watcher.marks()
        if marks == self._saved:
            return
        try:
            delivered.save(self.run_dir, self.run_id, marks)
        except OSError as exc:
            if not self._save_failed:
                log.warning("telegram: cannot save the delivered marks (%s); a restart "
                            "may not tell what happened before it", exc)
            self._save_failed = True
            return
        self._saved, self._save_failed = marks, False

    async def _watch_ledger(self) -> None:
        while True:
            await asyncio.sleep(self.settings.ledger_poll_s)
            self._save_marks()
            # The read runs in a thread no cancel stops: it moves the watcher's high-water
            # marks even when shutdown cancels this task, so its future is kept for the
            # last read to deliver (a state change read then was lost: never announced).
            self._polling = asyncio.ensure_future(asyncio.to_thread(self.watcher.poll))
            try:
                notices = await asyncio.shield(self._polling)
            except Exception as exc:  # a busy or missing ledger must not end the bot
                # (a cancel is no Exception: it leaves the future for the last read)
                self._polling = None
                log.warning("telegram: cannot read the ledger: %s", exc)
                continue
            self._polling = None
            for notice in notices:
                self.notify(notice)

    async def _send_loop(self, bot: Bot) -> None:
        while True:
            due = self.outbox.due_in(0.0 if self._flushing else self.settings.batch_interval_s)
            if due is None or due > 0:
                await asyncio.sleep(min(due or 0.05, 0.25))
                continue
            # The per-minute cap holds back batches, never a state change or a rollback,
            # nor what is left when the run ends (the cap would hold it past the flush
            # deadline, and the "stopped" notice with it); a real flood answer, 429,
            # still holds everything back, and the spacing still applies.
            wait = self.limiter.wait_s(
                capped=not (self.outbox.has_critical() or self._flushing))
            if wait > 0:
                # A critical notice that arrives meanwhile rides in this message.
                await asyncio.sleep(min(wait, 0.25))
                continue
            text = self.outbox.take()
            if text is None:
                continue
            self._delivering = True  # set with the take, no await between: _flush sees it
            try:
                if not await self._deliver(bot, text):
                    self.outbox.put_back(text)
            finally:
                self._delivering = False

    async def _deliver(self, bot: Bot, text: str) -> bool:
        """Send ``text`` to every chat; False when no chat got it for a reason that may
        pass (the message is then queued again, first)."""
        outcomes = []
        text = outgoing(text)  # redacted, hidden controls shown, within the length
        for chat_id in self.settings.chat_ids:
            outcome = await self._call(functools.partial(
                bot.send_message, chat_id, text, parse_mode=PARSE_MODE),
                what=f"sendMessage to {chat_id}")
            if outcome is Outcome.REFUSED:
                # Refused as it is (HTML that does not parse?): the words still matter.
                outcome = await self._call(functools.partial(
                    bot.send_message, chat_id, plain_text(text)),
                    what=f"plain sendMessage to {chat_id}")
            outcomes.append(outcome)
        self.limiter.sent()
        return any(o is not Outcome.FAILED for o in outcomes)

    async def _call(self, make: Callable[[], Awaitable[Any]], *, what: str) -> Outcome:
        """Await ``make()``, honouring a 429's ``retry_after`` and retrying network errors
        and 5xx answers, up to MAX_TRIES."""
        for attempt in range(MAX_TRIES):
            wait = self.limiter.wait_s(capped=False)
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await make()
                return Outcome.SENT
            except RetryAfter as exc:
                delay = retry_after_s(exc)
                log.warning("telegram: %s: flood control, retrying after %.1f s", what, delay)
                self.limiter.pause(delay)
            except (BadRequest, Forbidden, InvalidToken) as exc:
                # (BadRequest subclasses NetworkError in PTB: caught first, never retried.)
                log.error("telegram: %s refused: %s", what, exc)
                return Outcome.REFUSED
            except Exception as exc:
                if not is_transient(exc):  # Conflict, ChatMigrated: retrying cannot help
                    log.error("telegram: %s refused: %s", what, exc)
                    return Outcome.REFUSED
                delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                log.warning("telegram: %s failed (%s: %s); retrying in %.1f s", what,
                            type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
        log.error("telegram: %s failed %d times", what, MAX_TRIES)
        return Outcome.FAILED

    # -- commands -------------------------------------------------------------------------
    async def _poll_updates(self, bot: Bot) -> None:
        failures = 0
        while True:
            try:
                # (PTB adds the long-poll timeout to its read_timeout)
                updates = await self._read_updates(bot, self.settings.poll_timeout_s)
                failures = 0
                self._commands_back()
                if updates is None:
                    continue
            except RetryAfter as exc:
                await asyncio.sleep(retry_after_s(exc))
                continue
            except TelegramError as exc:
                # Never a return: a poller that stops leaves the run without its /kill.
                delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
                failures += 1
                log.warning("telegram: getUpdates failed (%s: %s); retrying in %.1f s",
                            type(exc).__name__, exc, delay)
                why = self._polling_problem(exc, failures)
                if why is not None:
                    self._commands_down_notice(why)
                await asyncio.sleep(delay)
                continue
            for update in updates:
                if self._offset is not None and update.update_id < self._offset:
                    # Sent again (a replay, a server that ignored the offset): handled once.
                    log.warning("telegram: update %d seen before; ignored", update.update_id)
                    continue
                self._offset = update.update_id + 1  # confirms it: never handled twice
                try:
                    await self._handle(bot, update)
                except Exception as exc:  # one bad command must not stop the bot
                    log.exception("telegram: handling update %s failed: %s",
                                  update.update_id, exc)

    def _polling_problem(self, exc: TelegramError, failures: int) -> str | None:
        """What to tell the chats of a failed ``getUpdates`` (None: a hiccup, not yet)."""
        if isinstance(exc, Conflict):
            return ("another process polls this bot's updates (409 Conflict: a second run "
                    "or program with the same token), so it takes your commands")
        if isinstance(exc, InvalidToken):
            return (f"the Bot API refused the token ([plugins.telegram] token "
                    f"{escape(self._token_ref())}: 401/404)")
        if failures >= MAX_TRIES:
            return f"getUpdates failed {failures} times in a row ({escape(type(exc).__name__)})"
        return None

    def _commands_down_notice(self, why: str) -> None:
        """Tell the chats, once per outage, that their commands are not received."""
        if self._commands_down is not None:
            return
        self._commands_down = why
        log.error("telegram: commands are not received: %s", why)
        self.outbox.put(Notice("run", f"⚠️ Commands are not received by run <code>"
                                      f"{escape(self.run_id)}</code>: {why}. The bot keeps "
                                      f"trying; to halt the run meanwhile use <code>argus kill"
                                      f" --run-dir RUN_DIR</code> on its host.",
                               critical=True))

    def _commands_back(self) -> None:
        """After a told outage, say that commands are received again."""
        if self._commands_down is None:
            return
        self._commands_down = None
        log.warning("telegram: commands are received again")
        self.outbox.put(Notice("run", f"✅ Commands are received again by run <code>"
                                      f"{escape(self.run_id)}</code>; send again what you "
                                      f"sent meanwhile if it was not answered.",
                               critical=True))

    async def _handle(self, bot: Bot, update: Update) -> None:
        message = update.message
        if message is None:
            # An edit (of /status into /kill), a channel post (no sender), a button press:
            # never a command.  Only new messages are asked for; this is the guard.
            kinds = [k for k in ("edited_message", "channel_post", "edited_channel_post",
                                 "callback_query") if getattr(update, k, None) is not None]
            log.warning("telegram: update %d ignored (%s: not a new message)",
                        update.update_id, ", ".join(kinds) or "no message")
            return
        if not message.text or message.chat is None:
            return
        user = message.from_user
        name = (user.username or user.first_name or str(user.id)) if user else "unknown"
        command = commands.parse(message.text, message.chat.id, name, self.username)
        if command is None:
            return
        chat_id, user_id = message.chat.id, (user.id if user else None)
        shown = f"/{command.name}" if command.name else \
            commands.shown(message.text.split(maxsplit=1)[0])
        why = self._refusal(chat_id, user_id)
        if why is not None:
            self.refused.append((chat_id, command.user, command.name or shown))
            log.warning("telegram: refused %s from chat %s (user %s, %s): %s", shown,
                        chat_id, user_id, commands.shown(command.user), why)
            if (chat_id, user_id) not in self._told and len(self._told) < MAX_TOLD:
                self._told.add((chat_id, user_id))  # once each: a flood costs nothing
                await self._reply(bot, message, "This chat may not use this bot."
                                  if chat_id not in self.settings.chat_ids
                                  else "You may not use this bot.")
            return
        if message.forward_origin is not None or message.is_automatic_forward:
            # Someone else's words: a forwarded /kill is not this person asking.
            log.warning("telegram: forwarded %s in chat %s not obeyed", shown, chat_id)
            await self._reply(bot, message, "Forwarded commands are not obeyed; send the "
                                            "command yourself.")
            return
        log.info("telegram: %s from chat %s (%s)", shown, chat_id,
                 commands.shown(command.user))
        if command.name == "confirm":
            await self._confirm(bot, message, command, user_id)
        elif command.name in commands.CONFIRMED_COMMANDS and self.settings.confirm_within_s:
            await self._ask_confirmation(bot, message, command, user_id)
        elif command.name in commands.CONTROL_COMMANDS:
            await self._control(bot, message, command)
        elif command.name == "report":
            task = asyncio.create_task(self._report(bot, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif command.name in commands.READ_COMMANDS:
            await self._reply(bot, message, await asyncio.to_thread(self._read, command.name))
        else:
            await self._reply(bot, message, f"Unknown command. Try:\n{commands.HELP}")

    def _refusal(self, chat_id: int, user_id: int | None) -> str | None:
        """Why a command from ``user_id`` in ``chat_id`` is not obeyed, or None."""
        if type(chat_id) is not int or chat_id not in self.settings.chat_ids:  # 4242.0 too
            return "not in [plugins.telegram] chat_ids"
        if self.settings.user_ids is not None and (type(user_id) is not int
                                                   or user_id not in self.settings.user_ids):
            return "not in [plugins.telegram] user_ids"
        return None

    def _read(self, name: str) -> str:
        readers: dict[str, Callable[[Path], str]] = {
            "status": commands.status_text, "positions": commands.positions_text,
            "pnl": commands.pnl_text, "thoughts": commands.thoughts_text}
        if name in readers:
            try:
                return readers[name](self.run_dir)
            except Exception as exc:  # answer the person rather than stay silent
                log.warning("telegram: /%s failed: %s", name, exc)
                return f"/{name} failed: cannot read the ledger ({type(exc).__name__})"
        return commands.HELP

    async def _ask_confirmation(self, bot: Bot, message: Message, command: commands.Command,
                                user_id: int | None) -> None:
        """Answer a one-time code instead of acting: only ``/confirm CODE`` from the same
        person in the same chat within ``confirm_within_s`` acts (once: the code is
        forgotten when used).  A newer request of that person replaces the older."""
        key = (command.chat_id, user_id)
        code = f"{secrets.randbelow(10**6):06d}"
        self._pending.pop(key, None)
        self._pending[key] = PendingControl(command, code,
                                            self.clock() + self.settings.confirm_within_s)
        while len(self._pending) > MAX_PENDING_CONFIRMS:
            del self._pending[next(iter(self._pending))]
        what = "HALT trading" if command.name == "kill" else \
            "HALT trading and close every position"
        reason = f" ({escape(commands.clean_reason(command.args))})" if command.args else ""
        await self._reply(bot, message, f"Nothing written yet. To {what} in run "
                          f"{self._run_html()}{reason}, send <code>/confirm {code}</code> "
                          f"within {self.settings.confirm_within_s:g} s.")

    async def _confirm(self, bot: Bot, message: Message, command: commands.Command,
                       user_id: int | None) -> None:
        key = (command.chat_id, user_id)
        pending = self._pending.get(key)
        if pending is None or self.clock() > pending.expires_at:
            self._pending.pop(key, None)
            await self._reply(bot, message, "Nothing to confirm: no /kill or /flatten of "
                              "yours is waiting (a code works once, for "
                              f"{self.settings.confirm_within_s:g} s); send it again.")
            return
        if not hmac.compare_digest(command.args.strip().encode(), pending.code.encode()):
            pending.tries += 1
            left = MAX_CONFIRM_TRIES - pending.tries
            if left <= 0:
                del self._pending[key]
            await self._reply(bot, message, "Wrong code; nothing written. " + (
                f"{left} more tr{'y' if left == 1 else 'ies'}." if left > 0 else
                f"The /{pending.command.name} is cancelled; send it again."))
            return
        del self._pending[key]  # once: a replayed /confirm finds nothing
        await self._control(bot, message, pending.command)

    async def _control(self, bot: Bot, message: Message, command: commands.Command) -> None:
        try:
            result = await self._write_latch(bot, message, command)
        except Exception as exc:
            log.error("telegram: /%s could not write the ledger: %s", command.name, exc)
            why = (f"the ledger is busy (the loop holds its write lock); nothing was "
                   f"written. Send /{command.name} again, or use `argus {command.name} "
                   f"--run-dir RUN_DIR` on the run's host"
                   if commands.is_busy(exc) else f"{type(exc).__name__}: {exc}")
            await self._reply(bot, message, f"/{command.name} FAILED: {why}"[:500],
                              html=False)
            return
        latch = result.latch
        if not result.written:
            log.info("telegram: /%s by %s changed nothing (trading already %s)",
                     command.name, commands.shown(command.by), latch.get("state"))
            await self._reply(bot, message, "Nothing changed: trading is already "
                              + describe_state(latch) + f" in run {self._run_html()}.")
            return
        log.warning("telegram: trading state set to %s by %s (%s)", latch["state"],
                    commands.shown(command.by), commands.shown(latch["reason"], 200))
        left = ("\n⚠️ " + commands.left_open_html(result.left_open)) if result.left_open \
            else ""
        await self._reply(bot, message, "Done: trading " + describe_state(latch)
                          + f"; run {self._run_html()} adopts it at its next commit." + left)

    async def _write_latch(self, bot: Bot, message: Message, command: commands.Command
                           ) -> commands.ControlResult:
        """Write the latch; a kill or flatten that finds the ledger busy (the loop holding
        its write lock past SQLite's 5 s wait) is tried again for up to ``BUSY_RETRY_S``
        (it must land; the rule makes a repeat harmless), the person told once.  A resume
        is not: a late one would surprise, and the poller waits while this retries."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BUSY_RETRY_S
        told = False
        while True:
            try:
                return await asyncio.to_thread(commands.set_trading_state, self.run_dir,
                                               command)
            except Exception as exc:
                if not commands.is_busy(exc) or command.name == "resume" \
                        or loop.time() >= deadline:
                    raise
                log.warning("telegram: /%s: the ledger is busy; trying again", command.name)
                if not told:
                    told = True
                    await self._reply(bot, message, f"The ledger is busy (the loop holds its "
                                      f"write lock); trying /{command.name} again for up to "
                                      f"{BUSY_RETRY_S} s…")
                await asyncio.sleep(0.2)

    def _run_html(self) -> str:
        """This run's id as HTML: with two runs on one token, say which one acted."""
        return f"<code>{escape(self.run_id)}</code>"

    async def _report(self, bot: Bot, message: Message) -> None:
        await self._reply(bot, message, "Writing the report…")
        try:
            path = await asyncio.to_thread(commands.write_report, self.run_dir,
                                           self.settings.report_timeout_s)
        except Exception as exc:
            log.warning("telegram: /report failed: %s", exc)
            await self._reply(bot, message, f"/report failed: {exc}"[:500], html=False)
            return
        data = await asyncio.to_thread(path.read_bytes)
        await self._call(functools.partial(
            bot.send_document, message.chat.id, data, message_thread_id=_topic(message),
            filename=f"argus-report-{self.run_id[:12]}.html",
            caption=outgoing(f"Report of run {self.run_id}", html=False)),
            what="sendDocument")
        self.limiter.sent(capped=False)

    async def _reply(self, bot: Bot, message: Message, text: str, *, html: bool = True
                     ) -> None:
        # A person asked: replies skip the batch and the per-minute cap, keep the spacing.
        # Redacted, hidden controls shown, cut to Telegram's length (counted in UTF-16).
        text = outgoing(text, html=html)
        await self._call(functools.partial(
            bot.send_message, message.chat.id, text, parse_mode=PARSE_MODE if html else None,
            message_thread_id=_topic(message)), what=f"reply to {message.chat.id}")
        self.limiter.sent(capped=False)


def _topic(message: Message) -> int | None:
    """The forum topic ``message`` was written in, for the answer to go there too (without
    it the answer lands in the group's General topic, where the person does not look);
    None outside topics (a reply chain's thread id is no topic)."""
    return message.message_thread_id if message.is_topic_message else None


async def _raw_updates(bot: Bot, **params: Any) -> Any:
    """``getUpdates`` answered as the Bot API's JSON, unparsed (what the library cannot
    parse is still read by its id); the library's advice to call ``get_updates`` instead
    is silenced, since that is what failed or cannot take a negative offset's meaning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBUserWarning)
        return await bot.do_api_request("getUpdates", api_kwargs={
            "timeout": 0, "allowed_updates": list(ALLOWED_UPDATES), **params})
