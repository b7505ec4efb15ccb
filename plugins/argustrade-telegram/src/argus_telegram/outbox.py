"""Batching and rate limiting of notifications, apart from any network code.

Notifications are queued by the bot's thread (its ledger watcher, its own notices; any
thread may queue) and sent by it: many become one message per ``batch_interval_s``,
messages are spaced and capped per minute, critical ones (a trading state change, a
rollback) jump the queue; when a queue overflows while rate-limited or while Telegram is
unreachable, its oldest lines go and the next message says how many (critical ones only
past ``max_pending`` of them).  A line sent more than ``late_after_s`` after it was
queued says it is late.
"""

from __future__ import annotations

import collections
import re
import threading
import time
from collections.abc import Callable
from html import escape

import attrs

from argus_core import Fill, redact, visible_text

#: Telegram refuses messages over 4096 characters, counted in UTF-16 code units (an emoji
#: or a math letter outside the BMP is two); keep room for the header.  Every length here
#: is in those units (:func:`utf16_len`).
MAX_MESSAGE_CHARS = 3800
_TAG = re.compile(r"<[^>]*>")
_PARTIAL_ENTITY = re.compile(r"&[#a-zA-Z0-9]*$")
_OPEN_TAG = re.compile(r"<[^>]*$")


@attrs.frozen
class Notice:
    """One line of a notification: its kind (``config.EVENT_KINDS``), text (already
    escaped for HTML), whether it is critical, and whether its text already says it is
    late (a notice re-derived at start-up from before the bot started)."""

    kind: str
    html: str
    critical: bool = False
    late: bool = False


@attrs.frozen
class _Entry:
    """A queued notice and when it was queued (monotonic for the lateness, wall clock for
    the time shown)."""

    notice: Notice
    queued_at: float
    queued_wall: float


#: Kinds named in the line that counts critical notices folded under :attr:`max_pending`.
_KIND_NAMES = {"states": "trading state", "rollbacks": "rollback", "drift": "drift alarm",
               "run": "bot", "retry": "unsent"}


def hh_mm(wall: float) -> str:
    """``14:02`` (UTC) of a wall-clock time in seconds."""
    return time.strftime("%H:%M", time.gmtime(wall))


class Outbox:
    """Thread-safe queue of notices, taken as batched message texts.

    Both queues are bounded by ``max_pending``: beyond it the oldest ordinary notices go,
    and, should critical ones pile up too (Telegram unreachable for hours while drift
    alarms come in), the oldest critical ones, each counted in a line of the next message
    (memory stays bounded whatever happens; the ledger keeps everything).  A notice taken
    more than ``late_after_s`` after it was queued says so (``⏰ late``)."""

    def __init__(self, max_pending: int = 500, clock: Callable[[], float] = time.monotonic,
                 *, late_after_s: float = 300.0, wall: Callable[[], float] = time.time
                 ) -> None:
        self.max_pending = max_pending
        self.late_after_s = late_after_s
        self.clock, self.wall = clock, wall
        self._lock = threading.Lock()
        self._critical: collections.deque[_Entry] = collections.deque()
        self._normal: collections.deque[_Entry] = collections.deque()
        self._first_pending_at: float | None = None
        self.dropped = 0  # non-critical notices dropped since the last message
        #: critical notices dropped since the last message, by kind
        self.dropped_critical: collections.Counter[str] = collections.Counter()
        #: the entries of the last message taken, and its text (for :meth:`put_back`)
        self._in_hand: tuple[str, list[_Entry]] | None = None

    def put(self, notice: Notice) -> None:
        """Queue ``notice`` (any thread)."""
        if len(notice.html) > 2 * MAX_MESSAGE_CHARS:  # cut now: a queued line stays small
            # (its start only: a tag the slice cuts in two goes; then as take() cuts)
            head = _OPEN_TAG.sub("", notice.html[:4 * MAX_MESSAGE_CHARS])
            notice = attrs.evolve(notice, html=cut_html(head, MAX_MESSAGE_CHARS))
        with self._lock:
            now = self.clock()
            if self._first_pending_at is None:
                self._first_pending_at = now
            entry = _Entry(notice, now, self.wall())
            if notice.critical:
                self._critical.append(entry)
                while len(self._critical) > self.max_pending:
                    self.dropped_critical[self._critical.popleft().notice.kind] += 1
                return
            self._normal.append(entry)
            while len(self._normal) > self.max_pending:
                self._normal.popleft()
                self.dropped += 1

    def __len__(self) -> int:
        with self._lock:
            return len(self._critical) + len(self._normal)

    def has_critical(self) -> bool:
        """Whether a critical notice is waiting (it is sent without waiting for a batch)."""
        with self._lock:
            return bool(self._critical)

    def due_in(self, batch_interval_s: float) -> float | None:
        """Seconds until the pending batch is due (0: now; None: nothing pending)."""
        with self._lock:
            if self._first_pending_at is None:
                return None
            if self._critical:
                return 0.0
            return max(0.0, self._first_pending_at + batch_interval_s - self.clock())

    def take(self, max_chars: int = MAX_MESSAGE_CHARS) -> str | None:
        """The next message: critical lines first, then the rest in arrival order, up to
        ``max_chars``; what does not fit stays queued (due at once).  None when empty.
        A line queued more than ``late_after_s`` ago is marked late."""
        with self._lock:
            now = self.clock()
            taken: list[_Entry] = []
            lines: list[str] = []
            size = 0
            if self.dropped_critical:  # first: what went is as critical as what follows
                kinds = ", ".join(f"{n} {_KIND_NAMES.get(k, k)}"
                                  for k, n in sorted(self.dropped_critical.items()))
                fold = (f"<i>({sum(self.dropped_critical.values())} older critical "
                        f"notifications dropped while they could not be sent: {kinds}; "
                        f"/status shows the trading state now)</i>")
                taken.append(_Entry(Notice("run", fold, critical=True), now, self.wall()))
                lines.append(fold)
                size += utf16_len(fold) + 1
                self.dropped_critical.clear()
            for queue in (self._critical, self._normal):
                while queue:
                    line = self._render(queue[0], now)
                    units = utf16_len(line)
                    if lines and size + units + 1 > max_chars:
                        break
                    if not lines and units > max_chars:
                        line = cut_html(line, max_chars)  # one huge line: cut, never stall
                        units = utf16_len(line)
                    taken.append(queue.popleft())
                    lines.append(line)
                    size += units + 1
            if self.dropped:
                fold = (f"<i>({self.dropped} older notifications dropped under the "
                        f"rate limit)</i>")
                taken.append(_Entry(Notice("run", fold), now, self.wall()))
                lines.append(fold)
                self.dropped = 0
            pending = bool(self._critical or self._normal)
            # Left-overs are due at once: they already waited a full batch interval.
            self._first_pending_at = (now - 1e9) if pending else None
            text = "\n".join(lines) if lines else None
            self._in_hand = (text, taken) if text is not None else None
            return text

    def _render(self, entry: _Entry, now: float) -> str:
        notice = entry.notice
        if notice.late or now - entry.queued_at <= self.late_after_s:
            return notice.html
        return f"⏰ <i>late (queued {hh_mm(entry.queued_wall)} UTC)</i>: {notice.html}"

    def put_back(self, html: str) -> None:
        """Return an unsent message to the front of the queue (a failed send).  The last
        message taken goes back as its notices, with the times they were queued (so it
        is marked late when it is); any other text as one new notice."""
        with self._lock:
            now = self.clock()
            in_hand, self._in_hand = self._in_hand, None
            if in_hand is not None and in_hand[0] == html:
                entries = [attrs.evolve(e, notice=attrs.evolve(e.notice, critical=True))
                           for e in in_hand[1]]
            else:
                entries = [_Entry(Notice("retry", html, critical=True), now, self.wall())]
            self._critical.extendleft(reversed(entries))
            if self._first_pending_at is None:
                self._first_pending_at = now


