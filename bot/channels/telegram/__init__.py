"""Telegram channel (python-telegram-bot 22): HTML rendering, keyboards, both run modes.

`run_polling(settings)` is the development entry point; the webhook server lives in
`bot.web` and builds the same channel with `build_channel(settings, advisor, webhook=True)`.
"""

from bot.channels.telegram.adapter import ALLOWED_UPDATES, TelegramAdapter
from bot.channels.telegram.app import TelegramChannel, build_channel, run_polling
from bot.channels.telegram.outcome import Outcome
from bot.channels.telegram.sender import TelegramSender

__all__ = [
    "ALLOWED_UPDATES",
    "Outcome",
    "TelegramAdapter",
    "TelegramChannel",
    "TelegramSender",
    "build_channel",
    "run_polling",
]
