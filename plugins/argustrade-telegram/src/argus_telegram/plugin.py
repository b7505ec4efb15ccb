"""Argus hooks of the Telegram plugin (entry point ``telegram``).

``on_startup`` starts the bot (when ``[plugins.telegram] token`` is set): a refused token
stops the run before it trades, with an error naming the key.  Fills, like every other
alert, are read from the ledger by the bot's own thread (the loop's thread does nothing
for it); ``on_shutdown`` reads the ledger one last time, delivers what is pending and
stops the bot.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from argus_core import hookimpl
from argus_telegram.config import TelegramSettings

if TYPE_CHECKING:
    from argus_telegram.bot import TelegramBot

log = logging.getLogger(__name__)
PLUGIN = "telegram"
_bots: dict[int, TelegramBot] = {}  # id(RunContext) -> its run's bot


@hookimpl
def config_class() -> type:
    """``[plugins.telegram]`` is validated by :class:`TelegramSettings`."""
    return TelegramSettings


@hookimpl
def on_startup(ctx: Any) -> None:
    """Start this run's bot, if a token is configured."""
    settings = ctx.settings.get(PLUGIN) or TelegramSettings()
    if not settings.enabled:
        return
    # Imported here: python-telegram-bot costs ~0.3 s, paid only by runs that use it.
    from argus_telegram.bot import TelegramBot

    bot = TelegramBot(settings, ctx.run_dir, run_id=ctx.run_id, mode=ctx.mode)
    bot.start()
    _bots[id(ctx)] = bot


@hookimpl
def on_shutdown(ctx: Any) -> None:
    """Deliver what is pending (the final state included) and stop the bot."""
    bot = _bots.pop(id(ctx), None)
    if bot is not None:
        bot.stop()


def bot_of(ctx: Any) -> TelegramBot | None:
    """The bot of a running run (for tests and embedding)."""
    return _bots.get(id(ctx))
