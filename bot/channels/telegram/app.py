"""Building the PTB `Application` both run modes share, and `run_polling`.

Both modes use the same pieces: the Bot API root from TELEGRAM_API_URL, the
`AIORateLimiter` (so a 429 is waited out, not dropped), the per-chat ordered update
processor, and one `TelegramAdapter` handler. Polling lets PTB's updater fetch; the
webhook (bot.web) builds the application with `.updater(None)` and feeds it itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram import Update
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder

from bot.channels.telegram.adapter import ALLOWED_UPDATES, TelegramAdapter
from bot.channels.telegram.processor import ChatOrderedProcessor
from bot.config import Settings
from bot.conversations import Advisor

log = logging.getLogger(__name__)

# How often a 429 is retried (after waiting `retry_after`) before the update fails
# and, in webhook mode, is left for Telegram to deliver again.
RATE_LIMIT_RETRIES = 5
# Enough connections to the Bot API for many chats answered at once.
CONNECTION_POOL = 128
# A chat's backlog: one update running and a few waiting; beyond it, "one moment".
CHAT_BACKLOG = 5
PURGE_EVERY = timedelta(hours=1)


def configure_logging(level: str) -> None:
    """Log lines without secrets: httpx would log every request URL, token included."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # transitions narrates every state change at INFO: noise at the scale of a busy bot.
    logging.getLogger("transitions").setLevel(logging.WARNING)


def build_application(settings: Settings, *, webhook: bool) -> Application:  # type: ignore[type-arg]
    """A PTB application talking to TELEGRAM_API_URL; no handlers yet (see `attach`)."""
    processor = ChatOrderedProcessor(max_backlog=CHAT_BACKLOG)
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token)
        .base_url(settings.bot_api_base_url)
        .base_file_url(settings.bot_api_file_url)
        .rate_limiter(
            AIORateLimiter(
                overall_max_rate=settings.telegram_max_rate,
                max_retries=RATE_LIMIT_RETRIES,
            )
        )
        .concurrent_updates(processor)
        .connection_pool_size(CONNECTION_POOL)
        .pool_timeout(30)
    )
    if webhook:
        builder = builder.updater(None)
    return builder.build()


def attach(
    application: Application,  # type: ignore[type-arg]
    advisor: Advisor,
    admin_ids: Iterable[int] = (),
) -> TelegramAdapter:
    """Register the adapter on `application` and hook the flood notice to its processor."""
    adapter = TelegramAdapter(advisor, admin_ids)
    adapter.register(application)
    processor = application.update_processor
    if isinstance(processor, ChatOrderedProcessor):

        async def notify(update: Update) -> None:
            await adapter.one_moment(update, application.bot)

        processor.on_overflow = notify
    return adapter


async def purge_forever(advisor: Advisor, ttl_days: int) -> None:
    """Delete conversations idle for `ttl_days`, now and every hour (privacy by default)."""
    while True:
        try:
            idle_since = datetime.now(UTC) - timedelta(days=ttl_days)
            purged = await advisor.store.purge_idle(idle_since)
            if purged:
                log.info("purged %d idle conversations", purged)
        except Exception:
            log.warning("purging idle conversations failed; will try again", exc_info=True)
        await asyncio.sleep(PURGE_EVERY.total_seconds())


def run_polling(settings: Settings) -> None:
    """Run the bot by long polling (development). Blocks until Ctrl-C / SIGTERM."""
    from bot.runtime import build_advisor

    configure_logging(settings.log_level)
    application = build_application(settings, webhook=False)
    state: dict[str, Any] = {}

    async def post_init(app: Application) -> None:  # type: ignore[type-arg]
        advisor = await build_advisor(settings.dialogs_dir, settings.locales_dir, settings.database_url)
        state["advisor"] = advisor
        adapter = attach(app, advisor, settings.admin_ids)
        await adapter.set_commands(app.bot)
        state["purge"] = asyncio.get_running_loop().create_task(purge_forever(advisor, settings.session_ttl_days))
        log.info("polling as @%s", app.bot.username)

    async def post_shutdown(app: Application) -> None:  # type: ignore[type-arg]
        purge = state.get("purge")
        if purge is not None:
            purge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purge
        advisor = state.get("advisor")
        if advisor is not None:
            await advisor.store.close()

    application.post_init = post_init
    application.post_shutdown = post_shutdown
    application.run_polling(allowed_updates=list(ALLOWED_UPDATES))
