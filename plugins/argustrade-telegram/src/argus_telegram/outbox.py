"""Batching and rate limiting of notifications, apart from any network code.

Notifications are queued from two threads (the loop's ``on_fill``, the bot's own ledger
watcher) and sent by the bot's thread: many become one message per
``batch_interval_s``, messages are spaced and capped per minute, critical ones (a trading
state change, a rollback) jump the queue and are never dropped; when the queue overflows
while rate-limited, the oldest non-critical lines go and the next message says how many.
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


@attrs.frozen
class Notice:
    """One line of a notification: its kind (``config.EVENT_KINDS``), text (already
    escaped for HTML) and whether it is critical."""

    kind: str
    html: str
    critical: bool = False


class Outbox:
    """Thread-safe queue of notices, taken as batched message texts."""

    def __init__(self, max_pending: int = 500, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.max_pending = max_pending
        self.clock = clock
        self._lock = threading.Lock()
        self._critical: collections.deque[Notice] = collections.deque()
        self._normal: collections.deque[Notice] = collections.deque()
        self._first_pending_at: float | None = None
        self.dropped = 0  # non-critical notices dropped since the last message

    def put(self, notice: Notice) -> None:
        """Queue ``notice`` (any thread)."""
        with self._lock:
            if self._first_pending_at is None:
                self._first_pending_at = self.clock()
            if notice.critical:
                self._critical.append(notice)
                return
            self._normal.append(notice)
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
        ``max_chars``; what does not fit stays queued (due at once).  None when empty."""
        with self._lock:
            lines: list[str] = []
            size = 0
            for queue in (self._critical, self._normal):
                while queue:
                    line = queue[0].html
                    units = utf16_len(line)
                    if lines and size + units + 1 > max_chars:
                        break
                    if not lines and units > max_chars:
                        line = cut_html(line, max_chars)  # one huge line: cut, never stall
                        units = utf16_len(line)
                    queue.popleft()
                    lines.append(line)
                    size += units + 1
            if self.dropped:
                lines.append(f"<i>({self.dropped} older notifications dropped under the "
                             f"rate limit)</i>")
                self.dropped = 0
            pending = bool(self._critical or self._normal)
            # Left-overs are due at once: they already waited a full batch interval.
            self._first_pending_at = (self.clock() - 1e9) if pending else None
            return "\n".join(lines) if lines else None

    def put_back(self, html: str) -> None:
        """Return an unsent message to the front of the queue (a failed send)."""
        with self._lock:
            self._critical.appendleft(Notice("retry", html, critical=True))
            if self._first_pending_at is None:
                self._first_pending_at = self.clock()


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
    side, liquidity = escape(fill.side.value.upper()), escape(fill.liquidity.value)
    return Notice("fills", f"✅ Fill {side} {fill.quantity} {escape(fill.instrument_id)} @ "
                           f"{fill.price} (fee {fill.fee}, {liquidity})")
