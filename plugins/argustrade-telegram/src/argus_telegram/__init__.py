"""Argus Telegram: alerts (fills, trading state changes, risk events, rollbacks, drift
alarms; batched and rate-limited) and commands (/status, /positions, /pnl, /report,
/thoughts, /kill, /flatten, /resume) for a running loop, restricted to configured chats.

Configure ``[plugins.telegram] token`` and ``chat_ids``; see the README.  A local stand-in
of the Bot API for tests is in :mod:`argus_telegram.testing`.
"""

from __future__ import annotations

from argus_telegram.config import TelegramSettings

# The bot (python-telegram-bot) is imported on demand: argus_telegram.bot.TelegramBot.
__all__ = ["TelegramSettings"]
