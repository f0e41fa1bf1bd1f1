"""Telegram channel (python-telegram-bot 22): HTML rendering, keyboards, both run modes.

`run_polling(settings)` is the development entry point; the webhook server lives in
`bot.web` and reuses `build_application` and `attach` from here.
"""

from bot.channels.telegram.adapter import ALLOWED_UPDATES, OUTCOME, TelegramAdapter, UpdateOutcome
from bot.channels.telegram.app import attach, build_application, run_polling

__all__ = [
    "ALLOWED_UPDATES",
    "OUTCOME",
    "TelegramAdapter",
    "UpdateOutcome",
    "attach",
    "build_application",
    "run_polling",
]