def utf16_len(text: str) -> int:
    """``text``'s length as Telegram counts it: UTF-16 code units."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def cut_utf16(text: str, max_units: int) -> str:
    """The longest start of ``text`` within ``max_units`` UTF-16 code units (never half
    of a surrogate pair)."""
    if len(text) * 2 <= max_units or utf16_len(text) <= max_units:
        return text
    return text.encode("utf-16-le", "surrogatepass")[:2 * max_units].decode(
        "utf-16-le", "ignore")


def cut_html(html: str, max_chars: int) -> str:
    """``html`` cut to ``max_chars`` UTF-16 code units as plain escaped text: a cut could
    fall inside a tag or an entity, and Telegram refuses unbalanced HTML."""
    text = cut_utf16(_TAG.sub("", html), max_chars - 1)
    return _PARTIAL_ENTITY.sub("", text) + "…"


def outgoing(text: str, *, html: bool = True) -> str:
    """``text`` as it may go to a chat: credentials redacted (one quoted in a ledger row
    never reaches a chat), hidden controls written out (the core's ``visible_text``: text
    from the ledger could show a fill's price reversed), and within Telegram's length in
    UTF-16 code units (redacting can lengthen a text: a lone surrogate is six characters
    written out)."""
    text = visible_text(redact(text))
    if utf16_len(text) <= MAX_MESSAGE_CHARS:
        return text
    return cut_html(text, MAX_MESSAGE_CHARS) if html else \
        cut_utf16(text, MAX_MESSAGE_CHARS - 1) + "…"


class RateLimiter:
    """Spacing (``min_interval_s``) and a per-minute cap for messages to one chat; a 429's
    ``retry_after`` pauses everything until it has passed."""

    def __init__(self, per_minute: int, min_interval_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute, self.min_interval_s, self.clock = per_minute, min_interval_s, clock
        self._sent: collections.deque[float] = collections.deque()
        self._last: float | None = None
        self._paused_until = 0.0

    def wait_s(self, *, capped: bool = True) -> float:
        """Seconds to wait before the next message may go (``capped``: count the per-minute
        cap too; command replies only keep the spacing)."""
        now = self.clock()
        while self._sent and self._sent[0] <= now - 60.0:
            self._sent.popleft()
        wait = max(0.0, self._paused_until - now)
        if self._last is not None:
            wait = max(wait, self._last + self.min_interval_s - now)
        if capped and len(self._sent) >= self.per_minute:
            wait = max(wait, self._sent[0] + 60.0 - now)
        return wait

    def sent(self, *, capped: bool = True) -> None:
        """Record a message that went out now."""
        now = self.clock()
        self._last = now
        if capped:
            self._sent.append(now)

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (the Bot API's ``retry_after``)."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)


def fill_notice(fill: Fill) -> Notice:
    """A fill as one notice line."""
    return Notice("fills", fill_line(fill.side.value, fill.quantity, fill.instrument_id,
                                     fill.price, fill.fee, fill.liquidity.value))


def fill_line(side: object, quantity: object, instrument_id: object, price: object,
              fee: object, liquidity: object) -> str:
    """``✅ Fill BUY 0.1 XBT/USD @ 40000 (fee 1.5, taker)`` as HTML (from a ``Fill`` or a
    ``fills`` row of the ledger: the same text, the ledger stores ``str(Decimal)``)."""
    return (f"✅ Fill {escape(str(side).upper())} {escape(str(quantity))} "
            f"{escape(str(instrument_id))} @ {escape(str(price))} (fee {escape(str(fee))}, "
            f"{escape(str(liquidity))})")
