"""Putting the Telegram channel together for both run modes, and `run_polling`.

Both modes use the same pieces, built in one order so nothing is attached afterwards:
the Bot (the Bot API root from TELEGRAM_API_URL, the `AIORateLimiter` so a 429 is
waited out, not dropped), the sender on that bot, the router on the advisor and the
sender, the per-chat ordered processor with the router's "one moment" as its overflow
callback, and the PTB `Application` around them. Polling lets PTB's updater fetch and
dispatch to the router; the webhook (bot.web) hands each update to the processor itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from telegram import Update
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, ExtBot, TypeHandler
from telegram.request import HTTPXRequest

from bot.channels.telegram.adapter import ALLOWED_UPDATES, TelegramAdapter
from bot.channels.telegram.outcome import Outcome
from bot.channels.telegram.processor import ChatOrderedProcessor
from bot.channels.telegram.sender import TelegramSender
from bot.config import Settings
from bot.conversations import Advisor

log = logging.getLogger(__name__)

# How often a 429 is retried (after waiting `retry_after`) before the update fails
# and, in webhook mode, is left for Telegram to deliver again.
RATE_LIMIT_RETRIES = 5
# Enough connections to the Bot API for many chats answered at once.
CONNECTION_POOL = 128
POOL_TIMEOUT = 30
# A chat's backlog: one update running and a few waiting; beyond it, "one moment".
CHAT_BACKLOG = 5


@dataclass(frozen=True)
class TelegramChannel:
    """The assembled channel: PTB's application (it owns the bot's connections), the
    router and the processor updates go through."""

    application: Application  # type: ignore[type-arg]
    router: TelegramAdapter
    processor: ChatOrderedProcessor

    async def handle(self, update: Update) -> Outcome:
        """Handle one update in its chat's order; what became of it."""
        return await self.processor.run(update, self.router.handle(update))


def build_bot(settings: Settings) -> ExtBot[int]:
    """The Bot API client: TELEGRAM_API_URL, the rate limiter, a pool for many chats."""
    return ExtBot(
        settings.telegram_bot_token,
        base_url=settings.bot_api_base_url,
        base_file_url=settings.bot_api_file_url,
        request=HTTPXRequest(connection_pool_size=CONNECTION_POOL, pool_timeout=POOL_TIMEOUT),
        rate_limiter=AIORateLimiter(overall_max_rate=settings.telegram_max_rate, max_retries=RATE_LIMIT_RETRIES),
    )


def build_channel(settings: Settings, advisor: Advisor, *, webhook: bool) -> TelegramChannel:
    """Bot, sender, router, processor and application, each given what it needs."""
    bot = build_bot(settings)
    router = TelegramAdapter(advisor, TelegramSender(bot), settings.admin_ids)
    processor = ChatOrderedProcessor(max_backlog=CHAT_BACKLOG, on_overflow=router.one_moment)
    builder = ApplicationBuilder().bot(bot).concurrent_updates(processor)
    if webhook:
        # The webhook hands updates to `TelegramChannel.handle`; no updater, no handlers.
        application = builder.updater(None).build()
    else:
        application = builder.build()
        application.add_handler(TypeHandler(Update, router.on_update))
    return TelegramChannel(application, router, processor)


def run_polling(settings: Settings) -> None:
    """Run the bot by long polling (development). Blocks until Ctrl-C / SIGTERM."""
    from bot.runtime import assemble_advisor, configure_logging, purge_forever

    configure_logging(settings.log_level)
    # The store is opened on PTB's event loop (post_init), not here: its connections
    # belong to the loop that uses them.
    advisor = assemble_advisor(settings)
    channel = build_channel(settings, advisor, webhook=False)
    tasks: list[asyncio.Task[None]] = []

    async def post_init(app: Application) -> None:  # type: ignore[type-arg]
        await advisor.store.open()
        await channel.router.set_commands()
        tasks.append(asyncio.get_running_loop().create_task(purge_forever(advisor, settings.session_ttl_days)))
        log.info("polling as @%s", app.bot.username)

    async def post_shutdown(app: Application) -> None:  # type: ignore[type-arg]
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await advisor.store.close()

    channel.application.post_init = post_init
    channel.application.post_shutdown = post_shutdown
    channel.application.run_polling(allowed_updates=list(ALLOWED_UPDATES))
