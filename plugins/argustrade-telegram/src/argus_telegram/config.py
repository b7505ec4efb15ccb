"""``[plugins.telegram]`` settings, validated into a frozen attrs class.

Example::

    [plugins.telegram]
    token = "$env:ARGUS_TELEGRAM_TOKEN"    # a reference; inline tokens are refused
    chat_ids = [123456789, -1001234567890]  # who gets alerts and may send commands
    batch_interval_s = 3.0
    max_messages_per_minute = 20
    events = ["fills", "states", "risk", "rollbacks", "drift", "run"]
"""

from __future__ import annotations

from typing import Any

import attrs

from argus_core import POSITIVE, Secret, in_range, url_scheme

#: Kinds of notification; ``events`` chooses among them.
EVENT_KINDS = ("fills", "states", "risk", "rollbacks", "drift", "run")


def _check_chat_ids(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, list) or not all(
            isinstance(c, int) and not isinstance(c, bool) for c in value):
        raise ValueError(f"{attribute.name}: a list of integer ids, e.g. [123456789] "
                         f"(a group's chat id is negative), not {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"{attribute.name}: an id is listed twice")


def _check_events(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, list):
        raise ValueError(f"{attribute.name}: a list of event kinds, not {value!r}")
    for kind in value:
        if kind not in EVENT_KINDS:
            raise ValueError(f"{attribute.name}: unknown event kind {kind!r} "
                             f"(choose from {', '.join(EVENT_KINDS)})")


def _check_token(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, Secret):
        raise ValueError(f"{attribute.name}: a secret reference like "
                         f"'$env:ARGUS_TELEGRAM_TOKEN' or '$file:/path/to/token'")


@attrs.frozen
class TelegramSettings:
    """Settings of the Telegram bot (unset ``token``: the plugin stays idle).

    Attributes:
        token: the bot token from @BotFather, as a reference (``$env:NAME`` or
            ``$file:PATH``); read at start-up and never logged.
        chat_ids: chats that receive notifications and whose commands are obeyed; commands
            from any other chat are refused and logged.
        user_ids: when set, only these people's commands are obeyed, and only in the
            chats of ``chat_ids`` (in an allowed group, anyone else is refused); ``[]``
            obeys nobody (alerts only); unset, the default: anyone who can write in an
            allowed chat.
        base_url: the Bot API's base URL (the token and ``/method`` follow it); point it at a
            local stand-in (``argus_telegram.testing``) for offline tests.
        base_file_url: the Bot API's base URL for file downloads.
        batch_interval_s: notifications that arrive within this many seconds of the first
            pending one go out as one message (a state change goes out at once).
        max_messages_per_minute: notification messages per chat per minute (Telegram allows
            about 20 a minute in a group); command replies do not count.
        min_message_interval_s: seconds between two messages to one chat (Telegram: ~1 s).
        events: which notifications to send (any of fills, states, risk, rollbacks, drift,
            run).
        poll_timeout_s: long-poll timeout of ``getUpdates``, in seconds.
        ledger_poll_s: how often the ledger is read for state changes, risk events,
            rollbacks and drift alarms.
        max_pending: notifications held while rate-limited; beyond it the oldest
            non-critical ones are dropped (and counted in the next message).
        startup_timeout_s: how long start-up waits for the Bot API's ``getMe``.
        shutdown_flush_s: how long the end of a run waits to deliver what is pending.
        report_timeout_s: time limit of ``argus report`` for ``/report``.
        confirm_within_s: ``/flatten`` acts only when the same person sends ``/confirm
            CODE`` (the one-time code the bot answered) within this many seconds, so a
            mistyped or replayed command sells nothing; 0: it acts on one message.
            ``/kill`` always acts at once (a halt is the safe direction).
        late_after_s: a notification sent more than this many seconds after it was queued
            (Telegram unreachable, rate-limited) is marked late (``⏰ late (queued 14:02
            UTC)``); those re-derived at start-up from before the bot started always are.
    """

    token: Secret | None = attrs.field(default=None, validator=_check_token)
    chat_ids: list[int] = attrs.field(factory=list, validator=_check_chat_ids)
    user_ids: list[int] | None = attrs.field(
        default=None, validator=attrs.validators.optional(_check_chat_ids))
    base_url: str = attrs.field(default="https://api.telegram.org/bot",
                                validator=url_scheme("http", "https"))
    base_file_url: str = attrs.field(default="https://api.telegram.org/file/bot",
                                     validator=url_scheme("http", "https"))
    batch_interval_s: float = attrs.field(default=3.0, validator=in_range(0, 3600))
    max_messages_per_minute: int = attrs.field(default=20, validator=in_range(1, 60))
    min_message_interval_s: float = attrs.field(default=1.0, validator=in_range(0, 60))
    events: list[str] = attrs.field(factory=lambda: list(EVENT_KINDS),
                                    validator=_check_events)
    poll_timeout_s: int = attrs.field(default=20, validator=in_range(0, 60))
    ledger_poll_s: float = attrs.field(default=1.0, validator=POSITIVE)
    max_pending: int = attrs.field(default=500, validator=in_range(10))
    startup_timeout_s: float = attrs.field(default=30.0, validator=POSITIVE)
    shutdown_flush_s: float = attrs.field(default=15.0, validator=in_range(0))
    report_timeout_s: float = attrs.field(default=300.0, validator=POSITIVE)
    confirm_within_s: float = attrs.field(default=60.0, validator=in_range(0, 3600))
    late_after_s: float = attrs.field(default=300.0, validator=in_range(1, 86_400))

    def __attrs_post_init__(self) -> None:
        if self.token is not None and not self.chat_ids:
            raise ValueError("chat_ids: list the chats that may use the bot (a token is set "
                             "but no chat would receive alerts or be obeyed)")

    @property
    def enabled(self) -> bool:
        """Whether a bot is to run."""
        return self.token is not None

    def wants(self, kind: str) -> bool:
        """Whether notifications of ``kind`` are to be sent."""
        return kind in self.events
